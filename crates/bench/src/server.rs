//! The service under test, started the way `tuangou serve` starts it: the HTTP API on a port of its own, the
//! background jobs loop and the event listener, over a fresh database and the system clock.

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tuangou_app::{App, Clock, Limit, PasswordCost, Settings, Throttles};
use tuangou_store::{PoolSettings, Store};
use tuangou_testkit::TestDb;

/// A running service. [`Server::stop`] ends it; the database stays with its [`TestDb`].
pub struct Server {
    pub app: App,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Opens the store with `pools` (the production sizes unless the bench was told otherwise), then serves on
    /// 127.0.0.1:0. Only the password hashing is cheapened and the limits per client address are lifted (the setup
    /// signs up a thousand customers); nothing on the join path changes.
    pub async fn start(db: &TestDb, pools: &PoolSettings) -> anyhow::Result<Self> {
        let store = Store::open(&db.url, pools).await.context("opening the store")?;
        // The setup signs a thousand customers up and in from one address, many at once: no limits per address.
        let throttles = Throttles {
            sign_ups_per_address: None,
            sign_in_failures_per_address: Limit { max: i64::MAX, window_ms: 60_000 },
            in_flight_per_address: usize::MAX,
            hashes_waiting_per_core: 1 << 16,
            ..Throttles::default()
        };
        let settings = Settings { password_cost: PasswordCost::Minimal, throttles, ..Settings::default() };
        let app = App::new(store, settings, Clock::system());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(events) = app.start_event_listener(stopped.clone()).await {
            tasks.push(events);
        }
        tasks.push(tokio::spawn({
            let (app, stopped) = (app.clone(), stopped.clone());
            async move { app.run_jobs(stopped).await }
        }));
        tasks.push(tokio::spawn({
            let (app, mut stopped) = (app.clone(), stopped);
            async move {
                let shutdown = async move {
                    let _ = stopped.changed().await;
                };
                if let Err(error) = tuangou_web::serve(listener, app, shutdown).await {
                    eprintln!("the server stopped with an error: {error}");
                }
            }
        }));
        Ok(Self { app, base, stop, tasks })
    }

    /// Stops serving, the jobs and the listener, and closes the pools.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.app.store().close().await;
    }
}
