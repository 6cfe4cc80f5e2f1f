//! Logs never carry phone numbers (SPEC.md, "Trust and the law"): every log line the service writes at any level,
//! while customers sign up, sign in (also with a wrong password), are added as staff, join, win and redeem, and
//! while bad input names a phone, is captured and searched.

use reqwest::StatusCode;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tuangou_testkit::{Backend, TestApp, on_both_backends};

/// Everything logged in this process, from the first call on.
fn captured() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("this test binary owns its logs");
        logs
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn no_phone_number_reaches_the_logs(backend: Backend) {
    let logs = captured();
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13912340001").await;
    let clerk = app.customer("13912340002").await;
    let (status, merchant) = app
        .post(
            "/api/v1/merchants",
            Some(&owner.token),
            json!({"name": "老码头", "category": "火锅", "address": "春熙路 8 号", "latitude": 30.65,
                   "longitude": 104.08, "phone": "13912340003"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{merchant}");
    let merchant = merchant["id"].as_str().unwrap().to_owned();
    app.post(&format!("/api/v1/merchants/{merchant}/staff"), Some(&owner.token), json!({"phone": clerk.phone})).await;
    // A wrong password, an unknown staff phone, a malformed phone, a phone typed as a voucher code.
    let (status, _) =
        app.post("/api/v1/sessions", None, json!({"phone": "13912340001", "password": "wrong password!"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.post(&format!("/api/v1/merchants/{merchant}/staff"), Some(&owner.token), json!({"phone": "13912340004"})).await;
    app.post("/api/v1/users", None, json!({"phone": "1391234000x", "password": "whatever12", "name": "x"})).await;
    app.get(&format!("/api/v1/merchants/{merchant}/vouchers/13912340005"), Some(&clerk.token)).await;
    app.get("/?q=13912340006", None).await;
    app.credit(&operator, json!({"merchant_id": merchant}), 1_000_000).await;
    let (status, draft) = app
        .post(
            &format!("/api/v1/merchants/{merchant}/campaigns"),
            Some(&owner.token),
            json!({"title": "双人套餐", "product_type": "套餐", "quantity": 2, "price": 990, "original_price": 5000,
                   "group_size": 2, "winners_per_group": 1, "reward": {"kind": "cash", "amount": 100},
                   "commission_bps": 500, "group_ttl_seconds": 3600, "draw_mode": "instant", "voucher_valid_days": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    let campaign = draft["id"].as_str().unwrap().to_owned();
    app.post(&format!("/api/v1/campaigns/{campaign}/publish"), Some(&owner.token), json!({})).await;
    let people = app.customers(&operator, 2, 5_000).await;
    let (_, opened) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    let group = opened["group"]["id"].as_str().unwrap().to_owned();
    let (status, _) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    app.app.run_jobs_once().await.expect("jobs run");
    app.finish().await;

    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("request"), "the capture works: request spans are logged");
    let mut phones: Vec<String> = (1..=6).map(|i| format!("1391234000{i}")).collect();
    phones.extend(people.iter().map(|p| p.phone.clone()));
    for phone in &phones {
        assert!(!text.contains(phone.as_str()), "a log line carries {phone}");
        assert!(!text.contains(&format!("+86 {phone}")), "a log line carries {phone} with its country code");
    }
}

on_both_backends!(no_phone_number_reaches_the_logs);
