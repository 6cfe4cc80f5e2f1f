//! Payments over HTTP, on both backends: the notification intake (signed, stale, forged, replayed), the sandbox
//! provider behaving like a real one (its pay page, its buttons, its signed notifications, its books after a
//! restart, its bill) and each of its fault switches. Nothing here sleeps to pass: waits poll the stored state,
//! bounded in time.

use reqwest::StatusCode;
use reqwest::header::ACCEPT_LANGUAGE;
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;
use tuangou_app::payments::port::{PayerHints, PaymentRequest, PaymentState, RefundRequest, TransferState};
use tuangou_app::payments::sandbox::{Faults, SandboxKey, SandboxSettings};
use tuangou_app::payments::{PaymentOrder, PaymentSettings};
use tuangou_app::{PaymentRow, Settings};
use tuangou_domain::ids::UserId;
use tuangou_domain::money::Fen;
use tuangou_domain::time::ChinaDay;
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

const KEY: [u8; 32] = [42; 32];
const NOTIFY: &str = "/api/v1/payments/sandbox/notify";

fn with_sandbox(faults: Faults) -> Settings {
    let sandbox = SandboxSettings { key: SandboxKey::from_bytes(KEY), faults };
    Settings {
        payments: PaymentSettings { sandbox: Some(sandbox), partner_mode: false, ..PaymentSettings::default() },
        ..Settings::default()
    }
}

async fn sandbox_app(backend: Backend, faults: Faults) -> TestApp {
    TestApp::spawn_with(backend, with_sandbox(faults)).await
}

/// A payment of `amount` fen at the sandbox for `user`, open for five minutes.
async fn payment(app: &TestApp, user: &TestUser, amount: i64) -> PaymentRow {
    let order = PaymentOrder {
        user: UserId::from_trusted(&user.id),
        provider: "sandbox".into(),
        amount: Fen::from_stored(amount).unwrap(),
        description: "双人火锅套餐".into(),
        expires_at: app.app.clock().now().plus_seconds(300),
        membership: None,
        payer: PayerHints { return_url: Some("/me".into()), ..PayerHints::default() },
    };
    app.app.open_payment(order).await.expect("a payment")
}

/// POSTs a notification with these headers and raw body.
async fn notify(app: &TestApp, path: &str, headers: &[(&str, String)], body: &[u8]) -> (StatusCode, Value) {
    let mut request = app.client.post(format!("{}{path}", app.base)).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    TestApp::read(request.send().await.expect("the server answers")).await
}

/// The headers the sandbox would send with `body` at `seconds`, signed with `key`.
fn signed(key: [u8; 32], seconds: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_owned()),
        ("Sandbox-Timestamp", seconds.to_string()),
        ("Sandbox-Signature", SandboxKey::from_bytes(key).sign(seconds, body)),
    ]
}

fn paid_body(event: &str, payment: &str, amount: i64) -> Vec<u8> {
    json!({"event_id": event, "payment_id": payment, "status": "paid", "amount": amount,
        "paid_at": "2025-11-27T00:30:00+08:00"})
    .to_string()
    .into_bytes()
}

fn now_seconds(app: &TestApp) -> i64 {
    app.app.clock().now().0.div_euclid(1_000)
}

/// Waits until `check` holds, polling the stored state; fails after ten seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "gave up waiting: {what}");
}

async fn events_of(app: &TestApp, payment: &str) -> Vec<tuangou_app::PaymentEventRow> {
    app.app.store().payment_events_of(payment).await.unwrap()
}

async fn pay(app: &TestApp, payment: &str) -> (StatusCode, Value) {
    app.post(&format!("/sandbox/payments/{payment}/pay"), None, json!({})).await
}

/// A notification signed with the key is stored once and answered 2xx; the same bytes again (a replay, or the
/// provider's duplicate) answer 2xx and change nothing. One signed 299 s ago is still accepted.
async fn a_signed_notification_is_stored_once(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let payment = payment(&app, customer, 1_990).await;
    let body = paid_body("evt_good", &payment.id, 1_990);
    let headers = signed(KEY, now_seconds(&app), &body);
    let (status, answer) = notify(&app, NOTIFY, &headers, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"event_id": "evt_good", "status": "received", "duplicate": false}));
    let stored = events_of(&app, &payment.id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].kind.as_str(), stored[0].amount), ("paid", Some(1_990)));
    assert_eq!(stored[0].raw.as_bytes(), body.as_slice(), "the raw bytes are kept");

    let before = app.db.fingerprint().await;
    let (status, answer) = notify(&app, NOTIFY, &headers, &body).await;
    assert_eq!((status, answer["duplicate"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(app.db.fingerprint().await, before, "a replay changes nothing");

    let body = paid_body("evt_late_but_fine", &payment.id, 1_990);
    let seconds = (app.app.clock().now().0 + 999).div_euclid(1_000) - 299;
    let (status, answer) = notify(&app, NOTIFY, &signed(KEY, seconds, &body), &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    app.finish().await;
}

/// Forged, tampered, stale, future, unsigned and malformed notifications, and ones about payments that are not
/// ours or for another amount, answer 4xx problems and change nothing.
async fn bad_notifications_change_nothing(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let payment = payment(&app, customer, 1_990).await;
    let now = now_seconds(&app);
    let good = paid_body("evt_1", &payment.id, 1_990);
    let before = app.db.fingerprint().await;

    // Each case: what it is, the headers, the body, the answer's status and code.
    let signed_right = |body: Vec<u8>| (signed(KEY, now, &body), body);
    let with_headers = |headers: Vec<(&'static str, String)>| (headers, good.clone());
    let edited = |index: usize, value: &str| {
        let mut headers = signed(KEY, now, &good);
        headers[index].1 = value.to_owned();
        (headers, good.clone())
    };
    let (unauthorized, bad) = (StatusCode::UNAUTHORIZED, StatusCode::BAD_REQUEST);
    let wow = String::from_utf8(good.clone()).unwrap().replace("\"paid\"", "\"wow\"").into_bytes();
    let cases = [
        ("forged with another key", with_headers(signed([7; 32], now, &good)), unauthorized, "bad_signature"),
        (
            "body changed after signing",
            (signed(KEY, now, &good), paid_body("evt_1", &payment.id, 1)),
            unauthorized,
            "bad_signature",
        ),
        ("timestamp changed after signing", edited(1, &(now + 1).to_string()), unauthorized, "bad_signature"),
        ("signature not hex", edited(2, "not hex at all"), unauthorized, "bad_signature"),
        ("no signature", with_headers(signed(KEY, now, &good)[..2].to_vec()), unauthorized, "bad_signature"),
        ("no headers", with_headers(Vec::new()), unauthorized, "bad_signature"),
        ("stale", with_headers(signed(KEY, now - 301, &good)), unauthorized, "stale_timestamp"),
        ("from the future", with_headers(signed(KEY, now + 302, &good)), unauthorized, "stale_timestamp"),
        ("not JSON", signed_right(b"paid!".to_vec()), bad, "bad_notification"),
        ("unknown status", signed_right(wow), bad, "bad_notification"),
        ("unknown payment", signed_right(paid_body("evt_2", "nobody", 1_990)), bad, "unknown_payment"),
        ("amount differs", signed_right(paid_body("evt_3", &payment.id, 1_000)), bad, "amount_mismatch"),
    ];
    for (what, (headers, body), status, code) in cases {
        let (got, answer) = notify(&app, NOTIFY, &headers, &body).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{what}: {answer}");
    }
    let (status, _) = notify(&app, "/api/v1/payments/wechatpay/notify", &signed(KEY, now, &good), &good).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a provider not offered");
    assert_eq!(app.db.fingerprint().await, before, "nothing changed");
    app.finish().await;
}

/// The sandbox behaves like a provider: a payment has its own id and a pay page; paying answers `paid` and a
/// signed notification arrives by itself; paying again changes nothing; a paid payment cannot be cancelled; a
/// cancelled one is notified as closed and can no longer be paid.
async fn the_sandbox_pays_and_notifies(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let payment = payment(&app, customer, 1_990).await;
    assert_eq!(payment.status, "created");
    assert!(payment.provider_trade_id.as_deref().is_some_and(|id| id.starts_with("sbx_")));
    let client: Value = serde_json::from_str(payment.client.as_deref().unwrap()).unwrap();
    assert_eq!(client["url"], format!("{}/sandbox/pay/{}", app.base, payment.id));

    let (status, answer) = pay(&app, &payment.id).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"status": "paid"})));
    eventually("the paid notification", || async { events_of(&app, &payment.id).await.len() == 1 }).await;
    let event = &events_of(&app, &payment.id).await[0];
    assert_eq!((event.kind.as_str(), event.status.as_str(), event.amount), ("paid", "received", Some(1_990)));
    let (status, answer) = pay(&app, &payment.id).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"status": "paid"})), "paid already: the same answer");
    assert_eq!(app.app.store().sandbox_notifications_of(&payment.id).await.unwrap().len(), 1, "and no new event");
    let (status, answer) = app.post(&format!("/sandbox/payments/{}/cancel", payment.id), None, json!({})).await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::CONFLICT, Some("already_paid")));
    let sandbox = app.app.provider("sandbox").unwrap();
    let status_there = sandbox.query_payment(&payment.id).await.unwrap();
    assert!(matches!(status_there.state, PaymentState::Paid { .. }));
    assert_eq!(status_there.amount.get(), 1_990);

    let other = self::payment(&app, customer, 500).await;
    let (status, answer) = app.post(&format!("/sandbox/payments/{}/cancel", other.id), None, json!({})).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"status": "closed"})));
    eventually("the closed notification", || async {
        events_of(&app, &other.id).await.first().is_some_and(|e| e.kind == "closed")
    })
    .await;
    let (status, answer) = pay(&app, &other.id).await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::CONFLICT, Some("payment_closed")));
    let (status, _) = pay(&app, "no-such-payment").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.finish().await;
}

/// `duplicate`: every notification is sent twice, and stored once.
async fn duplicated_notifications_are_stored_once(backend: Backend) {
    let app = sandbox_app(backend, Faults { duplicate: true, ..Faults::default() }).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let payment = payment(&app, customer, 1_990).await;
    pay(&app, &payment.id).await;
    eventually("the delivery", || async {
        let sent = app.app.store().sandbox_notifications_of(&payment.id).await.unwrap();
        sent.first().is_some_and(|n| n.status == "delivered")
    })
    .await;
    let sent = &app.app.store().sandbox_notifications_of(&payment.id).await.unwrap()[0];
    assert_eq!((sent.attempts, sent.sends), (1, 2), "sent twice in one delivery");
    assert_eq!(events_of(&app, &payment.id).await.len(), 1, "stored once");
    app.finish().await;
}

/// A notification the service does not accept (here: about a payment that is not ours) is tried again later,
/// further apart each time, and never stored.
async fn refused_notifications_are_retried_with_backoff(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let sandbox = app.app.provider("sandbox").unwrap();
    let request = PaymentRequest {
        out_trade_no: "not-ours".into(),
        amount: Fen::from_stored(100).unwrap(),
        description: "someone else's".into(),
        expires_at: app.app.clock().now().plus_seconds(300),
        payer: PayerHints::default(),
    };
    sandbox.create_payment(&request).await.unwrap();
    let (status, _) = pay(&app, "not-ours").await;
    assert_eq!(status, StatusCode::OK);
    let store = app.app.store().clone();
    let tried = |attempts: i64| {
        let store = store.clone();
        async move {
            let owed = store.sandbox_notifications_of("not-ours").await.unwrap();
            owed[0].attempts == attempts
        }
    };
    eventually("a first delivery", || tried(1)).await;
    let owed = &store.sandbox_notifications_of("not-ours").await.unwrap()[0];
    assert_eq!(owed.status, "pending");
    assert!(owed.last_error.as_deref().unwrap().contains("400"), "{owed:?}");
    assert_eq!(owed.due_at, app.app.clock().now().0 + 2_000, "again in 2 s");
    app.app.clock().advance(2_000);
    eventually("a second delivery", || tried(2)).await;
    let owed = &store.sandbox_notifications_of("not-ours").await.unwrap()[0];
    assert_eq!(owed.due_at, app.app.clock().now().0 + 4_000, "then in 4 s");
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM payment_events").await, 0);
    app.finish().await;
}

/// `reorder`: the later notification arrives first.
async fn reordered_notifications_arrive_newest_first(backend: Backend) {
    let app = sandbox_app(backend, Faults { reorder: true, ..Faults::default() }).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let (first, second) = (payment(&app, customer, 100).await, payment(&app, customer, 200).await);
    pay(&app, &first.id).await;
    // A lone notification waits for another to overtake it (the clock stands still here).
    assert_eq!(app.app.sandbox().unwrap().deliver_due().await.unwrap(), 0);
    pay(&app, &second.id).await;
    eventually("both notifications", || async {
        !events_of(&app, &first.id).await.is_empty() && !events_of(&app, &second.id).await.is_empty()
    })
    .await;
    let (a, b) = (&events_of(&app, &first.id).await[0], &events_of(&app, &second.id).await[0]);
    assert!(b.id < a.id, "the second payment's notification was stored first ({} < {})", b.id, a.id);
    app.finish().await;
}

/// `delay_ms`: nothing arrives until the delay has passed.
async fn delayed_notifications_wait(backend: Backend) {
    let app = sandbox_app(backend, Faults { delay_ms: 60_000, ..Faults::default() }).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let payment = payment(&app, customer, 1_990).await;
    pay(&app, &payment.id).await;
    let owed = &app.app.store().sandbox_notifications_of(&payment.id).await.unwrap()[0];
    assert_eq!((owed.status.as_str(), owed.due_at), ("pending", app.app.clock().now().0 + 60_000));
    assert_eq!(app.app.sandbox().unwrap().deliver_due().await.unwrap(), 0, "not due yet");
    assert!(events_of(&app, &payment.id).await.is_empty());
    app.app.clock().advance(60_000);
    eventually("the delayed notification", || async { events_of(&app, &payment.id).await.len() == 1 }).await;
    app.finish().await;
}

/// `drop`: no notification is ever sent; a query finds the payment paid.
async fn dropped_notifications_leave_the_query(backend: Backend) {
    let app = sandbox_app(backend, Faults { drop: true, ..Faults::default() }).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let payment = payment(&app, customer, 1_990).await;
    let (status, _) = pay(&app, &payment.id).await;
    assert_eq!(status, StatusCode::OK);
    let owed = &app.app.store().sandbox_notifications_of(&payment.id).await.unwrap()[0];
    assert_eq!(owed.status, "dropped");
    assert_eq!(app.app.sandbox().unwrap().deliver_due().await.unwrap(), 0);
    app.app.clock().advance(3_600_000);
    assert_eq!(app.app.sandbox().unwrap().deliver_due().await.unwrap(), 0, "never, however long");
    assert!(events_of(&app, &payment.id).await.is_empty());
    let there = app.app.provider("sandbox").unwrap().query_payment(&payment.id).await.unwrap();
    assert!(matches!(there.state, PaymentState::Paid { .. }), "{there:?}");
    app.finish().await;
}

/// `fail_refunds`: a refund fails while the switch is on; the same refund id succeeds once it is off, once.
async fn refunds_fail_while_switched_on(backend: Backend) {
    let app = sandbox_app(backend, Faults { fail_refunds: true, ..Faults::default() }).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let payment = payment(&app, customer, 1_990).await;
    pay(&app, &payment.id).await;
    let sandbox = app.app.provider("sandbox").unwrap();
    let request = RefundRequest {
        out_trade_no: payment.id.clone(),
        out_refund_no: format!("refund:{}", payment.id),
        amount: Fen::from_stored(1_990).unwrap(),
        reason: "not drawn".into(),
    };
    assert_eq!(sandbox.refund(&request).await.unwrap().state, TransferState::Failed);
    assert_eq!(sandbox.query_refund(&request.out_refund_no).await.unwrap().state, TransferState::Failed);
    app.app.sandbox().unwrap().run_once().await.unwrap();
    assert_eq!(sandbox.query_refund(&request.out_refund_no).await.unwrap().state, TransferState::Failed, "stays");

    app.app.sandbox().unwrap().set_faults(Faults::default());
    assert_eq!(sandbox.refund(&request).await.unwrap().state, TransferState::Processing, "tried again");
    eventually("the refund to succeed", || async {
        matches!(sandbox.query_refund(&request.out_refund_no).await.unwrap().state, TransferState::Succeeded { .. })
    })
    .await;
    assert!(matches!(sandbox.refund(&request).await.unwrap().state, TransferState::Succeeded { .. }), "once");
    let more = RefundRequest { out_refund_no: "another".into(), amount: Fen::from_stored(1).unwrap(), ..request };
    let refused = sandbox.refund(&more).await.unwrap_err();
    assert!(matches!(refused, tuangou_app::payments::port::ProviderError::Refused("refund_exceeds_payment", _)));
    assert_eq!(sandbox.query_payment(&payment.id).await.unwrap().refunded.get(), 1_990);
    app.finish().await;
}

/// `late_pay`: a payment the service closed at the provider (or one past its time) is paid all the same, and
/// its notification arrives: late money.
async fn late_money_arrives_when_switched_on(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let (closed, expired) = (payment(&app, customer, 1_990).await, payment(&app, customer, 990).await);
    let sandbox = app.app.provider("sandbox").unwrap();
    assert_eq!(sandbox.close_payment(&closed.id).await.unwrap().state, PaymentState::Closed);
    app.app.clock().advance(301_000);
    assert_eq!(sandbox.query_payment(&expired.id).await.unwrap().state, PaymentState::Closed, "past its time");
    for id in [&closed.id, &expired.id] {
        let (status, answer) = pay(&app, id).await;
        assert_eq!((status, answer["code"].as_str()), (StatusCode::CONFLICT, Some("payment_closed")));
    }
    assert!(events_of(&app, &closed.id).await.is_empty(), "closing at our request is not notified");

    app.app.sandbox().unwrap().set_faults(Faults { late_pay: true, ..Faults::default() });
    for id in [&closed.id, &expired.id] {
        let (status, answer) = pay(&app, id).await;
        assert_eq!((status, answer), (StatusCode::OK, json!({"status": "paid"})));
        eventually("the late notification", || async {
            events_of(&app, id).await.first().is_some_and(|e| e.kind == "paid")
        })
        .await;
    }
    assert!(matches!(sandbox.query_payment(&closed.id).await.unwrap().state, PaymentState::Paid { .. }));
    app.finish().await;
}

/// The pay page ("模拟支付") renders the provider's record in Simplified Chinese and in English, with its two
/// buttons while unpaid and without them once paid; an unknown payment is the not-found page.
async fn the_pay_page_renders_in_both_languages(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let cancelled = payment(&app, customer, 990).await;
    let payment = payment(&app, customer, 1_990).await;
    let page = |lang: &'static str, id: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .get(format!("{}/sandbox/pay/{id}", app.base))
                .header(ACCEPT_LANGUAGE, lang)
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, zh) = page("zh-CN", payment.id.clone()).await;
    assert_eq!(status, StatusCode::OK);
    for words in ["模拟支付", "¥19.90", "双人火锅套餐", "待支付", "取消支付", "data-sandbox-pay", "lang=\"zh-CN\""]
    {
        assert!(zh.contains(words), "{words} missing from {zh}");
    }
    let (_, en) = page("en", payment.id.clone()).await;
    for words in ["Simulated payment", "Pay ¥19.90", "Cancel payment", "Awaiting payment", "lang=\"en\""] {
        assert!(en.contains(words), "{words} missing from {en}");
    }
    for page in [&zh, &en] {
        for key in ["sandbox-title", "sandbox-lead", "sandbox-trade", "sandbox-until", "sandbox-status-"] {
            assert!(!page.contains(key), "the message key {key} shows instead of its words");
        }
    }
    let (status, answer) = app.post(&format!("/sandbox/payments/{}/cancel", cancelled.id), None, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    pay(&app, &payment.id).await;
    let (_, paid) = page("zh-CN", payment.id.clone()).await;
    assert!(paid.contains("已支付") && !paid.contains("data-sandbox-pay>"), "{paid}");
    // Paid: the page sends the payer back by itself (app.js), and keeps the link for when that does not run.
    assert!(paid.contains("href=\"/me\" data-sandbox-return data-auto-return"), "back to the shop: {paid}");
    assert!(paid.contains("支付成功，正在返回商户"), "{paid}");
    let (_, closed) = page("zh-CN", cancelled.id.clone()).await;
    assert!(
        closed.contains("data-sandbox-return>") && !closed.contains("data-auto-return"),
        "only a paid page leaves by itself"
    );
    let (status, missing) = page("en", "no-such-payment".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing.contains("<html"), "a page, not a problem");
    app.finish().await;
}

/// Without the sandbox every route of it answers 404, and so does its notification intake.
async fn the_sandbox_is_off_unless_enabled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = app.db.fingerprint().await;
    let response = app.client.get(format!("{}/sandbox/pay/anything", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    for path in ["/sandbox/payments/anything/pay", "/sandbox/payments/anything/cancel"] {
        let (status, answer) = app.post(path, None, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
    let (status, _) = app.get("/sandbox/bills/2025-11-27", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = paid_body("evt_1", "anything", 1);
    let (status, _) = notify(&app, NOTIFY, &signed(KEY, now_seconds(&app), &body), &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(app.app.sandbox().is_none() && app.app.provider("sandbox").is_none());
    assert_eq!(app.db.fingerprint().await, before);
    app.finish().await;
}

/// The service stops with a notification still owed (delayed) and starts again on the same database: the
/// sandbox's books are as they were, and the notification it owed arrives after the restart.
async fn a_restart_keeps_the_sandbox_books(backend: Backend) {
    let mut app = sandbox_app(backend, Faults { delay_ms: 60_000, ..Faults::default() }).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let payment = payment(&app, customer, 1_990).await;
    pay(&app, &payment.id).await;
    let before = app.app.store().sandbox_payment(&payment.id).await.unwrap().unwrap();
    let (db, clock) = (app.db.clone(), app.app.clock().clone());
    app.stop().await;
    drop(app);

    let app = TestApp::spawn_on_with(db, with_sandbox(Faults::default()), clock).await;
    assert_eq!(app.app.store().sandbox_payment(&payment.id).await.unwrap().unwrap(), before);
    let there = app.app.provider("sandbox").unwrap().query_payment(&payment.id).await.unwrap();
    assert!(matches!(there.state, PaymentState::Paid { .. }));
    assert!(events_of(&app, &payment.id).await.is_empty(), "still owed");
    app.app.clock().advance(60_000);
    eventually("the owed notification", || async { events_of(&app, &payment.id).await.len() == 1 }).await;
    app.finish().await;
}

/// The daily bill: the payments paid and the refunds made that day, in the shape of WeChat Pay's trade bill, read
/// back by the adapter into lines that match our payments.
async fn the_daily_bill_lists_payments_and_refunds(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let (a, b) = (payment(&app, customer, 1_990).await, payment(&app, customer, 1).await);
    pay(&app, &a.id).await;
    pay(&app, &b.id).await;
    let sandbox = app.app.provider("sandbox").unwrap();
    let refund = RefundRequest {
        out_trade_no: a.id.clone(),
        out_refund_no: "refund-a".into(),
        amount: Fen::from_stored(990).unwrap(),
        reason: "partial".into(),
    };
    sandbox.refund(&refund).await.unwrap();
    eventually("the refund to succeed", || async {
        matches!(sandbox.query_refund("refund-a").await.unwrap().state, TransferState::Succeeded { .. })
    })
    .await;
    let day = ChinaDay::of(app.app.clock().now());
    let bill = sandbox.fetch_bill(day).await.unwrap();
    assert_eq!(bill.lines.len(), 3, "{}", bill.raw);
    assert!(bill.raw.contains(&format!("`{}", a.id)) && bill.raw.contains("`19.90") && bill.raw.contains("`refund-a"));
    assert!(bill.raw.ends_with("`3,`19.91,`9.90,`19.91,`9.90\n"), "{}", bill.raw);
    let response = app.client.get(format!("{}/sandbox/bills/{day}", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert_eq!(response.text().await.unwrap(), bill.raw);
    let next_day = ChinaDay::parse(&day.to_string()).map(|d| ChinaDay::of(d.end())).unwrap();
    assert!(sandbox.fetch_bill(next_day).await.unwrap().lines.is_empty());
    let (status, answer) = app.get("/sandbox/bills/yesterday", None).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("date")));
    app.finish().await;
}

on_both_backends!(
    a_signed_notification_is_stored_once,
    bad_notifications_change_nothing,
    the_sandbox_pays_and_notifies,
    duplicated_notifications_are_stored_once,
    refused_notifications_are_retried_with_backoff,
    reordered_notifications_arrive_newest_first,
    delayed_notifications_wait,
    dropped_notifications_leave_the_query,
    refunds_fail_while_switched_on,
    late_money_arrives_when_switched_on,
    the_pay_page_renders_in_both_languages,
    the_sandbox_is_off_unless_enabled,
    a_restart_keeps_the_sandbox_books,
    the_daily_bill_lists_payments_and_refunds,
);
