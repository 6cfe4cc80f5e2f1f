//! Background work, as one public step that tests drive and a loop that `serve` runs on every instance.

use crate::{App, AppResult};
use std::time::Duration;
use tokio::sync::watch;

/// How often the loop runs a step: often enough that deadlines are met within a second.
const TICK: Duration = Duration::from_millis(250);

impl App {
    /// One pass of every background job. Returns how many things it changed.
    pub async fn run_jobs_once(&self) -> AppResult<usize> {
        self.end_due_campaigns().await
    }

    /// Runs [`App::run_jobs_once`] every tick until `shutdown` turns true. Errors are logged, never fatal.
    pub async fn run_jobs(&self, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(error) = self.run_jobs_once().await {
                        tracing::warn!(%error, "background job failed; retrying next tick");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
