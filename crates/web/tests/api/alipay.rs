//! The `alipay` provider end to end against the in-process fake Alipay gateway ([`crate::alipay_fake`]), on both
//! backends: paying at the join through the signed wap-pay URL (money frozen for profit sharing), the signed
//! form-encoded notification answered `success`, the draw, the loser's refund and a winner's 随时退 refund through
//! `alipay.trade.refund` with our refund id as `out_request_no`, the other winner's redemption and its profit
//! share (`alipay.trade.order.settle`), the zipped GBK bill and its reconciliation, queries answered by a fresh
//! adapter (as after a restart), and `check`. Then the bad input: forged, tampered, another app's, another
//! amount's and an unknown trade's notifications change nothing; an answer whose signature does not verify — a
//! settle's included — is a failed call (asked again later), never a success.

use crate::alipay_fake::{self, FakeAlipay, form};
use crate::common::{campaign_with, live_campaign_with};
use crate::paying::{membership_status, refunds, settle_until};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use tuangou_app::Settings;
use tuangou_app::payments::alipay::{Alipay, AlipaySettings};
use tuangou_app::payments::port::{PayerHints, PaymentState, Provider, ProviderError, TransferState};
use tuangou_app::payments::{PaymentOrder, PaymentSettings};
use tuangou_domain::ids::UserId;
use tuangou_domain::money::Fen;
use tuangou_domain::time::ChinaDay;
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

const NOTIFY: &str = "/api/v1/payments/alipay/notify";

/// The service's Alipay settings for `fake`: partner mode (the merchant's `app_auth_token`, the platform's
/// royalty account).
fn alipay_settings(fake: &FakeAlipay) -> AlipaySettings {
    let mut alipay =
        AlipaySettings::new(alipay_fake::APP_ID, &fake.app_private_key, &fake.alipay_public_key).expect("the keys");
    alipay.gateway_url = fake.gateway();
    alipay.seller_id = Some(alipay_fake::SELLER_ID.into());
    alipay.royalty_account = Some(alipay_fake::ROYALTY_ACCOUNT.into());
    alipay.app_auth_token = Some(alipay_fake::APP_AUTH_TOKEN.into());
    alipay
}

pub(crate) async fn alipay_app(backend: Backend) -> (TestApp, Arc<FakeAlipay>) {
    let fake = FakeAlipay::start().await;
    fake.expect_app_auth_token(alipay_fake::APP_AUTH_TOKEN);
    let settings = Settings {
        payments: PaymentSettings {
            alipay: Some(alipay_settings(&fake)),
            partner_mode: true,
            ..PaymentSettings::default()
        },
        ..Settings::default()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    fake.set_clock(app.app.clock().clone());
    (app, fake)
}

/// Three customers with empty wallets pay at the join through Alipay (their money frozen for sharing); the fake
/// pays and notifies; the group fills and is drawn; the loser's refund and one winner's 随时退 go back through
/// Alipay under our refund ids; the other winner redeems and, once the undo window is over, the commission is
/// shared to the platform's account by `alipay.trade.order.settle` (the rest unfrozen to the merchant) — its
/// first answer tampered, so unverified, and the split still settles once answers verify; a fresh adapter (as
/// after a restart) answers the refund's and the split's queries; the zipped GBK bill of every day the story
/// touched reconciles with our books; `check` holds.
async fn paying_through_alipay_from_join_to_reconciliation(backend: Backend) {
    let (app, fake) = alipay_app(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000011").await;
    let body = campaign_with(json!({"group_size": 3, "winners_per_group": 2, "quantity": 10}));
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let payers = app.customers(&operator, 3, 0).await;
    let start = app.app.clock().now();

    let (mut joined, mut groups) = (Vec::new(), Vec::new());
    for payer in &payers {
        // The first opens a group, the others join that one.
        let path = match groups.first() {
            None => format!("/api/v1/campaigns/{campaign}/groups"),
            Some(group) => format!("/api/v1/groups/{group}/members"),
        };
        let (status, answer) = app.post(&path, Some(&payer.token), json!({"pay_with": "alipay"})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let payment = &answer["payment"];
        assert_eq!((payment["status"].as_str(), payment["amount"].as_i64()), (Some("created"), Some(990)));
        let url = payment["client"]["url"].as_str().expect("a pay URL").to_owned();
        assert!(url.starts_with(&format!("{}?", fake.gateway())), "{url}");
        assert!(url.contains("method=alipay.trade.wap.pay") && url.contains("sign="), "{url}");
        let desktop = payment["client"]["desktop_url"].as_str().unwrap();
        assert!(desktop.contains("method=alipay.trade.page.pay"), "{desktop}");
        let membership = answer["membership"]["id"].as_str().unwrap().to_owned();
        joined.push((payment["id"].as_str().unwrap().to_owned(), membership, url));
        groups.push(answer["group"]["id"].as_str().unwrap().to_owned());
    }
    assert!(groups.iter().all(|g| *g == groups[0]), "one group: {groups:?}");
    let group = groups[0].clone();

    for (payment, _, url) in &joined {
        assert_eq!(fake.open(url).await, StatusCode::OK, "the fake accepts our signed pay URL");
        let trade = fake.trade(payment).expect("the trade exists once the payer opened the page");
        assert_eq!((trade.total_amount.as_str(), trade.status), ("9.90", "WAIT_BUYER_PAY"));
        assert!(trade.royalty_freeze, "partner mode: the money is frozen for profit sharing");
        let expires = app.app.payment(payment).await.unwrap().expires_at;
        assert_eq!(trade.time_expire, tuangou_domain::time::china_time_seconds(tuangou_domain::time::Millis(expires)));
        assert_eq!(trade.notify_url, format!("{}{NOTIFY}", app.base));
        let (status, answer) = fake.pay(payment).await.expect("paid at the fake");
        assert_eq!((status, answer.as_str()), (StatusCode::OK, "success"), "Alipay wants the text success");
    }
    settle_until(&app, "the group is drawn", || async {
        app.get(&format!("/api/v1/groups/{group}"), None).await.1["status"] == "drawn"
    })
    .await;

    // Alipay sends a notification again until it reads `success`: the same notify_id changes nothing.
    let before = app.db.fingerprint().await;
    let (status, answer) = fake.send_again().await;
    assert_eq!((status, answer.as_str()), (StatusCode::OK, "success"));
    assert_eq!(app.db.fingerprint().await, before, "a duplicate is stored once");

    // The loser is refunded; the first winner returns the voucher (随时退), the second redeems it.
    let mut redeemer = None;
    for ((payment, membership, _), payer) in joined.iter().zip(&payers) {
        let status = app.app.payment(payment).await.unwrap().status;
        assert!(status == "paid" || status == "refunded", "{status}");
        if membership_status(&app, payer, membership).await != "won" {
            continue;
        }
        let (_, vouchers) = app.get("/api/v1/me/vouchers", Some(&payer.token)).await;
        if redeemer.is_none() {
            redeemer = Some((payment.clone(), vouchers["items"][0]["code"].as_str().unwrap().to_owned()));
            continue;
        }
        let voucher = vouchers["items"][0]["id"].as_str().unwrap().to_owned();
        let (status, answer) =
            app.post(&format!("/api/v1/me/vouchers/{voucher}/refund"), Some(&payer.token), json!({})).await;
        assert_eq!(status, StatusCode::OK, "随时退: {answer}");
    }
    let (redeemed_payment, code) = redeemer.expect("a winner keeps the voucher");
    let mut refund_ids = Vec::new();
    for ((payment, _, _), payer) in joined.iter().zip(&payers).filter(|((p, _, _), _)| *p != redeemed_payment) {
        settle_until(&app, "the refund succeeds", || async {
            app.app.clock().advance(5_000);
            refunds(&app, payer).await.first().is_some_and(|r| r["status"] == "succeeded")
        })
        .await;
        let refund = &refunds(&app, payer).await[0];
        assert_eq!(refund["to"], "provider");
        let trade = fake.trade(payment).unwrap();
        assert_eq!(trade.refunds.len(), 1, "refunded once at Alipay: {trade:?}");
        assert_eq!(trade.refunds[0].out_request_no, refund["id"].as_str().unwrap(), "out_request_no is our refund id");
        assert_eq!(trade.refunds[0].amount, "9.90");
        assert_eq!(app.app.payment(payment).await.unwrap().status, "refunded");
        refund_ids.push(refund["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(refund_ids.len(), 2, "the loser's and the 随时退");

    // The redemption, then its split once the undo window is over: the first settle's answer does not verify (a
    // failed call: the split stays requested), the next ones do.
    let (status, redemption) =
        app.post(&format!("/api/v1/merchants/{merchant}/redemptions"), Some(&owner.token), json!({"code": code})).await;
    assert_eq!(status, StatusCode::CREATED, "{redemption}");
    let split_id = format!("split-{}", redemption["id"].as_str().unwrap());
    app.app.clock().advance(3_600_000 + 61_000);
    fake.tamper_answers_of(Some("alipay.trade.order.settle"));
    settle_until(&app, "the split is asked of Alipay", || async {
        fake.trade(&redeemed_payment).is_some_and(|t| !t.settles.is_empty())
    })
    .await;
    let split = app.app.store().split(&split_id).await.unwrap().expect("requested");
    assert_eq!(split.status, "requested", "an unverified answer is no answer: {split:?}");
    assert!(split.last_error.as_deref().is_some_and(|e| e.contains("verify")), "{split:?}");
    fake.tamper_answers_of(None);
    settle_until(&app, "the split succeeds", || async {
        app.app.clock().advance(1_000);
        app.app.store().split(&split_id).await.unwrap().is_some_and(|s| s.status == "succeeded")
    })
    .await;
    let trade = fake.trade(&redeemed_payment).unwrap();
    assert_eq!(trade.settles.len(), 1, "settled once, by our split id: {trade:?}");
    let settle = &trade.settles[0];
    assert_eq!(settle.out_request_no, split_id);
    assert_eq!(settle.extend_params["royalty_finish"], "true", "the rest is unfrozen to the merchant");
    let royalty = settle.royalty_parameters.as_array().unwrap();
    assert_eq!(royalty.len(), 1, "{royalty:?}");
    assert_eq!(
        (royalty[0]["trans_in"].as_str(), royalty[0]["trans_in_type"].as_str(), royalty[0]["amount"].as_str()),
        (Some(alipay_fake::ROYALTY_ACCOUNT), Some("userId"), Some("0.49")),
        "5 % of 9.90, the platform's commission"
    );
    assert_eq!(
        app.app.store().balance("provider:alipay:clearing", "fen").await.unwrap(),
        0,
        "in 29.70, back 19.80, split 9.90"
    );
    assert_eq!(fake.refused(), 0, "every request of ours verified at the fake");

    // As after a restart: a fresh adapter, which has seen none of this, answers from what is stored and our ids.
    let fresh = Alipay::new(alipay_settings(&fake), app.app.clock().clone(), &app.base, app.app.store().clone());
    for refund in &refund_ids {
        let status = fresh.query_refund(refund).await.expect("the refund's payment is read from our refunds");
        assert!(matches!(status.state, TransferState::Succeeded { .. }), "{status:?}");
        assert_eq!(status.amount.get(), 990);
    }
    let status = fresh.query_split(&redeemed_payment, &split_id).await.expect("the trade is asked by our id");
    assert!(matches!(status.state, TransferState::Succeeded { .. }), "{status:?}");
    assert_eq!(status.amount.get(), 49);

    // The bill of every day the story touched, zipped and in GBK as Alipay serves it, reconciles with our books.
    let (mut day, last) = (ChinaDay::of(start), ChinaDay::of(app.app.clock().now()));
    let mut lines = 0;
    loop {
        let bill = app.app.provider("alipay").unwrap().fetch_bill(day).await.expect("the bill");
        assert!(bill.raw.starts_with("#支付宝业务明细查询"), "the detail of the zip: {}", bill.raw);
        let result = app.app.reconcile("alipay", day).await.unwrap();
        assert!(result.matched, "{result:?}");
        lines += result.bill_lines;
        if day == last {
            break;
        }
        day = ChinaDay::of(day.end());
    }
    assert_eq!(lines, 5, "three payments and two refunds");

    let (status, body) = app.get("/api/v1/admin/check", Some(&operator.token)).await;
    assert_eq!((status, &body["ok"]), (StatusCode::OK, &json!(true)), "{body}");
    app.finish().await;
}

/// A payment of 19.90 at Alipay for `user`, its pay page opened (so the fake has the trade).
async fn opened_payment(app: &TestApp, fake: &FakeAlipay, user: &TestUser) -> String {
    let order = PaymentOrder {
        user: UserId::from_trusted(&user.id),
        provider: "alipay".into(),
        amount: Fen::from_stored(1_990).unwrap(),
        description: "双人火锅套餐".into(),
        expires_at: app.app.clock().now().plus_seconds(300),
        membership: None,
        payer: PayerHints { return_url: Some("/me".into()), ..PayerHints::default() },
    };
    let payment = app.app.open_payment(order).await.expect("a payment");
    let client: Value = serde_json::from_str(payment.client.as_deref().unwrap()).unwrap();
    assert_eq!(fake.open(client["url"].as_str().unwrap()).await, StatusCode::OK);
    payment.id
}

/// Forged, tampered, another app's, another amount's and an unknown trade's notifications: 4xx, nothing stored.
/// An answer from the gateway that does not verify is `Unavailable` and changes nothing; once answers verify
/// again the same calls go through.
async fn bad_notifications_and_unverified_answers_change_nothing(backend: Backend) {
    let (app, fake) = alipay_app(backend).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let payment = opened_payment(&app, &fake, customer).await;
    let url = format!("{}{NOTIFY}", app.base);
    let genuine = fake.notification(&payment);
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        genuine.iter().map(|(k, v)| (k.clone(), if k == name { value.to_owned() } else { v.clone() })).collect()
    };
    let paid = with("trade_status", "TRADE_SUCCESS");
    let paid = {
        let mut p = paid;
        p.push(("gmt_payment".into(), tuangou_domain::time::china_time_seconds(app.app.clock().now())));
        p
    };
    let before = app.db.fingerprint().await;

    // A bad signature: signed by another key (the fake's notification signed, then its sign swapped for one
    // over other text).
    let mut forged = fake.sign_notification(paid.clone());
    let other = fake.sign_notification(vec![("x".into(), "y".into())]);
    forged.retain(|(k, _)| k != "sign");
    forged.push(("sign".into(), other.iter().find(|(k, _)| k == "sign").unwrap().1.clone()));
    // A tampered parameter after signing.
    let mut tampered = fake.sign_notification(paid.clone());
    for (k, v) in &mut tampered {
        if k == "buyer_id" {
            *v = "2088999999999999".into();
        }
    }
    let another_app = fake.sign_notification(
        paid.iter()
            .map(|(k, v)| (k.clone(), if k == "app_id" { "2021999999999999".into() } else { v.clone() }))
            .collect(),
    );
    let another_amount = fake.sign_notification(
        paid.iter().map(|(k, v)| (k.clone(), if k == "total_amount" { "0.01".into() } else { v.clone() })).collect(),
    );
    let unknown = fake.sign_notification(
        paid.iter()
            .map(|(k, v)| (k.clone(), if k == "out_trade_no" { "not-ours".into() } else { v.clone() }))
            .collect(),
    );
    for (what, params, expected) in [
        ("bad signature", forged, StatusCode::UNAUTHORIZED),
        ("tampered", tampered, StatusCode::UNAUTHORIZED),
        ("another app id", another_app, StatusCode::BAD_REQUEST),
        ("another amount", another_amount, StatusCode::BAD_REQUEST),
        ("unknown trade", unknown, StatusCode::BAD_REQUEST),
    ] {
        let (status, answer) = fake.post_notification(&url, form(&params)).await;
        assert_eq!(status, expected, "{what}: {answer}");
        assert_ne!(answer, "success", "{what}");
        assert_eq!(app.db.fingerprint().await, before, "{what} changed nothing");
    }

    // Answers that do not verify: a failed call (asked again later), never a success, and nothing changes.
    let alipay = app.app.provider("alipay").unwrap();
    fake.tamper_answers(true);
    let asked = alipay.query_payment(&payment).await;
    assert!(matches!(asked, Err(ProviderError::Unavailable(_))), "{asked:?}");
    fake.tamper_answers(false);
    assert_eq!(alipay.query_payment(&payment).await.unwrap().state, PaymentState::NotPaid, "verified again");
    fake.tamper_answers(true);
    let closed = alipay.close_payment(&payment).await;
    assert!(matches!(closed, Err(ProviderError::Unavailable(_))), "{closed:?}");
    assert_eq!(fake.trade(&payment).unwrap().status, "TRADE_CLOSED", "the close reached Alipay, its answer did not");
    app.app.clock().advance(301_000);
    app.app.run_jobs_once().await.unwrap();
    let row = app.app.payment(&payment).await.unwrap();
    assert_eq!(row.status, "created", "nothing is decided on an unverified answer");
    fake.tamper_answers(false);
    assert_eq!(alipay.query_payment(&payment).await.unwrap().state, PaymentState::Closed);
    app.app.clock().advance(60_000);
    settle_until(&app, "the window's end closes the payment", || async {
        app.app.payment(&payment).await.unwrap().status == "closed"
    })
    .await;
    assert_eq!(fake.trade(&payment).unwrap().status, "TRADE_CLOSED", "closed at Alipay first");
    assert!(fake.pay(&payment).await.is_none(), "a closed trade cannot be paid");
    assert_eq!(fake.refused(), 0);
    app.finish().await;
}

on_both_backends!(
    paying_through_alipay_from_join_to_reconciliation,
    bad_notifications_and_unverified_answers_change_nothing
);
