//! The `wechatpay` provider end to end against the in-process fake WeChat Pay (`tuangou_testkit::fake_wechatpay`),
//! on both backends: the whole story in partner mode (pay at the join → notification → draw → the loser's refund
//! through WeChat Pay → redemption → profit share → the trade bill → reconciliation), the three kinds of order
//! (JSAPI with its signed parameters, H5, Native) in direct mode, notifications that must be refused without
//! changing anything, and answers whose signature does not verify, which are no answer.

use crate::common::{campaign_with, live_campaign_with};
use crate::paying::{balance, refunds, settle_until};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use tuangou_app::payments::port::{Browser, PayerHints, PaymentState, Provider, ProviderError, TransferState};
use tuangou_app::payments::wechatpay::{WechatPay, china_rfc3339};
use tuangou_app::payments::{PaymentOrder, PaymentSettings};
use tuangou_app::{Clock, Settings};
use tuangou_domain::ids::UserId;
use tuangou_domain::money::Fen;
use tuangou_domain::time::{ChinaDay, Millis};
use tuangou_testkit::fake_wechatpay::{self as fake, FakeWechatPay, Signing};
use tuangou_testkit::{Backend, TestApp, TestDb, TestUser, on_both_backends};

/// The service with WeChat Pay pointed at a fresh fake (both on the same manual clock).
pub(crate) async fn wechatpay_app(backend: Backend, partner: bool) -> (TestApp, FakeWechatPay) {
    let clock = Clock::manual(Millis(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64,
    ));
    let fake = FakeWechatPay::start(clock.clone()).await;
    let payments = PaymentSettings {
        wechatpay: Some(fake.settings(partner)),
        partner_mode: partner,
        ..PaymentSettings::default()
    };
    let settings = Settings { payments, ..Settings::default() };
    let app = TestApp::spawn_on_with(Arc::new(TestDb::new(backend).await), settings, clock).await;
    (app, fake)
}

async fn memberships(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let (_, page) = app.get("/api/v1/me/memberships", Some(&user.token)).await;
    page["items"].as_array().cloned().unwrap_or_default()
}

/// Partner mode, the whole story: two customers pay their seats through WeChat Pay (Native orders with
/// `time_expire` and `settle_info.profit_sharing`), the fake notifies, the group is drawn; the loser's money goes
/// back through WeChat Pay's refund (`out_refund_no` = our refund id); the winner redeems and, once the undo
/// window is over, the commission is shared to the platform at the fake (the rest released to the sub-merchant);
/// the fake's trade bill reconciles with our books; every invariant holds.
async fn the_whole_story_through_wechat_pay(backend: Backend) {
    let (app, fake) = wechatpay_app(backend, true).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000031").await;
    let body = campaign_with(json!({"group_size": 2, "winners_per_group": 1, "quantity": 10}));
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let payers = app.customers(&operator, 2, 0).await;
    let start = app.app.clock().now();

    let (status, first) = app
        .post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&payers[0].token), json!({"pay_with": "wechatpay"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let group = first["group"]["id"].as_str().unwrap().to_owned();
    let (status, second) = app
        .post(&format!("/api/v1/groups/{group}/members"), Some(&payers[1].token), json!({"pay_with": "wechatpay"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    let pay_ids: Vec<String> =
        [&first, &second].iter().map(|a| a["payment"]["id"].as_str().unwrap().to_owned()).collect();
    for (answer, id) in [&first, &second].iter().zip(&pay_ids) {
        let client = &answer["payment"]["client"];
        assert_eq!(client["type"], "native", "{client}");
        assert!(client["code_url"].as_str().unwrap().starts_with("weixin://wxpay/"), "{client}");
        let order = fake.payment(id).expect("the order reached the fake").order;
        assert_eq!(
            (order["sp_mchid"].as_str(), order["sub_mchid"].as_str()),
            (Some(fake::MCHID), Some(fake::SUB_MCHID))
        );
        assert_eq!(order["settle_info"]["profit_sharing"], true);
        assert_eq!(order["amount"]["total"], 990);
        assert_eq!(order["out_trade_no"], id.replace('-', ""));
        assert!(order["time_expire"].as_str().unwrap().ends_with("+08:00"));
        assert!(order["notify_url"].as_str().unwrap().ends_with("/api/v1/payments/wechatpay/notify"));
    }
    assert_eq!(app.get(&format!("/api/v1/groups/{group}"), None).await.1["status"], "open", "pending seats");

    for id in &pay_ids {
        assert!(fake.pay(id).await.is_success(), "the notification is taken in");
    }
    settle_until(&app, "the group is drawn", || async {
        app.get(&format!("/api/v1/groups/{group}"), None).await.1["status"] == "drawn"
    })
    .await;
    let mut outcomes = Vec::new();
    for payer in &payers {
        outcomes.push(memberships(&app, payer).await[0].clone());
    }
    let winner = outcomes.iter().position(|m| m["status"] == "won").expect("one winner");
    let loser = 1 - winner;

    // The loser's refund, through WeChat Pay, by our refund id.
    settle_until(&app, "the loser's refund succeeds", || async {
        app.app.clock().advance(5_000);
        refunds(&app, &payers[loser]).await.first().is_some_and(|r| r["status"] == "succeeded")
    })
    .await;
    let refund = &refunds(&app, &payers[loser]).await[0];
    let at_fake = fake.refund(refund["id"].as_str().unwrap()).expect("asked of WeChat Pay by our refund id");
    assert_eq!((at_fake.amount, at_fake.status.as_str()), (990, "SUCCESS"));
    assert_eq!(at_fake.request["sub_mchid"], fake::SUB_MCHID);
    assert_eq!(at_fake.out_trade_no, pay_ids[loser].replace('-', ""));

    // The winner redeems; the split reaches the fake once the undo window is over.
    let code = outcomes[winner]["voucher_code"].as_str().unwrap().to_owned();
    let (status, redemption) =
        app.post(&format!("/api/v1/merchants/{merchant}/redemptions"), Some(&owner.token), json!({"code": code})).await;
    assert_eq!(status, StatusCode::CREATED, "{redemption}");
    let split_id = format!("split-{}", redemption["id"].as_str().unwrap());
    app.app.clock().advance(3_600_000 + 61_000);
    settle_until(&app, "the split succeeds", || async {
        app.app.clock().advance(1_000);
        app.app.store().split(&split_id).await.unwrap().is_some_and(|s| s.status == "succeeded")
    })
    .await;
    let splits = fake.splits();
    assert_eq!(splits.len(), 1);
    let split = &splits[0];
    assert_eq!(split.out_order_no, split_id);
    assert_eq!(split.transaction_id, fake.payment(&pay_ids[winner]).unwrap().transaction_id);
    assert_eq!(split.request["unfreeze_unsplit"], true, "the merchant's share is released to the sub-merchant");
    let receivers = split.request["receivers"].as_array().unwrap();
    assert_eq!(receivers.len(), 1, "{receivers:?}");
    assert_eq!(
        (receivers[0]["type"].as_str(), receivers[0]["account"].as_str()),
        (Some("MERCHANT_ID"), Some(fake::MCHID))
    );
    assert_eq!(receivers[0]["amount"], 49, "5 % of 990, the platform's commission");
    assert_eq!(balance(&app, "provider:wechatpay:clearing").await, 0, "in 1,980, refunded 990, split 990");
    // As after a restart: a fresh adapter, which has seen none of this, answers the split's query from our ids.
    let fresh = WechatPay::new(fake.settings(true), app.app.clock().clone(), &app.base);
    let status = fresh.query_split(&pay_ids[winner], &split_id).await.expect("asked from our ids alone");
    assert!(matches!(status.state, TransferState::Succeeded { .. }), "{status:?}");
    assert_eq!((status.out_no.as_str(), status.amount.get()), (split_id.as_str(), 49));

    // The bill of every day the story touched, from the fake, reconciles with our books.
    let (mut day, last) = (ChinaDay::of(start), ChinaDay::of(app.app.clock().now()));
    let mut lines = 0;
    loop {
        let result = app.app.reconcile("wechatpay", day).await.unwrap();
        assert!(result.matched, "{result:?}");
        lines += result.bill_lines;
        if day == last {
            break;
        }
        day = ChinaDay::of(day.end());
    }
    assert_eq!(lines, 3, "two payments and a refund");
    let (status, check) = app.get("/api/v1/admin/check", Some(&operator.token)).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    let (_, refused) = fake.requests();
    assert_eq!(refused, 0, "every request we sent was signed right");
    app.finish().await;
}

fn order(user: &TestUser, app: &TestApp, payer: PayerHints) -> PaymentOrder {
    PaymentOrder {
        user: UserId::from_trusted(&user.id),
        provider: "wechatpay".into(),
        amount: Fen::from_stored(990).unwrap(),
        description: "双人火锅套餐".into(),
        expires_at: app.app.clock().now().plus_seconds(300),
        membership: None,
        payer,
    }
}

/// Direct mode: WeChat's browser with an openid makes a JSAPI order whose client parameters are signed with the
/// merchant key over `appId\ntimeStamp\nnonceStr\npackage\n`; a mobile browser with its IP makes an H5 order (a
/// URL); no hints make a Native one.
async fn jsapi_h5_and_native_orders(backend: Backend) {
    let (app, fake) = wechatpay_app(backend, false).await;
    let operator = app.operator().await;
    let user = &app.customers(&operator, 1, 0).await[0];
    let jsapi = order(
        user,
        &app,
        PayerHints {
            provider_user: Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into()),
            browser: Browser::WeChat,
            ..PayerHints::default()
        },
    );
    let payment = app.app.open_payment(jsapi).await.unwrap();
    let client: Value = serde_json::from_str(payment.client.as_deref().unwrap()).unwrap();
    assert_eq!(
        (client["type"].as_str(), client["appId"].as_str(), client["signType"].as_str()),
        (Some("jsapi"), Some(fake::APPID), Some("RSA"))
    );
    assert!(client["package"].as_str().unwrap().starts_with("prepay_id=wx"));
    let message = format!(
        "{}\n{}\n{}\n{}\n",
        client["appId"].as_str().unwrap(),
        client["timeStamp"].as_str().unwrap(),
        client["nonceStr"].as_str().unwrap(),
        client["package"].as_str().unwrap()
    );
    let merchant_cert = tuangou_app::payments::wechatpay::signing::PlatformKey::certificates(include_str!(
        "../../../app/tests/fixtures/wechatpay/java_merchant_certificate.pem"
    ))
    .unwrap();
    assert!(merchant_cert[0].verifies(message.as_bytes(), client["paySign"].as_str().unwrap()), "paySign verifies");
    let at_fake = fake.payment(&payment.id).unwrap();
    assert_eq!((at_fake.kind.as_str(), at_fake.order["mchid"].as_str()), ("jsapi", Some(fake::MCHID)));
    assert_eq!(at_fake.order["payer"]["openid"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    assert!(at_fake.order.get("settle_info").is_none(), "no profit sharing in direct mode");

    let h5 = app
        .app
        .open_payment(order(
            user,
            &app,
            PayerHints { client_ip: Some("203.0.113.9".into()), browser: Browser::Mobile, ..PayerHints::default() },
        ))
        .await
        .unwrap();
    let client: Value = serde_json::from_str(h5.client.as_deref().unwrap()).unwrap();
    assert_eq!(client["type"], "h5");
    assert!(client["url"].as_str().unwrap().starts_with("https://wx.tenpay.com/"));
    assert_eq!(fake.payment(&h5.id).unwrap().order["scene_info"]["payer_client_ip"], "203.0.113.9");

    let native = app.app.open_payment(order(user, &app, PayerHints::default())).await.unwrap();
    let client: Value = serde_json::from_str(native.client.as_deref().unwrap()).unwrap();
    assert_eq!(client["type"], "native");

    // Querying and closing: not paid → closed at the provider.
    let provider = app.app.provider("wechatpay").unwrap();
    assert_eq!(provider.query_payment(&native.id).await.unwrap().state, PaymentState::NotPaid);
    assert_eq!(provider.close_payment(&native.id).await.unwrap().state, PaymentState::Closed);
    assert_eq!(fake.payment(&native.id).unwrap().trade_state, "CLOSED");
    app.finish().await;
}

/// Notifications that must be refused: each answers 4xx and changes nothing stored (the fingerprint before and
/// after is the same); the good one after them is taken in.
async fn bad_notifications_change_nothing(backend: Backend) {
    let (app, fake) = wechatpay_app(backend, false).await;
    let operator = app.operator().await;
    let user = &app.customers(&operator, 1, 0).await[0];
    let payment = app.app.open_payment(order(user, &app, PayerHints::default())).await.unwrap();
    let url = format!("{}/api/v1/payments/wechatpay/notify", app.base);
    let good = fake.transaction_of(&payment.id);
    let mut paid = good.clone();
    paid["trade_state"] = json!("SUCCESS");
    paid["success_time"] = json!("2026-11-30T20:05:06+08:00");
    let before = app.db.fingerprint().await;
    let mut other_mchid = paid.clone();
    other_mchid["mchid"] = json!("1900000002");
    let mut other_amount = paid.clone();
    other_amount["amount"]["total"] = json!(1);
    let mut other_app = paid.clone();
    other_app["appid"] = json!("wx0000000000000000");
    let cases: Vec<(&str, Value, Signing, u16)> = vec![
        ("bad signature", paid.clone(), Signing { bad_signature: true, ..Signing::default() }, 401),
        (
            "wrong serial",
            paid.clone(),
            Signing { serial: Some(fake::PLATFORM_SERIAL.into()), ..Signing::default() },
            401,
        ),
        ("unknown serial", paid.clone(), Signing { serial: Some("PUB_KEY_ID_0000".into()), ..Signing::default() }, 401),
        ("stale", paid.clone(), Signing { skew_seconds: -301, ..Signing::default() }, 401),
        ("from the future", paid.clone(), Signing { skew_seconds: 301, ..Signing::default() }, 401),
        ("tampered ciphertext", paid.clone(), Signing { tamper_ciphertext: true, ..Signing::default() }, 401),
        (
            "a signature probe",
            paid.clone(),
            Signing { signature: Some("WECHATPAY/SIGNTEST/0kYmRkZmQ3".into()), ..Signing::default() },
            401,
        ),
        ("another merchant", other_mchid, Signing::default(), 400),
        ("another app", other_app, Signing::default(), 400),
        ("another amount", other_amount, Signing::default(), 400),
        ("not paid", good.clone(), Signing::default(), 400),
    ];
    for (what, resource, signing, expected) in cases {
        let (headers, body) = fake.notification(&resource, signing);
        let status = fake.deliver(&url, headers, body).await;
        assert_eq!(status.as_u16(), expected, "{what}");
    }
    app.app.run_jobs_once().await.unwrap();
    assert_eq!(app.db.fingerprint().await, before, "refused notifications change nothing");

    // Signed with the platform certificate instead (its serial): fine too, as during the switch-over.
    let (headers, body) = fake.notification(&paid, Signing { with_certificate: true, ..Signing::default() });
    assert!(fake.deliver(&url, headers, body).await.is_success());
    app.app.run_jobs_once().await.unwrap();
    assert_eq!(app.app.payment(&payment.id).await.unwrap().status, "paid");
    // A payment for no seat was paid on purpose: the invariant check would (rightly) flag it.
    let mut app = app;
    app.stop().await;
}

/// An answer whose signature does not verify is no answer: the call is `Unavailable` (asked again later), a paid
/// payment is not believed paid while the answers are bad, and is once they verify again.
async fn unverified_answers_are_no_answers(backend: Backend) {
    let (app, fake) = wechatpay_app(backend, false).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000032").await;
    let body = campaign_with(json!({"group_size": 2, "winners_per_group": 1, "quantity": 10}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let payer = &app.customers(&operator, 1, 0).await[0];
    let (status, joined) = app
        .post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&payer.token), json!({"pay_with": "wechatpay"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{joined}");
    let id = joined["payment"]["id"].as_str().unwrap().to_owned();
    let provider = app.app.provider("wechatpay").unwrap();

    fake.set_bad_signatures(true);
    let answer = provider.query_payment(&id).await;
    assert!(
        matches!(answer, Err(ProviderError::Unavailable(ref why)) if why.contains("does not verify")),
        "{answer:?}"
    );
    // Paid at WeChat Pay, but the notification is lost and every answer is bad: the worker's queries learn nothing.
    fake.pay_silently(&id);
    app.app.clock().advance(61_000);
    for _ in 0..3 {
        app.app.run_jobs_once().await.unwrap();
    }
    assert_eq!(app.app.payment(&id).await.unwrap().status, "created", "nothing believed from bad answers");
    fake.set_bad_signatures(false);
    assert!(matches!(provider.query_payment(&id).await.unwrap().state, PaymentState::Paid { .. }));
    settle_until(&app, "the payment found paid by query", || async {
        app.app.clock().advance(10_000); // the next look at an unpaid payment
        app.app.payment(&id).await.unwrap().status == "paid"
    })
    .await;
    let (_, refused) = fake.requests();
    assert_eq!(refused, 0);
    app.finish().await;
}

/// Two customers pay a group of two through WeChat Pay and it is drawn: the loser's refund is asked of the fake
/// once (it answers `PROCESSING`). Answers the refund, the loser, and the winner's payment id.
async fn a_drawn_group_with_a_refund_processing(app: &TestApp, fake: &FakeWechatPay) -> (Value, TestUser, String) {
    let operator = app.operator().await;
    let owner = app.customer("13900000033").await;
    let body = campaign_with(json!({"group_size": 2, "winners_per_group": 1, "quantity": 10}));
    let (_, campaign) = live_campaign_with(app, &operator, &owner, body).await;
    a_refund_processing_in(app, fake, &operator, &campaign).await
}

/// As [`a_drawn_group_with_a_refund_processing`], in a live campaign of groups of two with one winner.
pub(crate) async fn a_refund_processing_in(
    app: &TestApp,
    fake: &FakeWechatPay,
    operator: &TestUser,
    campaign: &str,
) -> (Value, TestUser, String) {
    let payers = app.customers(operator, 2, 0).await;
    let mut payments = Vec::new();
    for payer in &payers {
        let (status, joined) = app
            .post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&payer.token), json!({"pay_with": "wechatpay"}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{joined}");
        let id = joined["payment"]["id"].as_str().unwrap().to_owned();
        assert!(fake.pay(&id).await.is_success());
        payments.push(id);
    }
    settle_until(app, "the loser's refund is asked of WeChat Pay", || async {
        for payer in &payers {
            if let Some(refund) = refunds(app, payer).await.first()
                && fake.refund(refund["id"].as_str().unwrap()).is_some()
            {
                return true;
            }
        }
        false
    })
    .await;
    let mut loser = None;
    for payer in payers {
        if let Some(refund) = refunds(app, &payer).await.first() {
            loser = Some((refund.clone(), payer));
        }
    }
    let (refund, payer) = loser.expect("one loser");
    assert_eq!(fake.refund(refund["id"].as_str().unwrap()).unwrap().status, "PROCESSING");
    let refunded = app.app.store().refund(refund["id"].as_str().unwrap()).await.unwrap().unwrap().payment_id;
    let winner = payments.into_iter().find(|p| Some(p) != refunded.as_ref()).unwrap();
    (refund, payer, winner)
}

/// A refund settles by WeChat Pay's `REFUND.SUCCESS` notification alone (no refund query, no second ask): the
/// refund is `succeeded` at WeChat Pay's success time, the payment `refunded`, the money out of clearing. Before
/// it, bad refund notifications change nothing (4xx); each `ABNORMAL` one counts as a failed attempt, until the
/// refund waits for the operator; after it, the same notification again and a late `CLOSED` about the settled
/// refund change nothing.
async fn a_refund_settles_by_its_notification_alone(backend: Backend) {
    let (app, fake) = wechatpay_app(backend, true).await;
    let (refund, loser, winner_payment) = a_drawn_group_with_a_refund_processing(&app, &fake).await;
    let id = refund["id"].as_str().unwrap().to_owned();
    let payment = app.app.store().refund(&id).await.unwrap().unwrap().payment_id.unwrap();
    let url = format!("{}/api/v1/payments/wechatpay/notify", app.base);
    let mut succeeded = fake.refund_resource(&id);
    succeeded["refund_status"] = json!("SUCCESS");
    succeeded["success_time"] = json!(china_rfc3339(app.app.clock().now()));
    let mut other_merchant = succeeded.clone();
    other_merchant["sp_mchid"] = json!("1900000002");
    let mut other_sub_merchant = succeeded.clone();
    other_sub_merchant["sub_mchid"] = json!("1900000110");
    let mut other_amount = succeeded.clone();
    other_amount["amount"]["refund"] = json!(1);
    let mut unknown_refund = succeeded.clone();
    unknown_refund["out_refund_no"] = json!("not_drawn-00000000-0000-0000-0000-000000000000");
    let mut other_payment = succeeded.clone();
    // Another of our payments (the winner's), not the one refunded.
    other_payment["out_trade_no"] = json!(winner_payment.replace('-', ""));
    // A REFUND.SUCCESS whose resource says otherwise.
    let mut status_disagrees = succeeded.clone();
    status_disagrees["refund_status"] = json!("PROCESSING");
    let before = app.db.fingerprint().await;
    let cases: Vec<(&str, Value, Signing, u16)> = vec![
        ("bad signature", succeeded.clone(), Signing { bad_signature: true, ..Signing::default() }, 401),
        (
            "wrong serial",
            succeeded.clone(),
            Signing { serial: Some(fake::PLATFORM_SERIAL.into()), ..Signing::default() },
            401,
        ),
        ("stale", succeeded.clone(), Signing { skew_seconds: -301, ..Signing::default() }, 401),
        ("tampered ciphertext", succeeded.clone(), Signing { tamper_ciphertext: true, ..Signing::default() }, 401),
        (
            "a signature probe",
            succeeded.clone(),
            Signing { signature: Some("WECHATPAY/SIGNTEST/0kYmRk".into()), ..Signing::default() },
            401,
        ),
        ("another merchant", other_merchant, Signing::default(), 400),
        ("another sub-merchant", other_sub_merchant, Signing::default(), 400),
        ("another amount", other_amount, Signing::default(), 400),
        ("an unknown refund", unknown_refund, Signing::default(), 400),
        ("another payment", other_payment, Signing::default(), 400),
        ("a status the event does not say", status_disagrees, Signing::default(), 400),
    ];
    for (what, resource, signing, expected) in cases {
        let (headers, body) = fake.refund_notification("REFUND.SUCCESS", &resource, signing);
        assert_eq!(fake.deliver(&url, headers, body).await.as_u16(), expected, "{what}");
    }
    app.app.run_jobs_once().await.unwrap();
    assert_eq!(app.db.fingerprint().await, before, "refused refund notifications change nothing");

    // ABNORMAL: a failed attempt, the refund still owed and asked again later; after MAX_ATTEMPTS of them it
    // waits for the operator (`failed`), still owed.
    let mut abnormal = fake.refund_resource(&id);
    abnormal["refund_status"] = json!("ABNORMAL");
    for attempt in 1..=tuangou_store::MAX_ATTEMPTS {
        let (headers, body) = fake.refund_notification("REFUND.ABNORMAL", &abnormal, Signing::default());
        assert!(fake.deliver(&url, headers, body).await.is_success());
        app.app.run_jobs_once().await.unwrap();
        let row = app.app.store().refund(&id).await.unwrap().unwrap();
        assert_eq!(row.attempts, attempt, "{row:?}");
        let expected = if attempt < tuangou_store::MAX_ATTEMPTS { "requested" } else { "failed" };
        assert_eq!(row.status, expected, "{row:?}");
        assert!(row.last_error.unwrap().contains("notified"));
    }

    // SUCCESS, by the notification alone (the clock does not move, so the worker asks nothing meanwhile): the
    // money did reach the payer, so the refund the operator was left with is settled too.
    assert!(fake.finish_refund(&id, "SUCCESS").await.is_success());
    app.app.run_jobs_once().await.unwrap();
    let row = app.app.store().refund(&id).await.unwrap().unwrap();
    assert_eq!(row.status, "succeeded", "{row:?}");
    assert_eq!(row.settled_at, Some(fake.refund(&id).unwrap().at.0 / 1_000 * 1_000), "WeChat Pay's success time");
    assert_eq!(app.app.payment(&payment).await.unwrap().status, "refunded");
    assert_eq!(refunds(&app, &loser).await[0]["status"], "succeeded");
    let (requests, refused) = fake.requests();
    let asked: Vec<_> = requests.iter().filter(|(_, path)| path.starts_with("/v3/refund/")).collect();
    assert_eq!(asked.len(), 1, "asked once, never queried: {asked:?}");
    assert_eq!(refused, 0);

    // The same event again, and a late CLOSED about the settled refund: nothing changes.
    let settled = app.db.fingerprint().await;
    let (headers, body) = fake.last_delivered().expect("the fake notified");
    assert!(fake.deliver(&url, headers, body).await.is_success());
    app.app.run_jobs_once().await.unwrap();
    assert_eq!(app.db.fingerprint().await, settled, "a duplicate changes nothing");
    let mut closed = fake.refund_resource(&id);
    closed["refund_status"] = json!("CLOSED");
    closed.as_object_mut().unwrap().remove("success_time");
    let (headers, body) = fake.refund_notification("REFUND.CLOSED", &closed, Signing::default());
    assert!(fake.deliver(&url, headers, body).await.is_success());
    app.app.run_jobs_once().await.unwrap();
    assert_eq!(app.app.store().refund(&id).await.unwrap().unwrap(), row, "a settled refund stays settled");
    app.finish().await;
}

/// A join through the API as a browser: `user_agent` sent, `body` the join's.
async fn join_from(
    app: &TestApp,
    campaign: &str,
    user: &TestUser,
    user_agent: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/api/v1/campaigns/{campaign}/join", app.base))
        .bearer_auth(&user.token)
        .header("user-agent", user_agent)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    TestApp::read(response).await
}

const WECHAT_BROWSER: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like \
    Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN";
const MOBILE_BROWSER: &str =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
const DESKTOP_BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

/// The join's payer hints choose the WeChat Pay order: WeChat's browser with `payer_openid` → JSAPI (the openid on
/// the order), a mobile browser → H5 (the joiner's address on the order), anything else → Native, also WeChat
/// without an openid and an openid from a desktop. A bad `payer_openid` is a 400 naming it, and changes nothing.
/// The group page then pays with what each was given: the Native seat shows a QR code of its `code_url` with
/// "用微信扫码支付", the JSAPI seat a button carrying the bridge's parameters, the H5 seat a link to WeChat Pay.
async fn the_joiners_browser_chooses_the_order(backend: Backend) {
    let (app, fake) = wechatpay_app(backend, false).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000034").await;
    let body = campaign_with(json!({"group_size": 10, "winners_per_group": 1, "quantity": 10}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let users = app.customers(&operator, 5, 0).await;
    let openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
    let wechat = json!({"pay_with": "wechatpay", "payer_openid": openid});
    let plain = json!({"pay_with": "wechatpay"});

    let before = app.db.fingerprint().await;
    for (what, body) in [
        ("not WeChat Pay", json!({"pay_with": "wallet", "payer_openid": openid})),
        ("no provider", json!({"payer_openid": openid})),
        ("empty", json!({"pay_with": "wechatpay", "payer_openid": ""})),
        ("a space", json!({"pay_with": "wechatpay", "payer_openid": "o UpF8"})),
        ("too long", json!({"pay_with": "wechatpay", "payer_openid": "o".repeat(129)})),
        ("not text", json!({"pay_with": "wechatpay", "payer_openid": 42})),
    ] {
        let (status, problem) = join_from(&app, &campaign, &users[0], WECHAT_BROWSER, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {problem}");
        if what != "not text" {
            assert_eq!(problem["field"], "payer_openid", "{what}: {problem}");
        }
    }
    assert_eq!(app.db.fingerprint().await, before, "refused joins change nothing");

    let (mut kinds, mut codes) = (Vec::new(), Vec::new());
    for (user, browser, body) in [
        (&users[0], WECHAT_BROWSER, &wechat),
        (&users[1], MOBILE_BROWSER, &plain),
        (&users[2], DESKTOP_BROWSER, &plain),
        (&users[3], WECHAT_BROWSER, &plain),
        (&users[4], DESKTOP_BROWSER, &wechat),
    ] {
        let (status, joined) = join_from(&app, &campaign, user, browser, body.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{joined}");
        let id = joined["payment"]["id"].as_str().unwrap().to_owned();
        let at_fake = fake.payment(&id).expect("the order reached the fake");
        assert_eq!(joined["payment"]["client"]["type"].as_str(), Some(at_fake.kind.as_str()), "{joined}");
        codes.push(joined["payment"]["client"]["code_url"].as_str().unwrap_or_default().to_owned());
        kinds.push((at_fake, joined["group"]["id"].as_str().unwrap().to_owned()));
    }
    let native_code_url = codes[2].clone();
    assert!(native_code_url.starts_with("weixin://wxpay/"), "{native_code_url}");
    let names: Vec<&str> = kinds.iter().map(|(p, _)| p.kind.as_str()).collect();
    assert_eq!(names, ["jsapi", "h5", "native", "native", "native"]);
    assert_eq!(kinds[0].0.order["payer"]["openid"], openid);
    assert_eq!(kinds[1].0.order["scene_info"]["payer_client_ip"], "127.0.0.1", "the joiner's address");
    assert!(kinds[2].0.order.get("payer").is_none() && kinds[2].0.order.get("scene_info").is_none());

    // The group page pays with what each seat was given.
    let page = |user: &TestUser, group: &str, lang: &str| {
        let request = app
            .client
            .get(format!("{}/g/{group}", app.base))
            .header("cookie", format!("tuangou_session={}", user.token))
            .header("accept-language", lang);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let native = page(&users[2], &kinds[2].1, "zh-CN").await;
    let qr = tuangou_web::api::vouchers::qr_svg(&native_code_url).unwrap();
    assert!(native.contains("data-pay-qr") && native.contains(&qr), "the QR code of the order's code_url");
    assert!(native.contains("用微信扫码支付"), "its words");
    assert!(page(&users[2], &kinds[2].1, "en").await.contains("Scan with WeChat to pay"), "in English too");
    assert!(!native.contains("data-pay-link") && !native.contains("data-pay-jsapi"));
    let jsapi = page(&users[0], &kinds[0].1, "zh-CN").await;
    assert!(jsapi.contains("data-pay-jsapi") && jsapi.contains("paySign") && jsapi.contains("prepay_id="), "JSAPI");
    assert!(!jsapi.contains("data-pay-qr"));
    let h5 = page(&users[1], &kinds[1].1, "zh-CN").await;
    assert!(h5.contains("data-pay-link") && h5.contains("https://wx.tenpay.com/"), "H5: WeChat Pay's page");
    app.finish().await;
}

on_both_backends!(
    the_whole_story_through_wechat_pay,
    a_refund_settles_by_its_notification_alone,
    the_joiners_browser_chooses_the_order,
    jsapi_h5_and_native_orders,
    bad_notifications_change_nothing,
    unverified_answers_are_no_answers,
);
