//! What this instance last read of the throttles' buckets, so that a client past a limit is refused without
//! asking the database again.
//!
//! A flood that ignores `Retry-After` sends thousands of requests a second, and each would read the buckets from
//! the database, taking the connections every other request needs. Within a window a bucket's count only grows
//! (a correct password's give-back aside), so a level once read is a lower bound until the window closes: when the
//! levels remembered already refuse, they refuse without a read; otherwise the database decides, and what it said
//! is remembered. A give-back that this instance did not see may leave it refusing until the window closes, which
//! errs on the side of the throttle. At most [`CAPACITY`] buckets are remembered; past it, closed windows go first,
//! then everything (the database still holds the counts).

use crate::{App, AppError, AppResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tuangou_domain::time::Millis;
use tuangou_store::{Bucket, Level};

const CAPACITY: usize = 10_000;

#[derive(Clone, Default)]
pub(crate) struct LevelsSeen {
    seen: Arc<Mutex<HashMap<String, Level>>>,
}

impl LevelsSeen {
    /// The levels of `buckets` as last read, for windows still open at `now` (empty otherwise).
    pub(crate) fn recall(&self, buckets: &[Bucket], now: Millis) -> Vec<Level> {
        let seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let empty = Level { used: 0, closes_at: now };
        buckets
            .iter()
            .map(|bucket| seen.get(&bucket.key).copied().filter(|level| level.closes_at > now).unwrap_or(empty))
            .collect()
    }

    /// Remembers the `levels` of `buckets` just read (those with a window open).
    pub(crate) fn remember(&self, buckets: &[Bucket], levels: &[Level], now: Millis) {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.len() + buckets.len() > CAPACITY {
            seen.retain(|_, level| level.closes_at > now);
            if seen.len() + buckets.len() > CAPACITY {
                seen.clear();
            }
        }
        for (bucket, level) in buckets.iter().zip(levels) {
            if level.used > 0 {
                seen.insert(bucket.key.clone(), *level);
            } else {
                seen.remove(&bucket.key);
            }
        }
    }
}

/// Seconds until the last full bucket's window closes, if one of `buckets` is full at these `levels`.
pub(crate) fn full_until(buckets: &[Bucket], levels: &[Level], now: Millis) -> Option<u64> {
    let full = buckets.iter().zip(levels).filter(|(bucket, level)| level.used >= bucket.limit);
    full.map(|(_, level)| level.closes_at.0).max().map(|closes_at| ((closes_at - now.0).max(1) as u64).div_ceil(1_000))
}

impl App {
    /// Decides on the levels of `buckets` at `now`: first on those remembered, which refuse without a read when
    /// they refuse, then on those read (and remembered). `decide` answers what to do next, or how many seconds to
    /// wait (429 `throttled`).
    pub(crate) async fn decide_on_levels<T>(
        &self,
        buckets: &[Bucket],
        now: Millis,
        decide: impl Fn(&[Level]) -> Result<T, u64>,
    ) -> AppResult<T> {
        decide(&self.levels_seen.recall(buckets, now)).map_err(AppError::Throttled)?;
        let levels = self.store.bucket_levels(buckets, now).await?;
        self.levels_seen.remember(buckets, &levels, now);
        decide(&levels).map_err(AppError::Throttled)
    }

    /// 429 when one of `buckets` is full at `now` (see [`App::decide_on_levels`]).
    pub(crate) async fn refuse_when_full(&self, buckets: &[Bucket], now: Millis) -> AppResult<()> {
        self.decide_on_levels(buckets, now, |levels| full_until(buckets, levels, now).map_or(Ok(()), Err)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_recalled_until_their_window_closes() {
        let seen = LevelsSeen::default();
        let bucket = |key: &str| Bucket { key: key.into(), limit: 10, window_ms: 60_000 };
        let (a, b) = (bucket("a"), bucket("b"));
        let now = Millis(1_000);
        let full = Level { used: 10, closes_at: Millis(61_000) };
        seen.remember(&[a.clone(), b.clone()], &[full, Level { used: 0, closes_at: now }], now);
        assert_eq!(seen.recall(&[b.clone(), a.clone()], now), [Level { used: 0, closes_at: now }, full]);
        let later = Millis(61_000);
        assert_eq!(seen.recall(std::slice::from_ref(&a), later), [Level { used: 0, closes_at: later }], "closed");
        for i in 0..CAPACITY {
            seen.remember(&[bucket(&i.to_string())], &[Level { used: 1, closes_at: Millis(2_000) }], now);
        }
        assert!(seen.seen.lock().unwrap().len() <= CAPACITY, "bounded");
    }
}
