//! The `commission_share` loser reward (SPEC.md S4, claim 4): each redemption of a winner's voucher shares part of
//! the platform's commission with the group's losers, an undo takes it back, a refunded or expired voucher shares
//! nothing — every wallet to the fen, `GET /admin/check` clean after each step, on both backends.

use crate::common::{campaign_with, code, draft, live_campaign_with, merchant, wallet};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

/// Price ¥100, commission 10 %: 1,000 fen a voucher; 35 % of it, 350, split by N − K = 3 losers: 116 each, and
/// 2 fen stay with the platform.
const PRICE: i64 = 10_000;
const COMMISSION: i64 = 1_000;
const EACH: i64 = 116;

fn share_body(changes: Value) -> Value {
    let mut body = campaign_with(json!({
        "price": PRICE, "original_price": 19_800, "commission_bps": 1_000,
        "reward": {"kind": "commission_share", "share_bps": 3_500}
    }));
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// Fills one group of `campaign` with `people`; returns the drawn group's record.
async fn fill(app: &TestApp, campaign: &str, people: &[TestUser]) -> Value {
    let (status, first) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let group = first["group"]["id"].as_str().unwrap().to_owned();
    let mut last = first["group"].clone();
    for person in &people[1..] {
        let (status, joined) =
            app.post(&format!("/api/v1/groups/{group}/members"), Some(&person.token), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{joined}");
        last = joined["group"].clone();
    }
    assert_eq!(last["status"], "drawn", "{last}");
    last
}

/// (winners, losers) of a drawn group, by index into `people`.
fn outcome(record: &Value, people: usize) -> (Vec<usize>, Vec<usize>) {
    let won: Vec<usize> =
        record["draw"]["winners"].as_array().unwrap().iter().map(|w| w.as_u64().unwrap() as usize - 1).collect();
    let lost = (0..people).filter(|i| !won.contains(i)).collect();
    (won, lost)
}

async fn voucher_code(app: &TestApp, user: &TestUser) -> (String, String) {
    let (status, body) = app.get("/api/v1/me/vouchers", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    let voucher = &body["items"][0];
    (voucher["id"].as_str().unwrap().to_owned(), voucher["code"].as_str().unwrap().to_owned())
}

async fn redeem(app: &TestApp, owner: &TestUser, merchant: &str, code: &str) -> String {
    let (status, body) =
        app.post(&format!("/api/v1/merchants/{merchant}/redemptions"), Some(&owner.token), json!({"code": code})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn undo(app: &TestApp, owner: &TestUser, merchant: &str, redemption: &str) -> (StatusCode, Value) {
    app.send(
        Method::DELETE,
        &format!("/api/v1/merchants/{merchant}/redemptions/{redemption}"),
        Some(&owner.token),
        None,
    )
    .await
}

async fn available(app: &TestApp, user: &TestUser) -> i64 {
    wallet(app, user).await["available"].as_i64().unwrap()
}

async fn platform(app: &TestApp) -> i64 {
    app.app.store().balance("platform:commission", "fen").await.unwrap()
}

/// `GET /api/v1/admin/check` answers ok: the ledger balances and no account is below zero.
async fn check_ok(app: &TestApp, operator: &TestUser) {
    let (status, body) = app.get("/api/v1/admin/check", Some(&operator.token)).await;
    assert_eq!((status, &body["ok"]), (StatusCode::OK, &json!(true)), "{body}");
}

/// The reward `GET /me/memberships` shows for the caller's newest membership.
async fn membership_reward(app: &TestApp, user: &TestUser) -> Value {
    let (status, body) = app.get("/api/v1/me/memberships", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    body["items"][0]["reward"].clone()
}

/// How many share credits and reversals the ledger holds.
async fn share_entries(app: &TestApp) -> i64 {
    app.db
        .scalar("SELECT COUNT(*) FROM ledger_entries WHERE reference LIKE 'share:%' OR reference LIKE 'unshare:%'")
        .await
}

/// A live commission-share campaign, one group filled by five customers each credited the price.
struct Drawn {
    app: TestApp,
    operator: TestUser,
    owner: TestUser,
    merchant: String,
    people: Vec<TestUser>,
    won: Vec<usize>,
    lost: Vec<usize>,
}

async fn drawn(backend: Backend, owner_phone: &str, body: Value) -> Drawn {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer(owner_phone).await;
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let n = app.get(&format!("/api/v1/campaigns/{campaign}"), None).await.1["group_size"].as_u64().unwrap() as usize;
    let people = app.customers(&operator, n, PRICE).await;
    let record = fill(&app, &campaign, &people).await;
    let (won, lost) = outcome(&record, n);
    Drawn { app, operator, owner, merchant, people, won, lost }
}

/// 400 with the field for every malformed reward; a valid one is stored as sent, reserves nothing, and its rules
/// card says the most a loser can receive.
async fn a_commission_share_is_validated_and_reserves_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138700").await;
    let shop = merchant(&app, &owner, "老码头", crate::common::CHUNXI).await;
    let url = format!("/api/v1/merchants/{shop}/campaigns");
    let share = |reward: Value| share_body(json!({"reward": reward}));
    for (reward, field) in [
        (json!({"kind": "commission_share"}), "reward.share_bps"),
        (json!({"kind": "commission_share", "share_bps": 0}), "reward.share_bps"),
        (json!({"kind": "commission_share", "share_bps": 10_001}), "reward.share_bps"),
        (json!({"kind": "commission_share", "share_bps": 100, "amount": 300}), "reward.amount"),
        (json!({"kind": "commission_share", "share_bps": 100, "valid_days": 3}), "reward.valid_days"),
        (json!({"kind": "cash", "amount": 300, "share_bps": 100}), "reward.share_bps"),
        (json!({"kind": "cash"}), "reward.amount"),
        (json!({"kind": "shares", "share_bps": 100}), "reward.kind"),
    ] {
        let (status, body) = app.post(&url, Some(&owner.token), share(reward.clone())).await;
        assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{reward}: {body}");
    }

    // Valid: stored as sent (no amount), nothing to reserve, so a merchant with an empty wallet publishes it.
    let (status, created) = app.post(&url, Some(&owner.token), share_body(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["reward"], json!({"kind": "commission_share", "share_bps": 3_500}));
    assert_eq!(created["max_reward_cost"], 0);
    let id = created["id"].as_str().unwrap();
    let (status, published) = app.post(&format!("/api/v1/campaigns/{id}/publish"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{published}");
    let (_, shop_wallet) = app.get(&format!("/api/v1/merchants/{shop}/wallet"), Some(&owner.token)).await;
    assert_eq!(shop_wallet, json!({"available": 0, "reward_reserve": 0, "receivable": 0}));

    // The card: at most K × floor(floor(1,000 × 35 %) / 3) = 2 × 116 = 232 fen, in both languages.
    let card = app
        .client
        .get(format!("{}/api/v1/campaigns/{id}", app.base))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let (_, en) = TestApp::read(card).await;
    let reward = &en["rules_card"]["loser_reward"];
    assert_eq!(
        (&reward["kind"], &reward["amount"], &reward["share_bps"]),
        (&json!("commission_share"), &json!(232), &json!(3_500))
    );
    let rules = reward["rules"].as_str().unwrap();
    assert!(rules.contains("35%") && rules.contains("at most ¥2.32"), "{rules}");
    let (_, zh) = app.get(&format!("/api/v1/campaigns/{id}"), None).await;
    let rules = zh["rules_card"]["loser_reward"]["rules"].as_str().unwrap();
    assert!(rules.contains("35%") && rules.contains("最多共得 ¥2.32"), "{rules}");
    assert!(zh["rules_card"]["headline"].as_str().unwrap().contains("平台佣金分成（每人最多 ¥2.32）"));

    // A cash draft becomes a commission share by a merge patch that drops its amount.
    app.credit(&operator, json!({"merchant_id": shop}), 100_000).await;
    let cash = draft(&app, &owner, &shop, campaign_with(json!({}))).await;
    let patch = |body: Value| {
        app.client
            .patch(format!("{}/api/v1/campaigns/{cash}", app.base))
            .bearer_auth(&owner.token)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
            .send()
    };
    let (status, body) = TestApp::read(patch(json!({"reward": {"kind": "commission_share"}})).await.unwrap()).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("reward.amount")), "{body}");
    let change = json!({"reward": {"kind": "commission_share", "amount": null, "share_bps": 10_000}});
    let (status, body) = TestApp::read(patch(change).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["reward"], &body["max_reward_cost"]),
        (&json!({"kind": "commission_share", "share_bps": 10_000}), &json!(0))
    );
    check_ok(&app, &operator).await;
    app.finish().await;
}

/// N 5, K 2: each redemption pays 3 losers 116 fen each from the platform's commission (2 fen stay with it); an
/// undo takes it back; redeem → undo → redeem shares again, once per redemption.
async fn redemptions_share_and_undos_take_back(backend: Backend) {
    let Drawn { app, operator, owner, merchant, people, won, lost } =
        drawn(backend, "13800138710", share_body(json!({}))).await;
    for &l in &lost {
        assert_eq!(available(&app, &people[l]).await, PRICE, "the price came back at the draw, nothing more yet");
        assert_eq!(membership_reward(&app, &people[l]).await, json!({"kind": "commission_share", "amount": 0}));
    }
    let (_, first_code) = voucher_code(&app, &people[won[0]]).await;
    let (_, second_code) = voucher_code(&app, &people[won[1]]).await;
    let losers_have = |amount: i64| {
        let (app, people, lost) = (&app, &people, &lost);
        async move {
            for &l in lost {
                assert_eq!(available(app, &people[l]).await, amount, "loser {l}");
            }
        }
    };

    // Redeemed: 1,000 to the platform, 348 of it on to the losers.
    let first = redeem(&app, &owner, &merchant, &first_code).await;
    losers_have(PRICE + EACH).await;
    assert_eq!(platform(&app).await, COMMISSION - 3 * EACH);
    assert_eq!(membership_reward(&app, &people[lost[0]]).await, json!({"kind": "commission_share", "amount": EACH}));
    check_ok(&app, &operator).await;

    // Undone: every share comes back by new entries (three credits, three reversals).
    let (status, body) = undo(&app, &owner, &merchant, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    losers_have(PRICE).await;
    assert_eq!(platform(&app).await, 0);
    assert_eq!(share_entries(&app).await, 6);
    assert_eq!(membership_reward(&app, &people[lost[1]]).await, json!({"kind": "commission_share", "amount": 0}));
    check_ok(&app, &operator).await;

    // Redeemed again, and the other winner too: two shares each, the card's most (232).
    let again = redeem(&app, &owner, &merchant, &first_code).await;
    let second = redeem(&app, &owner, &merchant, &second_code).await;
    losers_have(PRICE + 2 * EACH).await;
    assert_eq!(platform(&app).await, 2 * (COMMISSION - 3 * EACH));
    assert_eq!(share_entries(&app).await, 12);
    assert_eq!(membership_reward(&app, &people[lost[2]]).await, json!({"kind": "commission_share", "amount": 232}));
    let (_, history) = app.get("/api/v1/me/history", Some(&people[lost[2]].token)).await;
    assert_eq!(history["rewards_cash"], 2 * EACH);
    check_ok(&app, &operator).await;

    // Undone again: the second redemption's shares go back, the first's stay.
    let (status, _) = undo(&app, &owner, &merchant, &second).await;
    assert_eq!(status, StatusCode::OK);
    losers_have(PRICE + EACH).await;
    let (_, history) = app.get("/api/v1/me/history", Some(&people[lost[2]].token)).await;
    assert_eq!(history["rewards_cash"], EACH, "net of the undo");
    let (status, body) = undo(&app, &owner, &merchant, &second).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_undone"));
    losers_have(PRICE + EACH).await;

    // The merchant's figures count only what its reserves paid: the platform pays the shares.
    let (_, stats) = app.get(&format!("/api/v1/merchants/{merchant}/stats"), Some(&owner.token)).await;
    assert_eq!(
        (&stats["rewards_paid"], &stats["commission_paid"], &stats["redeemed"]),
        (&json!(0), &json!(COMMISSION), &json!(1))
    );
    let _ = again;
    check_ok(&app, &operator).await;
    app.finish().await;
}

/// A loser who already spent their share loses only what is left: the undo takes what their wallet holds and the
/// platform bears the rest. When the platform's commission account cannot bear it either, the undo is refused
/// (402) and nothing changes.
async fn an_undo_takes_back_what_a_loser_still_holds(backend: Backend) {
    let Drawn { app, operator, owner, merchant, people, won, lost } =
        drawn(backend, "13800138720", share_body(json!({}))).await;
    let first = redeem(&app, &owner, &merchant, &voucher_code(&app, &people[won[0]]).await.1).await;
    let second = redeem(&app, &owner, &merchant, &voucher_code(&app, &people[won[1]]).await.1).await;
    assert_eq!(platform(&app).await, 2 * (COMMISSION - 3 * EACH));

    // The spender joins another deal that takes all but 32 fen of their wallet (10,232 → 32).
    let spender = &people[lost[0]];
    let other_owner = app.customer("13800138721").await;
    let dear = campaign_with(json!({"price": PRICE + 2 * EACH - 32, "original_price": 19_800, "group_size": 10}));
    let (_, other) = live_campaign_with(&app, &operator, &other_owner, dear).await;
    let (status, body) = app.post(&format!("/api/v1/campaigns/{other}/groups"), Some(&spender.token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(available(&app, spender).await, 32);

    // Undo the first: 116 back from the other two, 32 from the spender; the platform bears 84.
    let (status, body) = undo(&app, &owner, &merchant, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(available(&app, spender).await, 0);
    for &l in &lost[1..] {
        assert_eq!(available(&app, &people[l]).await, PRICE + EACH);
    }
    assert_eq!(platform(&app).await, 2 * (COMMISSION - 3 * EACH) - COMMISSION + 2 * EACH + 32);
    assert_eq!(membership_reward(&app, spender).await["amount"], json!(null), "newest membership is the other deal");
    let (_, memberships) = app.get("/api/v1/me/memberships", Some(&spender.token)).await;
    let shared = memberships["items"].as_array().unwrap().iter().find(|m| m["status"] == "lost").unwrap();
    assert_eq!(shared["reward"], json!({"kind": "commission_share", "amount": 2 * EACH - 32}));
    check_ok(&app, &operator).await;

    // Undo the second: the platform would have to pay 1,000 − 232 = 768 out of 568: refused, nothing changes.
    let before = (platform(&app).await, available(&app, &people[lost[1]]).await);
    let (status, body) = undo(&app, &owner, &merchant, &second).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYMENT_REQUIRED, "insufficient_funds"), "{body}");
    assert_eq!((platform(&app).await, available(&app, &people[lost[1]]).await), before);
    let (_, vouchers) = app.get("/api/v1/me/vouchers", Some(&people[won[1]].token)).await;
    assert_eq!(vouchers["items"][0]["status"], "redeemed");
    check_ok(&app, &operator).await;
    app.finish().await;
}

/// A voucher returned for a refund, or expired unredeemed, earned no commission: nothing is shared.
async fn refunded_and_expired_vouchers_share_nothing(backend: Backend) {
    let Drawn { app, operator, owner: _, merchant: _, people, won, lost } =
        drawn(backend, "13800138730", share_body(json!({}))).await;
    let (returned, _) = voucher_code(&app, &people[won[0]]).await;
    let (status, body) =
        app.post(&format!("/api/v1/me/vouchers/{returned}/refund"), Some(&people[won[0]].token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(available(&app, &people[won[0]]).await, PRICE);
    check_ok(&app, &operator).await;

    // 30 days on, the other voucher expires and is refunded.
    app.app.clock().advance(31 * 24 * 3_600_000);
    app.app.run_jobs_once().await.unwrap();
    app.app.run_jobs_once().await.unwrap();
    let late = app.sign_in(&people[won[1]].phone).await;
    assert_eq!(available(&app, &late).await, PRICE, "the expired voucher's price came back");
    for &l in &lost {
        let loser = app.sign_in(&people[l].phone).await;
        assert_eq!(available(&app, &loser).await, PRICE, "loser {l}: nothing shared");
        assert_eq!(membership_reward(&app, &loser).await, json!({"kind": "commission_share", "amount": 0}));
    }
    assert_eq!((platform(&app).await, share_entries(&app).await), (0, 0));
    let operator = app.sign_in(&operator.phone).await;
    check_ok(&app, &operator).await;
    app.finish().await;
}

/// K = N: no losers, so the platform keeps the whole commission; and a share below a fen each writes nothing.
async fn no_losers_or_no_fen_share_nothing(backend: Backend) {
    let everyone_wins = share_body(json!({"group_size": 2, "winners_per_group": 2, "quantity": 2}));
    let Drawn { app, operator, owner, merchant, people, won, lost } =
        drawn(backend, "13800138740", everyone_wins).await;
    assert_eq!((won.len(), lost.len()), (2, 0));
    for person in &people {
        redeem(&app, &owner, &merchant, &voucher_code(&app, person).await.1).await;
    }
    assert_eq!((platform(&app).await, share_entries(&app).await), (2 * COMMISSION, 0));
    check_ok(&app, &operator).await;

    // 0.01 % of 1,000 fen is 0.1 fen: floored to nothing, and nothing is written.
    let owner2 = app.customer("13800138741").await;
    let tiny = share_body(json!({"reward": {"kind": "commission_share", "share_bps": 1}}));
    let (merchant2, campaign2) = live_campaign_with(&app, &operator, &owner2, tiny).await;
    let (_, detail) = app.get(&format!("/api/v1/campaigns/{campaign2}"), None).await;
    assert_eq!(detail["rules_card"]["loser_reward"]["amount"], 0);
    let five = app.customers(&operator, 5, PRICE).await;
    let record = fill(&app, &campaign2, &five).await;
    let (won, lost) = outcome(&record, 5);
    redeem(&app, &owner2, &merchant2, &voucher_code(&app, &five[won[0]]).await.1).await;
    assert_eq!((platform(&app).await, share_entries(&app).await), (3 * COMMISSION, 0));
    assert_eq!(available(&app, &five[lost[0]]).await, PRICE);
    check_ok(&app, &operator).await;
    app.finish().await;
}

/// The page at `path` as `who` reads it in `lang`.
async fn page(app: &TestApp, path: &str, who: &TestUser, lang: &str) -> String {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .header("accept-language", lang)
        .header("cookie", format!("tuangou_session={}", who.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

/// The editor offers the kind with its share field, the campaign page and the editor's preview show the card,
/// a loser's page what was shared with them, in both languages; the OpenAPI document describes the reward.
async fn the_pages_and_the_document_show_it(backend: Backend) {
    let Drawn { app, operator, owner, merchant, people, won, lost } =
        drawn(backend, "13800138750", share_body(json!({}))).await;
    redeem(&app, &owner, &merchant, &voucher_code(&app, &people[won[0]]).await.1).await;

    let editor = page(&app, &format!("/shop/{merchant}/campaigns/new"), &owner, "zh-CN").await;
    assert!(editor.contains(r#"value="commission_share""#) && editor.contains(r#"name="reward.share_bps""#));
    assert!(editor.contains("平台佣金分成") && editor.contains("未中奖者分得的佣金比例"));
    let editor = page(&app, &format!("/shop/{merchant}/campaigns/new"), &owner, "en").await;
    assert!(editor.contains("Share of the platform commission"));
    let id = draft(&app, &owner, &merchant, share_body(json!({}))).await;
    let edit = page(&app, &format!("/shop/campaigns/{id}/edit"), &owner, "en").await;
    assert!(
        edit.contains(r#"value="commission_share" selected"#) && edit.contains(r#"value="35""#),
        "the draft's 35 %"
    );

    let preview = app
        .client
        .post(format!("{}/shop/{merchant}/campaigns/preview", app.base))
        .header("accept-language", "zh-CN")
        .json(&share_body(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), StatusCode::OK);
    assert!(preview.text().await.unwrap().contains("最多共得 ¥2.32"));
    let campaign = page(&app, &format!("/c/{id}"), &owner, "en").await;
    assert!(campaign.contains("at most ¥2.32 each in all"), "the draft's card, for its owner");

    let loser = &people[lost[0]];
    assert!(page(&app, "/me", loser, "zh-CN").await.contains("佣金分成 已得 ¥1.16"));
    assert!(page(&app, "/me", loser, "en").await.contains("commission share ¥1.16 so far"));

    let (_, doc) = app.get("/api/v1/openapi.json", None).await;
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["RewardKind"]["enum"].as_array().unwrap().contains(&json!("commission_share")),
        "{}",
        schemas["RewardKind"]
    );
    assert_eq!(schemas["RewardBody"]["properties"]["share_bps"]["maximum"], 10_000);
    assert_eq!(schemas["RewardBody"]["required"], json!(["kind"]), "amount is not required any more");
    assert!(schemas["MembershipReward"]["properties"]["amount"].is_object());
    check_ok(&app, &operator).await;
    app.finish().await;
}

on_both_backends!(
    the_pages_and_the_document_show_it,
    a_commission_share_is_validated_and_reserves_nothing,
    redemptions_share_and_undos_take_back,
    an_undo_takes_back_what_a_loser_still_holds,
    refunded_and_expired_vouchers_share_nothing,
    no_losers_or_no_fen_share_nothing,
);
