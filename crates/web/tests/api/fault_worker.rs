//! The worker step (`App::run_jobs_once`) dropped after each poll while it settles something owed through a
//! provider (a refund, a withdrawal): what the harness of `fault_refunds.rs` and `fault_payouts.rs` share.
//!
//! Each path's subject is owed and already done at the sandbox (as when an earlier answer of the provider was
//! lost), so one whole worker step claims it, asks the provider (idempotent by our id) and settles it. Dropped
//! after n polls for n = 0, 1, 2, … the subject is then found in one of three states, each asserted to the fen by
//! the path: still owed and untouched, claimed (leased: the money still in flight, not due again yet), or settled
//! once. A claimed subject is left alone by a worker step at the same instant, and settled exactly once by the
//! steps after its lease ended, which the test reaches by moving the clock, never by sleeping.

use crate::paying::settle_until;
use std::fmt::Debug;
use std::future::Future;
use std::task::Poll;
use tuangou_testkit::TestApp;

/// A step that has not completed after this many polls fails the test.
const MAX_POLLS: usize = 400;
/// Past every lease and first backoff of the workers (refunds: 15 s; payouts: 1 s).
pub const PAST_THE_LEASE_MS: i64 = 16_000;

/// Polls `future` with the caller's context at most `polls` times: its output if it completed within them, else
/// `None`, and the future is dropped right after the last poll that left it pending.
pub async fn poll_at_most<F: Future>(polls: usize, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut polled = 0;
    std::future::poll_fn(move |context| {
        if polled == polls {
            return Poll::Ready(None);
        }
        polled += 1;
        match future.as_mut().poll(context) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending if polled == polls => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Where a subject stands after a dropped worker step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Owed, due now, its money still in flight: the step was dropped before it claimed it.
    Owed,
    /// Claimed by the dropped step and not settled: its money still in flight, not due again until later.
    Claimed,
    /// Settled once: its money moved out of flight exactly once.
    Settled,
}

/// The stage of a row the worker claims with a lease (a payout, a split): `requested` and never attempted is
/// owed, attempted is claimed (and must not be due again yet), `succeeded` is settled; anything else fails.
pub fn leased_stage(
    app: &TestApp,
    status: &str,
    attempts: i64,
    next_attempt_at: Option<i64>,
    row: &dyn Debug,
) -> Stage {
    match status {
        "requested" if attempts == 0 => Stage::Owed,
        "requested" => {
            let due = next_attempt_at.expect("a requested row is due some time");
            assert!(due > app.app.clock().now().0, "a claimed row waits for its next attempt: {row:?}");
            Stage::Claimed
        }
        "succeeded" => Stage::Settled,
        other => panic!("a row {other} after a dropped worker step: {row:?}"),
    }
}

/// Something the worker owes through a provider.
pub trait Owing {
    type Subject;
    /// Whether the worker claims the subject with a lease before it settles it. A path settled in one unit (a
    /// stored notification applied) has no such window: its subject is only ever owed or settled.
    const LEASED: bool = true;
    /// A new subject, owed, and done at the sandbox already.
    async fn fresh(&self, app: &TestApp) -> Self::Subject;
    /// Its stage, asserting the money of that stage to the fen (and panicking on any other state).
    async fn stage(&self, app: &TestApp, subject: &Self::Subject) -> Stage;
}

/// What a sweep saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub owed: usize,
    pub claimed: usize,
    pub settled_when_dropped: usize,
    pub completed_at: usize,
}

/// Runs the worker step dropped after n polls, n = 0, 1, … until a step completes within its n polls; after each
/// drop waits for the units handed over, checks the stage and every invariant, and drives a claimed subject to its
/// end by the clock. Sweeps again until some drop came between the claim and the settlement.
pub async fn sweep_the_worker<P: Owing>(app: &TestApp, path: &P, name: &str) {
    let mut claimed = 0;
    for round in 1..=10 {
        let tally = sweep(app, path, name).await;
        eprintln!("{name} ({:?}), sweep {round}: {tally:?}", app.db.backend);
        claimed += tally.claimed;
        if round >= 2 && (claimed > 0 || !P::LEASED) {
            return;
        }
    }
    panic!("{name}: no drop came between the claim and the settlement in 10 sweeps: that window went untested");
}

async fn sweep<P: Owing>(app: &TestApp, path: &P, name: &str) -> Tally {
    let mut tally = Tally::default();
    let mut subject = path.fresh(app).await;
    for polls in 0..=MAX_POLLS {
        let answer = poll_at_most(polls, app.app.run_jobs_once()).await;
        app.app.store().writes_settled().await;
        let stage = path.stage(app, &subject).await;
        checked(app, &format!("{name} dropped after {polls} polls")).await;
        match (answer, stage) {
            (Some(Err(error)), _) => panic!("{name}: the step failed after {polls} polls: {error}"),
            (Some(Ok(_)), Stage::Settled) => {
                tally.completed_at = polls;
                // Another step finds nothing left to do with it: settled once, never twice.
                app.app.run_jobs_once().await.expect("the worker step runs");
                assert_eq!(path.stage(app, &subject).await, Stage::Settled);
                return tally;
            }
            (Some(Ok(_)), stage) => panic!("{name}: a whole step after {polls} polls left it {stage:?}"),
            (None, Stage::Owed) => tally.owed += 1,
            (None, Stage::Claimed) => {
                assert!(P::LEASED, "{name}: claimed after {polls} polls, though nothing claims it with a lease");
                tally.claimed += 1;
                // Leased: a step at the same instant leaves it as it is.
                app.app.run_jobs_once().await.expect("the worker step runs");
                assert_eq!(path.stage(app, &subject).await, Stage::Claimed, "{name}: a step ignored the lease");
                // Once the lease ended, a later step settles it, once.
                app.app.clock().advance(PAST_THE_LEASE_MS);
                settle_until(app, "the claimed subject is settled", || async {
                    path.stage(app, &subject).await == Stage::Settled
                })
                .await;
                app.app.run_jobs_once().await.expect("the worker step runs");
                assert_eq!(path.stage(app, &subject).await, Stage::Settled);
                checked(app, &format!("{name} finished after a drop at {polls} polls")).await;
                subject = path.fresh(app).await;
            }
            (None, Stage::Settled) => {
                tally.settled_when_dropped += 1;
                subject = path.fresh(app).await;
            }
        }
    }
    panic!("{name}: the worker step did not complete within {MAX_POLLS} polls");
}

async fn checked(app: &TestApp, when: &str) {
    let violations = app.app.check().await.expect("the check runs");
    assert!(violations.is_empty(), "{when}: invariants broken: {violations:?}");
}
