//! What the API tests share: a merchant with a funded wallet, a campaign body, and small assertions.

#![allow(dead_code)] // each test file uses its own part

use reqwest::StatusCode;
use serde_json::{Value, json};
use tuangou_testkit::{TestApp, TestUser, server_password};

/// A store in Chengdu's centre (Chunxi Road).
pub const CHUNXI: (f64, f64) = (30.6563, 104.0800);

/// A customer with a name of their choosing, signed up and in.
pub async fn named_customer(app: &TestApp, phone: &str, name: &str) -> TestUser {
    let body = json!({"phone": phone, "password": server_password(), "name": name});
    let (status, answer) = app.post("/api/v1/users", None, body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    app.sign_in(phone).await
}

pub fn merchant_body(name: &str, (lat, lng): (f64, f64)) -> Value {
    json!({
        "name": name, "category": "火锅", "description": "老店", "address": "锦江区春熙路 8 号",
        "latitude": lat, "longitude": lng, "phone": "028-8666 1234", "opening_hours": "11:00–23:00"
    })
}

/// A campaign: Q 20, N 5, K 2, ¥3 cash to each loser, so publishing reserves 10 × 3 × 300 = 9,000 fen.
pub fn campaign_body() -> Value {
    json!({
        "title": "双人火锅套餐", "product_type": "火锅", "description": "麻辣锅底",
        "quantity": 20, "price": 990, "original_price": 19800, "group_size": 5, "winners_per_group": 2,
        "reward": {"kind": "cash", "amount": 300}, "commission_bps": 500, "group_ttl_seconds": 3600,
        "draw_mode": "instant", "voucher_valid_days": 30
    })
}

pub const RESERVE: i64 = 9_000;

/// Creates a merchant owned by `owner`; returns its id.
pub async fn merchant(app: &TestApp, owner: &TestUser, name: &str, at: (f64, f64)) -> String {
    let (status, body) = app.post("/api/v1/merchants", Some(&owner.token), merchant_body(name, at)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Creates a draft campaign; returns its id.
pub async fn draft(app: &TestApp, owner: &TestUser, merchant: &str, body: Value) -> String {
    let (status, answer) = app.post(&format!("/api/v1/merchants/{merchant}/campaigns"), Some(&owner.token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["id"].as_str().unwrap().to_owned()
}

/// A live campaign at a funded merchant; returns (merchant, campaign).
pub async fn live_campaign(
    app: &TestApp,
    operator: &TestUser,
    owner: &TestUser,
    name: &str,
    at: (f64, f64),
) -> (String, String) {
    let merchant = merchant(app, owner, name, at).await;
    app.credit(operator, json!({"merchant_id": merchant}), RESERVE).await;
    let campaign = draft(app, owner, &merchant, campaign_body()).await;
    let (status, body) =
        app.post(&format!("/api/v1/campaigns/{campaign}/publish"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (merchant, campaign)
}

/// A live campaign made from `body` at a funded merchant; returns (merchant, campaign).
pub async fn live_campaign_with(app: &TestApp, operator: &TestUser, owner: &TestUser, body: Value) -> (String, String) {
    let merchant = merchant(app, owner, "老码头", CHUNXI).await;
    app.credit(operator, json!({"merchant_id": merchant}), 100_000_000).await;
    let campaign = draft(app, owner, &merchant, body).await;
    let (status, answer) =
        app.post(&format!("/api/v1/campaigns/{campaign}/publish"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    (merchant, campaign)
}

/// `campaign_body()` with some fields replaced.
pub fn campaign_with(changes: Value) -> Value {
    let mut body = campaign_body();
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

pub async fn wallet(app: &TestApp, user: &TestUser) -> Value {
    let (status, body) = app.get("/api/v1/me/wallet", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    body
}

pub fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("")
}

/// A winner's purchase voucher at `owner`'s store 老码头 (a live campaign of groups of 2 with 1 winner, `changes`
/// applied): returns (merchant, the winner, the voucher as `GET /api/v1/me/vouchers` lists it).
pub async fn won_voucher(
    app: &TestApp,
    operator: &TestUser,
    owner: &TestUser,
    changes: Value,
) -> (String, TestUser, Value) {
    let mut body = campaign_with(json!({"group_size": 2, "winners_per_group": 1, "quantity": 4}));
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    let (merchant, campaign) = live_campaign_with(app, operator, owner, body).await;
    let mut people = app.customers(operator, 2, 5_000).await;
    let (status, opened) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let group = opened["group"]["id"].as_str().unwrap();
    let (status, record) =
        app.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{record}");
    let winner = people.swap_remove(record["group"]["draw"]["winners"][0].as_u64().unwrap() as usize - 1);
    let (_, vouchers) = app.get("/api/v1/me/vouchers", Some(&winner.token)).await;
    (merchant, winner, vouchers["items"][0].clone())
}

/// A winner and their purchase voucher, as `GET /api/v1/me/vouchers` listed it when it was won.
pub struct Won {
    pub winner: TestUser,
    pub voucher: Value,
}

impl Won {
    pub fn id(&self) -> &str {
        self.voucher["id"].as_str().expect("a voucher id")
    }

    pub fn code(&self) -> &str {
        self.voucher["code"].as_str().expect("a voucher code")
    }
}

/// Fills a group of `campaign` (groups of two, one winner) with two customers who each had exactly `price`;
/// returns its winner and their voucher, issued.
pub async fn winner(app: &TestApp, operator: &TestUser, campaign: &str, price: i64) -> Won {
    let people = app.customers(operator, 2, price).await;
    let (status, first) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let group = first["group"]["id"].as_str().expect("a group id");
    let (status, last) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), json!({})).await;
    assert_eq!((status, last["group"]["status"].as_str()), (StatusCode::CREATED, Some("drawn")), "{last}");
    for person in people {
        let (_, mine) = app.get("/api/v1/me/vouchers", Some(&person.token)).await;
        if let [voucher] = mine["items"].as_array().expect("items").as_slice() {
            assert_eq!((&voucher["kind"], &voucher["status"]), (&json!("purchase"), &json!("issued")));
            return Won { winner: person, voucher: voucher.clone() };
        }
    }
    panic!("nobody won group {group}");
}
