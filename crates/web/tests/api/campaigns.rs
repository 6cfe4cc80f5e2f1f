use crate::common::{CHUNXI, RESERVE, campaign_body, code, draft, live_campaign, merchant};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

async fn a_campaign_from_draft_to_ended(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138030").await;
    let customer = app.customer("13800138031").await;
    let merchant = merchant(&app, &owner, "老码头", CHUNXI).await;

    let (status, body) =
        app.post(&format!("/api/v1/merchants/{merchant}/campaigns"), Some(&customer.token), campaign_body()).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "owner_only"));
    let campaign = draft(&app, &owner, &merchant, campaign_body()).await;
    let url = format!("/api/v1/campaigns/{campaign}");
    let (status, _) = app.get(&url, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "drafts are private");
    let (status, _) = app.get(&url, Some(&customer.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.get(&url, Some(&owner.token)).await;
    assert_eq!((status, &body["status"], &body["max_reward_cost"]), (StatusCode::OK, &json!("draft"), &json!(RESERVE)));

    // A JSON merge patch: change the reward, drop the description.
    let patch = json!({"reward": {"amount": 200}, "description": null});
    let (status, body) = app.send(Method::PATCH, &url, Some(&owner.token), Some(&patch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((&body["reward"], &body["description"]), (&json!({"kind": "cash", "amount": 200}), &json!(null)));
    assert_eq!(body["max_reward_cost"], 6_000);
    let (status, body) =
        app.send(Method::PATCH, &url, Some(&owner.token), Some(&json!({"winners_per_group": 6}))).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("winners_per_group")));
    let (status, body) = app.send(Method::PATCH, &url, Some(&owner.token), Some(&json!({"title": null}))).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("title")),
        "a required field can't be removed"
    );
    let (status, _) = app.send(Method::PATCH, &url, Some(&customer.token), Some(&json!({"title": "x"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let publish = format!("{url}/publish");
    let (status, body) = app.post(&publish, Some(&owner.token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYMENT_REQUIRED, "insufficient_funds"));
    let (_, body) = app.get(&url, Some(&owner.token)).await;
    assert_eq!(body["status"], "draft", "a refused publish changes nothing");

    app.credit(&operator, json!({"merchant_id": merchant}), 10_000).await;
    let (status, body) = app.post(&publish, Some(&customer.token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "owner_only"));
    let (status, body) = app.post(&publish, Some(&owner.token), json!({})).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("live")), "{body}");
    let wallet_url = format!("/api/v1/merchants/{merchant}/wallet");
    let (_, wallet) = app.get(&wallet_url, Some(&owner.token)).await;
    assert_eq!(wallet, json!({"available": 4_000, "reward_reserve": 6_000, "receivable": 0}));
    let (status, body) = app.post(&publish, Some(&owner.token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "campaign_not_draft"));

    // A live campaign's rules never change, and that is said before the body is even read.
    let (status, body) = app.send_raw(Method::PATCH, &url, Some(&owner.token), b"{not json").await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "campaign_live"));

    let (status, body) = app.get(&url, None).await;
    assert_eq!(status, StatusCode::OK, "live campaigns are public");
    let card = &body["rules_card"];
    assert_eq!((&card["odds"], &card["price"], &card["original_price"]), (&json!("2/5"), &json!(990), &json!(19_800)));
    assert_eq!(
        card["draw"],
        json!({"method": "tuangou-draw-v1", "when": "on_fill", "description": "满员即开奖（tuangou-draw-v1，可验证）"})
    );
    assert_eq!(card["headline"], "5 人成团，2 人中奖；未中奖全额退款并得 ¥2.00 现金奖励");
    assert_eq!((&card["loser_reward"]["kind"], &card["loser_reward"]["amount"]), (&json!("cash"), &json!(200)));
    assert!(card["loser_reward"]["rules"].as_str().unwrap().contains("现金"), "Chinese by default: {card}");
    let english =
        app.client.get(format!("{}{url}", app.base)).header("accept-language", "en-GB,en;q=0.9").send().await.unwrap();
    let english: serde_json::Value = english.json().await.unwrap();
    assert!(english["rules_card"]["loser_reward"]["rules"].as_str().unwrap().contains("cash into your tuangou wallet"));
    assert_eq!(english["rules_card"]["odds"], card["odds"]);
    assert_eq!(
        english["rules_card"]["headline"],
        "Groups of 5, 2 win; everyone else gets a full refund and ¥2.00 cash"
    );
    assert_eq!(card["merchant_contact"]["phone"], "02886661234");
    assert_eq!((&body["slots_left"], &body["groups_open"]), (&json!(50), &json!(0)));

    let (status, body) = app.post(&format!("{url}/end"), Some(&owner.token), json!({})).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("ended")));
    let (_, wallet) = app.get(&wallet_url, Some(&owner.token)).await;
    assert_eq!(wallet, json!({"available": 10_000, "reward_reserve": 0, "receivable": 0}), "the reserve came back");
    let (status, body) = app.post(&format!("{url}/end"), Some(&owner.token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "campaign_not_live"));
    app.finish().await;
}

async fn a_campaign_ends_by_itself_at_its_end_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138032").await;
    let merchant = merchant(&app, &owner, "小酒馆", CHUNXI).await;
    app.credit(&operator, json!({"merchant_id": merchant}), RESERVE).await;
    let ends_at = tuangou_web::times::format(app.app.clock().now().plus_seconds(3_600));
    let mut body = campaign_body();
    body["ends_at"] = json!(ends_at);
    let campaign = draft(&app, &owner, &merchant, body).await;
    let (status, _) = app.post(&format!("/api/v1/campaigns/{campaign}/publish"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(app.app.run_jobs_once().await.unwrap(), 0, "not yet");
    app.app.clock().advance(3_600_000);
    assert_eq!(app.app.run_jobs_once().await.unwrap(), 1);
    assert_eq!(app.app.run_jobs_once().await.unwrap(), 0, "exactly once");
    let (_, body) = app.get(&format!("/api/v1/campaigns/{campaign}"), None).await;
    assert_eq!(body["status"], "ended");
    let (_, wallet) = app.get(&format!("/api/v1/merchants/{merchant}/wallet"), Some(&owner.token)).await;
    assert_eq!(wallet["available"], RESERVE);
    app.finish().await;
}

async fn the_nearby_listing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138033").await;
    // Three stores: 0 km, about 2.6 km and about 1,500 km (Beijing) from Chunxi Road.
    let (_, near) = live_campaign(&app, &operator, &owner, "春熙路店", CHUNXI).await;
    let (_, farther) = live_campaign(&app, &operator, &owner, "宽窄巷子茶馆", (30.6697, 104.0553)).await;
    let (_, beijing) = live_campaign(&app, &operator, &owner, "北京店", (39.9042, 116.4074)).await;
    let draft_merchant = merchant(&app, &owner, "草稿店", CHUNXI).await;
    draft(&app, &owner, &draft_merchant, campaign_body()).await;

    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    };
    let (status, body) = app.get("/api/v1/campaigns?lat=30.6563&lng=104.08&radius_km=10", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), vec![near.clone(), farther.clone()], "nearest first, Beijing and drafts left out");
    let first = &body["items"][0];
    assert_eq!(
        (&first["distance_km"], &first["slots_left"], &first["merchant_name"]),
        (&json!(0.0), &json!(50), &json!("春熙路店"))
    );
    let second = body["items"][1]["distance_km"].as_f64().unwrap();
    assert!((2.0..3.5).contains(&second), "{second}");

    let (_, body) = app.get("/api/v1/campaigns?lat=30.6563&lng=104.08&radius_km=2", None).await;
    assert_eq!(ids(&body), vec![near.clone()]);
    let (_, body) = app.get("/api/v1/campaigns?lat=30.6563&lng=104.08&radius_km=500", None).await;
    assert_eq!(ids(&body).len(), 2, "Beijing is farther than 500 km");
    let (_, body) = app.get("/api/v1/campaigns", None).await;
    assert_eq!(ids(&body).len(), 3, "without a position, every live campaign");
    assert!(body["items"][0].get("distance_km").is_none());
    let (_, body) = app.get(&format!("/api/v1/campaigns?q={}", "%E5%8C%97%E4%BA%AC"), None).await; // 北京
    assert_eq!(ids(&body), vec![beijing.clone()], "text matches the merchant's name");
    let (_, body) = app.get("/api/v1/campaigns?category=%E7%81%AB%E9%94%85&q=%E5%8F%8C%E4%BA%BA", None).await; // 火锅, 双人
    assert_eq!(ids(&body).len(), 3);
    let (_, body) = app.get("/api/v1/campaigns?category=bar", None).await;
    assert!(ids(&body).is_empty());

    let (_, page1) = app.get("/api/v1/campaigns?lat=30.6563&lng=104.08&radius_km=500&limit=1", None).await;
    assert_eq!(ids(&page1), vec![near]);
    let cursor = page1["next_cursor"].as_str().expect("a next page");
    let (_, page2) =
        app.get(&format!("/api/v1/campaigns?lat=30.6563&lng=104.08&radius_km=500&limit=1&cursor={cursor}"), None).await;
    assert_eq!(ids(&page2), vec![farther]);
    assert!(page2["next_cursor"].is_null());
    app.finish().await;
}

on_both_backends!(a_campaign_from_draft_to_ended, a_campaign_ends_by_itself_at_its_end_time, the_nearby_listing);
