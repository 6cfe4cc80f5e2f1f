//! What one operation costs the machine, so the ratio of rates can be explained by the work behind it:
//!
//! - **CPU**: busy time of all cores over the run (from `/proc/stat`: every process, so the database, the
//!   service and the load generator together, as they share the machine), divided by the operations done; and
//!   apart, this process's own (`/proc/self/stat`: the service and the load generator, which run in it), so the
//!   rest is the database's (on a quiet machine);
//! - **WAL** (PostgreSQL only): the bytes of write-ahead log written over the run (`pg_current_wal_lsn()`),
//!   divided by the operations done. WAL grows with the rows and index entries written, so this is how much a
//!   join writes beside a raw transaction. Other writers on the same server count too: run on a quiet server.
//! - **statements** (PostgreSQL only): the statements this process sent to PostgreSQL, `BEGIN` and `COMMIT`
//!   included (`tuangou_store::postgres_statements_sent`, plus the raw rate's own four per transaction): each is
//!   a round trip, so this is the round trips an operation costs;
//! - **transactions** (PostgreSQL only): the database's committed and rolled-back transactions
//!   (`pg_stat_database`, whose counters a backend reports within a second: a figure over a run of seconds).
//!
//! Either figure is absent where it cannot be read (no `/proc/stat`, or SQLite, whose WAL is checkpointed and
//! reused in place).

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tuangou_testkit::{Backend, TestDb};

/// `/proc/stat` counts in USER_HZ, which Linux fixes at 100 per second for user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// Reads the machine's counters.
pub struct Probe {
    /// One connection to the run's PostgreSQL database; `None` on SQLite.
    wal: Option<PgPool>,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    busy_ticks: Option<u64>,
    own_ticks: Option<u64>,
    wal_bytes: Option<i64>,
    statements: Option<u64>,
    transactions: Option<i64>,
}

/// Per operation, over a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// Milliseconds of CPU, all cores and processes together.
    pub cpu_ms: Option<f64>,
    /// Milliseconds of CPU of this process alone (the service and the load generator).
    pub own_cpu_ms: Option<f64>,
    /// Bytes of WAL.
    pub wal_bytes: Option<f64>,
    /// Statements sent to PostgreSQL (round trips).
    pub statements: Option<f64>,
    /// Transactions PostgreSQL ran.
    pub transactions: Option<f64>,
}

impl Probe {
    pub async fn new(db: &TestDb) -> anyhow::Result<Self> {
        let wal = match db.backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgPoolOptions::new().max_connections(1).connect(&db.url).await?),
        };
        Ok(Self { wal })
    }

    pub async fn read(&self) -> Reading {
        let Some(pool) = &self.wal else {
            return Reading {
                busy_ticks: busy_ticks(),
                own_ticks: own_ticks(),
                wal_bytes: None,
                statements: None,
                transactions: None,
            };
        };
        let scalar = |text: &'static str| sqlx::query_scalar::<_, i64>(text).fetch_one(pool);
        let wal_bytes = scalar("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::BIGINT").await.ok();
        let transactions = scalar(
            "SELECT (xact_commit + xact_rollback)::BIGINT FROM pg_stat_database WHERE datname = current_database()",
        )
        .await
        .ok();
        let statements = Some(tuangou_store::postgres_statements_sent() + crate::raw::statements_sent());
        Reading { busy_ticks: busy_ticks(), own_ticks: own_ticks(), wal_bytes, statements, transactions }
    }

    /// What each of `operations` cost since `start`.
    pub async fn cost_since(&self, start: Reading, operations: usize) -> Cost {
        let end = self.read().await;
        let per = |total: f64| (operations > 0).then(|| total / operations as f64);
        let ms = |a: Option<u64>, b: Option<u64>| {
            a.zip(b).and_then(|(a, b)| per(b.saturating_sub(a) as f64 * 1_000.0 / TICKS_PER_SECOND))
        };
        Cost {
            cpu_ms: ms(start.busy_ticks, end.busy_ticks),
            own_cpu_ms: ms(start.own_ticks, end.own_ticks),
            wal_bytes: start.wal_bytes.zip(end.wal_bytes).and_then(|(a, b)| per((b - a).max(0) as f64)),
            statements: start.statements.zip(end.statements).and_then(|(a, b)| per(b.saturating_sub(a) as f64)),
            transactions: start.transactions.zip(end.transactions).and_then(|(a, b)| per((b - a).max(0) as f64)),
        }
    }

    pub async fn close(self) {
        if let Some(pool) = self.wal {
            pool.close().await;
        }
    }
}

/// Busy ticks of all cores: the `cpu` line of `/proc/stat` less its idle and I/O-wait columns.
fn busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    busy_of(stat.lines().next()?)
}

/// This process's CPU ticks, user and system: fields 14 and 15 of `/proc/self/stat`, counted after the command
/// name's closing parenthesis (the name may hold spaces).
fn own_ticks() -> Option<u64> {
    own_of(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

fn own_of(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // State is field 3, so utime (14) and stime (15) are the 12th and 13th after the name.
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

fn busy_of(cpu_line: &str) -> Option<u64> {
    let mut fields = cpu_line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already inside user and nice).
    let ticks: Vec<u64> = fields.take(8).map(str::parse).collect::<Result<_, _>>().ok()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = ticks.try_into().ok()?;
    Some(user + nice + system + irq + softirq + steal)
}

impl Cost {
    /// `1.92 ms CPU, 8,123 B WAL` (what is known of it).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ms) = self.cpu_ms {
            parts.push(format!("{ms:.3} ms CPU"));
        }
        if let Some(ms) = self.own_cpu_ms {
            parts.push(format!("{ms:.3} ms of it in this process"));
        }
        if let Some(bytes) = self.wal_bytes {
            parts.push(format!("{bytes:.0} B WAL"));
        }
        if let Some(statements) = self.statements {
            parts.push(format!("{statements:.1} statements"));
        }
        if let Some(transactions) = self.transactions {
            parts.push(format!("{transactions:.2} transactions"));
        }
        if parts.is_empty() { "not measured here".into() } else { parts.join(", ") }
    }

    /// How many times `base` this is, figure by figure: `9.4× the CPU, 8.7× the WAL`.
    pub fn times(&self, base: &Cost) -> String {
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
        let mut parts = Vec::new();
        if let Some(r) = ratio(self.cpu_ms, base.cpu_ms) {
            parts.push(format!("{r:.1}× the CPU"));
        }
        if let Some(r) = ratio(self.wal_bytes, base.wal_bytes) {
            parts.push(format!("{r:.1}× the WAL"));
        }
        if parts.is_empty() { "not measured here".into() } else { parts.join(", ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_leaves_out_idle_and_io_wait() {
        assert_eq!(busy_of("cpu  55434 7 10568 44305 1028 3 1201 54 0 0"), Some(55434 + 7 + 10568 + 3 + 1201 + 54));
        assert_eq!(busy_of("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(busy_of("cpu 1 2"), None);
    }

    #[test]
    fn own_time_is_user_and_system_after_the_name() {
        let stat = "4242 (tuangou bench) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 56 0 0 20 0 9 0 100 0 0";
        assert_eq!(own_of(stat), Some(1234 + 56));
        assert_eq!(own_of("no name here"), None);
    }

    #[test]
    fn ratios_need_both_figures() {
        let join = Cost { cpu_ms: Some(2.0), wal_bytes: Some(9_000.0), ..Cost::default() };
        let raw = Cost { cpu_ms: Some(0.25), ..Cost::default() };
        assert_eq!(join.times(&raw), "8.0× the CPU");
        assert_eq!(Cost::default().describe(), "not measured here");
    }
}
