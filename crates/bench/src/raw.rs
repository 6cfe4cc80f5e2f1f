//! The engine's own ceiling, for scale: how many two-statement write transactions (insert an event row, bump a
//! counter) per second the same database takes through sqlx, set up the way the store sets itself up. On SQLite:
//! one writer connection, WAL, `synchronous = FULL`, `BEGIN IMMEDIATE` (as `crates/store/src/db.rs`); on
//! PostgreSQL: a pool of 16 connections. A join is several such transactions' worth of work, so joins/s divided
//! by this rate says how close the service comes to the engine.
//!
//! It runs twice: with a counter row per task (the ceiling, as DESIGN.md pitfall 11 measured it), then with every
//! task on one hot counter row (as joins contend for their group's and campaign's rows). SQLite's single writer
//! serializes both alike; on PostgreSQL the hot row serializes commits that could otherwise share a WAL flush.

use crate::cost::{Cost, Probe};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tuangou_testkit::{Backend, TestDb};

const POSTGRES_CONNECTIONS: u32 = 16;
const INSERT: &str = "INSERT INTO bench_raw_events (payload, at) VALUES ($1, $2)";
const BUMP: &str = "UPDATE bench_raw_counter SET n = n + 1 WHERE id = $1";

/// One raw run.
#[derive(Debug, Clone)]
pub struct RawRate {
    pub tasks: usize,
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
}

/// Both raw runs.
#[derive(Debug, Clone)]
pub struct RawRates {
    /// A counter row per task: the engine's ceiling.
    pub spread: RawRate,
    /// Every task on counter row 1.
    pub hot: RawRate,
}

/// Creates the scratch tables in `db`, then runs `tasks` writers for `duration`: spread, then on one row.
pub async fn measure(db: &TestDb, probe: &Probe, tasks: usize, duration: Duration) -> anyhow::Result<RawRates> {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlite_writer(&db.url).await?;
            for statement in scratch_tables("INTEGER PRIMARY KEY AUTOINCREMENT", tasks) {
                sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await?;
            }
            let run = |counters| {
                let pool = pool.clone();
                drive(tasks, counters, duration, move |counter| sqlite_transaction(pool.clone(), counter))
            };
            let rates = RawRates { spread: metered(probe, run(tasks)).await, hot: metered(probe, run(1)).await };
            pool.close().await;
            Ok(rates)
        }
        Backend::Postgres => {
            // No ping per acquire, as the store's pool (crates/store/src/db.rs).
            let pool = PgPoolOptions::new()
                .max_connections(POSTGRES_CONNECTIONS)
                .test_before_acquire(false)
                .connect(&db.url)
                .await?;
            for statement in scratch_tables("BIGSERIAL PRIMARY KEY", tasks) {
                sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await?;
            }
            let run = |counters| {
                let pool = pool.clone();
                drive(tasks, counters, duration, move |counter| postgres_transaction(pool.clone(), counter))
            };
            let rates = RawRates { spread: metered(probe, run(tasks)).await, hot: metered(probe, run(1)).await };
            pool.close().await;
            Ok(rates)
        }
    }
}

/// Runs `run`, measuring what each of its commits cost.
async fn metered(probe: &Probe, run: impl Future<Output = RawRate>) -> RawRate {
    let start = probe.read().await;
    let mut rate = run.await;
    rate.cost = probe.cost_since(start, rate.committed as usize).await;
    rate
}

/// The store's writer settings: one connection, WAL, full sync, a busy timeout.
async fn sqlite_writer(url: &str) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    Ok(SqlitePoolOptions::new().max_connections(1).test_before_acquire(false).connect_with(options).await?)
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

async fn sqlite_transaction(pool: SqlitePool, counter: i64) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(INSERT).bind(payload()).bind(now_millis()).execute(&mut *tx).await?;
    sqlx::query(BUMP).bind(counter).execute(&mut *tx).await?;
    tx.commit().await
}

async fn postgres_transaction(pool: PgPool, counter: i64) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(INSERT).bind(payload()).bind(now_millis()).execute(&mut *tx).await?;
    sqlx::query(BUMP).bind(counter).execute(&mut *tx).await?;
    tx.commit().await
}

fn payload() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
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
            let counter = (task % counters.max(1) + 1) as i64;
            let transaction = transaction.clone();
            tokio::spawn(async move {
                let (mut committed, mut errors) = (0u64, BTreeMap::<String, u64>::new());
                while Instant::now() < deadline {
                    match transaction(counter).await {
                        Ok(()) => committed += 1,
                        Err(error) => *errors.entry(error.to_string()).or_default() += 1,
                    }
                }
                (committed, errors)
            })
        })
        .collect();
    let mut rate =
        RawRate { tasks, committed: 0, elapsed: Duration::ZERO, errors: BTreeMap::new(), cost: Cost::default() };
    for worker in workers {
        match worker.await {
            Ok((committed, errors)) => {
                rate.committed += committed;
                for (error, n) in errors {
                    *rate.errors.entry(error).or_default() += n;
                }
            }
            Err(error) => *rate.errors.entry(format!("task failed: {error}")).or_default() += 1,
        }
    }
    rate.elapsed = started.elapsed();
    rate
}
