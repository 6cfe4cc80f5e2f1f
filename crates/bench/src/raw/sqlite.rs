//! SQLite's raw rate at the C level: the two-statement transaction through `rusqlite` (the C library with a thin
//! safe wrapper), on one dedicated OS thread that owns one connection for both runs.
//!
//! The thread loops for the whole period rather than serving clients over a channel. A client per transaction
//! would add a channel hand-off and a wake-up of an async task to every commit, and on a small machine those
//! threads compete with the writer for the cores: that measures a writer service, not the engine. SQLite takes
//! one writer at a time, so a tight loop on one connection is the most the engine commits when each
//! transaction is committed on its own (`BEGIN IMMEDIATE`, insert, update, `COMMIT`, which with
//! `synchronous = FULL` waits for the disk). The connection is set up as the store's writer: WAL, full sync,
//! foreign keys, temporary storage in memory, and statements prepared once (`prepare_cached`).

use super::{RawRate, counter_row, now_millis, payload};
use anyhow::{Context, anyhow, ensure};
use rusqlite::{Connection, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const INSERT: &str = "INSERT INTO bench_raw_events (payload, at) VALUES (?1, ?2)";
const BUMP: &str = "UPDATE bench_raw_counter SET n = n + 1 WHERE id = ?1";
/// As the store's writer: a writer that finds the lock taken (a background job of the service) waits for it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// `PRAGMA synchronous` reads back FULL as 2.
const SYNCHRONOUS_FULL: i64 = 2;

/// One measurement for the thread: transactions back to back for `duration`, over `counters` counter rows.
struct Run {
    counters: usize,
    duration: Duration,
    reply: oneshot::Sender<RawRate>,
}

/// The writer thread, which owns the connection; runs are sent to it one at a time.
pub struct Writer {
    runs: mpsc::Sender<Run>,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Opens the database at `url` (`sqlite://PATH`) on a new thread, sets the connection up and runs `scratch`
    /// (the scratch tables) on it; returns once that is done, or with the reason it failed.
    pub async fn start(url: &str, scratch: [String; 3]) -> anyhow::Result<Self> {
        let path = path_of(url)?;
        let (runs, queue) = mpsc::channel();
        let (ready, opened) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("bench-raw-sqlite".into())
            .spawn(move || serve(&path, &scratch, queue, ready))
            .context("start the raw SQLite thread")?;
        opened.await.context("the raw SQLite thread ended before opening the database")??;
        Ok(Self { runs, thread })
    }

    /// Has the thread run transactions back to back for `duration`, counter row by counter row in turn.
    pub async fn run(&self, counters: usize, duration: Duration) -> anyhow::Result<RawRate> {
        let (reply, answer) = oneshot::channel();
        self.runs.send(Run { counters, duration, reply }).map_err(|_| anyhow!("the raw SQLite thread has ended"))?;
        answer.await.context("the raw SQLite thread ended during a run")
    }

    /// Ends the thread, which closes the connection, and waits for it (off the async workers: joining blocks).
    pub async fn close(self) -> anyhow::Result<()> {
        let Self { runs, thread } = self;
        drop(runs);
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .context("wait for the raw SQLite thread")?
            .map_err(|_| anyhow!("the raw SQLite thread panicked"))
    }
}

/// The thread's body: open, report ready, then serve runs until the sender is dropped.
fn serve(path: &Path, scratch: &[String], runs: mpsc::Receiver<Run>, ready: oneshot::Sender<anyhow::Result<()>>) {
    let mut connection = match open(path, scratch) {
        Ok(connection) => connection,
        Err(error) => {
            // The caller is waiting on `ready`; if it has gone, there is no one left to tell.
            let _ = ready.send(Err(error));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    while let Ok(run) = runs.recv() {
        // A dropped receiver means the caller stopped waiting: the result has no one to go to.
        let _ = run.reply.send(back_to_back(&mut connection, run.counters, run.duration));
    }
}

/// The path in `sqlite://PATH` (or `sqlite:PATH`), without any `?options`.
fn path_of(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .with_context(|| format!("not a SQLite URL: {url:?}"))?;
    let path = rest.split('?').next().unwrap_or_default();
    ensure!(!path.is_empty() && path != ":memory:", "the raw rate needs a SQLite file, not {url:?}");
    Ok(PathBuf::from(path))
}

/// A connection set up as the store's writer, with the scratch tables made.
fn open(path: &Path, scratch: &[String]) -> anyhow::Result<Connection> {
    let connection = Connection::open(path).with_context(|| format!("open {}", path.display()))?;
    configure(&connection)?;
    for statement in scratch {
        connection.execute(statement, []).with_context(|| format!("scratch table: {statement}"))?;
    }
    Ok(connection)
}

/// WAL, full sync, foreign keys, temporary storage in memory; the journal mode and sync level are read back, as
/// a setting SQLite does not take would make the figure a different measurement.
fn configure(connection: &Connection) -> anyhow::Result<()> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let journal: String = connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    ensure!(journal.eq_ignore_ascii_case("wal"), "journal_mode is {journal}, not WAL");
    connection.pragma_update(None, "synchronous", "FULL")?;
    let synchronous: i64 = connection.pragma_query_value(None, "synchronous", |row| row.get(0))?;
    ensure!(synchronous == SYNCHRONOUS_FULL, "synchronous is {synchronous}, not FULL (2)");
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Transactions back to back until `duration` has passed, turn `i` on counter row `i mod counters + 1`.
fn back_to_back(connection: &mut Connection, counters: usize, duration: Duration) -> RawRate {
    let started = Instant::now();
    let deadline = started + duration;
    let mut rate = RawRate::default();
    let mut turn = 0;
    while Instant::now() < deadline {
        rate.count(transaction(connection, counter_row(turn, counters)).map_err(|error| error.to_string()));
        turn += 1;
    }
    rate.elapsed = started.elapsed();
    rate
}

/// `BEGIN IMMEDIATE` (the write lock up front, as the store takes it), the insert, the counter bump, `COMMIT`.
/// On an error the transaction is dropped, which rolls it back.
fn transaction(connection: &mut Connection, counter: i64) -> rusqlite::Result<()> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(INSERT)?.execute(params![payload(), now_millis()])?;
    tx.prepare_cached(BUMP)?.execute(params![counter])?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_comes_out_of_the_url() {
        assert_eq!(path_of("sqlite:///tmp/x/test.db").ok(), Some(PathBuf::from("/tmp/x/test.db")));
        assert_eq!(path_of("sqlite://tuangou.db?mode=rwc").ok(), Some(PathBuf::from("tuangou.db")));
        assert_eq!(path_of("sqlite:tuangou.db").ok(), Some(PathBuf::from("tuangou.db")));
        assert!(path_of("sqlite::memory:").is_err());
        assert!(path_of("postgres://localhost/x").is_err());
    }

    #[test]
    fn a_run_commits_and_counts_on_every_row() -> anyhow::Result<()> {
        let db = tuangou_testkit::TestDb::sqlite();
        let mut connection = open(&path_of(&db.url)?, &super::super::scratch_tables("INTEGER PRIMARY KEY", 3))?;
        let rate = back_to_back(&mut connection, 3, Duration::from_millis(200));
        let total: i64 = connection.query_row("SELECT SUM(n) FROM bench_raw_counter", [], |row| row.get(0))?;
        let empty: i64 =
            connection.query_row("SELECT COUNT(*) FROM bench_raw_counter WHERE n = 0", [], |r| r.get(0))?;
        assert!(rate.errors.is_empty(), "{:?}", rate.errors);
        assert!(rate.committed >= 3);
        assert_eq!(total as u64, rate.committed);
        assert_eq!(empty, 0);
        Ok(())
    }
}
