//! Instants as whole milliseconds since the Unix epoch: the one time type both databases store the same way.

use serde::{Deserialize, Serialize};

/// A moment in UTC, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    pub const SECOND: i64 = 1_000;
    pub const HOUR: i64 = 3_600_000;
    pub const DAY: i64 = 86_400_000;

    /// This instant plus whole seconds, saturating rather than overflowing.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(Self::SECOND)))
    }

    pub fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }
}

/// `YYYY-MM-DD HH:MM` in China Standard Time (UTC+8), the time the store and its customers live in.
pub fn china_time(at: Millis) -> String {
    let utc = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.0) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let cst = utc.to_offset(time::macros::offset!(+8));
    cst.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_time_is_utc_plus_eight() {
        // 2025-11-26T16:30:00Z is half past midnight on the 27th in Chengdu.
        assert_eq!(china_time(Millis(1_764_174_600_000)), "2025-11-27 00:30");
        assert_eq!(china_time(Millis(0)), "1970-01-01 08:00");
    }
}
