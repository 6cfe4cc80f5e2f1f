//! The profit-sharing (split) worker dropped after each poll in partner mode, on both backends, through WeChat
//! Pay's profit sharing and Alipay's `alipay.trade.order.settle` (each against its fake): a redeemed purchase's
//! split is still owed (not requested yet, or requested and not claimed), claimed with a lease (and settled once
//! the lease ended), or settled once; the provider shared the payment once, by our split id. See
//! `fault_worker.rs`.

use crate::alipay_fake::FakeAlipay;
use crate::common::{campaign_with, live_campaign_with};
use crate::fault_worker::{Owing, Stage, leased_stage, sweep_the_worker};
use crate::paying::{balance, settle_until};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use tuangou_app::payments::payouts::PLATFORM_RECEIVER;
use tuangou_app::payments::port::SplitRequest;
use tuangou_domain::money::Fen;
use tuangou_testkit::fake_wechatpay::FakeWechatPay;
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

const PRICE: i64 = 990;
/// The campaign's 5 % of the price: the platform's share.
const COMMISSION: i64 = 49;
/// Past a redemption's undo window (an hour) and the minute after it that a split waits.
const PAST_THE_UNDO_WINDOW_MS: i64 = 3_600_000 + 61_000;

/// The provider a split goes through, as its fake.
enum Fake {
    WechatPay(FakeWechatPay),
    Alipay(Arc<FakeAlipay>),
}

impl Fake {
    fn name(&self) -> &'static str {
        match self {
            Fake::WechatPay(_) => "wechatpay",
            Fake::Alipay(_) => "alipay",
        }
    }

    /// The payer pays `payment` (the join's answer) at the fake, which notifies us.
    async fn pay(&self, joined: &serde_json::Value) {
        let payment = joined["payment"]["id"].as_str().unwrap();
        match self {
            Fake::WechatPay(fake) => assert!(fake.pay(payment).await.is_success(), "the notification is taken in"),
            Fake::Alipay(fake) => {
                let url = joined["payment"]["client"]["url"].as_str().expect("a pay URL");
                assert_eq!(fake.open(url).await, StatusCode::OK, "the fake accepts our pay URL");
                let (status, _) = fake.pay(payment).await.expect("paid at the fake");
                assert_eq!(status, StatusCode::OK);
            }
        }
    }

    /// The shares the fake made of `payment`, by their `out_order_no` (`out_request_no` at Alipay).
    fn shares_of(&self, payment: &str) -> Vec<String> {
        match self {
            Fake::WechatPay(fake) => {
                let transaction = fake.payment(payment).expect("the payment at the fake").transaction_id;
                fake.splits().into_iter().filter(|s| s.transaction_id == transaction).map(|s| s.out_order_no).collect()
            }
            Fake::Alipay(fake) => {
                let trade = fake.trade(payment).expect("the trade at the fake");
                trade.settles.into_iter().map(|s| s.out_request_no).collect()
            }
        }
    }
}

struct SplitWorker<'a> {
    fake: Fake,
    operator: &'a TestUser,
    owner: &'a TestUser,
    merchant: String,
    campaign: String,
}

/// A provider-paid purchase redeemed, its undo window over: its split is due.
struct DueSplit {
    id: String,
    payment: String,
}

impl SplitWorker<'_> {
    /// Two customers pay a group of two through the provider; the winner's voucher is redeemed at the counter.
    /// Answers the redemption's id and the winner's payment.
    async fn redeemed(&self, app: &TestApp) -> (String, String) {
        let payers = app.customers(self.operator, 2, 0).await;
        let body = json!({"pay_with": self.fake.name()});
        let path = format!("/api/v1/campaigns/{}/groups", self.campaign);
        let (status, first) = app.post(&path, Some(&payers[0].token), body.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{first}");
        let group = first["group"]["id"].as_str().unwrap();
        let (status, second) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&payers[1].token), body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{second}");
        for joined in [&first, &second] {
            self.fake.pay(joined).await;
        }
        let seats = [(&payers[0], &first), (&payers[1], &second)];
        let won = || async {
            for (payer, joined) in seats {
                let (_, mine) = app.get("/api/v1/me/vouchers", Some(&payer.token)).await;
                if let Some(code) = mine["items"][0]["code"].as_str() {
                    return Some((code.to_owned(), joined["payment"]["id"].as_str().unwrap().to_owned()));
                }
            }
            None
        };
        settle_until(app, "the group is drawn", || async { won().await.is_some() }).await;
        let (code, payment) = won().await.expect("a winner");
        let path = format!("/api/v1/merchants/{}/redemptions", self.merchant);
        let (status, redemption) = app.post(&path, Some(&self.owner.token), json!({"code": code})).await;
        assert_eq!(status, StatusCode::CREATED, "{redemption}");
        (redemption["id"].as_str().unwrap().to_owned(), payment)
    }
}

impl Owing for SplitWorker<'_> {
    type Subject = DueSplit;

    /// A redeemed purchase whose undo window is over; the provider was asked for its share already, by our split
    /// id (and looked at it once), as when the worker's earlier answer was lost: asked again, it has it done.
    async fn fresh(&self, app: &TestApp) -> DueSplit {
        let (redemption, payment) = self.redeemed(app).await;
        app.app.clock().advance(PAST_THE_UNDO_WINDOW_MS);
        let id = format!("split-{redemption}");
        let request = SplitRequest {
            out_trade_no: payment.clone(),
            out_order_no: id.clone(),
            receivers: vec![
                (PLATFORM_RECEIVER.to_owned(), Fen::from_stored(COMMISSION).unwrap()),
                (self.merchant.clone(), Fen::from_stored(PRICE - COMMISSION).unwrap()),
            ],
            description: "团购分账".into(),
        };
        let provider = app.app.provider(self.fake.name()).unwrap();
        provider.split(&request).await.expect("the provider takes the split");
        let subject = DueSplit { id, payment };
        assert_eq!(self.stage(app, &subject).await, Stage::Owed);
        subject
    }

    /// Owed: no split yet, or `requested` and never claimed, the price set aside. Claimed: `requested`, the price
    /// set aside, not due again yet. Settled: `succeeded`, nothing set aside, one entry moving it to the provider.
    /// The provider shared the payment once, by our split id, whatever the stage.
    async fn stage(&self, app: &TestApp, split: &DueSplit) -> Stage {
        assert_eq!(
            self.fake.shares_of(&split.payment),
            std::slice::from_ref(&split.id),
            "shared once, by our split id"
        );
        let Some(row) = app.app.store().split(&split.id).await.unwrap() else {
            return Stage::Owed;
        };
        let pending = balance(app, &format!("split:{}:pending", split.id)).await;
        let entries = |what: &str| {
            let reference = format!("{what}:{}", split.id);
            async move {
                app.db.scalar(&format!("SELECT COUNT(*) FROM ledger_entries WHERE reference = '{reference}'")).await
            }
        };
        let (succeeded, failed) = (entries("split-succeeded").await, entries("split-failed").await);
        assert_eq!(failed, 0, "it never failed: {row:?}");
        assert_eq!((row.commission, row.net()), (COMMISSION, Fen::from_stored(PRICE - COMMISSION).unwrap()));
        let stage = leased_stage(app, &row.status, row.attempts, row.next_attempt_at, &row);
        let expected = if stage == Stage::Settled { (0, 1) } else { (PRICE, 0) };
        assert_eq!((pending, succeeded), expected, "set aside, or shared once: {row:?}");
        stage
    }
}

/// The split worker's step through `fake`'s provider, dropped after every poll.
async fn sweep_splits(app: TestApp, fake: Fake) {
    let operator = app.operator().await;
    let owner = app.customers(&operator, 1, 0).await.remove(0);
    let rules = json!({"quantity": 1_000, "group_size": 2, "winners_per_group": 1});
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    app.app.run_jobs_once().await.unwrap();
    let name = format!("the split worker ({})", fake.name());
    let path = SplitWorker { fake, operator: &operator, owner: &owner, merchant, campaign };
    sweep_the_worker(&app, &path, &name).await;
    app.finish().await;
}

async fn a_split_worker_dropped_midway_shares_each_wechat_pay_payment_once(backend: Backend) {
    let (app, fake) = crate::wechatpay::wechatpay_app(backend, true).await;
    sweep_splits(app, Fake::WechatPay(fake)).await;
}

async fn a_split_worker_dropped_midway_settles_each_alipay_trade_once(backend: Backend) {
    let (app, fake) = crate::alipay::alipay_app(backend).await;
    sweep_splits(app, Fake::Alipay(fake)).await;
}

on_both_backends!(
    a_split_worker_dropped_midway_shares_each_wechat_pay_payment_once,
    a_split_worker_dropped_midway_settles_each_alipay_trade_once,
);
