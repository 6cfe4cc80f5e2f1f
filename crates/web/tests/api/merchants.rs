use crate::common::{CHUNXI, code, merchant, merchant_body};
use reqwest::StatusCode;
use serde_json::json;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

async fn a_merchant_comes_on_board(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.customer("13800138020").await;
    let (status, body) = app.post("/api/v1/merchants", None, merchant_body("老码头", CHUNXI)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "not_signed_in"));

    let id = merchant(&app, &owner, "老码头火锅", CHUNXI).await;
    let (status, profile) = app.get(&format!("/api/v1/merchants/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "the profile is public");
    assert_eq!(profile["status"], "active", "approval is off by default");
    assert_eq!(profile["phone"], "02886661234", "landlines are accepted and normalised");
    assert_eq!(profile["opening_hours"], "11:00–23:00");
    let nav = &profile["navigation"];
    assert!(nav["amap"].as_str().unwrap().contains("position=104.08,30.6563"), "{nav}");
    assert!(nav["baidu"].as_str().unwrap().contains("location=30.6563,104.08"));
    assert!(nav["apple"].as_str().unwrap().contains("ll=30.6563,104.08"));
    assert!(nav["google"].as_str().unwrap().contains("query=30.6563,104.08"));
    assert!(nav["geo"].as_str().unwrap().starts_with("geo:30.6563,104.08"));
    assert!(profile["entrance_url"].as_str().unwrap().ends_with(&format!("/m/{id}")));

    let (_, me) = app.get("/api/v1/me", Some(&owner.token)).await;
    assert_eq!(me["merchants"], json!([{"id": id, "role": "owner"}]));
    let (status, wallet) = app.get(&format!("/api/v1/merchants/{id}/wallet"), Some(&owner.token)).await;
    assert_eq!((status, wallet), (StatusCode::OK, json!({"available": 0, "reward_reserve": 0, "receivable": 0})));
    app.finish().await;
}

async fn owners_add_staff_who_see_no_wallet(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.customer("13800138021").await;
    let clerk = app.customer("13800138022").await;
    let stranger = app.customer("13800138023").await;
    let id = merchant(&app, &owner, "茶馆", CHUNXI).await;
    let staff_url = format!("/api/v1/merchants/{id}/staff");

    let (status, body) = app.post(&staff_url, Some(&stranger.token), json!({"phone": clerk.phone})).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "owner_only"));
    let (status, body) = app.post(&staff_url, Some(&owner.token), json!({"phone": "13999999999"})).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_user"));
    let (status, body) = app.post(&staff_url, Some(&owner.token), json!({"phone": clerk.phone})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post(&staff_url, Some(&owner.token), json!({"phone": clerk.phone})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_staff"));
    let (status, body) = app.post(&staff_url, Some(&owner.token), json!({"phone": owner.phone})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_staff"), "the owner is not also staff");

    let (_, me) = app.get("/api/v1/me", Some(&clerk.token)).await;
    assert_eq!(me["merchants"], json!([{"id": id, "role": "staff"}]));
    let wallet_url = format!("/api/v1/merchants/{id}/wallet");
    let (status, body) = app.get(&wallet_url, Some(&clerk.token)).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "owner_only"));
    let (status, body) = app.get(&wallet_url, Some(&stranger.token)).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "owner_only"));
    let (status, body) = app.get("/api/v1/merchants/unknown-id/wallet", Some(&owner.token)).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_merchant"));
    let (status, body) =
        app.post("/api/v1/merchants/unknown-id/campaigns", Some(&clerk.token), crate::common::campaign_body()).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_merchant"));
    let (status, body) = app
        .post(&format!("/api/v1/merchants/{id}/campaigns"), Some(&clerk.token), crate::common::campaign_body())
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "owner_only"), "staff do not create campaigns");
    app.finish().await;
}

on_both_backends!(a_merchant_comes_on_board, owners_add_staff_who_see_no_wallet);
