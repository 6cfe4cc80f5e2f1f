//! Who may do what at the counter (S4): every S4 endpoint against an anonymous caller, a customer, staff of
//! another merchant, the merchant's own staff, its owner and the operator.

use crate::common::{campaign_with, code, live_campaign_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

/// What is tried, how, and the status each caller (in `callers` order) must get.
type Row<'a> = (&'a str, Method, String, Option<Value>, [u16; 6]);

async fn s4_authorization_matrix(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138130").await;
    let staff = app.customer("13800138131").await;
    let rival_owner = app.customer("13800138132").await;
    let rival_staff = app.customer("13800138133").await;
    let stranger = app.customer("13800138134").await;
    let (merchant, campaign) =
        live_campaign_with(&app, &operator, &owner, campaign_with(json!({"group_size": 2, "winners_per_group": 1})))
            .await;
    let (rival, _) = live_campaign_with(&app, &operator, &rival_owner, campaign_with(json!({}))).await;
    app.post(&format!("/api/v1/merchants/{merchant}/staff"), Some(&owner.token), json!({"phone": staff.phone})).await;
    app.post(
        &format!("/api/v1/merchants/{rival}/staff"),
        Some(&rival_owner.token),
        json!({"phone": rival_staff.phone}),
    )
    .await;
    let people = app.customers(&operator, 2, 2_000).await;
    let (_, opened) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    let group = opened["group"]["id"].as_str().unwrap();
    let (_, drawn) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), json!({})).await;
    let winner = &people[drawn["group"]["draw"]["winners"][0].as_u64().unwrap() as usize - 1];
    let (_, mine) = app.get("/api/v1/me/vouchers", Some(&winner.token)).await;
    let voucher = mine["items"][0].clone();
    let (voucher_code, voucher_id) = (voucher["code"].as_str().unwrap(), voucher["id"].as_str().unwrap());

    let callers: [(&str, Option<&TestUser>); 6] = [
        ("anonymous", None),
        ("customer", Some(&stranger)),
        ("rival staff", Some(&rival_staff)),
        ("operator", Some(&operator)),
        ("staff", Some(&staff)),
        ("owner", Some(&owner)),
    ];
    let preview = format!("/api/v1/merchants/{merchant}/vouchers/{voucher_code}");
    let redeem = format!("/api/v1/merchants/{merchant}/redemptions");
    let stats = format!("/api/v1/merchants/{merchant}/stats");
    let qr = format!("/api/v1/me/vouchers/{voucher_id}/qr.svg");
    // (what, method, path, body, expected status per caller in the order above)
    let mut rows: Vec<Row> = vec![
        ("preview", Method::GET, preview, None, [401, 403, 403, 403, 200, 200]),
        ("stats", Method::GET, stats, None, [401, 403, 403, 403, 403, 200]),
        ("my vouchers", Method::GET, "/api/v1/me/vouchers".into(), None, [401, 200, 200, 200, 200, 200]),
        ("my memberships", Method::GET, "/api/v1/me/memberships".into(), None, [401, 200, 200, 200, 200, 200]),
        ("someone else's QR", Method::GET, qr.clone(), None, [401, 404, 404, 404, 404, 404]),
        ("check", Method::GET, "/api/v1/admin/check".into(), None, [401, 403, 403, 200, 403, 403]),
    ];
    // Redeeming: everyone but staff and the owner is refused; staff redeem first, so the owner then meets
    // `already_redeemed` — which only an authorized caller can learn.
    rows.push((
        "redeem",
        Method::POST,
        redeem.clone(),
        Some(json!({"code": voucher_code})),
        [401, 403, 403, 403, 201, 409],
    ));
    let mut failures = Vec::new();
    let mut redemption_id = String::new();
    for (what, method, path, body, expected) in &rows {
        for ((who, caller), want) in callers.iter().zip(expected) {
            let (status, answer) =
                app.send(method.clone(), path, caller.map(|c| c.token.as_str()), body.as_ref()).await;
            if status.as_u16() != *want {
                failures.push(format!("{what} by {who}: expected {want}, got {status} {answer}"));
            }
            if status == StatusCode::CREATED {
                redemption_id = answer["id"].as_str().unwrap_or_default().to_owned();
            }
        }
    }
    let undo = format!("{redeem}/{redemption_id}");
    for ((who, caller), want) in callers.iter().zip([401u16, 403, 403, 403, 403, 200]) {
        let (status, answer) = app.send(Method::DELETE, &undo, caller.map(|c| c.token.as_str()), None).await;
        if status.as_u16() != want {
            failures.push(format!("undo by {who}: expected {want}, got {status} {answer}"));
        }
    }
    let (status, _) = app.get(&qr, Some(&winner.token)).await;
    assert_eq!(status, StatusCode::OK, "the voucher's owner sees its QR code");
    let (status, body) = app
        .send(
            Method::DELETE,
            &format!("/api/v1/merchants/{rival}/redemptions/{redemption_id}"),
            Some(&rival_owner.token),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_redemption"), "another merchant's redemption");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.finish().await;
}

on_both_backends!(s4_authorization_matrix);
