//! Payouts and withdrawals over HTTP, on both backends (PAYMENTS.md "Payouts"): through the sandbox to the end,
//! its failure and its silence, one merchant payout at a time under real concurrency, the refusals, idempotency
//! keys, who may ask, closing an account after withdrawing everything, a request dropped mid-way, and partner-mode
//! splits at redemption. Every test ends with `finish()`, which asserts every invariant (the clearing one too).

use crate::common::{CHUNXI, merchant};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::future::Future;
use std::task::Poll;
use tuangou_app::Settings;
use tuangou_app::payments::PaymentSettings;
use tuangou_app::payments::sandbox::{Faults, SandboxKey, SandboxSettings};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

fn settings(faults: Faults, partner_mode: bool) -> Settings {
    let sandbox = SandboxSettings { key: SandboxKey::from_bytes([7; 32]), faults };
    Settings {
        payments: PaymentSettings { sandbox: Some(sandbox), partner_mode, ..PaymentSettings::default() },
        ..Settings::default()
    }
}

async fn sandbox_app(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, settings(Faults::default(), false)).await
}

async fn balance(app: &TestApp, key: &str) -> i64 {
    app.app.store().balance(key, "fen").await.unwrap()
}

/// Runs the jobs and the sandbox's own step, moving the clock a second each time, until `payout` (a path to the
/// list holding it) is no longer `requested`, or `rounds` are done. Returns the payout as listed.
async fn settle(app: &TestApp, list: &str, token: &str, id: &str, rounds: usize) -> Value {
    let mut last = Value::Null;
    for _ in 0..rounds {
        app.app.run_jobs_once().await.unwrap();
        app.app.sandbox().unwrap().run_once().await.unwrap();
        let (status, body) = app.get(list, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        last = body["items"].as_array().unwrap().iter().find(|p| p["id"] == id).cloned().expect("listed");
        if last["status"] != "requested" {
            return last;
        }
        app.app.clock().advance(1_000);
    }
    last
}

/// An owner with a merchant credited `credit` fen.
async fn funded_merchant(app: &TestApp, operator: &TestUser, credit: i64) -> (TestUser, String) {
    let owner = app.customers(operator, 1, 0).await.remove(0);
    let merchant = merchant(app, &owner, "老码头火锅", CHUNXI).await;
    app.credit(operator, json!({"merchant_id": merchant}), credit).await;
    (owner, merchant)
}

/// A payout through the sandbox: requested (the money in flight), then succeeded (in the sandbox's clearing),
/// listed with its states; the check's clearing invariant holds throughout.
async fn a_payout_goes_through_the_sandbox(backend: Backend) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    let (owner, m) = funded_merchant(&app, &operator, 10_000).await;
    let path = format!("/api/v1/merchants/{m}/payouts");
    let (status, payout) = app.post(&path, Some(&owner.token), json!({"amount": 6_000, "provider": "sandbox"})).await;
    assert_eq!(status, StatusCode::CREATED, "{payout}");
    assert_eq!((payout["amount"].as_i64(), payout["status"].as_str()), (Some(6_000), Some("requested")));
    assert_eq!(payout["provider"], "sandbox");
    assert!(payout["created_at"].is_string() && payout.get("settled_at").is_none(), "{payout}");
    assert_eq!(balance(&app, &format!("merchant:{m}:available")).await, 4_000);
    assert_eq!(balance(&app, &format!("merchant:{m}:payout_pending")).await, 6_000);
    assert!(app.app.check().await.unwrap().is_empty());

    let id = payout["id"].as_str().unwrap();
    let done = settle(&app, &path, &owner.token, id, 10).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["settled_at"].is_string());
    assert_eq!(balance(&app, &format!("merchant:{m}:payout_pending")).await, 0);
    assert_eq!(balance(&app, "provider:sandbox:clearing").await, 6_000, "paid out 6,000 it never took in");
    let at_sandbox = app.app.store().sandbox_transfer_by("payout", id).await.unwrap().expect("the sandbox has it");
    assert_eq!((at_sandbox.payee.as_str(), at_sandbox.amount), (m.as_str(), 6_000), "payee: the merchant's id");
    // More jobs change nothing: it settled once.
    app.app.clock().advance(600_000);
    app.app.run_jobs_once().await.unwrap();
    assert_eq!(balance(&app, "provider:sandbox:clearing").await, 6_000);
    let (_, wallet) = app.get(&format!("/api/v1/merchants/{m}/wallet"), Some(&owner.token)).await;
    assert_eq!(wallet["available"], 4_000);
    // A second payout is allowed once the first settled.
    let (status, _) = app.post(&path, Some(&owner.token), json!({"amount": 4_000, "provider": "sandbox"})).await;
    assert_eq!(status, StatusCode::CREATED);
    app.finish().await;
}

/// The provider says the payout failed (`fail_payouts`): the payout is `failed` and the money is back.
async fn a_failed_payout_gives_the_money_back(backend: Backend) {
    let app = TestApp::spawn_with(backend, settings(Faults { fail_payouts: true, ..Faults::default() }, false)).await;
    let operator = app.operator().await;
    let customer = app.customers(&operator, 1, 2_500).await.remove(0);
    let (status, payout) = app
        .post("/api/v1/me/withdrawals", Some(&customer.token), json!({"amount": 2_500, "provider": "sandbox"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payout}");
    let (_, wallet) = app.get("/api/v1/me/wallet", Some(&customer.token)).await;
    assert_eq!(wallet["available"], 0);
    let done = settle(&app, "/api/v1/me/withdrawals", &customer.token, payout["id"].as_str().unwrap(), 5).await;
    assert_eq!(done["status"], "failed", "{done}");
    let (_, wallet) = app.get("/api/v1/me/wallet", Some(&customer.token)).await;
    assert_eq!(wallet["available"], 2_500, "the money is back");
    assert_eq!(balance(&app, "provider:sandbox:clearing").await, 0);
    app.finish().await;
}

/// The provider does not answer (`payouts_unavailable`): the payout stays `requested`, asked again with backoff,
/// never failed; once the provider answers again it succeeds.
async fn an_unanswered_payout_waits_and_then_succeeds(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, settings(Faults { payouts_unavailable: true, ..Faults::default() }, false)).await;
    let operator = app.operator().await;
    let customer = app.customers(&operator, 1, 800).await.remove(0);
    let (status, payout) =
        app.post("/api/v1/me/withdrawals", Some(&customer.token), json!({"amount": 800, "provider": "sandbox"})).await;
    assert_eq!(status, StatusCode::CREATED, "{payout}");
    let id = payout["id"].as_str().unwrap();
    let still = settle(&app, "/api/v1/me/withdrawals", &customer.token, id, 6).await;
    assert_eq!(still["status"], "requested", "silence is never failure: {still}");
    let row = app.app.store().payout(id).await.unwrap().unwrap();
    assert!(row.attempts >= 3, "asked again: {row:?}");
    assert!(row.last_error.as_deref().unwrap_or("").contains("not to answer"), "{row:?}");
    // Backoff: right after an attempt, the next is not due yet.
    let attempts = row.attempts;
    app.app.run_jobs_once().await.unwrap();
    app.app.run_jobs_once().await.unwrap();
    assert!(app.app.store().payout(id).await.unwrap().unwrap().attempts <= attempts + 1, "it waits between tries");
    assert!(app.app.store().sandbox_transfer_by("payout", id).await.unwrap().is_none(), "nothing reached it");
    app.app.sandbox().unwrap().set_faults(Faults::default());
    let done = settle(&app, "/api/v1/me/withdrawals", &customer.token, id, 400).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(balance(&app, &format!("customer:{}:withdrawal_pending", customer.id)).await, 0);
    assert_eq!(balance(&app, "provider:sandbox:clearing").await, 800);
    app.finish().await;
}

/// Many concurrent payout requests of one merchant: exactly one is 201, the others 409 `payout_in_progress`.
async fn one_payout_at_a_time_under_concurrency(backend: Backend) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    let (owner, m) = funded_merchant(&app, &operator, 100_000).await;
    let path = format!("/api/v1/merchants/{m}/payouts");
    let requests = (0..16).map(|_| app.post(&path, Some(&owner.token), json!({"amount": 100, "provider": "sandbox"})));
    let answers = futures::future::join_all(requests).await;
    let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!((*status, body["code"].as_str()), (StatusCode::CONFLICT, Some("payout_in_progress")), "{body}");
    }
    assert_eq!(balance(&app, &format!("merchant:{m}:available")).await, 99_900);
    app.finish().await;
}

/// 402 beyond the available balance; 400 naming the field for an amount out of range or an unknown provider;
/// 403 for staff and strangers; 404 for an unknown merchant. None of them changes anything.
async fn refusals_change_nothing(backend: Backend) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    let (owner, m) = funded_merchant(&app, &operator, 1_000).await;
    let others = app.customers(&operator, 2, 500).await;
    let (staff, stranger) = (&others[0], &others[1]);
    let (status, _) =
        app.post(&format!("/api/v1/merchants/{m}/staff"), Some(&owner.token), json!({"phone": staff.phone})).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = app.db.fingerprint().await;
    let path = format!("/api/v1/merchants/{m}/payouts");
    let post = |token: &str, body: Value| {
        let (path, token) = (path.clone(), token.to_owned());
        let app = &app;
        async move { app.post(&path, Some(&token), body).await }
    };
    let (status, body) = post(&owner.token, json!({"amount": 1_001, "provider": "sandbox"})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYMENT_REQUIRED, Some("insufficient_funds")));
    for amount in [0, -5, 10_000_000_001_i64] {
        let (status, body) = post(&owner.token, json!({"amount": amount, "provider": "sandbox"})).await;
        assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("amount")), "{amount}: {body}");
    }
    let (status, body) = post(&owner.token, json!({"amount": 100, "provider": "paypal"})).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("provider")), "{body}");
    for who in [staff, stranger] {
        let (status, body) = post(&who.token, json!({"amount": 100, "provider": "sandbox"})).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("owner_only")), "{body}");
        let (status, _) = app.get(&path, Some(&who.token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = app
        .post(
            "/api/v1/merchants/nosuchmerchant/payouts",
            Some(&owner.token),
            json!({"amount": 1, "provider": "sandbox"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) =
        app.post("/api/v1/me/withdrawals", Some(&stranger.token), json!({"amount": 501, "provider": "sandbox"})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYMENT_REQUIRED, Some("insufficient_funds")));
    let (status, body) =
        app.post("/api/v1/me/withdrawals", Some(&stranger.token), json!({"amount": 0, "provider": "sandbox"})).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("amount")));
    let (status, _) = app.post("/api/v1/me/withdrawals", None, json!({"amount": 1, "provider": "sandbox"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.db.fingerprint().await, before, "refusals change nothing");
    app.finish().await;
}

/// The same `Idempotency-Key` answers the first answer again and makes one payout; with another body it is 422.
async fn an_idempotency_key_makes_one_payout(backend: Backend) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    let customer = app.customers(&operator, 1, 1_000).await.remove(0);
    let url = format!("{}/api/v1/me/withdrawals", app.base);
    let send = |key: &'static str, amount: i64| {
        let request = app
            .client
            .post(&url)
            .bearer_auth(&customer.token)
            .header("idempotency-key", key)
            .json(&json!({"amount": amount, "provider": "sandbox"}));
        async move { TestApp::read(request.send().await.unwrap()).await }
    };
    let answers = futures::future::join_all((0..6).map(|_| send("withdraw-1", 300))).await;
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::CREATED), "{answers:?}");
    assert!(answers.iter().all(|(_, b)| b["id"] == answers[0].1["id"]), "one payout: {answers:?}");
    let (status, again) = send("withdraw-1", 300).await;
    assert_eq!((status, &again["id"]), (StatusCode::CREATED, &answers[0].1["id"]));
    let (status, body) = send("withdraw-1", 301).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused")));
    // A refusal is remembered too: the same key answers the same 402 even once the money is there.
    let (status, _) = send("too-much", 5_000).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    app.credit(&operator, json!({"user_id": customer.id}), 10_000).await;
    let (status, _) = send("too-much", 5_000).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let (_, list) = app.get("/api/v1/me/withdrawals", Some(&customer.token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (_, wallet) = app.get("/api/v1/me/wallet", Some(&customer.token)).await;
    assert_eq!(wallet["available"], 10_700);
    app.finish().await;
}

/// Credit → withdraw all → the account cannot close while the withdrawal is on its way (409
/// `withdrawal_pending`), and closes once it succeeded.
async fn withdraw_everything_then_close_the_account(backend: Backend) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    let customer = app.customers(&operator, 1, 1_234).await.remove(0);
    let (status, body) = app.send(reqwest::Method::DELETE, "/api/v1/me", Some(&customer.token), None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("balance_remaining")));
    let (status, payout) = app
        .post("/api/v1/me/withdrawals", Some(&customer.token), json!({"amount": 1_234, "provider": "sandbox"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payout}");
    let (status, body) = app.send(reqwest::Method::DELETE, "/api/v1/me", Some(&customer.token), None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("withdrawal_pending")), "{body}");
    let done = settle(&app, "/api/v1/me/withdrawals", &customer.token, payout["id"].as_str().unwrap(), 10).await;
    assert_eq!(done["status"], "succeeded");
    let (status, body) = app.send(reqwest::Method::DELETE, "/api/v1/me", Some(&customer.token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.finish().await;
}

/// Lists page newest first with a cursor; a customer sees only their own withdrawals, several at once allowed.
async fn withdrawals_are_listed_newest_first(backend: Backend) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    let users = app.customers(&operator, 2, 1_000).await;
    let mut ids = Vec::new();
    for amount in [100, 200, 300] {
        let (status, body) = app
            .post("/api/v1/me/withdrawals", Some(&users[0].token), json!({"amount": amount, "provider": "sandbox"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (_, first) = app.get("/api/v1/me/withdrawals?limit=2", Some(&users[0].token)).await;
    let items: Vec<&str> = first["items"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(items, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app.get(&format!("/api/v1/me/withdrawals?limit=2&cursor={cursor}"), Some(&users[0].token)).await;
    assert_eq!(second["items"][0]["id"], ids[0].as_str());
    assert!(second["next_cursor"].is_null());
    let (_, theirs) = app.get("/api/v1/me/withdrawals", Some(&users[1].token)).await;
    assert_eq!(theirs["items"], json!([]));
    let (status, body) = app.get("/api/v1/me/withdrawals?cursor=..%2F", Some(&users[0].token)).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("cursor")));
    app.finish().await;
}

/// Polls `future` at most `polls` times, then drops it.
async fn poll_at_most<F: Future>(polls: usize, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut polled = 0;
    std::future::poll_fn(move |context| {
        polled += 1;
        match future.as_mut().poll(context) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending if polled >= polls => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A withdrawal request dropped after each number of polls leaves either nothing or the whole request (the row
/// and its money in flight), never half; the invariants hold after each.
async fn a_dropped_request_leaves_nothing_or_everything(backend: Backend) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    let customer = app.customers(&operator, 1, 10_000).await.remove(0);
    let caller = app.app.authenticate(&customer.token).await.unwrap().unwrap();
    let (mut wholes, mut nothings) = (0, 0);
    for polls in 1..=12 {
        let before = balance(&app, &format!("customer:{}:available", customer.id)).await;
        let rows_before = app.app.store().withdrawals_of(&caller.user, None, 200).await.unwrap().len();
        let answered = poll_at_most(polls, app.app.request_withdrawal(&caller, 10, "sandbox", None)).await;
        app.app.store().writes_settled().await;
        let after = balance(&app, &format!("customer:{}:available", customer.id)).await;
        let rows = app.app.store().withdrawals_of(&caller.user, None, 200).await.unwrap().len();
        match (rows - rows_before, before - after) {
            (1, 10) => wholes += 1,
            (0, 0) => {
                assert!(answered.is_none(), "answered but left nothing");
                nothings += 1;
            }
            other => panic!("half a withdrawal after {polls} polls: {other:?}"),
        }
        assert!(app.app.check().await.unwrap().is_empty());
    }
    assert!(wholes > 0, "some request went through ({nothings} left nothing)");
    app.finish().await;
}

/// GETs a page signed in by cookie, in `lang`: its status and text.
async fn page(app: &TestApp, path: &str, who: &TestUser, lang: &str) -> (StatusCode, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .header("accept-language", lang)
        .header("cookie", format!("tuangou_session={}", who.token))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// 我的 shows the withdraw form and the withdrawals with their states; the owner's store page the payout form and
/// the payouts; in both languages, with no inline script or style (the CSP).
async fn the_pages_show_payouts_and_withdrawals(backend: Backend) {
    let app = sandbox_app(backend).await;
    let operator = app.operator().await;
    let (owner, m) = funded_merchant(&app, &operator, 5_000).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/merchants/{m}/payouts"),
            Some(&owner.token),
            json!({"amount": 1_250, "provider": "sandbox"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) =
        app.post("/api/v1/me/withdrawals", Some(&owner.token), json!({"amount": 1, "provider": "sandbox"})).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "the owner's own wallet is empty");
    app.credit(&operator, json!({"user_id": owner.id}), 700).await;
    let (status, _) =
        app.post("/api/v1/me/withdrawals", Some(&owner.token), json!({"amount": 700, "provider": "sandbox"})).await;
    assert_eq!(status, StatusCode::CREATED);
    for (lang, withdraw, payout, on_its_way) in
        [("zh-CN", "提现", "申请结算", "处理中"), ("en", "Withdraw", "Request payout", "On its way")]
    {
        let (status, me) = page(&app, "/me", &owner, lang).await;
        assert_eq!(status, StatusCode::OK);
        assert!(me.contains(r#"data-api="POST /api/v1/me/withdrawals""#) && me.contains(withdraw), "{me}");
        assert!(me.contains("¥7.00") && me.contains(on_its_way), "{me}");
        let (status, shop) = page(&app, &format!("/shop/{m}"), &owner, lang).await;
        assert_eq!(status, StatusCode::OK);
        assert!(shop.contains(&format!(r#"data-api="POST /api/v1/merchants/{m}/payouts""#)), "{shop}");
        assert!(shop.contains(payout) && shop.contains("¥12.50") && shop.contains(on_its_way), "{shop}");
        for html in [&me, &shop] {
            assert!(!html.contains("<script>") && !html.contains(" style=") && !html.contains(" onclick="));
        }
    }
    app.finish().await;
}

on_both_backends!(
    the_pages_show_payouts_and_withdrawals,
    a_payout_goes_through_the_sandbox,
    a_failed_payout_gives_the_money_back,
    an_unanswered_payout_waits_and_then_succeeds,
    one_payout_at_a_time_under_concurrency,
    refusals_change_nothing,
    an_idempotency_key_makes_one_payout,
    withdraw_everything_then_close_the_account,
    withdrawals_are_listed_newest_first,
    a_dropped_request_leaves_nothing_or_everything,
    partner_mode_splits_after_the_undo_window,
);

/// Turns a winner's wallet-paid membership into one paid through the sandbox, as the join path with `pay_with`
/// leaves it: our payment `paid` and linked, the sandbox's paid too, the membership `paid_with = 'sandbox'`, and
/// the money's way in (the sandbox's clearing account gave it). Returns the payment's id.
async fn paid_through_the_sandbox(app: &TestApp, customer: &TestUser, membership: &str) -> String {
    use tuangou_app::payments::PaymentOrder;
    use tuangou_app::payments::port::PayerHints;
    use tuangou_domain::ledger::{Account, Cause, Entry};
    use tuangou_domain::money::Fen;
    let order = PaymentOrder {
        user: tuangou_domain::ids::UserId::from_trusted(&customer.id),
        provider: "sandbox".into(),
        amount: Fen::from_stored(990).unwrap(),
        description: "双人火锅套餐".into(),
        expires_at: app.app.clock().now().plus_seconds(300),
        membership: Some(membership.to_owned()),
        payer: PayerHints::default(),
    };
    let payment = app.app.open_payment(order).await.expect("a payment");
    let (status, body) = app.post(&format!("/sandbox/payments/{}/pay", payment.id), None, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = app.app.clock().now().0;
    app.db.execute(&format!("UPDATE payments SET status = 'paid', paid_at = {now} WHERE id = '{}'", payment.id)).await;
    app.db.execute(&format!("UPDATE memberships SET paid_with = 'sandbox' WHERE id = '{membership}'")).await;
    let entry = Entry::transfer(
        Cause::Payment,
        Account::ProviderClearing("sandbox".into()),
        Account::ExternalFunding,
        Fen::from_stored(990).unwrap(),
    )
    .with_reference(format!("payment:{}", payment.id));
    app.app.store().post_once(&entry, app.app.clock().now()).await.unwrap();
    payment.id
}

/// Partner mode: a provider-paid purchase is split once its redemption can no longer be undone (commission to
/// the platform, the rest to the merchant), exactly once; one whose money the owner had paid out directly
/// meanwhile is `skipped`; a wallet-paid one is never split. The clearing invariant holds at every step.
async fn partner_mode_splits_after_the_undo_window(backend: Backend) {
    use crate::common::live_campaign;
    let app = TestApp::spawn_with(backend, settings(Faults::default(), true)).await;
    let operator = app.operator().await;
    let owner = app.customers(&operator, 1, 0).await.remove(0);
    let (m, campaign) = live_campaign(&app, &operator, &owner, "老码头火锅", CHUNXI).await;
    let people = app.customers(&operator, 5, 990).await;
    for person in &people {
        let (status, body) =
            app.post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&person.token), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    app.app.run_jobs_once().await.unwrap();
    let mut winners = Vec::new();
    for person in &people {
        let (_, list) = app.get("/api/v1/me/memberships", Some(&person.token)).await;
        let membership = &list["items"][0];
        if membership["status"] == "won" {
            winners.push((
                person.clone(),
                membership["id"].as_str().unwrap().to_owned(),
                membership["voucher_code"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(winners.len(), 2);
    let redeem = |code: String| {
        let (app, token, m) = (&app, owner.token.clone(), m.clone());
        async move {
            let (status, body) =
                app.post(&format!("/api/v1/merchants/{m}/redemptions"), Some(&token), json!({"code": code})).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["id"].as_str().unwrap().to_owned()
        }
    };
    let available = format!("merchant:{m}:available");

    // The first winner paid through the sandbox; redeemed; split once the hour (and a minute) is over.
    let payment = paid_through_the_sandbox(&app, &winners[0].0, &winners[0].1).await;
    let redemption = redeem(winners[0].2.clone()).await;
    assert!(app.app.check().await.unwrap().is_empty());
    let split_id = format!("split-{redemption}");
    app.app.clock().advance(3_600_000);
    app.app.run_jobs_once().await.unwrap();
    assert!(app.app.store().split(&split_id).await.unwrap().is_none(), "not while an undo could still come");
    let (before_available, before_commission) =
        (balance(&app, &available).await, balance(&app, "platform:commission").await);
    app.app.clock().advance(61_000);
    app.app.run_jobs_once().await.unwrap();
    let split = app.app.store().split(&split_id).await.unwrap().expect("requested");
    assert_eq!((split.amount, split.commission, split.payment_id.as_str()), (990, 49, payment.as_str()));
    assert_eq!(balance(&app, &available).await, before_available - 941, "the merchant's net is set aside");
    assert_eq!(balance(&app, "platform:commission").await, before_commission - 49);
    for _ in 0..10 {
        app.app.sandbox().unwrap().run_once().await.unwrap();
        app.app.clock().advance(1_000);
        app.app.run_jobs_once().await.unwrap();
    }
    let split = app.app.store().split(&split_id).await.unwrap().unwrap();
    assert_eq!(split.status, "succeeded", "{split:?}");
    assert_eq!(balance(&app, &format!("split:{split_id}:pending")).await, 0);
    assert_eq!(balance(&app, "provider:sandbox:clearing").await, 0, "paid 990 in, split 990 out");
    let at_sandbox = app.app.store().sandbox_transfer_by("split", &split_id).await.unwrap().unwrap();
    let receivers: Value = serde_json::from_str(&at_sandbox.payee).unwrap();
    assert_eq!(receivers, json!([{"account": "platform", "amount": 49}, {"account": m, "amount": 941}]));
    assert!(app.app.check().await.unwrap().is_empty());

    // The second winner paid through the sandbox too, but the owner has everything paid out before its split:
    // the split is skipped (nothing asked of the provider), and the balances stay whole.
    paid_through_the_sandbox(&app, &winners[1].0, &winners[1].1).await;
    let second = redeem(winners[1].2.clone()).await;
    let all = balance(&app, &available).await;
    let path = format!("/api/v1/merchants/{m}/payouts");
    let (status, payout) = app.post(&path, Some(&owner.token), json!({"amount": all, "provider": "sandbox"})).await;
    assert_eq!(status, StatusCode::CREATED, "{payout}");
    assert_eq!(settle(&app, &path, &owner.token, payout["id"].as_str().unwrap(), 10).await["status"], "succeeded");
    app.app.clock().advance(3_600_000 + 61_000);
    app.app.run_jobs_once().await.unwrap();
    let skipped = app.app.store().split(&format!("split-{second}")).await.unwrap().expect("recorded");
    assert_eq!(skipped.status, "skipped", "{skipped:?}");
    assert!(app.app.store().sandbox_transfer_by("split", &skipped.id).await.unwrap().is_none());
    // Nothing is split twice, and wallet-paid redemptions are never split.
    app.app.clock().advance(3_600_000);
    app.app.run_jobs_once().await.unwrap();
    let splits = app.db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM splits").await;
    assert_eq!(splits, 2);
    app.finish().await;
}
