//! What requests read before they write, kept in this instance's memory: who a session token belongs to, which
//! merchants a user works at, and live campaigns. A join reads all three; read from the database each time they
//! cost more round trips than the join's own write.
//!
//! A cached item is only ever a copy of a row, and every change to such a row says so as it commits:
//!
//! - the unit of work that makes the change sends its stale key (`tuangou_store::Stale`) with a `NOTIFY` on
//!   PostgreSQL, delivered to every instance at its commit and nowhere if it rolls back; each instance's listener
//!   forgets the item (`events.rs`). The instance that made the change forgets it at once, without waiting for its
//!   own notification to come back (on SQLite, one instance, that is all there is).
//! - a fill that raced with a change is not kept: a fill notes the cache's epoch before it reads, and is kept only
//!   if no item was forgotten meanwhile (the change may have committed after the read but been heard before the
//!   fill), so a forgotten item is never put back stale.
//! - on PostgreSQL the caches are used only while this instance listens: notifications are never replayed, so a
//!   listener that lost its connection (or never had one: a process that does not listen) empties them and reads
//!   through until it listens again.
//! - every item also ends after [`TIME_TO_LIVE`], a backstop for a change no notification reached (another
//!   process on the same SQLite file, such as a command-line call).
//!
//! A campaign is cached only while it is live: its rules cannot change then (only a draft's can), and what may,
//! its end, is a stale key. Even a stale "live" lets no join land: every seat and unit update re-checks the
//! campaign's status in the join's own transaction. Sessions keep their expiry and are checked against the clock
//! on every use.

use crate::Caller;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tuangou_domain::ids::MerchantId;
use tuangou_domain::time::Millis;
use tuangou_store::{CampaignRow, Stale};

/// How long an item lives at most, whatever notifications say.
pub(crate) const TIME_TO_LIVE: Duration = Duration::from_secs(30);

/// How many items one cache holds at most; a full cache starts again empty (a bound on memory, not a policy:
/// the busy items come back at the next read).
const CAPACITY: usize = 100_000;

/// A session as cached: its caller and when it ends.
#[derive(Debug, Clone)]
pub(crate) struct CachedSession {
    pub(crate) caller: Caller,
    pub(crate) expires_at: Millis,
}

/// The caches of one instance.
pub(crate) struct Caches {
    /// By the SHA-256 of the token, as sessions are stored.
    pub(crate) sessions: Cache<String, CachedSession>,
    /// The merchants a user has a role at, by user id.
    pub(crate) roles: Cache<String, Vec<MerchantId>>,
    /// Live campaigns, by id.
    pub(crate) campaigns: Cache<String, CampaignRow>,
    /// Whether the caches may be used: always on SQLite; on PostgreSQL only while this instance listens.
    trusted: AtomicBool,
}

impl Caches {
    pub(crate) fn new(trusted: bool) -> Self {
        Self {
            sessions: Cache::default(),
            roles: Cache::default(),
            campaigns: Cache::default(),
            trusted: AtomicBool::new(trusted),
        }
    }

    pub(crate) fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// From now on the caches are used (`true`: this instance hears every change) or emptied and read through.
    pub(crate) fn trust(&self, trusted: bool) {
        if !trusted {
            self.trusted.store(false, Ordering::Release);
        }
        self.clear();
        if trusted {
            self.trusted.store(true, Ordering::Release);
        }
    }

    /// Forgets what `stale` names.
    pub(crate) fn forget(&self, stale: &Stale) {
        match stale {
            Stale::Session(token_hash) => self.sessions.forget_where(|key, _| key == token_hash),
            Stale::User(user) => {
                self.sessions.forget_where(|_, session| session.caller.user.as_str() == user);
                self.roles.forget_where(|key, _| key == user);
            }
            Stale::Campaign(campaign) => self.campaigns.forget_where(|key, _| key == campaign),
        }
    }

    fn clear(&self) {
        self.sessions.forget_where(|_, _| true);
        self.roles.forget_where(|_, _| true);
        self.campaigns.forget_where(|_, _| true);
    }
}

/// One map of cached items (see the module's docs).
pub(crate) struct Cache<K, V> {
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    items: HashMap<K, (V, Instant)>,
    /// Counts the forgets: a fill that saw another epoch before its read is not kept.
    epoch: u64,
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Self { inner: Mutex::new(Inner { items: HashMap::new(), epoch: 0 }) }
    }
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The item, if cached and not past its time.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let inner = self.inner();
        inner.items.get(key).filter(|(_, at)| at.elapsed() < TIME_TO_LIVE).map(|(value, _)| value.clone())
    }

    /// The epoch to note before reading what [`Cache::fill`] will keep.
    pub(crate) fn epoch(&self) -> u64 {
        self.inner().epoch
    }

    /// Keeps `value`, read after [`Cache::epoch`] answered `epoch`, unless something was forgotten since.
    pub(crate) fn fill(&self, epoch: u64, key: K, value: V) {
        let mut inner = self.inner();
        if inner.epoch != epoch {
            return;
        }
        if inner.items.len() >= CAPACITY {
            inner.items.clear();
        }
        inner.items.insert(key, (value, Instant::now()));
    }

    /// Forgets every item `stale` matches, and voids the fills in flight.
    pub(crate) fn forget_where(&self, stale: impl Fn(&K, &V) -> bool) {
        let mut inner = self.inner();
        inner.epoch += 1;
        inner.items.retain(|key, (value, _)| !stale(key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_that_raced_with_a_forget_is_not_kept() {
        let cache: Cache<String, i64> = Cache::default();
        let before = cache.epoch();
        cache.forget_where(|key, _| key == "a");
        cache.fill(before, "a".into(), 1);
        assert_eq!(cache.get(&"a".into()), None, "read before the change, heard after: not kept");
        cache.fill(cache.epoch(), "a".into(), 2);
        assert_eq!(cache.get(&"a".into()), Some(2));
        cache.forget_where(|_, value| *value == 2);
        assert_eq!(cache.get(&"a".into()), None);
    }

    #[test]
    fn an_untrusted_cache_is_emptied() {
        let caches = Caches::new(true);
        caches.roles.fill(caches.roles.epoch(), "u".into(), Vec::new());
        assert!(caches.roles.get(&"u".into()).is_some());
        caches.trust(false);
        assert!(!caches.trusted());
        assert!(caches.roles.get(&"u".into()).is_none());
    }
}
