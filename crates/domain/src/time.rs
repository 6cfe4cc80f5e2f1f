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

/// A business day in China Standard Time (UTC+8), as providers' daily bills and reconciliation count days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChinaDay(time::Date);

/// China Standard Time's offset from UTC, in milliseconds.
const CST_OFFSET_MS: i64 = 8 * Millis::HOUR;

impl ChinaDay {
    /// `YYYY-MM-DD`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(text, format).ok().map(Self)
    }

    /// The day in China that `at` falls on.
    pub fn of(at: Millis) -> Self {
        let days = (at.0 + CST_OFFSET_MS).div_euclid(Millis::DAY);
        let date = time::Date::from_julian_day(UNIX_EPOCH_JULIAN_DAY + days as i32).unwrap_or(time::Date::MIN);
        Self(date)
    }

    /// The first instant of the day (00:00 in China).
    pub fn start(self) -> Millis {
        let days = i64::from(self.0.to_julian_day() - UNIX_EPOCH_JULIAN_DAY);
        Millis(days * Millis::DAY - CST_OFFSET_MS)
    }

    /// The first instant of the next day: the day is `start() .. end()`.
    pub fn end(self) -> Millis {
        Millis(self.start().0 + Millis::DAY)
    }
}

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

impl std::fmt::Display for ChinaDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.0.year(), u8::from(self.0.month()), self.0.day())
    }
}

/// `YYYY-MM-DD HH:MM:SS` in China Standard Time, as providers' bills write times.
pub fn china_time_seconds(at: Millis) -> String {
    let utc = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.0) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let cst = utc.to_offset(time::macros::offset!(+8));
    cst.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")).unwrap_or_default()
}

/// RFC 3339 in UTC (`2026-11-26T03:30:00Z`), as providers write times in their messages.
pub fn rfc3339(at: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.0) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// An RFC 3339 time with any offset; `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok().map(Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_china_day_runs_from_midnight_to_midnight_in_china() {
        let day = ChinaDay::parse("2025-11-27").unwrap();
        assert_eq!(day.to_string(), "2025-11-27");
        // Midnight in Chengdu is 16:00 UTC the day before.
        assert_eq!(day.start(), Millis(1_764_172_800_000));
        assert_eq!(day.end().0 - day.start().0, Millis::DAY);
        assert_eq!(ChinaDay::of(Millis(1_764_174_600_000)), day);
        assert_eq!(ChinaDay::of(day.start()), day);
        assert_eq!(ChinaDay::of(Millis(day.start().0 - 1)).to_string(), "2025-11-26");
        assert_eq!(ChinaDay::of(Millis(0)).to_string(), "1970-01-01");
        assert!(ChinaDay::parse("2025-13-01").is_none() && ChinaDay::parse("yesterday").is_none());
        assert_eq!(china_time_seconds(Millis(1_764_174_600_000)), "2025-11-27 00:30:00");
        assert_eq!(rfc3339(Millis(1_764_174_600_000)), "2025-11-26T16:30:00Z");
        assert_eq!(parse_rfc3339("2025-11-27T00:30:00+08:00"), Some(Millis(1_764_174_600_000)));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn china_time_is_utc_plus_eight() {
        // 2025-11-26T16:30:00Z is half past midnight on the 27th in Chengdu.
        assert_eq!(china_time(Millis(1_764_174_600_000)), "2025-11-27 00:30");
        assert_eq!(china_time(Millis(0)), "1970-01-01 08:00");
    }
}
