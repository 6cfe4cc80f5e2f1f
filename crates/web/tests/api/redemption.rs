//! In the store (S4): vouchers, redemption at the counter, settlement, the undo, expiry refunds, coupons,
//! points and referral bonuses — every balance checked to the fen, on both backends.

use crate::common::{campaign_with, code, live_campaign_with, wallet};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

/// Fills one group of the campaign with `people` (the first opens it); returns the final group record.
async fn fill(app: &TestApp, campaign: &str, people: &[TestUser], invited_by: Option<&str>) -> Value {
    let (status, first) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let group = first["group"]["id"].as_str().unwrap().to_owned();
    let mut last = first["group"].clone();
    for person in &people[1..] {
        let body = json!({"invited_by": invited_by.unwrap_or(first["membership"]["ticket"].as_str().unwrap())});
        let (status, joined) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&person.token), body).await;
        assert_eq!(status, StatusCode::CREATED, "{joined}");
        last = joined["group"].clone();
    }
    last
}

fn winners(record: &Value) -> Vec<usize> {
    record["draw"]["winners"].as_array().unwrap().iter().map(|w| w.as_u64().unwrap() as usize - 1).collect()
}

async fn merchant_wallet(app: &TestApp, merchant: &str, owner: &TestUser) -> Value {
    app.get(&format!("/api/v1/merchants/{merchant}/wallet"), Some(&owner.token)).await.1
}

async fn vouchers(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/me/vouchers", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    body["items"].as_array().unwrap().clone()
}

/// S0 → S4: a merchant comes on board, publishes, a group fills and is drawn, the winners redeem at the counter,
/// the owner undoes one redemption; every account to the fen.
async fn the_whole_story_to_the_fen(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138100").await;
    // Q 4, N 5, K 2, price 990, original 19,800, ¥3 cash to each loser, commission 5 %, 10 referral points.
    let body = campaign_with(json!({"quantity": 4, "referral_bonus_points": 10}));
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let clerk = app.customer("13800138101").await;
    app.post(&format!("/api/v1/merchants/{merchant}/staff"), Some(&owner.token), json!({"phone": clerk.phone})).await;
    let people = app.customers(&operator, 5, 2_000).await;
    let record = fill(&app, &campaign, &people, None).await;
    assert_eq!(record["status"], "drawn");
    let won = winners(&record);

    // Publishing reserved (4 / 2) × 3 × 300 = 1,800; three losers took 900 of it.
    assert_eq!(
        merchant_wallet(&app, &merchant, &owner).await,
        json!({"available": 100_000_000 - 1_800, "reward_reserve": 900, "receivable": 1_980})
    );
    for (i, person) in people.iter().enumerate() {
        let w = wallet(&app, person).await;
        // Everyone but the opener was invited by the opener: 4 friends drawn → 40 points for the opener.
        let points = if i == 0 { 40 } else { 0 };
        if won.contains(&i) {
            assert_eq!(w, json!({"available": 1_010, "held": 0, "points": points}), "winner {i}");
            let mine = vouchers(&app, person).await;
            assert_eq!(mine.len(), 1);
            assert_eq!(
                (&mine[0]["kind"], &mine[0]["status"], &mine[0]["amount"]),
                (&json!("purchase"), &json!("issued"), &json!(990))
            );
        } else {
            assert_eq!(w, json!({"available": 2_300, "held": 0, "points": points}), "loser {i}");
            assert!(vouchers(&app, person).await.is_empty());
        }
    }
    let (_, memberships) = app.get("/api/v1/me/memberships", Some(&people[won[0]].token)).await;
    let code_of_first = vouchers(&app, &people[won[0]]).await[0]["code"].as_str().unwrap().to_owned();
    assert_eq!(memberships["items"][0]["voucher_code"], code_of_first.as_str());
    let loser = (0..5).find(|i| !won.contains(i)).unwrap();
    let (_, memberships) = app.get("/api/v1/me/memberships", Some(&people[loser].token)).await;
    assert_eq!(
        (&memberships["items"][0]["status"], &memberships["items"][0]["reward"]),
        (&json!("lost"), &json!({"kind": "cash", "amount": 300}))
    );

    // Its QR code is an SVG for its owner only.
    let voucher_id = vouchers(&app, &people[won[0]]).await[0]["id"].as_str().unwrap().to_owned();
    let qr = app
        .client
        .get(format!("{}/api/v1/me/vouchers/{voucher_id}/qr.svg", app.base))
        .bearer_auth(&people[won[0]].token)
        .send()
        .await
        .unwrap();
    assert_eq!((qr.status(), qr.headers()["content-type"].to_str().unwrap()), (StatusCode::OK, "image/svg+xml"));
    assert!(qr.text().await.unwrap().starts_with("<?xml"));
    let (status, _) = app.get(&format!("/api/v1/me/vouchers/{voucher_id}/qr.svg"), Some(&people[loser].token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another customer's voucher");

    // At the counter: typed loosely, previewed (no phone, no name), redeemed once.
    let loose = code_of_first.to_lowercase().replace('-', " ").replace('1', "l").replace('0', "o");
    let (status, preview) = app
        .get(&format!("/api/v1/merchants/{merchant}/vouchers/{}", loose.replace(' ', "%20")), Some(&clerk.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert!(preview.get("phone").is_none() && preview.get("name").is_none() && preview.get("user_id").is_none());
    let redeem_url = format!("/api/v1/merchants/{merchant}/redemptions");
    let (status, redeemed) = app.post(&redeem_url, Some(&clerk.token), json!({"code": loose})).await;
    assert_eq!(status, StatusCode::CREATED, "{redeemed}");
    assert_eq!((&redeemed["voucher"]["status"], &redeemed["staff_id"]), (&json!("redeemed"), &json!(clerk.id)));
    let (status, body) = app.post(&redeem_url, Some(&clerk.token), json!({"code": code_of_first})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_redeemed"));

    // Paid 990 − floor(990 × 500 / 10000) = 990 − 49 = 941; the platform took 49.
    assert_eq!(
        merchant_wallet(&app, &merchant, &owner).await,
        json!({"available": 100_000_000 - 1_800 + 941, "reward_reserve": 900, "receivable": 990})
    );
    assert_eq!(app.app.store().balance("platform:commission", "fen").await.unwrap(), 49);

    // The clerk cannot undo; the owner can, once, within the hour.
    let undo_url = format!("{redeem_url}/{}", redeemed["id"].as_str().unwrap());
    let (status, body) = app.send(Method::DELETE, &undo_url, Some(&clerk.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "owner_only"));
    let (status, body) = app.send(Method::DELETE, &undo_url, Some(&owner.token), None).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("issued")), "{body}");
    let (status, body) = app.send(Method::DELETE, &undo_url, Some(&owner.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_undone"));
    assert_eq!(
        merchant_wallet(&app, &merchant, &owner).await,
        json!({"available": 100_000_000 - 1_800, "reward_reserve": 900, "receivable": 1_980})
    );
    assert_eq!(app.app.store().balance("platform:commission", "fen").await.unwrap(), 0);

    // Redeemed again with a scan's Idempotency-Key: the scan sent twice answers the first answer twice.
    let scan = || {
        app.client
            .post(format!("{}{redeem_url}", app.base))
            .bearer_auth(&owner.token)
            .header("idempotency-key", "scan-1")
            .json(&json!({"code": code_of_first}))
            .send()
    };
    let (status, again) = TestApp::read(scan().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(
        TestApp::read(scan().await.unwrap()).await,
        (StatusCode::CREATED, again.clone()),
        "not already_redeemed"
    );
    // Past the hour the undo is refused.
    app.app.clock().advance(3_600_001);
    let late = format!("{redeem_url}/{}", again["id"].as_str().unwrap());
    let (status, body) = app.send(Method::DELETE, &late, Some(&owner.token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "undo_window_passed"));

    let (status, stats) = app.get(&format!("/api/v1/merchants/{merchant}/stats"), Some(&owner.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stats,
        json!({"participants": 5, "unique_customers": 5, "new_customers": 5, "groups_filled": 1, "winners": 2,
               "redeemed": 1, "redemption_rate": 0.5, "rewards_paid": 900, "commission_paid": 49, "cost_per_visit": 949})
    );
    let (status, _) = app.get(&format!("/api/v1/merchants/{merchant}/stats"), Some(&clerk.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "figures are for the owner");

    // The other winner never comes: 30 days later the worker refunds the voucher, exactly once.
    app.app.clock().advance(30 * 24 * 3_600_000);
    app.app.run_jobs_once().await.unwrap();
    app.app.run_jobs_once().await.unwrap();
    // Thirty days outlast a session: everyone signs in again.
    let other = app.sign_in(&people[won[1]].phone).await;
    let (owner, clerk) = (app.sign_in(&owner.phone).await, app.sign_in(&clerk.phone).await);
    assert_eq!(wallet(&app, &other).await["available"], 1_010 + 990, "the price came back");
    assert_eq!(vouchers(&app, &other).await[0]["status"], "expired");
    let code_other = vouchers(&app, &other).await[0]["code"].as_str().unwrap().to_owned();
    let (status, body) = app.post(&redeem_url, Some(&clerk.token), json!({"code": code_other})).await;
    assert_eq!((status, code(&body)), (StatusCode::GONE, "expired"));
    assert_eq!(merchant_wallet(&app, &merchant, &owner).await["receivable"], 0);
    app.finish().await;
}

/// Unknown codes, malformed codes and another merchant's codes look alike; failures are throttled.
async fn guessing_is_useless_and_throttled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138110").await;
    let rival = app.customer("13800138111").await;
    let (merchant, campaign) =
        live_campaign_with(&app, &operator, &owner, campaign_with(json!({"group_size": 2, "winners_per_group": 1})))
            .await;
    let (other_merchant, _) = live_campaign_with(&app, &operator, &rival, campaign_with(json!({}))).await;
    let people = app.customers(&operator, 2, 2_000).await;
    let record = fill(&app, &campaign, &people, None).await;
    let winner = &people[winners(&record)[0]];
    let real = vouchers(&app, winner).await[0]["code"].as_str().unwrap().to_owned();

    let other_url = format!("/api/v1/merchants/{other_merchant}/redemptions");
    let (status, other) = app.post(&other_url, Some(&rival.token), json!({"code": real})).await;
    let (_, unknown) = app.post(&other_url, Some(&rival.token), json!({"code": "ABCD-EFGH-JKMN-P"})).await;
    let (_, malformed) = app.post(&other_url, Some(&rival.token), json!({"code": "hello"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for body in [&other, &unknown, &malformed] {
        assert_eq!(
            (code(body), body["detail"].as_str()),
            (code(&other), other["detail"].as_str()),
            "indistinguishable"
        );
    }
    let (status, body) =
        app.post(&format!("/api/v1/merchants/{merchant}/redemptions"), Some(&rival.token), json!({"code": real})).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "staff_only"));
    let (status, _) = app
        .post(&format!("/api/v1/merchants/{merchant}/redemptions"), Some(&winner.token), json!({"code": real}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a customer cannot redeem their own voucher");

    // Three failures so far; seven more pass, the next is throttled with Retry-After.
    for _ in 0..7 {
        let (status, _) = app.post(&other_url, Some(&rival.token), json!({"code": "WXYZ-WXYZ-WXYZ-W"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let response = app
        .client
        .post(format!("{}{other_url}", app.base))
        .bearer_auth(&rival.token)
        .json(&json!({"code": real}))
        .send()
        .await
        .unwrap();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = TestApp::read(response).await;
    assert_eq!((status, code(&body), retry_after.as_deref()), (StatusCode::TOO_MANY_REQUESTS, "throttled", Some("60")));
    app.app.clock().advance(60_001);
    let (status, _) = app.post(&other_url, Some(&rival.token), json!({"code": "WXYZ-WXYZ-WXYZ-W"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a minute later the staff member may try again");
    // Every attempt was logged (the real one at the right counter is still to come).
    let (status, _) =
        app.post(&format!("/api/v1/merchants/{merchant}/redemptions"), Some(&owner.token), json!({"code": real})).await;
    assert_eq!(status, StatusCode::CREATED);
    app.finish().await;
}

/// Wrong codes sent together by one staff member pass the throttle at most `limit` times: the count and the
/// claim are one step, so requests in flight together cannot all see room. Previews first, then redemptions;
/// then many clerks of one merchant together pass at most the merchant's limit. A preview that finds its voucher
/// writes nothing.
async fn parallel_wrong_codes_pass_at_most_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138130").await;
    let (merchant, campaign) =
        live_campaign_with(&app, &operator, &owner, campaign_with(json!({"group_size": 2, "winners_per_group": 1})))
            .await;
    let people = app.customers(&operator, 2, 2_000).await;
    let record = fill(&app, &campaign, &people, None).await;
    let real = vouchers(&app, &people[winners(&record)[0]]).await[0]["code"].as_str().unwrap().to_owned();
    let phones: Vec<String> = (0..6).map(|i| format!("1380013814{i}")).collect();
    let clerks = futures::future::join_all(phones.iter().map(|phone| app.customer(phone))).await;
    for clerk in &clerks {
        let (status, _) = app
            .post(&format!("/api/v1/merchants/{merchant}/staff"), Some(&owner.token), json!({"phone": clerk.phone}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let count = |answers: &[(StatusCode, Value)]| {
        let not_found =
            answers.iter().filter(|(s, b)| *s == StatusCode::NOT_FOUND && code(b) == "unknown_code").count();
        let throttled =
            answers.iter().filter(|(s, b)| *s == StatusCode::TOO_MANY_REQUESTS && code(b) == "throttled").count();
        assert_eq!(not_found + throttled, answers.len(), "only 404 and 429: {answers:?}");
        (not_found, throttled)
    };
    // Distinct wrong codes of the right shape.
    let wrong = |i: usize| {
        let digits: String = format!("{:04}", i % 10_000).chars().map(|d| (b'A' + d as u8 - b'0') as char).collect();
        format!("WXYZ-WXYZ-{digits}-W")
    };

    let clerk = &clerks[0];
    let paths: Vec<String> = (0..60).map(|i| format!("/api/v1/merchants/{merchant}/vouchers/{}", wrong(i))).collect();
    let previews = paths.iter().map(|path| app.get(path, Some(&clerk.token)));
    let (not_found, throttled) = count(&futures::future::join_all(previews).await);
    eprintln!("60 parallel wrong previews on {backend:?}: {not_found} × 404, {throttled} × 429");
    assert_eq!(not_found, 10, "the staff limit, no more, no less");

    app.app.clock().advance(60_001);
    let url = format!("/api/v1/merchants/{merchant}/redemptions");
    let redeems = (0..200).map(|i| app.post(&url, Some(&clerk.token), json!({"code": wrong(i)})));
    let (not_found, throttled) = count(&futures::future::join_all(redeems).await);
    eprintln!("200 parallel wrong redemptions on {backend:?}: {not_found} × 404, {throttled} × 429");
    assert_eq!(not_found, 10, "the staff limit");
    // The real code, redeemed by another clerk meanwhile, is not held up by this one's guesses.
    let (status, body) = app.post(&url, Some(&clerks[1].token), json!({"code": real})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    app.app.clock().advance(60_001);
    let together =
        clerks.iter().flat_map(|clerk| (0..20).map(|i| app.post(&url, Some(&clerk.token), json!({"code": wrong(i)}))));
    let (not_found, throttled) = count(&futures::future::join_all(together).await);
    eprintln!("6 clerks × 20 parallel wrong redemptions on {backend:?}: {not_found} × 404, {throttled} × 429");
    assert_eq!(not_found, 50, "the merchant's limit");

    // A preview that finds its voucher writes nothing (the owner has not failed in this window).
    let before = app.db.fingerprint().await;
    app.app.clock().advance(60_001);
    let (status, _) = app.get(&format!("/api/v1/merchants/{merchant}/vouchers/{real}"), Some(&owner.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.db.fingerprint().await, before, "a preview is a read");
    app.finish().await;
}

/// Coupons are vouchers of their own that move no money; points rewards are points.
async fn coupons_and_points_for_those_not_drawn(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138120").await;
    let coupon = campaign_with(
        json!({"group_size": 3, "winners_per_group": 1, "reward": {"kind": "coupon", "amount": 2_000, "valid_days": 7}}),
    );
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, coupon).await;
    let people = app.customers(&operator, 3, 2_000).await;
    let record = fill(&app, &campaign, &people, Some("t-nobody")).await;
    let won = winners(&record)[0];
    let loser = (0..3).find(|i| *i != won).unwrap();
    let mine = vouchers(&app, &people[loser]).await;
    assert_eq!(mine.len(), 1);
    assert_eq!((&mine[0]["kind"], &mine[0]["amount"]), (&json!("coupon"), &json!(2_000)));
    assert_eq!(
        wallet(&app, &people[loser]).await,
        json!({"available": 2_000, "held": 0, "points": 0}),
        "refunded, no cash"
    );
    let before = app.get(&format!("/api/v1/merchants/{merchant}/wallet"), Some(&owner.token)).await.1;
    let (status, _) = app
        .post(
            &format!("/api/v1/merchants/{merchant}/redemptions"),
            Some(&owner.token),
            json!({"code": mine[0]["code"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let after = app.get(&format!("/api/v1/merchants/{merchant}/wallet"), Some(&owner.token)).await.1;
    assert_eq!(before, after, "a coupon moves no money");

    let points =
        campaign_with(json!({"group_size": 2, "winners_per_group": 1, "reward": {"kind": "points", "amount": 50}}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, points).await;
    let more = app.customers(&operator, 2, 2_000).await;
    let record = fill(&app, &campaign, &more[..], Some("t-nobody")).await;
    let loser = 1 - winners(&record)[0];
    assert_eq!(wallet(&app, &more[loser]).await["points"], 50);
    app.finish().await;
}

on_both_backends!(
    the_whole_story_to_the_fen,
    guessing_is_useless_and_throttled,
    parallel_wrong_codes_pass_at_most_the_limit,
    coupons_and_points_for_those_not_drawn
);
