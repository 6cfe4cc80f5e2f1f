//! Password hashing with argon2id, bounded: at most one hash per core runs at a time, each in memory the pool
//! keeps for it, and only a short queue waits for a turn; past it the caller is told `Overloaded` (503) at once.
//!
//! A hash at the standard cost fills 19 MiB and takes tens of milliseconds of CPU. Run on the runtime's unbounded
//! blocking threads with memory of its own, a flood of sign-ins hashed hundreds of passwords at once and took
//! gigabytes that stayed taken (issue 17). Here a semaphore with one permit per core admits the hashes, a counter
//! bounds how many may wait for a permit, and each running hash works in a buffer of the pool's (allocated once,
//! then reused), so hashing never holds more than cores × 19 MiB whatever comes in. The permit, the place in the
//! queue and the buffer go with the blocking task: a caller that hangs up frees them only when its hash has ended.

use crate::AppError;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// How much work a new password hash costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasswordCost {
    /// argon2id with the crate's (OWASP's) defaults: 19 MiB, 2 passes. For every real deployment.
    #[default]
    Standard,
    /// argon2id at its minimum (8 KiB, 1 pass): for test suites that sign up hundreds of customers. Verifying
    /// reads the cost from the stored hash, so both kinds verify alike.
    Minimal,
}

impl PasswordCost {
    fn params(self) -> Params {
        match self {
            PasswordCost::Standard => Params::DEFAULT,
            PasswordCost::Minimal => {
                Params::new(Params::MIN_M_COST, Params::MIN_T_COST, 1, None).unwrap_or(Params::DEFAULT)
            }
        }
    }
}

/// The most memory a stored hash may ask for (64 MiB, in 1 KiB blocks): ours ask for 19 MiB.
const MAX_BLOCKS: usize = 64 * 1024;

/// The bounded pool every password hash goes through. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub(crate) struct Hashing {
    turns: Arc<Semaphore>,
    /// Hashes admitted: running or waiting for a turn.
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    /// Buffers no running hash holds (at most one per permit ever exists).
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl Hashing {
    /// One running hash per core (`available_parallelism`), `waiting_per_core` waiting per core.
    pub(crate) fn sized_to_the_machine(waiting_per_core: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores, cores.saturating_mul(waiting_per_core))
    }

    pub(crate) fn new(running: usize, waiting: usize) -> Self {
        let running = running.max(1);
        Self {
            turns: Arc::new(Semaphore::new(running)),
            admitted: Arc::default(),
            capacity: running.saturating_add(waiting),
            buffers: Arc::default(),
        }
    }

    /// A new hash of `password` at `cost`, as a PHC string. `hold` is kept until the hash has ended (see
    /// [`Hashing::run`]).
    pub(crate) async fn hash(
        &self,
        password: String,
        cost: PasswordCost,
        hold: impl Send + 'static,
    ) -> Result<String, AppError> {
        self.run(hold, move |buffer| hash_into(password.as_bytes(), cost.params(), buffer))
            .await?
            .map_err(AppError::Internal)
    }

    /// Whether `password` matches `stored`. A malformed stored hash counts as no match.
    pub(crate) async fn verify(
        &self,
        password: String,
        stored: String,
        hold: impl Send + 'static,
    ) -> Result<bool, AppError> {
        self.run(hold, move |buffer| verify_with(password.as_bytes(), &stored, buffer)).await
    }

    /// Runs `work` on a blocking thread once a turn is free, with a buffer of the pool's; `Overloaded` at once
    /// when the queue is full. `hold` (a client's place among its attempts in flight) is dropped when the work
    /// has ended, or when the caller stops waiting before it started: a client that hangs up cannot leave work
    /// behind it in the pool beyond its share.
    async fn run<T: Send + 'static>(
        &self,
        hold: impl Send + 'static,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let place = Place::take(&self.admitted, self.capacity).ok_or(AppError::Overloaded)?;
        let turn = Arc::clone(&self.turns)
            .acquire_owned()
            .await
            .map_err(|_| AppError::Internal("the password pool is closed".into()))?;
        let buffers = Arc::clone(&self.buffers);
        tokio::task::spawn_blocking(move || {
            let _held = (turn, place, hold);
            let mut buffer = buffers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop().unwrap_or_default();
            let answer = work(&mut buffer);
            buffers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(buffer);
            answer
        })
        .await
        .map_err(|error| AppError::Internal(format!("a password hash failed: {error}")))
    }

    /// How many hashes are running or waiting now (for tests).
    #[cfg(test)]
    fn admitted(&self) -> usize {
        self.admitted.load(Ordering::SeqCst)
    }
}

/// A place among the admitted hashes, given back when dropped.
struct Place(Arc<AtomicUsize>);

impl Place {
    fn take(admitted: &Arc<AtomicUsize>, capacity: usize) -> Option<Self> {
        admitted.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < capacity).then_some(n + 1)).ok()?;
        Some(Self(Arc::clone(admitted)))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The first `count` blocks of `buffer`, grown when it is shorter.
fn blocks(buffer: &mut Vec<Block>, count: usize) -> &mut [Block] {
    if buffer.len() < count {
        buffer.resize(count, Block::default());
    }
    &mut buffer[..count]
}

fn hash_into(password: &[u8], params: Params, buffer: &mut Vec<Block>) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2
        .hash_password_into_with_memory(password, &salt, &mut out, blocks(buffer, params.block_count()))
        .map_err(|e| format!("hashing a password: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

fn verify_with(password: &[u8], stored: &str, buffer: &mut Vec<Block>) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else { return false };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(phc.algorithm.as_str()) else { return false };
    let Ok(version) = phc.version.map_or(Ok(Version::default()), Version::try_from) else { return false };
    let Ok(params) = Params::try_from(&phc) else { return false };
    if params.block_count() > MAX_BLOCKS {
        tracing::warn!(blocks = params.block_count(), "a stored password hash asks for more memory than allowed");
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if argon2.hash_password_into_with_memory(password, salt, &mut out, blocks(buffer, params.block_count())).is_err() {
        return false;
    }
    // `Output`'s equality takes the same time wherever the outputs differ.
    Output::new(&out).is_ok_and(|computed| &computed == expected)
}

/// A hash that no password matches, verified against when the phone is unknown so that signing in takes as long
/// for an unknown phone as for a wrong password.
pub(crate) const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Yl3ReICDeBNFCE/TZK7gc6HEmKYyTtQqiZN8DqKKAc";

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher, PasswordVerifier};

    /// Hashes made here verify with the argon2 crate's own verifier and the other way round, at both costs.
    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crate() {
        let pool = Hashing::new(2, 2);
        for cost in [PasswordCost::Standard, PasswordCost::Minimal] {
            let ours = pool.hash("correct horse".into(), cost, ()).await.unwrap();
            assert!(Argon2::default().verify_password(b"correct horse", ours.as_str()).is_ok(), "{ours}");
            assert!(pool.verify("correct horse".into(), ours.clone(), ()).await.unwrap());
            assert!(!pool.verify("wrong horse".into(), ours, ()).await.unwrap());
            let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, cost.params())
                .hash_password(b"battery staple")
                .unwrap()
                .to_string();
            assert!(pool.verify("battery staple".into(), theirs.clone(), ()).await.unwrap());
            assert!(!pool.verify("battery stapler".into(), theirs, ()).await.unwrap());
        }
        assert!(!pool.verify("anything".into(), DECOY_HASH.into(), ()).await.unwrap());
        assert!(!pool.verify("anything".into(), "not a hash".into(), ()).await.unwrap());
        assert_eq!(pool.buffers.lock().unwrap().len(), 1, "one buffer served every hash in turn");
    }

    /// With every turn taken and the queue full, the next hash is refused at once; the queued ones all run.
    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let pool = Hashing::new(1, 2);
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, has_started) = tokio::sync::oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run((), move |_| {
                    let _ = started.send(());
                    released.recv().unwrap();
                })
                .await
            }
        });
        has_started.await.unwrap();
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.verify("x".into(), DECOY_HASH.into(), ()).await })
            })
            .collect();
        while pool.admitted() < 3 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(pool.verify("x".into(), DECOY_HASH.into(), ()).await, Err(AppError::Overloaded)));
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for waiter in waiting {
            assert!(!waiter.await.unwrap().unwrap());
        }
        assert_eq!(pool.admitted(), 0, "every place was given back");
    }
}
