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

use crate::db::{Conn, Pools, Row, Sql};
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
        match &self.pools {
            Pools::Sqlite { writer, .. } => {
                let (answer, answered) = tokio::sync::oneshot::channel();
                writer.submit(Box::new(move |connection| {
                    let result = match connection {
                        Ok(connection) => run_synchronously(unit(Conn::Writer(connection), &input)),
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
                        }),
                    }
                }))?;
                answered.await.unwrap_or_else(|_| Err(StoreError::Internal("the SQLite writer stopped".into())))
            }
            Pools::Postgres(pool) => {
                let pool = pool.clone();
                let task = tokio::spawn(async move { run_on_postgres(&pool, &input, &unit).await });
                task.await.unwrap_or_else(|error| Err(StoreError::Internal(format!("a unit of work failed: {error}"))))
            }
        }
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
        let mut tx = pool.begin().await?;
        let result = unit(Conn::Postgres(&mut tx), input).await;
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
