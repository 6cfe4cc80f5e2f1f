//! The paying-at-the-join story against every provider the service speaks, on both backends: the built-in
//! sandbox and the in-process fakes of WeChat Pay (API v3, signed and encrypted like the real one) and Alipay
//! (RSA2, signed like the real one). The same assertions run for each: the 202 and the pending seat, the money
//! arriving by the provider's own notification, the group filling on paid seats and drawn, the loser's (or the
//! returned voucher's) refund going back through that provider and confirmed, the clearing account back at zero;
//! and a window that ends unpaid: closed at the provider first, then the seat released. Every test ends with
//! `check`. Each provider's own faults and bad input have their own files (`pay_at_join.rs`, `wechatpay.rs`,
//! `alipay.rs`).

use crate::alipay_fake::FakeAlipay;
use crate::common::{campaign_with, live_campaign_with};
use crate::paying::{balance, membership_status, refunds, settle_until};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use tuangou_app::payments::port::{PayoutRequest, ProviderError};
use tuangou_app::payments::sandbox::Faults;
use tuangou_domain::money::Fen;
use tuangou_testkit::fake_wechatpay::FakeWechatPay;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

/// A provider under test, and how its payer pays.
enum Payer {
    Sandbox,
    WechatPay(FakeWechatPay),
    Alipay(Arc<FakeAlipay>),
}

impl Payer {
    /// The service offering only `name`, with that provider on the other side.
    async fn start(name: &str, backend: Backend) -> (TestApp, Payer) {
        match name {
            "sandbox" => (crate::pay_at_join::sandbox_app(backend, Faults::default()).await, Payer::Sandbox),
            "wechatpay" => {
                let (app, fake) = crate::wechatpay::wechatpay_app(backend, false).await;
                (app, Payer::WechatPay(fake))
            }
            _ => {
                let (app, fake) = crate::alipay::alipay_app(backend).await;
                (app, Payer::Alipay(fake))
            }
        }
    }

    /// The payer pays the payment the join answered, at the provider (which then notifies the service).
    async fn pay(&self, app: &TestApp, payment: &Value) {
        let id = payment["id"].as_str().expect("a payment id");
        match self {
            Payer::Sandbox => {
                let (status, answer) = app.post(&format!("/sandbox/payments/{id}/pay"), None, json!({})).await;
                assert_eq!(status, StatusCode::OK, "{answer}");
            }
            Payer::WechatPay(fake) => assert!(fake.pay(id).await.is_success(), "the service took the notification"),
            Payer::Alipay(fake) => {
                // Alipay learns of a wap payment when its page opens.
                let url = payment["client"]["url"].as_str().expect("a pay URL");
                assert_eq!(fake.open(url).await, StatusCode::OK);
                let (status, text) = fake.pay(id).await.expect("the fake takes the payment");
                assert_eq!((status, text.as_str()), (StatusCode::OK, "success"));
            }
        }
    }
}

const PROVIDERS: [&str; 3] = ["sandbox", "wechatpay", "alipay"];

/// Two customers pay their seats through the provider; the group fills on the second paid seat and is drawn;
/// the one not drawn is refunded through the provider, the winner returns the voucher (随时退) and is refunded
/// through it too; both refunds are confirmed, and every fen that came in went back out.
async fn paid_seats_fill_a_group_and_refunds_go_back_through_each_provider(backend: Backend) {
    for name in PROVIDERS {
        let (app, payer) = Payer::start(name, backend).await;
        let operator = app.operator().await;
        let owner = app.customer("13900000051").await;
        let body = campaign_with(json!({"group_size": 2, "winners_per_group": 1, "quantity": 10}));
        let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
        let people = app.customers(&operator, 2, 0).await;
        let mut seats = Vec::new();
        let mut group = String::new();
        for person in &people {
            let path = if group.is_empty() {
                format!("/api/v1/campaigns/{campaign}/groups")
            } else {
                format!("/api/v1/groups/{group}/members")
            };
            let (status, joined) = app.post(&path, Some(&person.token), json!({"pay_with": name})).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{name}: {joined}");
            assert_eq!(joined["membership"]["status"], "pending", "{name}");
            assert_eq!(joined["payment"]["provider"], name);
            group = joined["group"]["id"].as_str().unwrap().to_owned();
            seats.push((person, joined["membership"]["id"].as_str().unwrap().to_owned(), joined["payment"].clone()));
        }
        let (_, open) = app.get(&format!("/api/v1/groups/{group}"), None).await;
        assert_eq!(open["status"], "open", "{name}: pending seats do not fill a group");
        for (_, _, payment) in &seats {
            payer.pay(&app, payment).await;
        }
        settle_until(&app, &format!("{name}: drawn"), || async {
            app.get(&format!("/api/v1/groups/{group}"), None).await.1["status"] == "drawn"
        })
        .await;
        for (person, membership, _) in &seats {
            if membership_status(&app, person, membership).await == "won" {
                let (_, vouchers) = app.get("/api/v1/me/vouchers", Some(&person.token)).await;
                let voucher = vouchers["items"][0]["id"].as_str().unwrap().to_owned();
                let path = format!("/api/v1/me/vouchers/{voucher}/refund");
                assert_eq!(app.post(&path, Some(&person.token), json!({})).await.0, StatusCode::OK, "{name}");
            }
        }
        settle_until(&app, &format!("{name}: both refunds confirmed"), || async {
            app.app.clock().advance(5_000); // the next look at a refund the provider is processing
            let mut done = 0;
            for (person, _, _) in &seats {
                done += refunds(&app, person).await.iter().filter(|r| r["status"] == "succeeded").count();
            }
            done == 2
        })
        .await;
        let mut causes = Vec::new();
        for (person, _, payment) in &seats {
            let refund = refunds(&app, person).await.remove(0);
            assert_eq!(
                (refund["to"].as_str(), refund["payment_id"].as_str()),
                (Some("provider"), payment["id"].as_str())
            );
            causes.push(refund["cause"].as_str().unwrap().to_owned());
        }
        causes.sort();
        assert_eq!(causes, ["not_drawn", "voucher_returned"], "{name}");
        assert_eq!(balance(&app, &format!("provider:{name}:clearing")).await, 0, "{name}: in and back out");
        app.finish().await;
    }
}

/// A seat not paid within its window: the payment is closed at the provider first, then the seat is released
/// and the customer may join again.
async fn an_unpaid_window_is_closed_at_each_provider_then_released(backend: Backend) {
    for name in PROVIDERS {
        let (app, _payer) = Payer::start(name, backend).await;
        let operator = app.operator().await;
        let owner = app.customer("13900000052").await;
        let body = campaign_with(json!({"group_size": 3, "winners_per_group": 1, "payment_window_minutes": 1}));
        let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
        let customer = &app.customers(&operator, 1, 0).await[0];
        let join = format!("/api/v1/campaigns/{campaign}/join");
        let (status, joined) = app.post(&join, Some(&customer.token), json!({"pay_with": name})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {joined}");
        let membership = joined["membership"]["id"].as_str().unwrap().to_owned();
        let payment = joined["payment"]["id"].as_str().unwrap().to_owned();
        app.app.clock().advance(61_000);
        settle_until(&app, &format!("{name}: released"), || async {
            membership_status(&app, customer, &membership).await == "unpaid"
        })
        .await;
        let (_, row) = app.get(&format!("/api/v1/me/payments/{payment}"), Some(&customer.token)).await;
        assert_eq!(row["status"], "closed", "{name}: {row}");
        let (status, again) = app.post(&join, Some(&customer.token), json!({"pay_with": name})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: a released customer may join again: {again}");
        app.finish().await;
    }
}

/// Only the sandbox pays out: WeChat Pay and Alipay refuse a payout, and its query, as unsupported, each saying
/// which provider and why (the port's default answer, with each adapter's reason).
async fn providers_without_payouts_refuse_them_in_their_own_words(backend: Backend) {
    let request = PayoutRequest {
        out_payout_no: "payout-1".into(),
        payee: "someone".into(),
        amount: Fen::from_stored(100).unwrap(),
        description: "结算".into(),
    };
    for (name, why) in [
        ("wechatpay", "payouts through WeChat Pay (see the adapter's notes)"),
        ("alipay", "payouts through Alipay (certificate mode; see README)"),
    ] {
        let (app, _payer) = Payer::start(name, backend).await;
        let provider = app.app.provider(name).expect("offered");
        assert_eq!(provider.pay_out(&request).await, Err(ProviderError::Unsupported(why)), "{name}");
        assert_eq!(provider.query_payout("payout-1").await, Err(ProviderError::Unsupported(why)), "{name}");
        app.finish().await;
    }
}

on_both_backends!(
    paid_seats_fill_a_group_and_refunds_go_back_through_each_provider,
    an_unpaid_window_is_closed_at_each_provider_then_released,
    providers_without_payouts_refuse_them_in_their_own_words,
);
