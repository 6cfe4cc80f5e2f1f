//! Reconciliation (PAYMENTS.md, issue 15 point 5), on both backends: the sandbox's daily bill against our payments
//! and refunds — a matching day, each kind of mismatch (our rows or the sandbox's tampered directly in the
//! database), refunds, the day's boundary at midnight in China, the daily job run once by two instances stepping
//! at the same moment, and `GET /api/v1/admin/reconciliations` (operator only, paged, newest day first).
//!
//! These tests make the two sides disagree on purpose, so they end with `stop()`, not `finish()`: the invariant
//! check would (rightly) find payments that pay for nothing.

use crate::paying::settle_until;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tuangou_app::payments::port::{PayerHints, RefundRequest, TransferState};
use tuangou_app::payments::reconcile::Reconciliation;
use tuangou_app::payments::sandbox::{Faults, SandboxKey, SandboxSettings};
use tuangou_app::payments::{PaymentOrder, PaymentSettings};
use tuangou_app::{PaymentRow, Settings};
use tuangou_domain::ids::UserId;
use tuangou_domain::money::Fen;
use tuangou_domain::reconciliation::{Kind, Mismatch};
use tuangou_domain::time::{ChinaDay, Millis};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

fn with_sandbox() -> Settings {
    let sandbox = SandboxSettings { key: SandboxKey::from_bytes([42; 32]), faults: Faults::default() };
    Settings {
        payments: PaymentSettings { sandbox: Some(sandbox), partner_mode: false, ..PaymentSettings::default() },
        ..Settings::default()
    }
}

/// Opens a payment of `amount` fen at the sandbox, not paid yet.
async fn opened_at_the_sandbox(app: &TestApp, user: &TestUser, amount: i64) -> PaymentRow {
    let order = PaymentOrder {
        user: UserId::from_trusted(&user.id),
        provider: "sandbox".into(),
        amount: Fen::from_stored(amount).unwrap(),
        description: "双人火锅套餐".into(),
        expires_at: app.app.clock().now().plus_seconds(300),
        membership: None,
        payer: PayerHints::default(),
    };
    app.app.open_payment(order).await.expect("a payment")
}

/// The payer pays `payment` at the sandbox (the sandbox's own books).
async fn pay_at_the_sandbox(app: &TestApp, payment: &PaymentRow) {
    let (status, answer) = app.post(&format!("/sandbox/payments/{}/pay", payment.id), None, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// Opens a payment of `amount` fen at the sandbox and has the payer pay it there.
async fn paid_at_the_sandbox(app: &TestApp, user: &TestUser, amount: i64) -> PaymentRow {
    let payment = opened_at_the_sandbox(app, user, amount).await;
    pay_at_the_sandbox(app, &payment).await;
    payment
}

/// Takes in the sandbox's notifications about `ids` and applies them, as the service's worker does: our payments
/// become `paid` at the time the sandbox says.
async fn ours_paid(app: &TestApp, ids: &[&str]) {
    let store = app.app.store();
    for id in ids {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while store.payment_events_of(id).await.unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the sandbox's notification about {id} never arrived");
    }
    let now = app.app.clock().now();
    while let Some((_, _, payment)) = store.apply_next_payment_event(now, move |_| Ok(now)).await.unwrap() {
        assert_eq!(payment.status, "paid");
    }
}

async fn payment_both_sides(app: &TestApp, user: &TestUser, amount: i64) -> PaymentRow {
    let payment = paid_at_the_sandbox(app, user, amount).await;
    ours_paid(app, &[&payment.id]).await;
    app.app.payment(&payment.id).await.unwrap()
}

fn today(app: &TestApp) -> ChinaDay {
    ChinaDay::of(app.app.clock().now())
}

fn ids(list: &[Mismatch]) -> Vec<(Kind, String)> {
    list.iter().map(|m| (m.kind, m.id.clone())).collect()
}

/// A day whose bill and books agree is matched; then each way they can disagree is recorded, the newer result
/// is the day's, and the older one stays on record.
async fn each_mismatch_is_recorded(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, with_sandbox()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let a = payment_both_sides(&app, customer, 1_990).await;
    let b = payment_both_sides(&app, customer, 500).await;
    let day = today(&app);

    let matched = app.app.reconcile("sandbox", day).await.unwrap();
    assert!(matched.matched, "{matched:?}");
    assert_eq!((matched.bill_lines, matched.our_lines, matched.matched_lines), (2, 2, 2));
    assert!(matched.mismatches.is_empty());

    // The sandbox paid one we still think is created (its notification not applied yet), and one we have never
    // heard of; the sandbox no longer lists b; our a was paid another amount.
    let c = paid_at_the_sandbox(&app, customer, 300).await;
    let at = app.app.clock().now().0;
    app.db
        .execute(&format!(
            "INSERT INTO sandbox_payments (id, out_trade_no, amount, description, status, created_at, expires_at, paid_at)
             VALUES ('sbx_ghost', 'ghost', 700, 'not ours', 'paid', {at}, {at}, {at})"
        ))
        .await;
    app.db.execute(&format!("UPDATE sandbox_payments SET status = 'closed' WHERE out_trade_no = '{}'", b.id)).await;
    app.db.execute(&format!("UPDATE payments SET paid_amount = 1000 WHERE id = '{}'", a.id)).await;

    let found = app.app.reconcile("sandbox", day).await.unwrap();
    assert!(!found.matched);
    assert_eq!((found.bill_lines, found.our_lines, found.matched_lines), (3, 2, 0));
    let m = &found.mismatches;
    let mut missing_ours = ids(&m.missing_ours);
    missing_ours.sort();
    let mut expected = vec![(Kind::Payment, c.id.clone()), (Kind::Payment, "ghost".to_owned())];
    expected.sort();
    assert_eq!(missing_ours, expected);
    let of = |id: &str| m.missing_ours.iter().find(|x| x.id == id).unwrap().clone();
    let (ghost, created) = (of("ghost"), of(&c.id));
    assert!(ghost.ours.is_none(), "we have no such payment: {ghost:?}");
    assert_eq!(ghost.theirs.as_ref().unwrap().amount, 700);
    let ours = created.ours.expect("we have it, not paid");
    assert_eq!((ours.status.as_deref(), ours.at, ours.amount), (Some("created"), None, 300));
    assert_eq!(ids(&m.missing_theirs), [(Kind::Payment, b.id.clone())]);
    let theirs_missing = &m.missing_theirs[0];
    assert!(theirs_missing.theirs.is_none());
    assert_eq!(theirs_missing.ours.as_ref().unwrap().status.as_deref(), Some("paid"));
    assert_eq!(ids(&m.amount_differs), [(Kind::Payment, a.id.clone())]);
    let differs = &m.amount_differs[0];
    assert_eq!((differs.ours.as_ref().unwrap().amount, differs.theirs.as_ref().unwrap().amount), (1_000, 1_990));

    // Nothing was fixed: our rows and the sandbox's are as the test left them.
    assert_eq!(app.app.payment(&c.id).await.unwrap().status, "created");
    let paid = app.db.scalar(&format!("SELECT paid_amount FROM payments WHERE id = '{}'", a.id)).await;
    assert_eq!(paid, 1_000);

    // Both results are kept; the newer one is the day's.
    let history = app.app.reconciliations_of_day("sandbox", day).await.unwrap();
    assert_eq!(history.iter().map(|r| r.matched).collect::<Vec<_>>(), [false, true]);
    let (status, page) = app.get("/api/v1/admin/reconciliations", Some(&operator.token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the latest per provider and day: {page}");
    let item = &items[0];
    assert_eq!((item["provider"].as_str(), item["date"].as_str()), (Some("sandbox"), Some(day.to_string().as_str())));
    assert_eq!(item["status"], "mismatched");
    assert_eq!(item["missing_ours"].as_array().unwrap().len(), 2);
    assert_eq!(
        item["missing_theirs"],
        json!([{"id": b.id, "kind": "payment",
            "ours": {"amount": 500, "status": "paid", "at": item["missing_theirs"][0]["ours"]["at"]}}])
    );
    assert!(item["missing_theirs"][0]["ours"]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(item["amount_differs"][0]["ours"]["amount"], 1_000);
    assert_eq!(item["amount_differs"][0]["theirs"]["amount"], 1_990);
    assert!(item["checked_at"].is_string());

    // The operator's page lists them.
    let (status, html) = page_text(&app, "/operator?lang=en", &operator).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-reconciled=\"mismatched\""), "{html}");
    for id in [&a.id, &b.id, &c.id, &"ghost".to_owned()] {
        assert!(html.contains(&format!("data-mismatch=\"{id}\"")), "{id} is not listed");
    }
    assert!(html.contains("Amount differs") && html.contains("Missing on our side"), "{html}");
    app.stop().await;
}

async fn page_text(app: &TestApp, path: &str, user: &TestUser) -> (StatusCode, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .header("cookie", format!("tuangou_session={}", user.token))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// A payment is matched by the amount the provider took, not the amount we asked: a payer who paid 10.00 of a
/// 19.90 payment (money that pays for nothing and is owed back) is on the bill for 10.00, and so in our books;
/// a paid amount that differs from the bill's line is a mismatch.
async fn the_amount_paid_is_reconciled_not_the_amount_asked(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, with_sandbox()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let payment = opened_at_the_sandbox(&app, customer, 1_990).await;
    app.db.execute(&format!("UPDATE sandbox_payments SET amount = 1000 WHERE out_trade_no = '{}'", payment.id)).await;
    pay_at_the_sandbox(&app, &payment).await;
    // Its notification is refused (another amount); the worker's query finds it paid and refunds it in full.
    let refunded = format!("SELECT COUNT(*) FROM refunds WHERE payment_id = '{}' AND status = 'succeeded'", payment.id);
    app.app.clock().advance(61_000);
    settle_until(&app, "the amount paid found and refunded", || async {
        app.app.clock().advance(5_000);
        app.db.scalar(&refunded).await == 1
    })
    .await;
    let paid = |column: &str| format!("SELECT {column} FROM payments WHERE id = '{}'", payment.id);
    assert_eq!((app.db.scalar(&paid("amount")).await, app.db.scalar(&paid("paid_amount")).await), (1_990, 1_000));
    let day = today(&app);

    let matched = app.app.reconcile("sandbox", day).await.unwrap();
    assert!(matched.matched, "the bill lists what was paid, as our books do: {matched:?}");
    assert_eq!((matched.bill_lines, matched.our_lines, matched.matched_lines), (2, 2, 2), "the payment, its refund");

    app.db.execute(&format!("UPDATE payments SET paid_amount = 1200 WHERE id = '{}'", payment.id)).await;
    let found = app.app.reconcile("sandbox", day).await.unwrap();
    assert!(!found.matched);
    assert_eq!(ids(&found.mismatches.amount_differs), [(Kind::Payment, payment.id.clone())]);
    let differs = &found.mismatches.amount_differs[0];
    assert_eq!((differs.ours.as_ref().unwrap().amount, differs.theirs.as_ref().unwrap().amount), (1_200, 1_000));
    app.stop().await;
}

/// Refunds through the provider are matched by `out_refund_no` and amount, on the day they succeeded.
async fn refunds_are_reconciled(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, with_sandbox()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let a = payment_both_sides(&app, customer, 1_990).await;
    let refund_id = format!("not_drawn-{}", a.id);
    let now = app.app.clock().now().0;
    app.db
        .execute(&format!(
            "INSERT INTO refunds (id, user_id, cause, payment_id, amount, destination, provider, status, requested_at)
             VALUES ('{refund_id}', '{}', 'not_drawn', '{}', 1990, 'provider', 'sandbox', 'requested', {now})",
            customer.id, a.id
        ))
        .await;
    let sandbox = app.app.provider("sandbox").unwrap();
    let request = RefundRequest {
        out_trade_no: a.id.clone(),
        out_refund_no: refund_id.clone(),
        amount: Fen::from_stored(1_990).unwrap(),
        reason: "not drawn".into(),
    };
    sandbox.refund(&request).await.unwrap();
    app.app.sandbox().unwrap().run_once().await.unwrap();
    let TransferState::Succeeded { at } = sandbox.query_refund(&refund_id).await.unwrap().state else {
        panic!("the sandbox's refund did not succeed")
    };
    let day = today(&app);

    // Requested on our side only: the bill lists a refund we do not count yet.
    let pending = app.app.reconcile("sandbox", day).await.unwrap();
    assert_eq!(ids(&pending.mismatches.missing_ours), [(Kind::Refund, refund_id.clone())]);
    assert_eq!(pending.mismatches.missing_ours[0].ours.as_ref().unwrap().status.as_deref(), Some("requested"));

    // Succeeded on both sides at the provider's time: matched.
    app.db
        .execute(&format!("UPDATE refunds SET status = 'succeeded', settled_at = {} WHERE id = '{refund_id}'", at.0))
        .await;
    app.db.execute(&format!("UPDATE payments SET status = 'refunded' WHERE id = '{}'", a.id)).await;
    let matched = app.app.reconcile("sandbox", day).await.unwrap();
    assert!(matched.matched, "{matched:?}");
    assert_eq!((matched.bill_lines, matched.our_lines), (2, 2), "a refunded payment was paid all the same");

    // A refund for another amount, and one the sandbox never made.
    app.db.execute(&format!("UPDATE refunds SET amount = 990 WHERE id = '{refund_id}'")).await;
    app.db
        .execute(&format!(
            "INSERT INTO refunds (id, user_id, cause, payment_id, amount, destination, provider, status, requested_at,
                 settled_at)
             VALUES ('late_payment-x', '{}', 'late_payment', '{}', 1, 'provider', 'sandbox', 'succeeded', {now}, {now})",
            customer.id, a.id
        ))
        .await;
    let found = app.app.reconcile("sandbox", day).await.unwrap();
    assert_eq!(ids(&found.mismatches.amount_differs), [(Kind::Refund, refund_id.clone())]);
    assert_eq!(ids(&found.mismatches.missing_theirs), [(Kind::Refund, "late_payment-x".into())]);
    assert!(found.mismatches.missing_ours.is_empty());
    app.stop().await;
}

/// The business day runs from 00:00:00 to 24:00:00 in China: a payment at 23:59:59 CST belongs to that day, one
/// at 00:00:00 to the next, on the bill and in our books alike.
async fn the_day_ends_at_midnight_in_china(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, with_sandbox()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let day = ChinaDay::of(today(&app).end());
    let clock = app.app.clock();
    clock.advance(day.end().0 - 1_000 - clock.now().0);
    let late = payment_both_sides(&app, customer, 100).await;
    assert_eq!(late.paid_at, Some(day.end().0 - 1_000), "paid at 23:59:59 CST");
    clock.advance(1_000);
    let next = payment_both_sides(&app, customer, 200).await;
    assert_eq!(next.paid_at, Some(day.end().0), "paid at 00:00:00 CST the next day");
    let next_day = ChinaDay::of(day.end());

    for (d, payment) in [(day, &late), (next_day, &next)] {
        let result = app.app.reconcile("sandbox", d).await.unwrap();
        assert!(result.matched, "{d}: {result:?}");
        assert_eq!((result.bill_lines, result.our_lines), (1, 1), "{d}");
        let bill = app.app.provider("sandbox").unwrap().fetch_bill(d).await.unwrap();
        assert!(bill.raw.contains(&payment.id), "{d}: {}", bill.raw);
    }

    // Ours a second later than the sandbox's: missing on our side on the day, missing on theirs the next day,
    // and the day's result says when we have it.
    app.db.execute(&format!("UPDATE payments SET paid_at = {} WHERE id = '{}'", day.end().0, late.id)).await;
    let on_the_day = app.app.reconcile("sandbox", day).await.unwrap();
    assert_eq!(ids(&on_the_day.mismatches.missing_ours), [(Kind::Payment, late.id.clone())]);
    assert_eq!(on_the_day.mismatches.missing_ours[0].ours.as_ref().unwrap().at, Some(day.end()));
    let after = app.app.reconcile("sandbox", next_day).await.unwrap();
    assert_eq!(ids(&after.mismatches.missing_theirs), [(Kind::Payment, late.id.clone())]);
    assert_eq!(after.matched_lines, 1);
    app.stop().await;
}

/// From 02:00 CST each day the job reconciles yesterday with each provider, once, even when two instances step
/// at the same moment; a claim whose instance died is taken over after its lease.
async fn the_daily_job_reconciles_yesterday_once(backend: Backend) {
    let first = TestApp::spawn_with(backend, with_sandbox()).await;
    let second = first.second_instance().await;
    let operator = first.operator().await;
    let customer = &first.customers(&operator, 1, 0).await[0];
    let owner = first.customer("13900000077").await;
    // The job runs the whole worker step, which refunds money that pays for nothing: these payments pay for seats
    // (in groups that stay open for the whole test).
    let body = crate::common::campaign_with(json!({"per_customer_limit": 10, "group_ttl_seconds": 2_592_000}));
    let (_, campaign) = crate::common::live_campaign_with(&first, &operator, &owner, body).await;
    let clock = first.app.clock().clone();
    // Whatever day was due when the test began is done first.
    first.app.run_jobs_once().await.unwrap();
    for _ in 0..3 {
        let day = today(&first);
        let (status, joined) = first
            .post(
                &format!("/api/v1/campaigns/{campaign}/groups"),
                Some(&customer.token),
                json!({"pay_with": "sandbox"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{joined}");
        let payment = joined["payment"]["id"].as_str().unwrap().to_owned();
        let (status, answer) = first.post(&format!("/sandbox/payments/{payment}/pay"), None, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        ours_paid(&first, &[&payment]).await;
        // 01:59:59.999 the next day: not yet.
        clock.advance(day.end().0 + 2 * Millis::HOUR - 1 - clock.now().0);
        let (a, b) = tokio::join!(first.app.run_jobs_once(), second.app.run_jobs_once());
        a.unwrap();
        b.unwrap();
        assert!(first.app.reconciliations_of_day("sandbox", day).await.unwrap().is_empty(), "{day} before 02:00");
        clock.advance(1);
        let (a, b) = tokio::join!(first.app.run_jobs_once(), second.app.run_jobs_once());
        a.unwrap();
        b.unwrap();
        let (a, b) = tokio::join!(first.app.run_jobs_once(), second.app.run_jobs_once());
        a.unwrap();
        b.unwrap();
        let results: Vec<Reconciliation> = first.app.reconciliations_of_day("sandbox", day).await.unwrap();
        assert_eq!(results.len(), 1, "{day} is reconciled once: {results:?}");
        assert!(results[0].matched && results[0].bill_lines == 1, "{results:?}");
    }

    // A claim left by an instance that died: held within its lease, taken over after it.
    let day = today(&first);
    let now = clock.now().0;
    first
        .db
        .execute(&format!(
            "INSERT INTO reconciliation_claims (provider, day, claimed_at) VALUES ('sandbox', '{day}', {})",
            day.end().0 + 2 * Millis::HOUR
        ))
        .await;
    let fresh = first.second_instance().await;
    clock.advance(day.end().0 + 2 * Millis::HOUR - now);
    fresh.app.run_jobs_once().await.unwrap();
    assert!(fresh.app.reconciliations_of_day("sandbox", day).await.unwrap().is_empty(), "held by another");
    clock.advance(15 * 60_000);
    fresh.app.run_jobs_once().await.unwrap();
    assert_eq!(fresh.app.reconciliations_of_day("sandbox", day).await.unwrap().len(), 1, "taken over");
    for mut app in [fresh, second, first] {
        app.stop().await;
    }
}

/// Only the operator sees the results (401 without a session, 403 for anyone else); the list pages by day.
async fn the_list_is_the_operators_and_pages(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_sandbox()).await;
    let operator = app.operator().await;
    let customer = &app.customers(&operator, 1, 0).await[0];
    let path = "/api/v1/admin/reconciliations";
    let (status, answer) = app.get(path, None).await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("not_signed_in")), "{answer}");
    let (status, answer) = app.get(path, Some(&customer.token)).await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::FORBIDDEN, Some("operator_only")), "{answer}");
    let (status, answer) = app.get(path, Some(&operator.token)).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"items": [], "next_cursor": null})));

    let day = today(&app);
    let before = ChinaDay::of(Millis(day.start().0 - 1));
    for d in [before, day, before] {
        app.app.reconcile("sandbox", d).await.unwrap();
    }
    let (status, first) = app.get(&format!("{path}?limit=1"), Some(&operator.token)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["items"][0]["date"], day.to_string(), "newest day first");
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor, format!("{day}_sandbox"));
    let (_, second) = app.get(&format!("{path}?limit=1&cursor={cursor}"), Some(&operator.token)).await;
    let items: &Vec<Value> = second["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{second}");
    assert_eq!(
        (items[0]["date"].as_str(), items[0]["status"].as_str()),
        (Some(before.to_string().as_str()), Some("matched"))
    );
    let (_, last) = app.get(&format!("{path}?limit=1&cursor={before}_sandbox"), Some(&operator.token)).await;
    assert_eq!(last, json!({"items": [], "next_cursor": null}));
    for bad in ["cursor=yesterday_sandbox", "cursor=2025-11-27", "cursor=2025-11-27_SANDBOX", "limit=0", "limit=201"] {
        let (status, answer) = app.get(&format!("{path}?{bad}"), Some(&operator.token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
    }
    app.finish().await;
}

on_both_backends!(
    each_mismatch_is_recorded,
    the_amount_paid_is_reconciled_not_the_amount_asked,
    refunds_are_reconciled,
    the_day_ends_at_midnight_in_china,
    the_daily_job_reconciles_yesterday_once,
    the_list_is_the_operators_and_pages,
);
