//! Payouts and withdrawals under faults, on both backends: the worker step dropped after each poll while it
//! settles a withdrawal (see `fault_worker.rs`), and owners and customers hanging up their requests over real
//! HTTP, many at once. The money is always in available, in flight (`*_pending`) or paid out, whole, never twice.
//! A request dropped after each poll in process is `payouts.rs`'s `a_dropped_request_leaves_nothing_or_everything`.

use crate::common::{CHUNXI, merchant};
use crate::fault_worker::{Owing, PAST_THE_LEASE_MS, Stage, leased_stage, sweep_the_worker};
use crate::hangups::hang_up_joins;
use crate::paying::{balance, settle_until};
use reqwest::StatusCode;
use serde_json::json;
use tuangou_app::payments::port::PayoutRequest;
use tuangou_app::payments::sandbox::Faults;
use tuangou_domain::money::Fen;
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

const FUNDS: i64 = 10_000;
const WITHDRAWN: i64 = 2_500;
/// Each customer's money in the hang-up test.
const HANG_UP_FUNDS: i64 = 1_500;

async fn sandbox_app(backend: Backend) -> TestApp {
    crate::pay_at_join::sandbox_app(backend, Faults::default()).await
}

/// How many ledger entries carry `reference`: 0 or 1, as references are unique.
async fn entries(app: &TestApp, reference: &str) -> i64 {
    app.db.scalar(&format!("SELECT COUNT(*) FROM ledger_entries WHERE reference = '{reference}'")).await
}

/// The payout worker's subjects: customers' withdrawals, or merchants' payouts (asked by their owners).
struct PayoutWorker<'a> {
    operator: &'a TestUser,
    merchants: bool,
}

/// A payout owed from one account holder's money.
struct Payout {
    /// The holder's accounts' prefix: `customer:{user}` or `merchant:{merchant}`.
    holder: String,
    /// The holder's in-flight account: `withdrawal_pending` or `payout_pending`.
    pending: &'static str,
    id: String,
    /// Whom the provider pays.
    payee: String,
}

impl PayoutWorker<'_> {
    /// A holder with [`FUNDS`] asks for [`WITHDRAWN`] through the sandbox: (their accounts' prefix, in-flight
    /// account, the payout's id).
    async fn asked(&self, app: &TestApp) -> (String, &'static str, String) {
        let customer = app.customers(self.operator, 1, if self.merchants { 0 } else { FUNDS }).await.remove(0);
        let body = json!({"amount": WITHDRAWN, "provider": "sandbox"});
        if !self.merchants {
            let (status, asked) = app.post("/api/v1/me/withdrawals", Some(&customer.token), body).await;
            assert_eq!(status, StatusCode::CREATED, "{asked}");
            let id = asked["id"].as_str().unwrap().to_owned();
            return (format!("customer:{}", customer.id), "withdrawal_pending", id);
        }
        let m = merchant(app, &customer, "老码头火锅", CHUNXI).await;
        app.credit(self.operator, json!({"merchant_id": m}), FUNDS).await;
        let (status, asked) = app.post(&format!("/api/v1/merchants/{m}/payouts"), Some(&customer.token), body).await;
        assert_eq!(status, StatusCode::CREATED, "{asked}");
        (format!("merchant:{m}"), "payout_pending", asked["id"].as_str().unwrap().to_owned())
    }
}

impl Owing for PayoutWorker<'_> {
    type Subject = Payout;

    /// A holder with [`FUNDS`] asks for [`WITHDRAWN`] through the sandbox, which is asked to pay it out (and
    /// finishes it) before the sweep, as when the worker's earlier answer was lost.
    async fn fresh(&self, app: &TestApp) -> Payout {
        let (holder, pending, id) = self.asked(app).await;
        let row = app.app.store().payout(&id).await.unwrap().expect("the payout");
        let request = PayoutRequest {
            out_payout_no: id.clone(),
            payee: row.payee.clone(),
            amount: Fen::from_stored(WITHDRAWN).unwrap(),
            description: "余额提现".into(),
        };
        app.app.provider("sandbox").unwrap().pay_out(&request).await.expect("the sandbox takes the payout");
        app.app.sandbox().unwrap().run_once().await.expect("the sandbox finishes it");
        let subject = Payout { holder, pending, id, payee: row.payee };
        assert_eq!(self.stage(app, &subject).await, Stage::Owed);
        subject
    }

    /// Owed or claimed: `requested`, the amount in flight. Settled: `succeeded`, nothing in flight, one entry
    /// paying it out. Available holds the rest throughout; the sandbox paid it out once whatever the stage.
    async fn stage(&self, app: &TestApp, payout: &Payout) -> Stage {
        let row = app.app.store().payout(&payout.id).await.unwrap().expect("the payout");
        let available = balance(app, &format!("{}:available", payout.holder)).await;
        let pending = balance(app, &format!("{}:{}", payout.holder, payout.pending)).await;
        let paid_out = entries(app, &format!("payout-succeeded:{}", payout.id)).await;
        assert_eq!(available, FUNDS - WITHDRAWN, "available holds the rest: {row:?}");
        assert_eq!(entries(app, &format!("payout-failed:{}", payout.id)).await, 0, "it never failed: {row:?}");
        let at_the_sandbox = app
            .db
            .scalar(&format!(
                "SELECT COUNT(*) FROM sandbox_transfers WHERE kind = 'payout' AND payee = '{}'",
                payout.payee
            ))
            .await;
        assert_eq!(at_the_sandbox, 1, "the payee was paid once at the sandbox, by our id: {row:?}");
        let stage = leased_stage(app, &row.status, row.attempts, row.next_attempt_at, &row);
        let expected = if stage == Stage::Settled { (0, 1) } else { (WITHDRAWN, 0) };
        assert_eq!((pending, paid_out), expected, "in flight, or paid out once: {row:?}");
        stage
    }
}

/// The payout worker's step (claim, the provider asked, settle) dropped after every poll.
async fn sweep_payouts(backend: Backend, merchants: bool, name: &str) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    app.app.run_jobs_once().await.unwrap();
    sweep_the_worker(&app, &PayoutWorker { operator: &operator, merchants }, name).await;
    app.finish().await;
}

async fn a_payout_worker_dropped_midway_pays_out_each_withdrawal_once(backend: Backend) {
    sweep_payouts(backend, false, "the payout worker (withdrawals)").await;
}

/// The same, for merchants' payouts their owners asked for.
async fn a_payout_worker_dropped_midway_pays_out_each_merchant_payout_once(backend: Backend) {
    sweep_payouts(backend, true, "the payout worker (merchant payouts)").await;
}

/// Quiescence after hang-ups: stopping the service waits for the requests still in flight and closes its pools;
/// the service started again on the same database (and clock, and sandbox) answers what follows.
pub(crate) async fn stopped_and_started_again(mut app: TestApp) -> TestApp {
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), app.stop()).await;
    stopped.expect("the service stops within 10 s");
    TestApp::spawn_on_with(app.db.clone(), app.app.settings().clone(), app.app.clock().clone()).await
}

/// Each customer's withdrawals as the store keeps them.
async fn withdrawals(app: &TestApp, customer: &TestUser) -> Vec<tuangou_store::PayoutRow> {
    let user = tuangou_domain::ids::UserId::from_trusted(&customer.id);
    app.app.store().withdrawals_of(&user, None, 1_000).await.unwrap()
}

/// Customers with [`FUNDS`] ask for withdrawals of 1 yuan and reset their connections 0–4 ms later, sixteen at
/// a time. Once every accepted write ended: each customer's k withdrawals hold exactly k yuan in flight and the
/// rest is available; then the worker pays every one out once, and nothing is left in flight.
async fn customers_who_hang_up_mid_withdrawal_keep_every_fen(backend: Backend) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    // Fifteen withdrawals' worth each: some requests are refused for the balance (402, changing nothing), and the
    // worker has at most 120 to pay out afterwards.
    let customers = app.customers(&operator, 8, HANG_UP_FUNDS).await;
    hang_up_joins(&app, "/api/v1/me/withdrawals", &customers, r#"{"amount": 100, "provider": "sandbox"}"#).await;
    let app = stopped_and_started_again(app).await;
    let mut asked = 0;
    for customer in &customers {
        let rows = withdrawals(&app, customer).await;
        let k = rows.len() as i64;
        assert!(rows.iter().all(|r| r.status == "requested" && r.amount == 100), "{rows:?}");
        let pending = balance(&app, &format!("customer:{}:withdrawal_pending", customer.id)).await;
        let available = balance(&app, &format!("customer:{}:available", customer.id)).await;
        assert_eq!((pending, available), (100 * k, HANG_UP_FUNDS - 100 * k), "{k} withdrawals in flight, whole");
        asked += k;
    }
    eprintln!("{asked} withdrawals went through the hang-ups ({:?})", app.db.backend);
    assert!(app.app.check().await.unwrap().is_empty());

    settle_until(&app, "every withdrawal is paid out", || async {
        app.app.clock().advance(PAST_THE_LEASE_MS);
        for customer in &customers {
            if withdrawals(&app, customer).await.iter().any(|r| r.status != "succeeded") {
                return false;
            }
        }
        true
    })
    .await;
    for customer in &customers {
        let rows = withdrawals(&app, customer).await;
        let k = rows.len() as i64;
        for row in &rows {
            assert_eq!(entries(&app, &format!("payout-succeeded:{}", row.id)).await, 1, "paid out once: {row:?}");
        }
        assert_eq!(balance(&app, &format!("customer:{}:withdrawal_pending", customer.id)).await, 0);
        assert_eq!(balance(&app, &format!("customer:{}:available", customer.id)).await, HANG_UP_FUNDS - 100 * k);
    }
    app.finish().await;
}

/// An owner asks for payouts of 1 yuan and resets the connection 0–4 ms later, sixteen at a time: one payout at
/// most is in flight (the rest are refused, 409), holding exactly its yuan; the worker pays it out once.
async fn owners_who_hang_up_mid_payout_get_at_most_one_in_flight(backend: Backend) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    let owner = app.customers(&operator, 1, 0).await.remove(0);
    let m = merchant(&app, &owner, "老码头火锅", CHUNXI).await;
    app.credit(&operator, json!({"merchant_id": m}), FUNDS).await;
    let path = format!("/api/v1/merchants/{m}/payouts");
    hang_up_joins(&app, &path, std::slice::from_ref(&owner), r#"{"amount": 100, "provider": "sandbox"}"#).await;
    let app = stopped_and_started_again(app).await;
    let (_, listed) = app.get(&path, Some(&owner.token)).await;
    let payouts = listed["items"].as_array().unwrap().clone();
    let k = payouts.len() as i64;
    assert!(k <= 1, "one payout in flight at a time: {payouts:?}");
    let pending = balance(&app, &format!("merchant:{m}:payout_pending")).await;
    let available = balance(&app, &format!("merchant:{m}:available")).await;
    assert_eq!((pending, available), (100 * k, FUNDS - 100 * k), "whole: {payouts:?}");
    assert!(app.app.check().await.unwrap().is_empty());
    if let Some(payout) = payouts.first() {
        let id = payout["id"].as_str().unwrap().to_owned();
        settle_until(&app, "the payout is paid out", || async {
            app.app.clock().advance(PAST_THE_LEASE_MS);
            app.app.store().payout(&id).await.unwrap().unwrap().status == "succeeded"
        })
        .await;
        assert_eq!(entries(&app, &format!("payout-succeeded:{id}")).await, 1);
        assert_eq!(balance(&app, &format!("merchant:{m}:payout_pending")).await, 0);
        assert_eq!(balance(&app, &format!("merchant:{m}:available")).await, FUNDS - 100);
    }
    app.finish().await;
}

on_both_backends!(
    a_payout_worker_dropped_midway_pays_out_each_withdrawal_once,
    a_payout_worker_dropped_midway_pays_out_each_merchant_payout_once,
    customers_who_hang_up_mid_withdrawal_keep_every_fen,
    owners_who_hang_up_mid_payout_get_at_most_one_in_flight,
);
