//! Sign-ins and sign-ups in flight at once, per client address, on this instance.
//!
//! The password hashing's queue is short on purpose (`passwords`), and the throttles' windows count attempts,
//! not how many arrive together. So each address has a share of attempts in flight (past it, 429 at once with
//! `Retry-After: 1`) and hashes one password at a time: its attempts take their address's turn before they join
//! the hashing queue. The queue then holds at most one hash per address, and a flood from a few addresses leaves
//! everyone else a wait of a few hashes, not of the whole flood. Entries go when their last attempt ends, so the
//! map holds only addresses with an attempt in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type ByAddress = Arc<Mutex<HashMap<String, (usize, Arc<Semaphore>)>>>;

#[derive(Clone, Default)]
pub(crate) struct InFlight {
    by_address: ByAddress,
}

/// One attempt in flight; dropping it ends it.
pub(crate) struct Attempt {
    by_address: ByAddress,
    address: String,
    turns: Arc<Semaphore>,
}

impl InFlight {
    /// An attempt from `address`, unless `most` are in flight from it already.
    pub(crate) fn enter(&self, address: &str, most: usize) -> Option<Attempt> {
        let mut by_address = self.by_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (count, turns) = by_address.entry(address.to_owned()).or_insert_with(|| (0, Arc::new(Semaphore::new(1))));
        if *count >= most {
            return None;
        }
        *count += 1;
        Some(Attempt {
            by_address: Arc::clone(&self.by_address),
            address: address.to_owned(),
            turns: Arc::clone(turns),
        })
    }
}

impl Attempt {
    /// Waits for the address's turn to hash a password (one at a time per address).
    pub(crate) async fn turn(self) -> Turn {
        // The semaphore is never closed, so the error arm is unreachable; without a turn, the attempt goes on.
        let permit = Arc::clone(&self.turns).acquire_owned().await.ok();
        Turn { _permit: permit, _attempt: self }
    }
}

/// An address's turn to hash, with its attempt: both end when it is dropped.
pub(crate) struct Turn {
    _permit: Option<OwnedSemaphorePermit>,
    _attempt: Attempt,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let mut by_address = self.by_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((count, _)) = by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_share() {
        let in_flight = InFlight::default();
        let first: Vec<_> = (0..2).map(|_| in_flight.enter("10.0.0.1", 2).unwrap()).collect();
        assert!(in_flight.enter("10.0.0.1", 2).is_none(), "its share is taken");
        let other = in_flight.enter("10.0.0.2", 2).expect("another address has room");
        drop(first);
        assert!(in_flight.enter("10.0.0.1", 2).is_some(), "room again once they ended");
        drop(other);
        assert!(in_flight.by_address.lock().unwrap().is_empty(), "nothing kept for addresses without attempts");
    }

    #[tokio::test]
    async fn an_address_hashes_one_at_a_time() {
        let in_flight = InFlight::default();
        let first = in_flight.enter("10.0.0.1", 4).unwrap().turn().await;
        let mut second = Box::pin(in_flight.enter("10.0.0.1", 4).unwrap().turn());
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        assert!(second.as_mut().poll(&mut context).is_pending(), "waits for the first");
        let other = in_flight.enter("10.0.0.2", 4).unwrap().turn().await;
        drop(first);
        let second = second.await;
        drop((second, other));
        assert!(in_flight.by_address.lock().unwrap().is_empty());
    }
}
