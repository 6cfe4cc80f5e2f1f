//! Paying at the join through a provider (the sandbox), on both backends: the pending seat, the money arriving
//! by notification or by query, windows that end (close, then release: the seq goes to the next joiner), late
//! money refunded in full, refunds to source for every cause with their retries and the operator's queue, and
//! the bad input of `pay_with`. Every test ends with `check` (SPEC's invariants and PAYMENTS.md's). Nothing
//! sleeps to pass: waits run the worker step and poll the stored state, bounded in time.

use crate::common::{campaign_with, code, live_campaign_with};
use crate::paying::{balance, membership_status, refunds, settle_until};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tuangou_app::Settings;
use tuangou_app::payments::PaymentSettings;
use tuangou_app::payments::sandbox::{Faults, SandboxKey, SandboxSettings};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

fn sandbox_app_settings(faults: Faults) -> Settings {
    let sandbox = SandboxSettings { key: SandboxKey::from_bytes([7; 32]), faults };
    Settings {
        payments: PaymentSettings { sandbox: Some(sandbox), partner_mode: false, ..PaymentSettings::default() },
        ..Settings::default()
    }
}

pub(crate) async fn sandbox_app(backend: Backend, faults: Faults) -> TestApp {
    TestApp::spawn_with(backend, sandbox_app_settings(faults)).await
}

async fn join(app: &TestApp, user: &TestUser, path: &str, body: Value) -> (StatusCode, Value) {
    app.post(path, Some(&user.token), body).await
}

async fn pay_at_sandbox(app: &TestApp, payment: &str) -> (StatusCode, Value) {
    app.post(&format!("/sandbox/payments/{payment}/pay"), None, json!({})).await
}

/// A customer with an empty wallet pays at the join: 202, a pending seat that counts toward N (shown as pending
/// in the group), and a payment with the sandbox's page. The group does not fill on a pending seat; once the
/// sandbox's notification is applied the seat is paid, the group fills and is drawn. The paid customer's money
/// goes back the way it came: not drawn → refunded through the provider; drawn → a voucher whose 随时退 refund
/// goes through the provider too.
async fn a_paid_join_holds_a_seat_until_the_money_comes(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000001").await;
    let body = campaign_with(json!({"group_size": 2, "winners_per_group": 1, "quantity": 10}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let payer = &app.customers(&operator, 1, 0).await[0];
    let walleted = &app.customers(&operator, 1, 990).await[0];

    let (status, answer) =
        join(&app, payer, &format!("/api/v1/campaigns/{campaign}/groups"), json!({"pay_with": "sandbox"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["membership"]["status"], "pending");
    let payment = answer["payment"].clone();
    assert_eq!((payment["status"].as_str(), payment["amount"].as_i64()), (Some("created"), Some(990)));
    assert_eq!(payment["membership_id"], answer["membership"]["id"]);
    let pay_id = payment["id"].as_str().unwrap().to_owned();
    assert_eq!(payment["client"]["url"], format!("{}/sandbox/pay/{pay_id}", app.base));
    assert_eq!(answer["group"]["members"][0]["pending"], true);
    let group = answer["group"]["id"].as_str().unwrap().to_owned();
    let membership = answer["membership"]["id"].as_str().unwrap().to_owned();
    let (status, mine) = app.get(&format!("/api/v1/me/payments/{pay_id}"), Some(&payer.token)).await;
    assert_eq!((status, mine["id"].as_str()), (StatusCode::OK, Some(pay_id.as_str())));
    let (status, _) = app.get(&format!("/api/v1/me/payments/{pay_id}"), Some(&walleted.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another customer's payment is not theirs to see");

    // The wallet customer takes the second seat: N seats held, one paid, so the group is not full.
    let (status, answer) = join(&app, walleted, &format!("/api/v1/groups/{group}/members"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!((answer["group"]["status"].as_str(), answer["membership"]["seq"].as_i64()), (Some("open"), Some(2)));
    let third = &app.customers(&operator, 1, 990).await[0];
    let (status, answer) = join(&app, third, &format!("/api/v1/groups/{group}/members"), json!({})).await;
    assert_eq!((status, code(&answer)), (StatusCode::CONFLICT, "group_full"), "a pending seat counts toward N");

    let (status, answer) = pay_at_sandbox(&app, &pay_id).await;
    assert_eq!((status, answer["status"].as_str()), (StatusCode::OK, Some("paid")));
    settle_until(&app, "the group is drawn", || async {
        app.get(&format!("/api/v1/groups/{group}"), None).await.1["status"] == "drawn"
    })
    .await;
    let (_, drawn) = app.get(&format!("/api/v1/groups/{group}"), None).await;
    let seqs: Vec<i64> = drawn["members"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2]);
    assert!(drawn["members"].as_array().unwrap().iter().all(|m| m.get("pending").is_none()));
    let (_, paid) = app.get(&format!("/api/v1/me/payments/{pay_id}"), Some(&payer.token)).await;
    assert_eq!(paid["status"], "paid");

    let cause = if membership_status(&app, payer, &membership).await == "won" {
        let (_, vouchers) = app.get("/api/v1/me/vouchers", Some(&payer.token)).await;
        let voucher = vouchers["items"][0]["id"].as_str().unwrap().to_owned();
        let (status, answer) =
            app.post(&format!("/api/v1/me/vouchers/{voucher}/refund"), Some(&payer.token), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        "voucher_returned"
    } else {
        "not_drawn"
    };
    let owed = refunds(&app, payer).await;
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!((owed[0]["cause"].as_str(), owed[0]["to"].as_str()), (Some(cause), Some("provider")));
    assert_eq!(owed[0]["payment_id"].as_str(), Some(pay_id.as_str()));
    let pending_key = format!("customer:{}:refund_pending", payer.id);
    assert_eq!(balance(&app, &pending_key).await, 990, "owed until the provider confirms");
    settle_until(&app, "the refund succeeds", || async {
        app.app.clock().advance(5_000); // the next look at a processing refund
        refunds(&app, payer).await[0]["status"] == "succeeded"
    })
    .await;
    assert_eq!(balance(&app, &pending_key).await, 0);
    assert_eq!(balance(&app, "provider:sandbox:clearing").await, 0, "in and back out through the sandbox");
    let (_, refunded) = app.get(&format!("/api/v1/me/payments/{pay_id}"), Some(&payer.token)).await;
    assert_eq!(refunded["status"], "refunded");
    let there = app.app.provider("sandbox").unwrap().query_payment(&pay_id).await.unwrap();
    assert_eq!(there.refunded.get(), 990, "the sandbox gave the money back");
    // The wallet customer's refund, if any, went back to the wallet at once.
    for refund in refunds(&app, walleted).await {
        assert_eq!((refund["to"].as_str(), refund["status"].as_str()), (Some("wallet"), Some("succeeded")));
    }
    app.finish().await;
}

/// A window that ends unpaid: the payment is closed at the provider first, then the seat is released
/// (`unpaid`), the customer's participation stops counting, and the released seqs go to the next joiners, so the
/// drawn group's seqs are 1..N.
async fn unpaid_seats_are_released_and_their_seqs_reused(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000002").await;
    let body = campaign_with(json!({"group_size": 3, "winners_per_group": 1, "quantity": 10,
        "payment_window_minutes": 1}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let slow = &app.customers(&operator, 2, 0).await;
    let paying = &app.customers(&operator, 3, 990).await;
    let (status, first) =
        join(&app, &slow[0], &format!("/api/v1/campaigns/{campaign}/groups"), json!({"pay_with": "sandbox"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let group = first["group"]["id"].as_str().unwrap().to_owned();
    let members = format!("/api/v1/groups/{group}/members");
    assert_eq!(join(&app, &paying[0], &members, json!({})).await.1["membership"]["seq"], 2);
    let (status, third) = join(&app, &slow[1], &members, json!({"pay_with": "sandbox"})).await;
    assert_eq!((status, third["membership"]["seq"].as_i64()), (StatusCode::ACCEPTED, Some(3)));
    let payments = [first["payment"]["id"].clone(), third["payment"]["id"].clone()];

    app.app.clock().advance(61_000);
    settle_until(&app, "both seats released", || async {
        membership_status(&app, &slow[0], first["membership"]["id"].as_str().unwrap()).await == "unpaid"
            && membership_status(&app, &slow[1], third["membership"]["id"].as_str().unwrap()).await == "unpaid"
    })
    .await;
    for (payment, user) in payments.iter().zip(slow) {
        let (_, row) = app.get(&format!("/api/v1/me/payments/{}", payment.as_str().unwrap()), Some(&user.token)).await;
        assert_eq!(row["status"], "closed");
        let there = app.app.provider("sandbox").unwrap().query_payment(payment.as_str().unwrap()).await.unwrap();
        assert_eq!(there.state, tuangou_app::payments::port::PaymentState::Closed, "closed at the provider first");
    }
    let (_, open) = app.get(&format!("/api/v1/groups/{group}"), None).await;
    assert_eq!(open["members"].as_array().unwrap().len(), 1, "released seats are not members: {open}");
    let (status, again) = join(&app, &paying[1], &members, json!({})).await;
    assert_eq!((status, again["membership"]["seq"].as_i64()), (StatusCode::CREATED, Some(1)), "{again}");
    let (status, last) = join(&app, &paying[2], &members, json!({})).await;
    assert_eq!((status, last["membership"]["seq"].as_i64()), (StatusCode::CREATED, Some(3)), "{last}");
    assert_eq!(last["group"]["status"], "drawn", "{last}");
    let seqs: Vec<i64> =
        last["group"]["members"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    // A customer whose seat was released may join the campaign again.
    let (status, answer) =
        join(&app, &slow[0], &format!("/api/v1/campaigns/{campaign}/join"), json!({"pay_with": "sandbox"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    app.finish().await;
}

/// Money that arrives after the seat was released (`late_pay`) is never kept: the payment is paid, a
/// `late_payment` refund with an id derived from the payment takes it back in full, the seat stays released.
async fn late_money_is_refunded_in_full(backend: Backend) {
    let app = sandbox_app(backend, Faults { late_pay: true, ..Faults::default() }).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000003").await;
    let body = campaign_with(json!({"group_size": 2, "winners_per_group": 1, "payment_window_minutes": 1}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let late = &app.customers(&operator, 1, 0).await[0];
    let (_, joined) =
        join(&app, late, &format!("/api/v1/campaigns/{campaign}/join"), json!({"pay_with": "sandbox"})).await;
    let membership = joined["membership"]["id"].as_str().unwrap().to_owned();
    let payment = joined["payment"]["id"].as_str().unwrap().to_owned();
    app.app.clock().advance(61_000);
    settle_until(&app, "the seat released", || async { membership_status(&app, late, &membership).await == "unpaid" })
        .await;
    let (status, _) = pay_at_sandbox(&app, &payment).await;
    assert_eq!(status, StatusCode::OK, "late_pay: the sandbox takes the money anyway");
    settle_until(&app, "the late money refunded", || async {
        app.app.clock().advance(5_000); // the next look at a processing refund
        refunds(&app, late).await.first().is_some_and(|r| r["status"] == "succeeded")
    })
    .await;
    let refund = &refunds(&app, late).await[0];
    assert_eq!(refund["id"], format!("late_payment-{payment}"));
    assert_eq!((refund["cause"].as_str(), refund["amount"].as_i64()), (Some("late_payment"), Some(990)));
    assert_eq!(membership_status(&app, late, &membership).await, "unpaid");
    let (_, row) = app.get(&format!("/api/v1/me/payments/{payment}"), Some(&late.token)).await;
    assert_eq!(row["status"], "refunded");
    assert_eq!(balance(&app, "provider:sandbox:clearing").await, 0);
    app.finish().await;
}

/// A notification that never comes (`drop`): the worker queries payments unpaid past a minute and finds it paid;
/// duplicated notifications (`duplicate`) confirm the seat once; two instances applying the same notifications
/// confirm each seat once.
async fn lost_and_duplicated_notifications_confirm_once(backend: Backend) {
    for faults in [Faults { drop: true, ..Faults::default() }, Faults { duplicate: true, ..Faults::default() }] {
        let app = sandbox_app(backend, faults.clone()).await;
        let other = app.second_instance().await;
        let operator = app.operator().await;
        let owner = app.customer("13900000004").await;
        let body = campaign_with(json!({"group_size": 3, "winners_per_group": 1}));
        let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
        let payer = &app.customers(&operator, 1, 0).await[0];
        let (_, joined) =
            join(&app, payer, &format!("/api/v1/campaigns/{campaign}/groups"), json!({"pay_with": "sandbox"})).await;
        let membership = joined["membership"]["id"].as_str().unwrap().to_owned();
        let payment = joined["payment"]["id"].as_str().unwrap().to_owned();
        pay_at_sandbox(&app, &payment).await;
        if faults.drop {
            app.app.clock().advance(61_000);
        }
        settle_until(&app, "the seat is paid", || async {
            let (a, b) = tokio::join!(app.app.run_jobs_once(), other.app.run_jobs_once());
            a.unwrap();
            b.unwrap();
            membership_status(&app, payer, &membership).await == "waiting"
        })
        .await;
        assert_eq!(balance(&app, &format!("customer:{}:held", payer.id)).await, 990, "held once");
        assert_eq!(balance(&app, "provider:sandbox:clearing").await, -990);
        let (_, group) = app.get(&format!("/api/v1/groups/{}", joined["group"]["id"].as_str().unwrap()), None).await;
        assert_eq!(group["members"][0].get("pending"), None);
        let mut other = other;
        other.stop().await;
        app.finish().await;
    }
}

/// A provider that keeps failing refunds (`fail_refunds`): the refund is retried with backoff, then waits in the
/// operator's queue (still owed: refund pending); once the provider works again the operator sends it back and it
/// succeeds. The expired group's refund is `group_expired`, to the provider.
async fn failing_refunds_wait_for_the_operator(backend: Backend) {
    let app = sandbox_app(backend, Faults { fail_refunds: true, ..Faults::default() }).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000005").await;
    let body = campaign_with(json!({"group_size": 3, "winners_per_group": 1, "group_ttl_seconds": 120}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let payer = &app.customers(&operator, 1, 0).await[0];
    let (_, joined) =
        join(&app, payer, &format!("/api/v1/campaigns/{campaign}/groups"), json!({"pay_with": "sandbox"})).await;
    let payment = joined["payment"]["id"].as_str().unwrap().to_owned();
    pay_at_sandbox(&app, &payment).await;
    let membership = joined["membership"]["id"].as_str().unwrap().to_owned();
    settle_until(&app, "paid", || async { membership_status(&app, payer, &membership).await == "waiting" }).await;
    app.app.clock().advance(121_000);
    settle_until(&app, "the refund failed for good", || async {
        app.app.clock().advance(700_000);
        refunds(&app, payer).await.first().is_some_and(|r| r["status"] == "failed")
    })
    .await;
    let refund = refunds(&app, payer).await[0].clone();
    assert_eq!((refund["cause"].as_str(), refund["to"].as_str()), (Some("group_expired"), Some("provider")));
    assert_eq!(refund["attempts"].as_i64(), Some(tuangou_store::MAX_ATTEMPTS));
    assert_eq!(balance(&app, &format!("customer:{}:refund_pending", payer.id)).await, 990, "still owed");
    let (status, queue) = app.get("/api/v1/admin/refunds?status=failed", Some(&operator.token)).await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    assert_eq!(queue["items"][0]["id"], refund["id"]);
    let (status, _) = app.get("/api/v1/admin/refunds?status=failed", Some(&payer.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = app.get("/api/v1/admin/refunds?status=lost", Some(&operator.token)).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("status")));

    app.app.sandbox().unwrap().set_faults(Faults::default());
    let retry = format!("/api/v1/admin/refunds/{}/retry", refund["id"].as_str().unwrap());
    let (status, answer) = app.post(&retry, Some(&payer.token), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, answer) = app.post(&retry, Some(&operator.token), json!({})).await;
    assert_eq!((status, answer["status"].as_str()), (StatusCode::OK, Some("requested")), "{answer}");
    let (status, answer) = app.post(&retry, Some(&operator.token), json!({})).await;
    assert_eq!((status, code(&answer)), (StatusCode::CONFLICT, "not_failed"));
    settle_until(&app, "the refund succeeds", || async {
        app.app.clock().advance(5_000); // the next look at a processing refund
        refunds(&app, payer).await[0]["status"] == "succeeded"
    })
    .await;
    assert_eq!(balance(&app, &format!("customer:{}:refund_pending", payer.id)).await, 0);
    app.finish().await;
}

/// `pay_with` must name a way to pay this service offers: anything else is 400 naming it, and nothing changes.
async fn pay_with_must_be_offered(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000006").await;
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(json!({}))).await;
    let customer = &app.customers(&operator, 1, 990).await[0];
    let before = app.db.fingerprint().await;
    for pay_with in [json!("bitcoin"), json!("wechatpay"), json!(""), json!(3)] {
        let (status, answer) =
            join(&app, customer, &format!("/api/v1/campaigns/{campaign}/join"), json!({"pay_with": pay_with})).await;
        assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("pay_with")), "{answer}");
    }
    assert_eq!(app.db.fingerprint().await, before, "refused joins change nothing");
    let (status, answer) =
        join(&app, customer, &format!("/api/v1/campaigns/{campaign}/join"), json!({"pay_with": "wallet"})).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, _) = app.get("/api/v1/me/payments/nope", Some(&customer.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.finish().await;
}

on_both_backends!(
    a_paid_join_holds_a_seat_until_the_money_comes,
    unpaid_seats_are_released_and_their_seqs_reused,
    late_money_is_refunded_in_full,
    lost_and_duplicated_notifications_confirm_once,
    failing_refunds_wait_for_the_operator,
    pay_with_must_be_offered,
    a_silent_provider_changes_nothing_until_it_answers,
    another_amount_is_refunded_and_pays_for_nothing,
    every_refund_cause_goes_back_through_the_provider,
);

/// How long the worker leaves a payment it asked about alone (its lease).
const LEASE_MS: i64 = 15_000;

/// A provider that does not answer (`unavailable`, as when it times out): a paid join still holds its seat and
/// its payment (202, `client` empty) and no money moves; nothing is released on silence — the window's end waits
/// until the provider can say the payment is closed. Once it answers again, the payment is made there when the
/// customer looks at it, and at the window's end it is closed there first and then the seat released. (Refunds the
/// provider does not answer are retried the same way: see `failing_refunds_wait_for_the_operator`.)
async fn a_silent_provider_changes_nothing_until_it_answers(backend: Backend) {
    let app = sandbox_app(backend, Faults { unavailable: true, ..Faults::default() }).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000007").await;
    let body = campaign_with(json!({"group_size": 3, "winners_per_group": 1, "payment_window_minutes": 1}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let payer = &app.customers(&operator, 1, 0).await[0];
    let (status, joined) =
        join(&app, payer, &format!("/api/v1/campaigns/{campaign}/groups"), json!({"pay_with": "sandbox"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{joined}");
    assert_eq!(joined["payment"]["client"], json!({}), "the provider has not answered");
    let payment = joined["payment"]["id"].as_str().unwrap().to_owned();
    let membership = joined["membership"]["id"].as_str().unwrap().to_owned();
    app.app.clock().advance(61_000);
    for _ in 0..5 {
        app.app.run_jobs_once().await.unwrap();
    }
    assert_eq!(membership_status(&app, payer, &membership).await, "pending", "silence closes nothing");
    let (_, row) = app.get(&format!("/api/v1/me/payments/{payment}"), Some(&payer.token)).await;
    assert_eq!((row["status"].as_str(), &row["client"]), (Some("created"), &json!({})));

    // The provider answers again: the payment is closed there first, then the seat released.
    app.app.sandbox().unwrap().set_faults(Faults::default());
    app.app.clock().advance(LEASE_MS);
    settle_until(&app, "the seat released", || async { membership_status(&app, payer, &membership).await == "unpaid" })
        .await;
    let (_, row) = app.get(&format!("/api/v1/me/payments/{payment}"), Some(&payer.token)).await;
    assert_eq!(row["status"], "closed");
    assert_eq!(balance(&app, &format!("customer:{}:held", payer.id)).await, 0);
    app.finish().await;
}

/// The provider took another amount than the seat's price (found by the query, since a notification saying so is
/// refused with 400): the payment is not accepted for the seat — its money is refunded in full, the seat released.
async fn another_amount_is_refunded_and_pays_for_nothing(backend: Backend) {
    let app = sandbox_app(backend, Faults { drop: true, ..Faults::default() }).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000008").await;
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(json!({}))).await;
    let payer = &app.customers(&operator, 1, 0).await[0];
    let (_, joined) =
        join(&app, payer, &format!("/api/v1/campaigns/{campaign}/join"), json!({"pay_with": "sandbox"})).await;
    let payment = joined["payment"]["id"].as_str().unwrap().to_owned();
    let membership = joined["membership"]["id"].as_str().unwrap().to_owned();
    // The provider's side says 500 fen (a tampered or broken provider); the customer pays that.
    app.db.execute(&format!("UPDATE sandbox_payments SET amount = 500 WHERE out_trade_no = '{payment}'")).await;
    let (status, _) = pay_at_sandbox(&app, &payment).await;
    assert_eq!(status, StatusCode::OK);
    app.app.clock().advance(61_000);
    settle_until(&app, "the other amount refunded", || async {
        app.app.clock().advance(5_000);
        refunds(&app, payer).await.first().is_some_and(|r| r["status"] == "succeeded")
    })
    .await;
    let refund = &refunds(&app, payer).await[0];
    assert_eq!((refund["cause"].as_str(), refund["amount"].as_i64()), (Some("late_payment"), Some(500)));
    assert_eq!(membership_status(&app, payer, &membership).await, "unpaid", "another amount pays for no seat");
    assert_eq!(balance(&app, &format!("customer:{}:held", payer.id)).await, 0);
    assert_eq!(balance(&app, "provider:sandbox:clearing").await, 0);
    app.finish().await;
}

/// Every refund cause SPEC names goes back through the provider that took the money, each with its id derived
/// from what it refunds: the one not drawn (`not_drawn`), a returned voucher (`voucher_returned`), a voucher that
/// expired (`voucher_expired`), a group that never filled (`group_expired`). (Late money: `late_money_…`.) And
/// `payment_window_minutes` must be 1–15.
async fn every_refund_cause_goes_back_through_the_provider(backend: Backend) {
    let app = sandbox_app(backend, Faults::default()).await;
    let operator = app.operator().await;
    let owner = app.customer("13900000009").await;
    let body = campaign_with(json!({"group_size": 2, "winners_per_group": 1, "quantity": 10,
        "group_ttl_seconds": 259_200, "voucher_valid_days": 1}));
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    for minutes in [0, 16] {
        let draft = campaign_with(json!({"payment_window_minutes": minutes}));
        let (status, answer) =
            app.post(&format!("/api/v1/merchants/{merchant}/campaigns"), Some(&owner.token), draft).await;
        assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("payment_window_minutes")));
    }
    let people = app.customers(&operator, 5, 0).await;
    let mut seats = Vec::new();
    let mut groups = Vec::new();
    for (i, person) in people.iter().enumerate() {
        let path = if i % 2 == 0 {
            format!("/api/v1/campaigns/{campaign}/groups")
        } else {
            format!("/api/v1/groups/{}/members", groups.last().unwrap())
        };
        let (status, joined) = join(&app, person, &path, json!({"pay_with": "sandbox"})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{joined}");
        if i % 2 == 0 {
            groups.push(joined["group"]["id"].as_str().unwrap().to_owned());
        }
        let payment = joined["payment"]["id"].as_str().unwrap().to_owned();
        assert_eq!(pay_at_sandbox(&app, &payment).await.0, StatusCode::OK);
        seats.push((joined["membership"]["id"].as_str().unwrap().to_owned(), payment));
    }
    // Every seat paid before the clock moves (else the last group could expire with its seat still pending, and
    // its money would come late: a `late_payment`, not this test's `group_expired`).
    settle_until(&app, "every seat paid and two groups drawn", || async {
        let mut paid = 0;
        for (person, (membership, _)) in people.iter().zip(&seats) {
            paid += usize::from(membership_status(&app, person, membership).await != "pending");
        }
        let mut drawn = 0;
        for group in &groups[..2] {
            drawn += usize::from(app.get(&format!("/api/v1/groups/{group}"), None).await.1["status"] == "drawn");
        }
        paid == seats.len() && drawn == 2
    })
    .await;
    // Group one's winner returns the voucher; group two's lets it expire; the fifth seat's group never fills.
    let mut winners = Vec::new();
    for (person, (membership, _)) in people.iter().zip(&seats).take(4) {
        if membership_status(&app, person, membership).await == "won" {
            winners.push(person);
        }
    }
    assert_eq!(winners.len(), 2);
    let (_, vouchers) = app.get("/api/v1/me/vouchers", Some(&winners[0].token)).await;
    let voucher = vouchers["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) =
        app.post(&format!("/api/v1/me/vouchers/{voucher}/refund"), Some(&winners[0].token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    app.app.clock().advance(259_201_000);
    let all_refunds = || async {
        let mut all = Vec::new();
        for person in &people {
            all.extend(refunds(&app, person).await);
        }
        all
    };
    settle_until(&app, "every refund succeeded", || async {
        app.app.clock().advance(5_000);
        let all = all_refunds().await;
        all.len() == 5 && all.iter().all(|r| r["status"] == "succeeded")
    })
    .await;
    let all = all_refunds().await;
    let mut causes: Vec<&str> = all.iter().map(|r| r["cause"].as_str().unwrap()).collect();
    causes.sort_unstable();
    assert_eq!(causes, ["group_expired", "not_drawn", "not_drawn", "voucher_expired", "voucher_returned"]);
    for refund in &all {
        assert_eq!((refund["to"].as_str(), refund["amount"].as_i64()), (Some("provider"), Some(990)), "{refund}");
        let payment = refund["payment_id"].as_str().unwrap();
        assert!(seats.iter().any(|(_, p)| p == payment), "{refund}");
        let of = refund["id"].as_str().unwrap().split_once('-').unwrap().1.to_owned();
        assert!(of.len() >= 32, "the id is derived from what it refunds: {refund}");
    }
    assert_eq!(balance(&app, "provider:sandbox:clearing").await, 0, "every fen in went back out");
    app.finish().await;
}
