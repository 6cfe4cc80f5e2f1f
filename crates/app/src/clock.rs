//! The time the use cases see: the system clock, or a hand-moved one in tests (expiry, deadlines).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: Millis) -> Self {
        Self { manual: Some(Arc::new(AtomicI64::new(start.0))) }
    }

    pub fn now(&self) -> Millis {
        match &self.manual {
            Some(at) => Millis(at.load(Ordering::SeqCst)),
            None => Millis(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)),
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, millis: i64) {
        if let Some(at) = &self.manual {
            at.fetch_add(millis, Ordering::SeqCst);
        }
    }
}
