//! Units of work: the only way the store writes.
//!
//! A unit of work is a closure that runs a use case's statements on one [`Conn`] and returns a result. It commits
//! whole when it returns `Ok`, and leaves nothing when it returns `Err`, panics, or never ran. What happens to the
//! request that asked for it does not matter: [`Store::write`] hands the unit to a runner that does not belong to
//! the request (SQLite's writer thread, or a task of its own on PostgreSQL), so a client that hangs up, a timeout
//! that drops the future, or a handler that panics can end a unit only before it starts or after it ended whole.
//! A process killed mid-way leaves what the database's own atomicity leaves: the last commit.
//!
//! - **SQLite**: the unit runs on the writer thread, inside its own savepoint of the writer's open batch
//!   ([`crate::sqlite_writer`]), and is answered once the batch is durable. Its calls are synchronous (rusqlite),
//!   so its future is polled once and must be finished then: a unit that waits for anything else is a bug, and
//!   is rolled back and answered as an internal error.
//! - **PostgreSQL**: the unit runs in a spawned task, in a transaction of its own, committed when it returns
//!   `Ok`. When PostgreSQL picks it as a deadlock's victim (40P01), or it asks to ([`StoreError::RunAgain`]),
//!   it runs again from the start in a new transaction, a few times at most.
//!
//! Inputs travel with the unit (`input`, lent to each run), so a unit borrows nothing from its caller.

use crate::db::{Conn, Pools, Row, Sql, count_postgres_statements};
use crate::sqlite_writer::Finished;
use crate::{Store, StoreError, StoreResult};
use futures::future::BoxFuture;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

/// How many times a unit runs at most on PostgreSQL when it keeps having to run again.
const ATTEMPTS: usize = 5;

impl Store {
    /// Runs `unit` with `input` as one unit of work (see the module's docs) and answers with its result.
    ///
    /// Refused with [`StoreError::Overloaded`] when SQLite's writer has too many units waiting.
    pub(crate) async fn write<I, T, F>(&self, input: I, unit: F) -> StoreResult<T>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
        F: for<'c> Fn(Conn<'c>, &'c I) -> BoxFuture<'c, StoreResult<T>> + Send + Sync + 'static,
    {
        // Counts the unit until it has ended, wherever it runs (see [`Store::writes_settled`]).
        let running = self.in_flight.enter();
        match &self.pools {
            Pools::Sqlite { writer, .. } => {
                let (answer, answered) = tokio::sync::oneshot::channel();
                writer.submit(Box::new(move |connection| {
                    let result = match connection {
                        Ok(connection) => run_synchronously(unit(Conn::Sqlite(connection), &input)),
                        Err(reason) => Err(StoreError::Internal(reason)),
                    };
                    Finished {
                        keep: result.is_ok(),
                        answer: Box::new(move |durable| {
                            let answer_with = match durable {
                                Ok(()) => result,
                                Err(reason) => Err(StoreError::Internal(format!("the write did not commit: {reason}"))),
                            };
                            // Nobody may be waiting any more (a client that hung up): the unit ran all the same.
                            let _ = answer.send(answer_with);
                            drop(running);
                        }),
                    }
                }))?;
                answered.await.unwrap_or_else(|_| Err(StoreError::Internal("the SQLite writer stopped".into())))
            }
            Pools::Postgres(pool) => {
                let pool = pool.clone();
                let task = tokio::spawn(async move {
                    let ended = run_on_postgres(&pool, &input, &unit).await;
                    drop(running);
                    ended
                });
                task.await.unwrap_or_else(|error| Err(StoreError::Internal(format!("a unit of work failed: {error}"))))
            }
        }
    }
}

/// Units of work that have been handed to a runner and have not ended.
#[derive(Default)]
pub(crate) struct InFlight {
    count: std::sync::Mutex<usize>,
    none_left: tokio::sync::Notify,
}

impl InFlight {
    fn enter(self: &std::sync::Arc<Self>) -> Running {
        *self.count.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) += 1;
        Running(std::sync::Arc::clone(self))
    }

    async fn none_left(&self) {
        loop {
            let notified = self.none_left.notified();
            if *self.count.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One unit in flight; dropped where the unit ends (a unit refused before it was queued ends at once).
struct Running(std::sync::Arc<InFlight>);

impl Drop for Running {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *count -= 1;
        if *count == 0 {
            self.0.none_left.notify_waiters();
        }
    }
}

impl Store {
    /// Waits until every unit of work handed over so far has ended, including those whose callers stopped
    /// waiting (a dropped request): after it, the database holds each such unit whole or not at all. For a
    /// graceful shutdown, and for tests that drop callers on purpose.
    pub async fn writes_settled(&self) {
        self.in_flight.none_left().await;
    }
}

/// Polls a SQLite unit's future once, catching a panic: its calls never wait, so it must be finished.
fn run_synchronously<T>(mut unit: BoxFuture<'_, StoreResult<T>>) -> StoreResult<T> {
    let mut context = Context::from_waker(std::task::Waker::noop());
    match std::panic::catch_unwind(AssertUnwindSafe(|| unit.as_mut().poll(&mut context))) {
        Ok(Poll::Ready(result)) => result,
        Ok(Poll::Pending) => Err(StoreError::Internal("a unit of work waited on the SQLite writer".into())),
        Err(_) => Err(StoreError::Internal("a unit of work panicked".into())),
    }
}

/// Runs a unit in a transaction of its own, again when it must; commits when it returns `Ok`.
async fn run_on_postgres<I, T, F>(pool: &sqlx::PgPool, input: &I, unit: &F) -> StoreResult<T>
where
    F: for<'c> Fn(Conn<'c>, &'c I) -> BoxFuture<'c, StoreResult<T>>,
{
    let mut attempt = 1;
    loop {
        count_postgres_statements(1);
        let mut tx = pool.begin().await?;
        let result = unit(Conn::Postgres(&mut tx), input).await;
        count_postgres_statements(1);
        match result {
            Ok(value) => {
                tx.commit().await?;
                return Ok(value);
            }
            Err(error) => {
                // Rolled back on the connection before it returns to the pool (a failed rollback closes it).
                let _ = tx.rollback().await;
                if attempt < ATTEMPTS && error.runs_again() {
                    tracing::info!(%error, attempt, "running a unit of work again");
                    attempt += 1;
                    continue;
                }
                return Err(error.settled());
            }
        }
    }
}

impl Store {
    /// A unit of work that is one statement: on PostgreSQL it runs without `BEGIN` and `COMMIT` (the statement is
    /// its own transaction, one round trip), still in a task of its own so it survives its caller; on SQLite it is
    /// an ordinary unit. The unit must send exactly one statement on PostgreSQL: a second would commit apart from
    /// the first. Whatever it must refuse, it refuses inside that statement (see `db::REFUSED`), which then
    /// leaves nothing; it is not run again here.
    pub(crate) async fn write_in_one_statement<I, T, F>(&self, input: I, unit: F) -> StoreResult<T>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
        F: for<'c> Fn(Conn<'c>, &'c I) -> BoxFuture<'c, StoreResult<T>> + Send + Sync + 'static,
    {
        let Pools::Postgres(pool) = &self.pools else { return self.write(input, unit).await };
        let running = self.in_flight.enter();
        let pool = pool.clone();
        let task = tokio::spawn(async move {
            let ended = match pool.acquire().await {
                Ok(mut connection) => unit(Conn::Postgres(&mut connection), &input).await,
                Err(error) => Err(error.into()),
            };
            drop(running);
            ended
        });
        task.await.unwrap_or_else(|error| Err(StoreError::Internal(format!("a unit of work failed: {error}"))))
    }

    /// One statement as a unit of work: how many rows it changed.
    pub(crate) async fn write_statement(&self, statement: Sql) -> StoreResult<u64> {
        self.write(statement, |mut conn, statement| Box::pin(async move { Ok(conn.execute(statement.clone()).await?) }))
            .await
    }

    /// One statement that returns rows as a unit of work: its first row, if any.
    pub(crate) async fn write_returning<T: Row + 'static>(&self, statement: Sql) -> StoreResult<Option<T>> {
        self.write(statement, |mut conn, statement| {
            Box::pin(async move { Ok(conn.fetch_optional(statement.clone()).await?) })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sql;
    use std::future::Future;
    use tuangou_testkit::{Backend, TestDb};

    async fn store(backend: Backend) -> (TestDb, Store) {
        let db = TestDb::new(backend).await;
        let store = Store::open(&db.url, &crate::PoolSettings::default()).await.unwrap();
        store.write_statement(sql("CREATE TABLE unit_t (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")).await.unwrap();
        (db, store)
    }

    /// How a unit of the test below ends.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Ending {
        Commits,
        Refuses,
        Panics,
        /// Its caller is cancelled as soon as it has handed the unit over.
        CallerGone,
    }

    /// 200 concurrent units of two writes each: those that commit are whole, those that refuse or panic left
    /// nothing, and those whose callers were cancelled are whole or absent, never half there.
    async fn units_are_whole_whatever_happens_to_their_callers(backend: Backend) {
        let (_db, store) = store(backend).await;
        let endings = [Ending::Commits, Ending::Refuses, Ending::Panics, Ending::CallerGone];
        let mut tasks = Vec::new();
        for id in 0..200_i64 {
            let ending = endings[id as usize % endings.len()];
            let store = store.clone();
            let task = tokio::spawn(async move {
                store
                    .write((id, ending), |mut conn, (id, ending)| {
                        Box::pin(async move {
                            conn.execute(sql("INSERT INTO unit_t (id, n) VALUES ($1, 0)").bind(*id)).await?;
                            conn.execute(sql("UPDATE unit_t SET n = n + 1 WHERE id = $1").bind(*id)).await?;
                            match ending {
                                Ending::Refuses => Err(StoreError::Conflict("refused")),
                                Ending::Panics => panic!("a unit of work panics on purpose"),
                                Ending::Commits | Ending::CallerGone => Ok(()),
                            }
                        })
                    })
                    .await
            });
            if ending == Ending::CallerGone {
                tokio::task::yield_now().await;
                task.abort();
            }
            tasks.push((id, ending, task));
        }
        for (id, ending, task) in tasks {
            match (ending, task.await) {
                (Ending::Commits, Ok(result)) => assert!(result.is_ok(), "unit {id}: {result:?}"),
                (Ending::Refuses, Ok(result)) => assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}"),
                (Ending::Panics, Ok(result)) => assert!(matches!(result, Err(StoreError::Internal(_))), "{result:?}"),
                (Ending::CallerGone, _) => {}
                (_, Err(error)) => panic!("unit {id}'s caller failed: {error}"),
            }
        }
        store.writes_settled().await;
        let rows: Vec<(i64, i64)> = store
            .pools
            .read()
            .await
            .unwrap()
            .conn()
            .fetch_all(sql("SELECT id, n FROM unit_t ORDER BY id"))
            .await
            .unwrap();
        assert!(rows.iter().all(|(_, n)| *n == 1), "every unit that is there is whole: {rows:?}");
        let present: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        for id in 0..200_i64 {
            match endings[id as usize % endings.len()] {
                Ending::Commits => assert!(present.contains(&id), "committed unit {id} is there"),
                Ending::Refuses | Ending::Panics => assert!(!present.contains(&id), "failed unit {id} left nothing"),
                Ending::CallerGone => {}
            }
        }
        // The runner carried on after the panics.
        store.write_statement(sql("INSERT INTO unit_t (id, n) VALUES (1000, 1)")).await.unwrap();
        store.close().await;
    }

    /// A unit on SQLite's writer must not wait for anything but its connection: one that does is rolled back
    /// and answered as an internal error, and the writer goes on.
    #[tokio::test]
    async fn a_sqlite_unit_that_waits_is_rolled_back() {
        let (_db, store) = store(Backend::Sqlite).await;
        let waited = store
            .write((), |mut conn, ()| {
                Box::pin(async move {
                    conn.execute(sql("INSERT INTO unit_t (id, n) VALUES (1, 1)")).await?;
                    tokio::task::yield_now().await;
                    Ok(())
                })
            })
            .await;
        assert!(matches!(waited, Err(StoreError::Internal(_))), "{waited:?}");
        let rows: Vec<(i64,)> =
            store.pools.read().await.unwrap().conn().fetch_all(sql("SELECT id FROM unit_t")).await.unwrap();
        assert!(rows.is_empty(), "its insert was rolled back");
        store.write_statement(sql("INSERT INTO unit_t (id, n) VALUES (2, 1)")).await.unwrap();
    }

    /// The writer's queue is bounded: with the writer busy and the queue full, a write is refused at once with
    /// `Overloaded`; the queued ones all run once the writer is free.
    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let (_db, store) = store(Backend::Sqlite).await;
        let (started, has_started) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let store = store.clone();
            let gate = std::sync::Mutex::new((started, released));
            async move {
                store
                    .write(gate, |_conn, gate| {
                        Box::pin(async move {
                            let gate = gate.lock().unwrap();
                            gate.0.send(()).unwrap();
                            // Holds the writer thread (synchronously, as a unit may) until the test lets go.
                            gate.1.recv().unwrap();
                            Ok(())
                        })
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || has_started.recv().unwrap()).await.unwrap();
        let mut queued = Vec::new();
        for id in 0..crate::sqlite_writer::QUEUE_LIMIT as i64 {
            let mut write = Box::pin(store.write_statement(sql("INSERT INTO unit_t (id, n) VALUES ($1, 1)").bind(id)));
            assert!(poll_once(write.as_mut()).is_none(), "unit {id} is queued, not answered");
            queued.push(write);
        }
        let mut refused = Box::pin(store.write_statement(sql("INSERT INTO unit_t (id, n) VALUES (-1, 1)")));
        assert!(matches!(poll_once(refused.as_mut()), Some(Err(StoreError::Overloaded))), "refused at once");
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for write in queued {
            assert_eq!(write.await.unwrap(), 1);
        }
        let (count,): (i64,) =
            store.pools.read().await.unwrap().conn().fetch_one(sql("SELECT COUNT(*) FROM unit_t")).await.unwrap();
        assert_eq!(count, crate::sqlite_writer::QUEUE_LIMIT as i64, "every queued unit, and not the refused one");
    }

    /// When the writer thread is gone, readiness fails and writes are refused (never left waiting).
    #[tokio::test]
    async fn without_its_writer_the_store_is_not_ready() {
        let (_db, store) = store(Backend::Sqlite).await;
        store.ping().await.unwrap();
        let Pools::Sqlite { writer, .. } = &store.pools else { unreachable!() };
        // A job that panics outside any unit's guard takes the thread down, as a bug in the writer itself would.
        writer.submit(Box::new(|_| panic!("the writer thread dies on purpose"))).unwrap();
        while writer.is_alive() {
            tokio::task::yield_now().await;
        }
        assert!(store.ping().await.is_err(), "not ready without a writer");
        let refused = store.write_statement(sql("INSERT INTO unit_t (id, n) VALUES (1, 1)")).await;
        assert!(matches!(refused, Err(StoreError::Internal(_))), "{refused:?}");
    }

    fn poll_once<F: Future + ?Sized>(future: std::pin::Pin<&mut F>) -> Option<F::Output> {
        match future.poll(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        }
    }

    tuangou_testkit::on_both_backends!(units_are_whole_whatever_happens_to_their_callers);
}
