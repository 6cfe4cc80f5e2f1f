//! SQLite's one write path: a thread that owns the writer connection and runs whole units of work.
//!
//! Every write on SQLite is a unit of work ([`crate::Store::write`]): a closure that runs its statements on the
//! connection, synchronously (rusqlite calls the C library directly), and ends with a result. The writer thread
//! takes units from a bounded queue and runs them one after another, each inside its own `SAVEPOINT`: a unit
//! that returns `Ok` is released into the open transaction, one that returns `Err` (or panics) is rolled back to
//! its savepoint, whole. Many units share one `BEGIN IMMEDIATE … COMMIT` (group commit, DESIGN.md pitfall 11):
//! the writer commits when the queue is empty or the batch is full, and only then answers the units it kept, so
//! an `Ok` is never ahead of the disk (synchronous = FULL). A refusal is answered at once.
//!
//! Nothing here depends on who is waiting: a unit that was queued runs to its end even when its request was
//! dropped (a client that hung up), and its answer is simply not read. A unit that was not queued did nothing.
//! The queue has a limit ([`QUEUE_LIMIT`]); past it a write is refused with [`StoreError::Overloaded`] at once.
//!
//! Within a batch, a unit sees the writes of the units before it, not yet committed: it may be refused because
//! of them (a seat taken), and such a refusal stands even in the rare case that the batch then fails to commit
//! (a disk error), like any refusal a retry may overturn.

use crate::StoreError;
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

/// How many units one commit may carry at most: bounds how long the first of a batch waits for its answer.
const MAX_BATCH: usize = 64;

/// How many units may wait for the writer. Past it, writes answer 503 `overloaded` rather than queue without
/// bound: at a few thousand units a second this is well under a second of work.
pub(crate) const QUEUE_LIMIT: usize = 1024;

/// What running a unit left behind: whether its writes are kept, and how to answer its caller once the writer
/// knows whether the batch is durable (`Err` with the reason when it is not).
pub(crate) struct Finished {
    pub(crate) keep: bool,
    pub(crate) answer: Answer,
}

/// Tells a unit's caller how it ended, given whether the writes it kept are durable.
pub(crate) type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A unit of work as the writer sees it: run it on the connection (inside its savepoint) and get what it left;
/// given `Err(reason)` instead when the writer cannot run it, it runs nothing and answers with the reason.
pub(crate) type Job = Box<dyn FnOnce(Result<&mut Connection, String>) -> Finished + Send>;

/// The handle to the writer thread. The thread ends when every handle is gone.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: SyncSender<Job>,
    alive: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer thread on `connection` (configured by the caller).
    pub(crate) fn start(connection: Connection) -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::sync_channel(QUEUE_LIMIT);
        let alive = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&alive);
        std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || {
            // Cleared however the thread ends, a panic included: `/readyz` then fails.
            let _alive = ClearOnDrop(flag);
            let mut connection = connection;
            run(&mut connection, &queue);
        })?;
        Ok(Writer { jobs, alive })
    }

    /// Queues `job`; refused at once when the queue is full or the writer is gone.
    pub(crate) fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.jobs.try_send(job).map_err(|error| match error {
            TrySendError::Full(_) => StoreError::Overloaded,
            TrySendError::Disconnected(_) => StoreError::Internal("the SQLite writer has stopped".into()),
        })
    }

    /// Whether the writer thread is still running.
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// One batch after another, for as long as anyone can send units.
fn run(connection: &mut Connection, queue: &Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        batch(connection, first, queue);
    }
}

/// Runs `first` and whatever queued meanwhile (up to [`MAX_BATCH`]) in one transaction, then commits once and
/// answers the units it kept.
fn batch(connection: &mut Connection, first: Job, queue: &Receiver<Job>) {
    if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
        // Nothing ran: the unit is answered with the reason, the next batch tries again.
        tracing::error!(%error, "the SQLite writer could not begin a transaction");
        (first(Err(error.to_string())).answer)(Ok(()));
        return;
    }
    let mut kept = Vec::new();
    let mut next = Some(first);
    let mut served = 0;
    while let Some(job) = next.take() {
        served += 1;
        if let Err(error) = run_unit(connection, job, &mut kept) {
            // The transaction can no longer be trusted: undo all of it.
            let _ = connection.execute_batch("ROLLBACK");
            answer_all(kept, Err(format!("the batch was rolled back: {error}")));
            return;
        }
        if served < MAX_BATCH {
            next = queue.try_recv().ok();
        }
    }
    match connection.execute_batch("COMMIT") {
        Ok(()) => answer_all(kept, Ok(())),
        Err(error) => {
            let _ = connection.execute_batch("ROLLBACK");
            answer_all(kept, Err(error.to_string()));
        }
    }
}

/// Runs one unit in its own savepoint: released when it is kept (its answer waits for the commit), rolled back
/// to when it is not (answered at once). An error here is the savepoint's own, which breaks the batch.
fn run_unit(connection: &mut Connection, job: Job, kept: &mut Vec<Answer>) -> rusqlite::Result<()> {
    connection.execute_batch("SAVEPOINT unit")?;
    let finished = job(Ok(connection));
    if finished.keep {
        connection.execute_batch("RELEASE SAVEPOINT unit")?;
        kept.push(finished.answer);
    } else {
        connection.execute_batch("ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit")?;
        (finished.answer)(Ok(()));
    }
    Ok(())
}

fn answer_all(answers: Vec<Answer>, outcome: Result<(), String>) {
    for answer in answers {
        answer(outcome.clone());
    }
}
