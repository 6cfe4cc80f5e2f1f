use crate::common::{CHUNXI, code, merchant};
use reqwest::StatusCode;
use serde_json::json;
use tuangou_app::Settings;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

async fn credits_are_idempotent_by_reference(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let customer = app.customer("13800138010").await;
    let body = json!({"user_id": customer.id, "amount": 12_345, "reference": "bank-2026-001"});

    let (status, answer) = app.post("/api/v1/admin/credits", Some(&customer.token), body.clone()).await;
    assert_eq!((status, code(&answer)), (StatusCode::FORBIDDEN, "operator_only"));

    let (status, first) = app.post("/api/v1/admin/credits", Some(&operator.token), body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["cause"], "credit");
    assert_eq!(first["reference"], "bank-2026-001");
    let postings = first["postings"].as_array().unwrap();
    assert_eq!(postings.iter().map(|p| p["amount"].as_i64().unwrap()).sum::<i64>(), 0, "balanced");

    let (status, again) = app.post("/api/v1/admin/credits", Some(&operator.token), body.clone()).await;
    assert_eq!(
        (status, &again["id"]),
        (StatusCode::CREATED, &first["id"]),
        "the same reference answers the same entry"
    );
    let (_, wallet) = app.get("/api/v1/me/wallet", Some(&customer.token)).await;
    assert_eq!(wallet["available"], 12_345, "credited once");

    let different = json!({"user_id": customer.id, "amount": 1, "reference": "bank-2026-001"});
    let (status, answer) = app.post("/api/v1/admin/credits", Some(&operator.token), different).await;
    assert_eq!((status, code(&answer)), (StatusCode::CONFLICT, "reference_reused"));

    let unknown = json!({"user_id": "0192f0c1-7a2b-7c3d-8e4f-123456789abc", "amount": 1, "reference": "r"});
    let (status, answer) = app.post("/api/v1/admin/credits", Some(&operator.token), unknown).await;
    assert_eq!((status, code(&answer)), (StatusCode::NOT_FOUND, "unknown_user"));
    let both = json!({"user_id": customer.id, "merchant_id": "m", "amount": 1, "reference": "r"});
    let (status, answer) = app.post("/api/v1/admin/credits", Some(&operator.token), both).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("user_id")));
    app.finish().await;
}

/// Twenty retries of one credit race each other: one entry, credited once.
async fn concurrent_credit_retries_credit_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let customer = app.customer("13800138011").await;
    let body = json!({"user_id": customer.id, "amount": 500, "reference": "retry-storm"});
    let answers = futures::future::join_all(
        (0..20).map(|_| app.post("/api/v1/admin/credits", Some(&operator.token), body.clone())),
    )
    .await;
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::CREATED), "{answers:?}");
    assert!(answers.iter().all(|(_, b)| b["id"] == answers[0].1["id"]));
    let (_, wallet) = app.get("/api/v1/me/wallet", Some(&customer.token)).await;
    assert_eq!(wallet["available"], 500);
    app.finish().await;
}

async fn the_check_is_for_operators(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let customer = app.customer("13800138012").await;
    let (status, body) = app.get("/api/v1/admin/check", Some(&operator.token)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ok": true, "violations": []})));
    let (status, body) = app.get("/api/v1/admin/check", Some(&customer.token)).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "operator_only"));
    let (_, me) = app.get("/api/v1/me", Some(&operator.token)).await;
    assert_eq!(me["roles"], json!(["operator"]));

    app.db.execute("UPDATE balances SET balance = balance + 1 WHERE account = 'external:funding'").await;
    app.db.execute("INSERT INTO balances (account, unit, balance) VALUES ('platform:commission', 'fen', -3)").await;
    let (status, body) = app.get("/api/v1/admin/check", Some(&operator.token)).await;
    assert_eq!((status, &body["ok"]), (StatusCode::OK, &json!(false)), "{body}");
    assert!(body["violations"].as_array().unwrap().iter().any(|v| v["invariant"] == 1));
    app.db.execute("DELETE FROM balances WHERE account = 'platform:commission'").await;
    app.db.execute("UPDATE balances SET balance = balance - 1 WHERE account = 'external:funding'").await;
    app.finish().await;
}

async fn merchants_wait_for_approval_when_the_operator_wants_it(backend: Backend) {
    let settings = Settings { require_merchant_approval: true, ..Settings::default() };
    let app = TestApp::spawn_with(backend, settings).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138013").await;
    let id = merchant(&app, &owner, "待审核的店", CHUNXI).await;
    let (_, profile) = app.get(&format!("/api/v1/merchants/{id}"), None).await;
    assert_eq!(profile["status"], "pending");

    app.credit(&operator, json!({"merchant_id": id}), crate::common::RESERVE).await;
    let campaign = crate::common::draft(&app, &owner, &id, crate::common::campaign_body()).await;
    let (status, body) =
        app.post(&format!("/api/v1/campaigns/{campaign}/publish"), Some(&owner.token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "merchant_not_active"));

    let (status, body) =
        app.post(&format!("/api/v1/admin/merchants/{id}/approve"), Some(&owner.token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "operator_only"));
    for _ in 0..2 {
        let (status, body) =
            app.post(&format!("/api/v1/admin/merchants/{id}/approve"), Some(&operator.token), json!({})).await;
        assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("active")), "also when active already");
    }
    let (status, body) = app.post("/api/v1/admin/merchants/nope/approve", Some(&operator.token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_merchant"));
    let (status, _) = app.post(&format!("/api/v1/campaigns/{campaign}/publish"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    app.finish().await;
}

on_both_backends!(
    credits_are_idempotent_by_reference,
    concurrent_credit_retries_credit_once,
    the_check_is_for_operators,
    merchants_wait_for_approval_when_the_operator_wants_it,
);
