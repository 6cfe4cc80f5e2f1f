//! The refund worker dropped after each poll, on both backends (`App::attempt_refunds`, the store's claim and
//! settle): a refund owed through the sandbox is still owed (and a later step settles it), claimed with a lease
//! (and settled once the lease ended), or settled once; never twice, never lost. Likewise the step that applies a
//! stored WeChat Pay refund notification (`Store::apply_next_refund_event`): the refund still owed with its
//! notification waiting, or settled once with it applied. See `fault_worker.rs`.

use crate::common::{campaign_with, live_campaign_with};
use crate::fault_worker::{Owing, Stage, sweep_the_worker};
use crate::paying::{balance, membership_status, settle_until};
use reqwest::StatusCode;
use serde_json::json;
use tuangou_app::Caller;
use tuangou_app::payments::port::RefundRequest;
use tuangou_app::payments::sandbox::Faults;
use tuangou_domain::ids::GroupId;
use tuangou_domain::money::Fen;
use tuangou_testkit::fake_wechatpay::FakeWechatPay;
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

const PRICE: i64 = 990;

struct RefundWorker<'a> {
    operator: &'a TestUser,
    owner_caller: Caller,
    campaign: String,
}

/// A refund owed to a customer who paid through the sandbox and was not drawn.
struct OwedRefund {
    loser: TestUser,
    refund: String,
    payment: String,
    /// The loser's wallet (their cash reward), which the refund never touches.
    wallet: i64,
}

impl Owing for RefundWorker<'_> {
    type Subject = OwedRefund;

    /// Two customers pay their seats of a scheduled group through the sandbox; staff draw it, so the loser's
    /// price is owed back through the sandbox, which is asked for it (and finishes it) before the sweep.
    async fn fresh(&self, app: &TestApp) -> OwedRefund {
        let people = app.customers(self.operator, 2, 0).await;
        let paid = json!({"pay_with": "sandbox"});
        let (status, first) = app
            .post(&format!("/api/v1/campaigns/{}/groups", self.campaign), Some(&people[0].token), paid.clone())
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{first}");
        let group = first["group"]["id"].as_str().unwrap().to_owned();
        let (status, second) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), paid).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{second}");
        let seats = [(&people[0], first), (&people[1], second)];
        for (_, joined) in &seats {
            let payment = joined["payment"]["id"].as_str().unwrap();
            let (status, _) = app.post(&format!("/sandbox/payments/{payment}/pay"), None, json!({})).await;
            assert_eq!(status, StatusCode::OK);
        }
        settle_until(app, "both seats are paid", || async {
            for (user, joined) in &seats {
                if membership_status(app, user, joined["membership"]["id"].as_str().unwrap()).await != "waiting" {
                    return false;
                }
            }
            true
        })
        .await;
        app.app.draw_by_staff(&self.owner_caller, &GroupId::from_trusted(&group)).await.expect("staff draw");
        for (user, joined) in seats {
            if membership_status(app, user, joined["membership"]["id"].as_str().unwrap()).await != "lost" {
                continue;
            }
            let owed = crate::paying::refunds(app, user).await;
            assert_eq!(owed.len(), 1, "{owed:?}");
            assert_eq!((owed[0]["cause"].as_str(), owed[0]["to"].as_str()), (Some("not_drawn"), Some("provider")));
            let refund = owed[0]["id"].as_str().unwrap().to_owned();
            let payment = joined["payment"]["id"].as_str().unwrap().to_owned();
            let sandbox = app.app.provider("sandbox").unwrap();
            let request = RefundRequest {
                out_trade_no: payment.clone(),
                out_refund_no: refund.clone(),
                amount: Fen::from_stored(PRICE).unwrap(),
                reason: "not_drawn".into(),
            };
            sandbox.refund(&request).await.expect("the sandbox takes the refund");
            app.app.sandbox().unwrap().run_once().await.expect("the sandbox finishes it");
            let wallet = balance(app, &format!("customer:{}:available", user.id)).await;
            let subject = OwedRefund { loser: user.clone(), refund, payment, wallet };
            assert_eq!(self.stage(app, &subject).await, Stage::Owed);
            return subject;
        }
        panic!("nobody lost group {group}");
    }

    /// Owed or claimed: `requested`, the price in the customer's refund-pending account, the payment `paid`, no
    /// settlement entry. Settled: `succeeded`, nothing pending, the payment `refunded`, one settlement entry. The
    /// sandbox gave the price back once whatever the stage (it was asked before, by the same id).
    async fn stage(&self, app: &TestApp, owed: &OwedRefund) -> Stage {
        let row = app.app.store().refund(&owed.refund).await.unwrap().expect("the refund");
        let pending = balance(app, &format!("customer:{}:refund_pending", owed.loser.id)).await;
        let payment = app.app.store().payment(&owed.payment).await.unwrap().expect("the payment");
        let reference = format!("refund-settled:{}", owed.refund);
        let settlements =
            app.db.scalar(&format!("SELECT COUNT(*) FROM ledger_entries WHERE reference = '{reference}'")).await;
        let there = app.app.provider("sandbox").unwrap().query_payment(&owed.payment).await.unwrap();
        assert_eq!(there.refunded.get(), PRICE, "the sandbox gave the price back once");
        let wallet = balance(app, &format!("customer:{}:available", owed.loser.id)).await;
        assert_eq!(wallet, owed.wallet, "a refund to the provider never touches the wallet");
        match row.status.as_str() {
            "requested" => {
                assert_eq!((pending, settlements, payment.status.as_str()), (PRICE, 0, "paid"), "owed: {row:?}");
                let due = row.next_attempt_at.expect("a requested refund is due some time");
                if due > app.app.clock().now().0 { Stage::Claimed } else { Stage::Owed }
            }
            "succeeded" => {
                assert_eq!((pending, settlements, payment.status.as_str()), (0, 1, "refunded"), "settled: {row:?}");
                Stage::Settled
            }
            other => panic!("a refund {other} after a dropped worker step: {row:?}"),
        }
    }
}

/// The refund worker's step (claim, the provider asked, settle) dropped after every poll.
async fn a_refund_worker_dropped_midway_settles_each_refund_once(backend: Backend) {
    let app = crate::pay_at_join::sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138301").await;
    let rules = json!({
        "quantity": 1_000, "group_size": 2, "winners_per_group": 1, "draw_mode": "scheduled", "draw_window_hours": 2
    });
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    let owner_caller = app.app.authenticate(&owner.token).await.unwrap().unwrap();
    // The day's reconciliation, if due, is done before the sweep.
    app.app.run_jobs_once().await.unwrap();
    let path = RefundWorker { operator: &operator, owner_caller, campaign };
    sweep_the_worker(&app, &path, "the refund worker").await;
    app.finish().await;
}

struct RefundNotifications<'a> {
    fake: FakeWechatPay,
    operator: &'a TestUser,
    campaign: String,
}

/// A refund WeChat Pay finished and notified us of: the notification is stored, not applied yet.
struct NotifiedRefund {
    loser: TestUser,
    refund: String,
    payment: String,
    /// Our requests about refunds the fake had taken by the time it notified: the notification alone settles it.
    asked: usize,
}

/// Our requests about refunds (asked or queried) that WeChat Pay has taken.
fn refund_requests(fake: &FakeWechatPay) -> usize {
    fake.requests().0.iter().filter(|(_, path)| path.starts_with("/v3/refund/")).count()
}

impl Owing for RefundNotifications<'_> {
    type Subject = NotifiedRefund;
    const LEASED: bool = false;

    /// Two customers pay a group of two through WeChat Pay; the loser's refund is asked of it (`PROCESSING`),
    /// then finishes there, and its signed, encrypted `REFUND.SUCCESS` notification is taken in (stored).
    async fn fresh(&self, app: &TestApp) -> NotifiedRefund {
        let (refund, loser, _) =
            crate::wechatpay::a_refund_processing_in(app, &self.fake, self.operator, &self.campaign).await;
        let refund = refund["id"].as_str().unwrap().to_owned();
        let payment = app.app.store().refund(&refund).await.unwrap().unwrap().payment_id.expect("a provider's");
        assert!(self.fake.finish_refund(&refund, "SUCCESS").await.is_success(), "the notification is taken in");
        let subject = NotifiedRefund { loser, refund, payment, asked: refund_requests(&self.fake) };
        assert_eq!(self.stage(app, &subject).await, Stage::Owed);
        subject
    }

    /// Owed: `requested`, the price in the customer's refund-pending account, the payment `paid`, no settlement
    /// entry, the notification `received`. Settled: `succeeded`, nothing pending, the payment `refunded`, one
    /// settlement entry, the notification `applied`. Nothing was asked of WeChat Pay about it meanwhile.
    async fn stage(&self, app: &TestApp, notified: &NotifiedRefund) -> Stage {
        let row = app.app.store().refund(&notified.refund).await.unwrap().expect("the refund");
        let pending = balance(app, &format!("customer:{}:refund_pending", notified.loser.id)).await;
        let payment = app.app.store().payment(&notified.payment).await.unwrap().expect("the payment");
        let settlements = app
            .db
            .scalar(&format!("SELECT COUNT(*) FROM ledger_entries WHERE reference = 'refund-settled:{}'", row.id))
            .await;
        let events = format!("SELECT COUNT(*) FROM refund_events WHERE refund_id = '{}' AND status = ", row.id);
        let received = app.db.scalar(&format!("{events}'received'")).await;
        let applied = app.db.scalar(&format!("{events}'applied'")).await;
        assert_eq!(refund_requests(&self.fake), notified.asked, "the notification alone settles it: {row:?}");
        assert_eq!(self.fake.refund(&row.id).map(|r| r.amount), Some(PRICE), "refunded once at WeChat Pay");
        match row.status.as_str() {
            "requested" => {
                assert_eq!((pending, settlements, payment.status.as_str()), (PRICE, 0, "paid"), "owed: {row:?}");
                assert_eq!((received, applied), (1, 0), "the notification waits: {row:?}");
                Stage::Owed
            }
            "succeeded" => {
                assert_eq!((pending, settlements, payment.status.as_str()), (0, 1, "refunded"), "settled: {row:?}");
                assert_eq!((received, applied), (0, 1), "the notification applied once: {row:?}");
                Stage::Settled
            }
            other => panic!("a refund {other} after a dropped worker step: {row:?}"),
        }
    }
}

/// The worker's step that applies a stored WeChat Pay refund notification, dropped after every poll.
async fn a_refund_notification_applied_by_a_dropped_worker_settles_once(backend: Backend) {
    let (app, fake) = crate::wechatpay::wechatpay_app(backend, true).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138302").await;
    let rules = json!({"quantity": 1_000, "group_size": 2, "winners_per_group": 1});
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    app.app.run_jobs_once().await.unwrap();
    let path = RefundNotifications { fake, operator: &operator, campaign };
    sweep_the_worker(&app, &path, "the refund notification").await;
    app.finish().await;
}

on_both_backends!(
    a_refund_worker_dropped_midway_settles_each_refund_once,
    a_refund_notification_applied_by_a_dropped_worker_settles_once,
);
