//! Group commit for SQLite's one writer (DESIGN.md, pitfall 11).
//!
//! A write transaction on SQLite costs its statements plus a commit that waits for the disk (synchronous = FULL).
//! Under load, many short transactions queue for the one writer connection, each paying for its own commit. Here a
//! writer task keeps one `BEGIN IMMEDIATE` transaction open while requests are queued, and lends it to each queued
//! request in turn inside a `SAVEPOINT`: the request runs its statements as before, then keeps its savepoint (its
//! part is kept; the next request's savepoint nests inside it) or rolls back to it (its part is undone, the
//! others' stay). When the queue is empty or the batch is full, the writer commits once for all, and only then
//! does each request learn that it committed. An idle service pays one statement more per transaction (the
//! savepoint); a busy one pays one commit per batch.
//!
//! Within a batch, a request sees the writes of the requests before it, not yet committed: it may be refused
//! because of them (a seat taken, a voucher already redeemed), and such a refusal stands even in the rare case
//! that the batch then fails to commit (a disk error), like any refusal a retry may overturn. A request that
//! answers *with* another request's data (an idempotent replay, a credit's existing entry) reads it in a
//! transaction it commits, which returns only once the batch holding that data is on disk.
//!
//! The lent transaction always comes back: [`Lent`] returns it on commit, on rollback and when dropped (a request
//! cancelled or failed half way), so a batch can never be left open or lose its connection silently.

use crate::db::Conn;
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

/// How many transactions one commit may carry at most: bounds how long the first of a batch waits for its answer.
const MAX_BATCH: usize = 32;

/// What a request's transaction ended as, sent back with the connection.
enum Outcome {
    /// Released: keep its statements; tell it once the batch commits.
    Keep(oneshot::Sender<Result<(), String>>),
    /// Rolled back, or dropped without a word: undo its statements.
    Undo,
}

struct Returned {
    tx: Transaction<'static, Sqlite>,
    outcome: Outcome,
    /// Whether the request took its savepoint (it did not if it sent no statement).
    savepoint_taken: bool,
}

/// A request's savepoint. Kept savepoints are not released: the next request's nests inside, and the batch's
/// `COMMIT` commits them all (a batch nests at most [`MAX_BATCH`] deep).
pub(crate) const SAVEPOINT: &str = "SAVEPOINT tuangou_request";

/// A request for the writer: answered with the transaction, lent.
type Request = oneshot::Sender<Result<Lent, String>>;

/// The batch's transaction, lent to one request. Give it back with [`Lent::commit`]; dropping it undoes the
/// request's statements. The request's savepoint is owed until its first statement, which takes it in the same
/// call to the connection (one round trip less per request).
pub(crate) struct Lent {
    tx: Option<Transaction<'static, Sqlite>>,
    back: Option<oneshot::Sender<Returned>>,
    savepoint_owed: bool,
}

impl Lent {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        let tx = self.tx.as_mut().expect("a lent transaction is present until it is given back");
        Conn::Sqlite(tx, Some(&mut self.savepoint_owed))
    }

    /// Keeps the request's statements and waits until the batch holding them has committed. The savepoint is
    /// not released: the next request's nests inside it, and the batch's `COMMIT` commits them all (one round
    /// trip less per request; a batch nests at most [`MAX_BATCH`] deep).
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let tx = self.tx.take().expect("present until given back");
        let (done, committed) = oneshot::channel();
        if let Some(back) = self.back.take() {
            let _ = back.send(Returned { tx, outcome: Outcome::Keep(done), savepoint_taken: !self.savepoint_owed });
        }
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(sqlx::Error::Protocol(format!("the batch did not commit: {message}"))),
            Err(_) => Err(sqlx::Error::Protocol("the writer stopped before the batch committed".into())),
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let (Some(tx), Some(back)) = (self.tx.take(), self.back.take()) {
            let _ = back.send(Returned { tx, outcome: Outcome::Undo, savepoint_taken: !self.savepoint_owed });
        }
    }
}

/// The handle requests use; the writer task ends when every handle is gone.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    requests: mpsc::UnboundedSender<Request>,
    /// How many batches have committed (tests check that commits were grouped).
    #[cfg(test)]
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl GroupCommit {
    /// Starts the writer task on `pool` (the one writer connection).
    pub(crate) fn start(pool: SqlitePool) -> Self {
        let (requests, queue) = mpsc::unbounded_channel();
        let commits = std::sync::Arc::default();
        tokio::spawn(run(pool, queue, std::sync::Arc::clone(&commits)));
        GroupCommit {
            requests,
            #[cfg(test)]
            commits,
        }
    }

    /// Batches committed so far.
    #[cfg(test)]
    pub(crate) fn batches_committed(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A transaction to write in: the open batch's, lent inside a savepoint of this request's own.
    pub(crate) async fn begin(&self) -> Result<Lent, sqlx::Error> {
        let (answer, lent) = oneshot::channel();
        self.requests.send(answer).map_err(|_| sqlx::Error::PoolClosed)?;
        match lent.await {
            Ok(Ok(lent)) => Ok(lent),
            Ok(Err(message)) => Err(sqlx::Error::Protocol(message)),
            Err(_) => Err(sqlx::Error::PoolClosed),
        }
    }
}

/// The writer: one batch after another, for as long as anyone can send requests.
async fn run(
    pool: SqlitePool,
    mut queue: mpsc::UnboundedReceiver<Request>,
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    while let Some(first) = queue.recv().await {
        let tx = match pool.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(error) => {
                let _ = first.send(Err(error.to_string()));
                continue;
            }
        };
        if batch(tx, first, &mut queue).await {
            commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Lends `tx` to `first` and to whoever queued meanwhile (up to [`MAX_BATCH`]), then commits once for all;
/// whether it committed.
async fn batch(
    mut tx: Transaction<'static, Sqlite>,
    first: Request,
    queue: &mut mpsc::UnboundedReceiver<Request>,
) -> bool {
    let mut waiting_for_commit = Vec::new();
    let mut next = Some(first);
    let mut served = 0;
    while let Some(request) = next.take() {
        served += 1;
        let (back, returned) = oneshot::channel();
        let lent = Lent { tx: Some(tx), back: Some(back), savepoint_owed: true };
        // A requester that gave up meanwhile hands the transaction straight back (its `Lent` is dropped).
        let _ = request.send(Ok(lent));
        let Ok(Returned { tx: back_tx, outcome, savepoint_taken }) = returned.await else {
            // The transaction was lost with its connection (dropped by sqlx, rolled back): so is the batch.
            fail(waiting_for_commit, "the writer's connection was lost");
            return false;
        };
        tx = back_tx;
        match outcome {
            Outcome::Keep(done) => waiting_for_commit.push(done),
            // A request that sent no statement took no savepoint and changed nothing.
            Outcome::Undo if !savepoint_taken => {}
            Outcome::Undo => {
                // Back to this request's savepoint (the innermost of that name), then drop it: the requests kept
                // before it stay.
                let undo = "ROLLBACK TO SAVEPOINT tuangou_request; RELEASE SAVEPOINT tuangou_request";
                if let Err(error) = sqlx::raw_sql(undo).execute(&mut *tx).await {
                    // The batch can no longer be trusted: undo all of it.
                    let _ = tx.rollback().await;
                    fail(waiting_for_commit, &error.to_string());
                    return false;
                }
            }
        }
        if served < MAX_BATCH {
            next = queue.try_recv().ok();
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for done in waiting_for_commit {
                let _ = done.send(Ok(()));
            }
            true
        }
        Err(error) => {
            fail(waiting_for_commit, &error.to_string());
            false
        }
    }
}

fn fail(waiting: Vec<oneshot::Sender<Result<(), String>>>, message: &str) {
    for done in waiting {
        let _ = done.send(Err(message.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sql;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
    use std::str::FromStr;

    async fn writer() -> (SqlitePool, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)").execute(&pool).await.unwrap();
        (pool, dir)
    }

    /// 300 concurrent transactions of two statements: those that commit are all there, those rolled back (by an
    /// error, a drop, or a cancelled task) left nothing, and the commits came in batches. Some fail at their very
    /// first statement (sent with the savepoint), some send nothing at all (no savepoint to undo or keep).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn batches_keep_exactly_what_committed() {
        let (pool, _dir) = writer().await;
        sqlx::query("INSERT INTO t (id, n) VALUES (-1, 1)").execute(&pool).await.unwrap();
        let commits = GroupCommit::start(pool.clone());
        let mut tasks = Vec::new();
        for i in 0..300_i64 {
            let commits = commits.clone();
            tasks.push(tokio::spawn(async move {
                let mut lent = commits.begin().await.unwrap();
                match i % 6 {
                    // The first statement fails (the savepoint went with it), then the request gives up.
                    3 => {
                        let taken = lent.conn().execute(sql("INSERT INTO t (id, n) VALUES (-1, 0)")).await;
                        assert!(taken.is_err(), "row -1 is there");
                        return false;
                    }
                    // Nothing sent: given back, or kept.
                    4 => return false,
                    5 => return lent.commit().await.map(|()| false).unwrap(),
                    _ => {}
                }
                lent.conn().execute(sql("INSERT INTO t (id, n) VALUES ($1, 0)").bind(i)).await.unwrap();
                lent.conn().execute(sql("UPDATE t SET n = n + 1 WHERE id = $1").bind(i)).await.unwrap();
                match i % 6 {
                    0 => lent.commit().await.map(|()| true).unwrap(),
                    // A failing statement, then the request gives up (its `Lent` is dropped).
                    1 => {
                        let dup = lent.conn().execute(sql("INSERT INTO t (id, n) VALUES ($1, 0)").bind(i)).await;
                        assert!(dup.is_err(), "the primary key refuses a second row");
                        false
                    }
                    _ => {
                        drop(lent);
                        false
                    }
                }
            }));
        }
        // A request cancelled while it holds the transaction (in the middle of the others): its part is undone.
        let (inserted, holding) = oneshot::channel();
        let cancelled = tokio::spawn({
            let commits = commits.clone();
            async move {
                let mut lent = commits.begin().await.unwrap();
                lent.conn().execute(sql("INSERT INTO t (id, n) VALUES (9999, 0)")).await.unwrap();
                let _ = inserted.send(());
                std::future::pending::<()>().await;
            }
        });
        holding.await.unwrap();
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        let mut kept = vec![-1];
        for (i, task) in tasks.into_iter().enumerate() {
            if task.await.unwrap() {
                kept.push(i as i64);
            }
        }
        // A last transaction after the cancelled one: the writer carried on.
        let mut last = commits.begin().await.unwrap();
        last.conn().execute(sql("INSERT INTO t (id, n) VALUES (10000, 1)")).await.unwrap();
        last.commit().await.unwrap();
        kept.push(10_000);

        let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT id, n FROM t ORDER BY id").fetch_all(&pool).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), kept);
        assert!(rows.iter().all(|(_, n)| *n == 1), "both statements of each kept transaction");
        let batches = commits.batches_committed();
        assert!(batches < kept.len() as u64, "{batches} commits for {} transactions: some were grouped", kept.len());
    }
}
