//! The engine's own ceiling, for scale: how many two-statement write transactions (insert an event row, bump a
//! counter) per second the same database commits, each transaction committed on its own. A join is several such
//! transactions' worth of work, so joins/s divided by this rate says how close the service comes to the engine.
//!
//! - **SQLite** (`raw/sqlite.rs`): the C library through `rusqlite`, on one dedicated OS thread that owns one
//!   connection (WAL, `synchronous = FULL`, foreign keys on, temporary storage in memory, cached statements) and
//!   runs `BEGIN IMMEDIATE; INSERT; UPDATE; COMMIT` back to back for the whole period. SQLite takes one writer
//!   at a time, so more writers could only queue for the lock; a tight loop on the one thread is the most the
//!   engine itself commits, with no async runtime, no channel hand-off and no driver in the way.
//! - **PostgreSQL**: sqlx, a pool of 16 connections driven by many concurrent tasks (the server runs writers in
//!   parallel and shares WAL flushes between their commits, so concurrency is part of its ceiling).
//!
//! It runs twice: with the counter rows spread (a row per task on PostgreSQL, the rows in turn on SQLite: the
//! ceiling, as DESIGN.md pitfall 11 measured it), then with every transaction on one hot counter row (as joins
//! contend for their group's and campaign's rows). SQLite's single writer serializes both alike; on PostgreSQL
//! the hot row serializes commits that could otherwise share a WAL flush.

mod sqlite;

use crate::cost::{Cost, Probe};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tuangou_testkit::{Backend, TestDb};

const POSTGRES_CONNECTIONS: u32 = 16;
const INSERT: &str = "INSERT INTO bench_raw_events (payload, at) VALUES ($1, $2)";
const BUMP: &str = "UPDATE bench_raw_counter SET n = n + 1 WHERE id = $1";

/// One raw run.
#[derive(Debug, Clone, Default)]
pub struct RawRate {
    pub committed: u64,
    pub elapsed: Duration,
    /// Failed transactions, by error text.
    pub errors: BTreeMap<String, u64>,
    /// What each committed transaction cost the machine.
    pub cost: Cost,
}

impl RawRate {
    pub fn per_second(&self) -> f64 {
        self.committed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn count(&mut self, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.committed += 1,
            Err(error) => *self.errors.entry(error).or_default() += 1,
        }
    }
}

/// Both raw runs.
#[derive(Debug, Clone)]
pub struct RawRates {
    /// How the rate was measured (library, writers, durability), for the report: the two backends' raw rates are
    /// not measured alike, so the figure is only read right beside this.
    pub setup: String,
    /// The counter rows spread: the engine's ceiling.
    pub spread: RawRate,
    /// Every transaction on counter row 1.
    pub hot: RawRate,
}

/// Creates the scratch tables in `db`, then measures for `duration`: spread over `tasks` counter rows, then on
/// one row. On PostgreSQL `tasks` is also the number of concurrent writers; SQLite has one writer thread.
pub async fn measure(db: &TestDb, probe: &Probe, tasks: usize, duration: Duration) -> anyhow::Result<RawRates> {
    match db.backend {
        Backend::Sqlite => sqlite_rates(&db.url, probe, tasks, duration).await,
        Backend::Postgres => postgres_rates(&db.url, probe, tasks, duration).await,
    }
}

/// The C-level rate: one thread, one connection, a tight loop (see `raw/sqlite.rs`).
async fn sqlite_rates(url: &str, probe: &Probe, counters: usize, duration: Duration) -> anyhow::Result<RawRates> {
    let writer = sqlite::Writer::start(url, scratch_tables("INTEGER PRIMARY KEY AUTOINCREMENT", counters)).await?;
    let runs = sqlite_runs(&writer, probe, counters, duration).await;
    let closed = writer.close().await;
    let (spread, hot) = runs?;
    closed?;
    let setup = format!(
        "C-level: rusqlite, synchronous=FULL, WAL, BEGIN IMMEDIATE; one OS thread and connection committing each \
         transaction on its own, {counters} counter rows in turn"
    );
    Ok(RawRates { setup, spread, hot })
}

/// The spread run, then the hot one, on the writer thread.
async fn sqlite_runs(
    writer: &sqlite::Writer,
    probe: &Probe,
    counters: usize,
    duration: Duration,
) -> anyhow::Result<(RawRate, RawRate)> {
    let spread = metered(probe, writer.run(counters, duration)).await?;
    let hot = metered(probe, writer.run(1, duration)).await?;
    Ok((spread, hot))
}

/// sqlx over a pool, `tasks` concurrent writers.
async fn postgres_rates(url: &str, probe: &Probe, tasks: usize, duration: Duration) -> anyhow::Result<RawRates> {
    // No ping per acquire, as the store's pool (crates/store/src/db.rs).
    let pool =
        PgPoolOptions::new().max_connections(POSTGRES_CONNECTIONS).test_before_acquire(false).connect(url).await?;
    for statement in scratch_tables("BIGSERIAL PRIMARY KEY", tasks) {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await?;
    }
    let run = |counters| {
        let pool = pool.clone();
        async move {
            let transaction = move |counter| postgres_transaction(pool.clone(), counter);
            Ok(drive(tasks, counters, duration, transaction).await)
        }
    };
    let spread = metered(probe, run(tasks)).await?;
    let hot = metered(probe, run(1)).await?;
    pool.close().await;
    let setup = format!("sqlx, {tasks} concurrent tasks on {POSTGRES_CONNECTIONS} connections, a counter row per task");
    Ok(RawRates { setup, spread, hot })
}

/// Runs `run`, measuring what each of its commits cost.
async fn metered(probe: &Probe, run: impl Future<Output = anyhow::Result<RawRate>>) -> anyhow::Result<RawRate> {
    let start = probe.read().await;
    let mut rate = run.await?;
    rate.cost = probe.cost_since(start, rate.committed as usize).await;
    Ok(rate)
}

/// The scratch tables, with `counters` counter rows numbered from 1. `id_type` is the engine's auto-increment key.
fn scratch_tables(id_type: &str, counters: usize) -> [String; 3] {
    let rows: Vec<String> = (1..=counters.max(1)).map(|id| format!("({id}, 0)")).collect();
    [
        format!("CREATE TABLE bench_raw_events (id {id_type}, payload TEXT NOT NULL, at BIGINT NOT NULL)"),
        "CREATE TABLE bench_raw_counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)".to_owned(),
        format!("INSERT INTO bench_raw_counter (id, n) VALUES {}", rows.join(", ")),
    ]
}

/// Statements the raw rate's PostgreSQL transactions sent (four each), for [`crate::cost`]'s statement count.
static RAW_STATEMENTS: AtomicU64 = AtomicU64::new(0);

pub fn statements_sent() -> u64 {
    RAW_STATEMENTS.load(Ordering::Relaxed)
}

async fn postgres_transaction(pool: PgPool, counter: i64) -> Result<(), sqlx::Error> {
    RAW_STATEMENTS.fetch_add(4, Ordering::Relaxed);
    let mut tx = pool.begin().await?;
    sqlx::query(INSERT).bind(payload()).bind(now_millis()).execute(&mut *tx).await?;
    sqlx::query(BUMP).bind(counter).execute(&mut *tx).await?;
    tx.commit().await
}

/// The inserted row's payload: as much text as an id the service writes.
fn payload() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Counter row `i mod counters + 1`: how writer (or turn) `i` spreads over the counter rows.
fn counter_row(i: usize, counters: usize) -> i64 {
    (i % counters.max(1) + 1) as i64
}

/// Runs `transaction` back to back on `tasks` tasks until `duration` has passed, counting commits and failures.
/// Task `i` passes counter row `i mod counters + 1` to every transaction it runs.
async fn drive<F, Fut>(tasks: usize, counters: usize, duration: Duration, transaction: F) -> RawRate
where
    F: Fn(i64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), sqlx::Error>> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let counter = counter_row(task, counters);
            let transaction = transaction.clone();
            tokio::spawn(async move {
                let mut rate = RawRate::default();
                while Instant::now() < deadline {
                    rate.count(transaction(counter).await.map_err(|error| error.to_string()));
                }
                rate
            })
        })
        .collect();
    let mut rate = RawRate::default();
    for worker in workers {
        match worker.await {
            Ok(done) => {
                rate.committed += done.committed;
                for (error, n) in done.errors {
                    *rate.errors.entry(error).or_default() += n;
                }
            }
            Err(error) => rate.count(Err(format!("task failed: {error}"))),
        }
    }
    rate.elapsed = started.elapsed();
    rate
}
