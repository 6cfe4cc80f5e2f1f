//! Trust (SPEC.md, "Trust and the law"): refunds at any time that race safely against the counter, a customer's
//! own history, closing an account without touching a money record, and no way to rig a draw.

use crate::common::{campaign_with, code, live_campaign_with, wallet};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

async fn my_vouchers(app: &TestApp, user: &TestUser) -> Vec<Value> {
    app.get("/api/v1/me/vouchers", Some(&user.token)).await.1["items"].as_array().unwrap().clone()
}

/// K = N: everyone in a group of two wins (a classic group-buy). Returns the two members' vouchers.
async fn two_winners(app: &TestApp, campaign: &str, people: &[TestUser]) -> Vec<Value> {
    let (_, opened) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    let group = opened["group"]["id"].as_str().unwrap();
    let (status, _) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    vec![my_vouchers(app, &people[0]).await.remove(0), my_vouchers(app, &people[1]).await.remove(0)]
}

/// A customer returns a voucher while staff scan it: one of the two wins, never both, every time.
async fn a_refund_races_a_redemption_and_one_wins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138150").await;
    let body = campaign_with(json!({"quantity": 20, "group_size": 2, "winners_per_group": 2}));
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let people = app.customers(&operator, 10, 990).await;
    let mut races = Vec::new();
    for pair in people.chunks(2) {
        for voucher in two_winners(&app, &campaign, pair).await {
            races.push(voucher);
        }
    }
    let redeem_url = format!("/api/v1/merchants/{merchant}/redemptions");
    let mut refunds = 0;
    for (voucher, person) in races.iter().zip(people.iter().step_by(2).flat_map(|p| [p, p])) {
        let holder = people.iter().find(|p| p.id == person.id).unwrap();
        let owner_of_voucher = if my_vouchers(&app, holder).await.iter().any(|v| v["id"] == voucher["id"]) {
            holder
        } else {
            &people[people.iter().position(|p| p.id == holder.id).unwrap() + 1]
        };
        let refund_url = format!("/api/v1/me/vouchers/{}/refund", voucher["id"].as_str().unwrap());
        let (refund, redeem) = tokio::join!(
            app.post(&refund_url, Some(&owner_of_voucher.token), json!({})),
            app.post(&redeem_url, Some(&owner.token), json!({"code": voucher["code"]}))
        );
        let won = [refund.0 == StatusCode::OK, redeem.0 == StatusCode::CREATED];
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "exactly one wins: {refund:?} {redeem:?}");
        if won[0] {
            refunds += 1;
            assert_eq!((redeem.0, code(&redeem.1)), (StatusCode::CONFLICT, "voucher_refunded"));
        } else {
            assert_eq!((refund.0, code(&refund.1)), (StatusCode::CONFLICT, "already_redeemed"));
        }
    }
    // Money: each refund returned 990 to its customer; each redemption paid the merchant.
    let total_available: i64 = futures::future::join_all(people.iter().map(|p| wallet(&app, p)))
        .await
        .iter()
        .map(|w| w["available"].as_i64().unwrap())
        .sum();
    assert_eq!(total_available, refunds * 990);
    let (_, merchant_wallet) = app.get(&format!("/api/v1/merchants/{merchant}/wallet"), Some(&owner.token)).await;
    assert_eq!(merchant_wallet["receivable"], 0);
    app.finish().await;
}

async fn refunds_follow_the_rules_card(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138160").await;
    let body = campaign_with(json!({"quantity": 20, "group_size": 2, "winners_per_group": 2, "voucher_valid_days": 1}));
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let people = app.customers(&operator, 4, 990).await;
    let first = two_winners(&app, &campaign, &people[0..2]).await;
    let second = two_winners(&app, &campaign, &people[2..4]).await;
    let refund = |v: &Value| format!("/api/v1/me/vouchers/{}/refund", v["id"].as_str().unwrap());

    let (status, body) = app.post(&refund(&first[0]), Some(&people[1].token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_voucher"), "only its owner returns it");
    let (status, body) = app.post(&refund(&first[0]), Some(&people[0].token), json!({})).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("refunded")), "{body}");
    assert_eq!(wallet(&app, &people[0]).await["available"], 990, "the full price, at once");
    let (status, body) = app.post(&refund(&first[0]), Some(&people[0].token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_refunded"), "exactly once");
    let (status, _) = app
        .post(
            &format!("/api/v1/merchants/{merchant}/redemptions"),
            Some(&owner.token),
            json!({"code": first[1]["code"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app.post(&refund(&first[1]), Some(&people[1].token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_redeemed"));
    app.app.clock().advance(24 * 3_600_000);
    let again = app.sign_in(&people[2].phone).await;
    let (status, body) = app.post(&refund(&second[0]), Some(&again.token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::GONE, "expired"));
    app.app.run_jobs_once().await.unwrap();
    assert_eq!(wallet(&app, &again).await["available"], 990, "refunded on expiry (过期退)");

    let (_, history) = app.get("/api/v1/me/history", Some(&app.sign_in(&people[0].phone).await.token)).await;
    assert_eq!(
        history,
        json!({"joined": 1, "won": 1, "lost": 0, "expired": 0, "refunded": 1, "rewards_cash": 0, "points": 0})
    );
    app.finish().await;
}

/// Closing an account erases the person and keeps every money record; it waits while money or a voucher is open.
async fn closing_an_account_keeps_every_money_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138170").await;
    let body = campaign_with(json!({"quantity": 20, "group_size": 2, "winners_per_group": 2}));
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let people = app.customers(&operator, 2, 1_000).await;
    let person = &people[0];

    let (status, body) = app.send(Method::DELETE, "/api/v1/me", Some(&person.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "balance_remaining"));
    let (_, opened) = app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&person.token), json!({})).await;
    let (status, body) = app.send(Method::DELETE, "/api/v1/me", Some(&person.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "money_held"));
    let group = opened["group"]["id"].as_str().unwrap();
    app.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), json!({})).await;
    let (status, body) = app.send(Method::DELETE, "/api/v1/me", Some(&person.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "voucher_pending"));
    let voucher = my_vouchers(&app, person).await.remove(0);
    app.post(
        &format!("/api/v1/merchants/{merchant}/redemptions"),
        Some(&owner.token),
        json!({"code": voucher["code"]}),
    )
    .await;
    let (status, body) = app.send(Method::DELETE, "/api/v1/me", Some(&person.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "balance_remaining"), "10 fen are left");

    // There is no withdrawal yet, so a customer credited exactly the price shows the whole way to a closed account.
    let exact = app.customer("13800138171").await;
    app.credit(&operator, json!({"user_id": exact.id}), 990).await;
    let (_, opened) = app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&exact.token), json!({})).await;
    let group = opened["group"]["id"].as_str().unwrap();
    let partner = app.customers(&operator, 1, 1_000).await.remove(0);
    app.post(&format!("/api/v1/groups/{group}/members"), Some(&partner.token), json!({})).await;
    let voucher = my_vouchers(&app, &exact).await.remove(0);
    app.post(
        &format!("/api/v1/merchants/{merchant}/redemptions"),
        Some(&owner.token),
        json!({"code": voucher["code"]}),
    )
    .await;

    // Everything but the person's own rows (users, sessions): memberships, vouchers, redemptions, the ledger.
    let money_tables = |fingerprint: String| -> String {
        let mut table = String::new();
        let mut kept = Vec::new();
        for line in fingerprint.lines() {
            if !line.starts_with("  ") {
                table = line.split(':').next().unwrap_or_default().to_owned();
            }
            if table != "users" && table != "sessions" {
                kept.push(line.to_owned());
            }
        }
        kept.join("\n")
    };
    let before = money_tables(app.db.fingerprint().await);
    let (status, _) = app.send(Method::DELETE, "/api/v1/me", Some(&exact.token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(money_tables(app.db.fingerprint().await), before, "every money record intact");
    let (status, _) = app.get("/api/v1/me", Some(&exact.token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "sessions ended");
    let (status, _) = app
        .post("/api/v1/sessions", None, json!({"phone": exact.phone, "password": tuangou_testkit::server_password()}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let fingerprint = app.db.fingerprint().await;
    assert!(!fingerprint.contains("13800138171"), "the phone is erased");
    let (status, _) =
        app.post("/api/v1/users", None, json!({"phone": exact.phone, "password": "a new start", "name": "新"})).await;
    assert_eq!(status, StatusCode::CREATED, "the number is free again");
    app.finish().await;
}

/// No preset, forced or excluded winners and no robot members: no operation of the API takes such a field, and
/// what a caller sends to the draw changes nothing.
async fn there_is_no_way_to_rig_a_draw(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, doc) = app.get("/api/v1/openapi.json", None).await;
    let text = doc["components"].to_string().to_lowercase();
    for word in ["winner_seq", "preset", "forced", "exclude", "robot", "bot_member", "fill_group", "server_seed_in"] {
        assert!(!text.contains(word), "the API has a {word} field");
    }
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let schema = operation["requestBody"].to_string();
            assert!(
                !schema.contains("winners") && !schema.contains("server_seed"),
                "{method} {path} takes winners or a seed"
            );
        }
    }
    let operator = app.operator().await;
    let owner = app.customer("13800138180").await;
    let body = campaign_with(json!({"group_size": 3, "winners_per_group": 1, "draw_mode": "scheduled"}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let people = app.customers(&operator, 3, 2_000).await;
    let (_, opened) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    let group = opened["group"]["id"].as_str().unwrap();
    for person in &people[1..] {
        app.post(&format!("/api/v1/groups/{group}/members"), Some(&person.token), json!({})).await;
    }
    for insider in [&owner, &operator] {
        let (status, body) =
            app.post(&format!("/api/v1/groups/{group}/members"), Some(&insider.token), json!({})).await;
        assert!(status == StatusCode::FORBIDDEN || status == StatusCode::CONFLICT, "{body}");
    }
    let (status, drawn) =
        app.post(&format!("/api/v1/groups/{group}/draw"), Some(&owner.token), json!({"winners": [1]})).await;
    assert_eq!(status, StatusCode::OK);
    let record: tuangou_domain::draw::GroupRecord = serde_json::from_value(drawn).unwrap();
    assert!(tuangou_domain::draw::verify_record(&record).is_ok(), "the algorithm chose, whatever was sent");
    app.finish().await;
}

on_both_backends!(
    a_refund_races_a_redemption_and_one_wins,
    refunds_follow_the_rules_card,
    closing_an_account_keeps_every_money_record,
    there_is_no_way_to_rig_a_draw,
);
