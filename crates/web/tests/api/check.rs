//! The invariant check finds each way the data can go wrong: a copy of a real database is corrupted one way at a
//! time, behind the service's back, and `GET /admin/check` must name the broken invariant.

use crate::common::{campaign_with, live_campaign_with};
use reqwest::StatusCode;
use serde_json::json;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

/// A campaign with one drawn group (N 3, K 1, cash reward) and one open group of two members.
async fn scene(backend: Backend) -> (TestApp, String) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138080").await;
    let body = campaign_with(json!({"quantity": 4, "group_size": 3, "winners_per_group": 1}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let people = app.customers(&operator, 5, 5_000).await;
    let (_, first) = app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    let group = first["group"]["id"].as_str().unwrap().to_owned();
    for person in &people[1..3] {
        app.post(&format!("/api/v1/groups/{group}/members"), Some(&person.token), json!({})).await;
    }
    let (_, second) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[3].token), json!({})).await;
    let open = second["group"]["id"].as_str().unwrap();
    app.post(&format!("/api/v1/groups/{open}/members"), Some(&people[4].token), json!({})).await;
    (app, operator.token)
}

async fn reported(backend: Backend, corruption: &[&str], invariant: u8) {
    let (app, operator) = scene(backend).await;
    let (status, body) = app.get("/api/v1/admin/check", Some(&operator)).await;
    assert_eq!((status, &body["ok"]), (StatusCode::OK, &json!(true)), "clean before: {body}");
    for statement in corruption {
        app.db.execute(statement).await;
    }
    let (_, body) = app.get("/api/v1/admin/check", Some(&operator)).await;
    assert_eq!(body["ok"], false, "{corruption:?} went unnoticed");
    let invariants: Vec<u64> =
        body["violations"].as_array().unwrap().iter().map(|v| v["invariant"].as_u64().unwrap()).collect();
    assert!(invariants.contains(&u64::from(invariant)), "{corruption:?} should break invariant {invariant}: {body}");
}

async fn check_sees_an_unbalanced_ledger(backend: Backend) {
    reported(backend, &["UPDATE ledger_postings SET amount = amount + 1 WHERE account LIKE '%:held'"], 1).await;
}

async fn check_sees_an_overfull_group(backend: Backend) {
    // The schema refuses `member_count > group_size` outright; a member slipped in beside the counter is seen.
    reported(
        backend,
        &["INSERT INTO memberships (id, group_id, campaign_id, user_id, seq, ticket, client_seed, price, status, created_at)
           SELECT 'intruder', g.id, m.campaign_id, m.user_id, 99, 't-intruder', 'x', m.price, 'lost', m.created_at
           FROM memberships m, groups g WHERE m.status = 'waiting' AND g.status = 'drawn' LIMIT 1"],
        2,
    )
    .await;
}

async fn check_sees_a_draw_that_does_not_verify(backend: Backend) {
    // The first byte always changes (a seed that began with 00 would otherwise stay the same, 1 time in 256).
    let corruption =
        "UPDATE groups SET server_seed = CASE WHEN SUBSTR(server_seed, 1, 2) = '00' THEN 'ff' ELSE '00' END
                          || SUBSTR(server_seed, 3) WHERE status = 'drawn'";
    reported(backend, &[corruption], 3).await;
}

async fn check_sees_a_second_winner(backend: Backend) {
    reported(backend, &["UPDATE memberships SET status = 'won' WHERE status = 'lost'"], 3).await;
}

async fn check_sees_a_missing_refund(backend: Backend) {
    reported(backend, &["UPDATE ledger_entries SET reference = NULL WHERE reference LIKE 'refund:%'"], 4).await;
}

async fn check_sees_a_winner_without_a_voucher(backend: Backend) {
    reported(
        backend,
        &["UPDATE vouchers SET membership_id = (SELECT id FROM memberships WHERE status = 'waiting' LIMIT 1)"],
        4,
    )
    .await;
}

async fn check_sees_a_voucher_redeemed_twice(backend: Backend) {
    let (app, operator) = scene(backend).await;
    let owner = app.sign_in("13800138080").await;
    // Redeem the winner's voucher properly, then forge a second standing redemption beside it.
    let merchant =
        app.app.store().roles_of(&tuangou_domain::ids::UserId::from_trusted(&owner.id)).await.unwrap()[0].0.to_string();
    let voucher = app.app.store().vouchers_of_membership(&winner_membership(&app).await).await.unwrap().remove(0);
    let code = app.app.settings().secret.code_for(&voucher.id).display();
    let (status, _) =
        app.post(&format!("/api/v1/merchants/{merchant}/redemptions"), Some(&owner.token), json!({"code": code})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = app.get("/api/v1/admin/check", Some(&operator)).await;
    assert_eq!(body["ok"], true, "{body}");
    app.db
        .execute(
            "INSERT INTO redemptions (id, voucher_id, merchant_id, staff_id, redeemed_at)
                  SELECT 'forged', voucher_id, merchant_id, staff_id, redeemed_at FROM redemptions",
        )
        .await;
    let (_, body) = app.get("/api/v1/admin/check", Some(&operator)).await;
    assert!(body["violations"].as_array().unwrap().iter().any(|v| v["invariant"] == 6), "{body}");
}

async fn winner_membership(app: &TestApp) -> String {
    let ids: Vec<String> = app.app.store().drawn_groups(None, 10).await.unwrap()[0]
        .1
        .iter()
        .filter(|m| m.status == "won")
        .map(|m| m.id.clone())
        .collect();
    ids[0].clone()
}

async fn check_sees_oversold_stock(backend: Backend) {
    // The schema refuses `reserved + won > quantity`; counters that disagree with the groups are seen.
    reported(backend, &["UPDATE campaigns SET won_units = won_units - 1, reserved_units = reserved_units + 2"], 5)
        .await;
}

async fn check_sees_a_customer_over_the_limit(backend: Backend) {
    reported(backend, &["UPDATE campaigns SET per_customer_limit = 0"], 7).await;
}

on_both_backends!(
    check_sees_an_unbalanced_ledger,
    check_sees_an_overfull_group,
    check_sees_a_draw_that_does_not_verify,
    check_sees_a_second_winner,
    check_sees_a_missing_refund,
    check_sees_oversold_stock,
    check_sees_a_winner_without_a_voucher,
    check_sees_a_voucher_redeemed_twice,
    check_sees_a_customer_over_the_limit,
);
