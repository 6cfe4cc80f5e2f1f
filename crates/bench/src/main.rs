//! `tuangou-bench`: how many joins per second the real service takes, on SQLite and on PostgreSQL, and how that
//! compares with what the database engine itself can commit.
//!
//! For each backend it makes a fresh database, starts the service as `tuangou serve` does (HTTP API on
//! 127.0.0.1, background jobs, event listener, system clock; only password hashing is cheapened so the setup is
//! quick), signs up and funds the customers through the API (untimed), and then measures:
//!
//! - **A. joins**: C customers, each on a keep-alive connection of its own, `POST /api/v1/campaigns/{id}/join`
//!   back to back for S seconds over a few instant-draw campaigns (N 5, K 2), so every fifth join also draws a
//!   group. Every answer but 201 is an error, counted by status and code. It runs once per client count (16 and
//!   64 by default): clients that join back to back queue up behind each other once the service is saturated,
//!   so more clients add latency, not joins; the smaller count shows the latency at that load.
//! - **raw engine rate**: two-statement write transactions (insert + counter update) on the same database,
//!   configured as the store configures itself, with the counter rows spread (the ceiling DESIGN.md pitfall 11
//!   quotes) and then all on one hot row. On SQLite it is C-level: `rusqlite` on one OS thread and connection
//!   (`synchronous = FULL`), committing each transaction on its own back to back; on PostgreSQL, sqlx with
//!   concurrent tasks over a pool. joins/s ÷ the ceiling says how many raw transactions' worth of work one join
//!   costs.
//! - **HTTP floor**: the first client count's customers send `GET /healthz` (no database) and then
//!   `GET /api/v1/me` (the session and account reads) back to back, each for `--floor-seconds`: the rate HTTP
//!   alone allows on this machine, which no join rate can pass.
//! - **B. race**: 1,000 customers join one campaign at the same instant (groups of 100, 10 winners, stock for
//!   exactly 10 groups), then every group is read back to prove that none was over-filled.
//!
//! Finally the invariants of SPEC.md are checked on the data the run left behind (`App::check`).
//!
//! Run: `cargo run --release -p tuangou-bench -- --backend both --seconds 10`. PostgreSQL comes from
//! `TUANGOU_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); the database made for
//! the run is dropped at the end. The load generator shares the machine with the service, so on a small machine
//! the figures are a floor, not a ceiling.
#![forbid(unsafe_code)]

mod api;
mod cost;
mod floor;
mod joins;
mod load;
mod race;
mod raw;
mod report;
mod server;
mod stats;

use anyhow::{Context, ensure};
use api::{Api, CampaignShape, User};
use clap::{Parser, ValueEnum};
use std::time::{Duration, Instant};
use tuangou_store::PoolSettings;
use tuangou_testkit::{Backend, TestDb};

/// Each customer's starting credit, in fen (¥100,000: far more than the run can spend).
const CUSTOMER_CREDIT: i64 = 10_000_000;
/// Scenario A's campaigns: N 5, K 2, stock that never runs out, and a per-customer limit never reached.
const JOINS_SHAPE: CampaignShape =
    CampaignShape { quantity: 100_000, group_size: 5, winners_per_group: 2, per_customer_limit: 1_000 };

#[derive(Debug, Parser)]
#[command(name = "tuangou-bench", about = "Joins per second over HTTP, on SQLite and PostgreSQL")]
struct Args {
    /// Which backends to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    /// Scenario A: concurrent customers, each with a connection of its own; a list runs A once per count, so the
    /// table shows latency at a load that does not queue (16) and under a deep queue (64).
    #[arg(long, value_delimiter = ',', default_values_t = [16, 64])]
    clients: Vec<usize>,
    /// Scenario A: how long the load lasts, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// How many times to run everything, each time on a fresh database; with more than one, the table ends with
    /// the median of each figure.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Scenario A: how many campaigns the customers spread over.
    #[arg(long, default_value_t = 4)]
    campaigns: usize,
    /// The raw engine rate: how long each of its two runs lasts, in seconds.
    #[arg(long, default_value_t = 3)]
    raw_seconds: u64,
    /// The raw engine rate: counter rows of its spread run (default 16 on SQLite, 64 on PostgreSQL). On
    /// PostgreSQL also the concurrent writer tasks, one per row; SQLite's one writer thread takes the rows in turn.
    #[arg(long)]
    raw_tasks: Option<usize>,
    /// The HTTP floor: how long each of its two runs lasts, in seconds.
    #[arg(long, default_value_t = 3)]
    floor_seconds: u64,
    /// The service's PostgreSQL pool size (default: the service's own default, `TUANGOU_POSTGRES_CONNECTIONS`).
    /// Fewer connections than clients make joins queue in the pool, first come first served, rather than in the
    /// database's lock queues: on a small machine that lowers the tail latency.
    #[arg(long)]
    postgres_connections: Option<u32>,
    /// Scenario B: customers joining at the same instant.
    #[arg(long, default_value_t = 1_000)]
    race_clients: usize,
    /// Scenario B: the group size N.
    #[arg(long, default_value_t = 100)]
    race_group_size: i64,
    /// Scenario B: winners per group K.
    #[arg(long, default_value_t = 10)]
    race_winners: i64,
    /// Scenario B: the campaign's quantity Q (Q / K groups; the default gives exactly one seat per customer).
    #[arg(long, default_value_t = 100)]
    race_quantity: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Sqlite,
    Postgres,
    Both,
}

impl Which {
    fn backends(self) -> Vec<Backend> {
        match self {
            Which::Sqlite => vec![Backend::Sqlite],
            Which::Postgres => vec![Backend::Postgres],
            Which::Both => vec![Backend::Sqlite, Backend::Postgres],
        }
    }
}

impl Args {
    fn race_shape(&self) -> CampaignShape {
        CampaignShape {
            quantity: self.race_quantity,
            group_size: self.race_group_size,
            winners_per_group: self.race_winners,
            per_customer_limit: 1,
        }
    }

    fn raw_tasks(&self, backend: Backend) -> usize {
        self.raw_tasks.unwrap_or(match backend {
            Backend::Sqlite => 16,
            Backend::Postgres => 64,
        })
    }

    fn pools(&self) -> PoolSettings {
        let default = PoolSettings::default();
        PoolSettings {
            postgres_connections: self.postgres_connections.unwrap_or(default.postgres_connections),
            ..default
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        ensure!(!self.clients.is_empty() && !self.clients.contains(&0), "--clients: positive counts");
        ensure!(self.campaigns > 0 && self.race_clients > 0 && self.repeat > 0, "counts must be positive");
        ensure!(self.postgres_connections != Some(0), "--postgres-connections: at least one");
        ensure!(self.race_winners > 0 && self.race_quantity % self.race_winners == 0, "Q must be a multiple of K");
        Ok(())
    }
}

fn name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.check()?;
    init_logs();
    let mut outcomes = Vec::new();
    for run in 1..=args.repeat {
        for backend in args.backend.backends() {
            println!("== {} (run {run} of {}) ==", name(backend), args.repeat);
            outcomes.push(run_backend(&args, backend).await.with_context(|| format!("on {}", name(backend)))?);
            println!();
        }
    }
    report::summary(&outcomes);
    Ok(())
}

/// Warnings and errors from the service (an internal error is logged there with its cause) go to stderr;
/// `RUST_LOG` overrides.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// The scene every scenario plays on.
struct Scene {
    api: Api,
    joins_campaigns: Vec<String>,
    race_campaign: String,
    customers: Vec<User>,
}

async fn run_backend(args: &Args, backend: Backend) -> anyhow::Result<report::Outcome> {
    let db = TestDb::new(backend).await;
    let server = server::Server::start(&db, &args.pools()).await?;
    let outcome = scenarios(args, &db, &server).await;
    if let Ok(outcome) = &outcome {
        report::check(&outcome.violations);
    }
    server.stop().await;
    outcome
}

async fn scenarios(args: &Args, db: &TestDb, server: &server::Server) -> anyhow::Result<report::Outcome> {
    let scene = set_up(args, server).await?;
    let probe = cost::Probe::new(db).await?;

    let mut joins = Vec::new();
    for &clients in &args.clients {
        let customers = &scene.customers[..clients];
        let duration = Duration::from_secs(args.seconds);
        let summary = joins::run(&scene.api.base, &scene.joins_campaigns, customers, duration, &probe).await?;
        report::joins(&summary, clients);
        joins.push((clients, summary));
    }

    let floor_clients = args.clients[0];
    let floor_time = Duration::from_secs(args.floor_seconds);
    let floor = floor::run(&scene.api.base, &scene.customers[..floor_clients], floor_time, &probe).await?;
    report::floor(&floor, floor_clients);

    let raw = raw::measure(db, &probe, args.raw_tasks(db.backend), Duration::from_secs(args.raw_seconds)).await?;
    probe.close().await;
    report::raw(&raw);
    for (clients, summary) in &joins {
        report::ratio(*clients, summary, &raw);
    }
    report::floor_ratio(&floor, &raw);

    let max_groups = (args.race_quantity / args.race_winners) as usize;
    let customers = &scene.customers[..args.race_clients];
    let race = race::run(&scene.api, &scene.race_campaign, customers, max_groups).await?;
    report::race(&race, args.race_clients);

    let violations = server.app.check().await.map_err(|e| anyhow::anyhow!("app.check failed: {e}"))?;
    Ok(report::Outcome { backend: name(db.backend), joins, floor, raw, race, violations })
}

/// The operator, a funded merchant with the campaigns, and the funded customers (untimed).
async fn set_up(args: &Args, server: &server::Server) -> anyhow::Result<Scene> {
    let started = Instant::now();
    let api = Api::new(&server.base)?;
    let operator = api.operator(&server.app).await?;
    let owner = api.sign_up("13800138000").await?;
    let race_shape = args.race_shape();
    let funds = JOINS_SHAPE.reserve() * args.campaigns as i64 + race_shape.reserve();
    let merchant = api.merchant(&operator, &owner, funds).await?;
    let mut joins_campaigns = Vec::with_capacity(args.campaigns);
    for _ in 0..args.campaigns {
        joins_campaigns.push(api.live_campaign(&owner, &merchant, &JOINS_SHAPE).await?);
    }
    let race_campaign = api.live_campaign(&owner, &merchant, &race_shape).await?;
    let most = args.clients.iter().copied().max().unwrap_or(0).max(args.race_clients);
    let customers = api.customers(&operator, most, CUSTOMER_CREDIT).await?;
    println!(
        "  setup: {} customers signed up and credited, {} + 1 campaigns live ({:.1} s, untimed)",
        customers.len(),
        args.campaigns,
        started.elapsed().as_secs_f64()
    );
    Ok(Scene { api, joins_campaigns, race_campaign, customers })
}
