//! PostgreSQL: the joins by campaign of one instance go through their campaign one at a time, in arrival order.
//!
//! Joins of one campaign all want the same row, the open group closest to full, and hold it until they commit,
//! so they run one after another in any case. Left to PostgreSQL, the queue forms on that row's lock: each waiter
//! wakes when the holder commits, finds the group changed (often full) and takes the longer way (reserve stock,
//! look again, maybe open a group), and lock queues are not first come, first served, which stretches the tail.
//! Queued here instead, a join reaches the database when its campaign is free in this instance, finds the seat
//! it looks for, and waits in arrival order (`tokio::sync::Mutex` is fair). Other instances still meet on the
//! row locks, which keep every join correct on their own; this queue only saves the work of losing races.
//! SQLite needs none of this: its one writer runs the joins in turn already, and its group commit wants them
//! together.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use tokio::sync::{Mutex, MutexGuard};

/// Campaigns share a queue when their ids hash alike: a fixed set of queues needs no clean-up, and two busy
/// campaigns in one queue only wait for each other's turn, which is what they did before on the row locks.
const QUEUES: usize = 256;

pub(crate) struct JoinQueues {
    queues: Vec<Mutex<()>>,
}

impl JoinQueues {
    pub(crate) fn new() -> Self {
        Self { queues: (0..QUEUES).map(|_| Mutex::new(())).collect() }
    }

    /// Waits for `campaign`'s turn; the turn lasts as long as the guard.
    pub(crate) async fn turn(&self, campaign: &str) -> MutexGuard<'_, ()> {
        self.queues[queue_of(campaign)].lock().await
    }
}

fn queue_of(campaign: &str) -> usize {
    let mut hasher = DefaultHasher::new();
    campaign.hash(&mut hasher);
    usize::try_from(hasher.finish() % QUEUES as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::poll;
    use std::pin::pin;
    use std::task::Poll;

    #[tokio::test]
    async fn joins_of_one_campaign_take_turns_in_arrival_order() {
        let queues = JoinQueues::new();
        let first = queues.turn("campaign-a").await;
        let mut second = pin!(queues.turn("campaign-a"));
        let mut third = pin!(queues.turn("campaign-a"));
        assert!(poll!(second.as_mut()).is_pending(), "a second join waits while the first holds the turn");
        assert!(poll!(third.as_mut()).is_pending());
        drop(first);
        assert!(poll!(third.as_mut()).is_pending(), "the third join does not overtake the second");
        let Poll::Ready(second) = poll!(second.as_mut()) else { panic!("the second join's turn comes next") };
        drop(second);
        assert!(poll!(third.as_mut()).is_ready());
    }

    #[tokio::test]
    async fn another_campaign_does_not_wait() {
        let queues = JoinQueues::new();
        let other = (0..).map(|i| format!("campaign-{i}")).find(|c| queue_of(c) != queue_of("campaign-a")).unwrap();
        let _held = queues.turn("campaign-a").await;
        assert!(poll!(pin!(queues.turn(&other))).is_ready());
    }
}
