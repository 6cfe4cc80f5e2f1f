//! What the tests of paying share: the worker stepped until something holds, and the customer's memberships,
//! refunds and balances as the API and the ledger show them.

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use tuangou_testkit::{TestApp, TestUser};

/// Runs the worker step (and the sandbox's own, when it is on) until `check` holds; fails after ten seconds.
pub async fn settle_until<F, Fut>(app: &TestApp, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            app.app.run_jobs_once().await.expect("the worker step runs");
            if let Some(sandbox) = app.app.sandbox() {
                sandbox.run_once().await.expect("the sandbox's step runs");
            }
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "gave up waiting: {what}");
}

pub async fn membership_status(app: &TestApp, user: &TestUser, id: &str) -> String {
    let (_, page) = app.get("/api/v1/me/memberships", Some(&user.token)).await;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    items.iter().find(|m| m["id"] == id).and_then(|m| m["status"].as_str().map(str::to_owned)).unwrap_or_default()
}

pub async fn refunds(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let (status, page) = app.get("/api/v1/me/refunds", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

pub async fn balance(app: &TestApp, key: &str) -> i64 {
    app.app.store().balance(key, "fen").await.unwrap()
}
