//! Background work, as one public step that tests drive and a loop that `serve` runs on every instance.
//!
//! Every job is safe to run on several instances at once: each change is a conditional update inside its own
//! transaction (a group leaves `open` or `full` once; a campaign is ended and settled once), and on PostgreSQL
//! the rows are claimed with `FOR UPDATE SKIP LOCKED`, so instances share the work instead of queueing.

use crate::{App, AppResult};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// How often the loop runs a step: deadlines are met within a second.
const TICK: Duration = Duration::from_millis(250);

/// The most changes of one kind a step makes, so that one step stays short.
const BATCH: usize = 500;

/// How often an instance prunes the throttles' closed windows.
const PRUNE_EVERY_MS: i64 = 60_000;

impl App {
    /// One pass of every background job: end campaigns whose time is up, expire overdue groups, draw due groups,
    /// expire vouchers past their date (refunding purchases), settle ended campaigns, apply payment notifications,
    /// ask providers about unpaid payments (closing those whose window ended, releasing their seats), ask for the
    /// refunds owed through providers, follow payouts and splits at their providers (`payments::payouts`), prune the throttles' closed windows, reconcile yesterday with each payment
    /// provider once it is due (`payments::reconcile`). Returns how many things it changed (pruned counters are not
    /// counted: they held nothing).
    pub async fn run_jobs_once(&self) -> AppResult<usize> {
        let mut changed = self.end_due_campaigns().await?;
        for _ in 0..BATCH {
            if !self.expire_one().await? {
                break;
            }
            changed += 1;
        }
        for _ in 0..BATCH {
            if !self.draw_one(None).await? {
                break;
            }
            changed += 1;
        }
        for _ in 0..BATCH {
            if !self.expire_one_voucher().await? {
                break;
            }
            changed += 1;
        }
        changed += self.settle_ended_campaigns().await?;
        changed += self.apply_payment_events().await?;
        changed += self.check_unpaid_payments().await?;
        changed += self.attempt_refunds().await?;
        changed += self.run_payouts_once().await?;
        self.prune_throttles().await?;
        changed += self.reconcile_due_day().await;
        Ok(changed)
    }

    /// Forgets the throttles' counters whose window has closed (they hold nothing any more), at most once a
    /// minute per instance: a flood from many addresses leaves a row per address behind it.
    async fn prune_throttles(&self) -> AppResult<()> {
        let now = self.clock.now();
        let last = self.pruned_at.load(Ordering::SeqCst);
        if now.0.saturating_sub(last) < PRUNE_EVERY_MS
            || self.pruned_at.compare_exchange(last, now.0, Ordering::SeqCst, Ordering::SeqCst).is_err()
        {
            return Ok(());
        }
        self.store.prune_buckets(now).await?;
        Ok(())
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
