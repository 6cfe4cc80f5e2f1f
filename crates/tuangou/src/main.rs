//! The `tuangou` binary: the command line of API.md over the library crates. It holds no logic of its own.
#![forbid(unsafe_code)]

mod config;
mod demo;
mod demo_photos;
mod reconcile;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use config::{Config, redact_url};
use std::path::PathBuf;
use std::process::ExitCode;
use tuangou_app::{App, Clock, NewAccount, Settings, Store};
use tuangou_store::PoolSettings;

#[derive(Parser)]
#[command(name = "tuangou", version, about = "Lottery group buying that brings customers into stores")]
struct Cli {
    /// `sqlite://PATH` or `postgres://…` (default `sqlite://tuangou.db`; env TUANGOU_DATABASE_URL).
    #[arg(long, global = true)]
    database: Option<String>,
    /// A TOML configuration file (default: `tuangou.toml` when present; env TUANGOU_CONFIG).
    #[arg(long, global = true, env = "TUANGOU_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and pages.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080; env TUANGOU_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        /// Seed a demo city (once) and print its accounts.
        #[arg(long)]
        demo: bool,
    },
    /// Bring the schema up to date.
    Migrate,
    /// Operator accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Verify the invariants of SPEC.md; exit 1 and list the violations when any fails.
    Check,
    /// Match a payment provider's bill for one business day with our payments and refunds, and keep the result;
    /// exit 1 and list the mismatches when any line does not match.
    Reconcile {
        /// The provider's name (`sandbox`, …), as this configuration offers it.
        #[arg(long)]
        provider: String,
        /// The business day, `YYYY-MM-DD`, in China Standard Time.
        #[arg(long)]
        date: String,
    },
    /// Verify a group's JSON record (as GET /api/v1/groups/{id} returns it) per FAIRNESS.md.
    VerifyDraw {
        /// The record's file; `-` reads standard input.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an operator account (idempotent for the same phone).
    Create {
        #[arg(long)]
        phone: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "Operator")]
        name: String,
    },
}

fn init_logs(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The app over the configured database; `demo` turns the sandbox payment provider on.
async fn open_app(config: &Config, demo: bool) -> anyhow::Result<App> {
    let pools = PoolSettings { postgres_connections: config.postgres_connections, ..PoolSettings::default() };
    let store = Store::open(&config.database_url, &pools)
        .await
        .with_context(|| format!("opening {}", redact_url(&config.database_url)))?;
    let settings = Settings {
        require_merchant_approval: config.require_merchant_approval,
        session_ttl_hours: config.session_ttl_hours,
        public_url: config.public_url(),
        password_cost: tuangou_app::PasswordCost::Standard,
        secret: config.server_secret()?,
        throttles: tuangou_app::Throttles::default(),
        // Partner mode (splits at redemption) is on in the demo.
        payments: {
            let wechatpay = config.wechatpay()?;
            // WeChat Pay in partner mode splits each paid purchase at the provider (PAYMENTS.md "Payouts").
            let wechatpay_partner = wechatpay.as_ref().is_some_and(|w| w.partner.is_some());
            tuangou_app::payments::PaymentSettings {
                sandbox: config.sandbox(demo)?,
                partner_mode: demo || wechatpay_partner,
                wechatpay,
                alipay: config.alipay()?,
            }
        },
        media_dir: config.media_dir(),
    };
    Ok(App::new(store, settings, Clock::system()))
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let app = open_app(&config, demo).await?;
    if demo {
        demo::seed(&app).await.context("seeding the demo city")?;
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, backend = ?app.store().backend(), "tuangou is serving");
    println!("tuangou is serving on http://{address}");
    if demo {
        // The demo's photos are drawn and uploaded beside the server: the city is usable meanwhile.
        let app = app.clone();
        tokio::spawn(async move {
            match demo::photos(&app).await {
                Ok(()) => tracing::info!("the demo city's photos are in place"),
                Err(error) => tracing::warn!(%error, "the demo city's photos could not all be made"),
            }
        });
    }
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let listener_task = app.start_event_listener(jobs_stopped.clone()).await;
    let jobs = tokio::spawn({
        let (app, stopped) = (app.clone(), jobs_stopped.clone());
        async move { app.run_jobs(stopped).await }
    });
    // The sandbox provider, when on, runs beside the service as a provider would: it delivers its notifications.
    let sandbox = app.sandbox().cloned().map(|sandbox| tokio::spawn(async move { sandbox.run(jobs_stopped).await }));
    if app.sandbox().is_some() {
        tracing::info!("the sandbox payment provider is on");
    }
    let shutdown = async {
        stop_signal().await;
        tracing::info!("shutting down: finishing the requests in flight");
    };
    tuangou_web::serve_with(listener, app.clone(), config.http(), shutdown).await?;
    let _ = stop_jobs.send(true);
    let _ = jobs.await;
    if let Some(sandbox) = sandbox {
        let _ = sandbox.await;
    }
    if let Some(task) = listener_task {
        let _ = task.await;
    }
    // Writes whose requests were dropped (clients that hung up) still run to their end before the exit.
    app.store().writes_settled().await;
    app.store().close().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a service manager or container runtime.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(cli.config).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    if let Some(url) = cli.database {
        config.database_url = url;
    }
    if let Command::Serve { listen: Some(listen), .. } = &cli.command {
        config.listen = listen.clone();
    }
    init_logs(&config);
    match cli.command {
        Command::Serve { demo, .. } => serve(config, demo).await?,
        Command::Migrate => {
            open_app(&config, false).await?.store().close().await;
            println!("schema is up to date");
        }
        Command::Admin { command: AdminCommand::Create { phone, password, name } } => {
            let app = open_app(&config, false).await?;
            let account = NewAccount::parse(&phone, &password, &name).map_err(|e| anyhow::anyhow!("{e}"))?;
            let user = app.create_operator(account).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("operator {} ({})", user.id, user.phone.unwrap_or_default());
            app.store().close().await;
        }
        Command::Check => {
            let app = open_app(&config, false).await?;
            let violations = app.check().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            app.store().close().await;
            if violations.is_empty() {
                println!("all invariants hold");
            } else {
                for v in &violations {
                    println!("invariant {}: {}", v.invariant, v.detail);
                }
                return Ok(ExitCode::from(1));
            }
        }
        Command::Reconcile { provider, date } => return reconcile_day(&config, &provider, &date).await,
        Command::VerifyDraw { file } => return verify_draw(&file),
    }
    Ok(ExitCode::SUCCESS)
}

/// `tuangou reconcile`: exit 0 when every line matches, 1 (listing the mismatches) when not; an unknown provider,
/// a bad date or a bill the provider cannot give is an error (exit 2).
async fn reconcile_day(config: &Config, provider: &str, date: &str) -> anyhow::Result<ExitCode> {
    let Some(day) = tuangou_domain::time::ChinaDay::parse(date) else {
        bail!("--date {date:?} is not a date: give YYYY-MM-DD, the business day in China Standard Time");
    };
    let app = open_app(config, false).await?;
    let result = async {
        if app.provider(provider).is_none() {
            let offered = app.provider_names();
            let offered = if offered.is_empty() { "none".to_owned() } else { offered.join(", ") };
            bail!(
                "unknown provider {provider:?}: this configuration offers {offered} \
                 (the sandbox is on with TUANGOU_PAYMENTS_SANDBOX=true)"
            );
        }
        if day.start() > app.clock().now() {
            bail!("{day} has not begun yet in China Standard Time: there is no bill to reconcile");
        }
        app.reconcile(provider, day).await.map_err(|e| anyhow::anyhow!("reconciling {provider} {day}: {e}"))
    }
    .await;
    app.store().close().await;
    let result = result?;
    for line in reconcile::report(&result) {
        println!("{line}");
    }
    Ok(if result.matched { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn verify_draw(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let record: tuangou_domain::draw::GroupRecord = match serde_json::from_str(&text) {
        Ok(record) => record,
        Err(e) => bail!("not a group record: {e}"),
    };
    match tuangou_domain::draw::verify_record(&record) {
        Ok(()) => {
            println!("verified: group {} was drawn fairly (tuangou-draw-v1)", record.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(mismatches) => {
            for m in mismatches {
                println!("mismatch: {m}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tuangou: {error:#}");
            ExitCode::from(2)
        }
    }
}
