//! Every endpoint against malformed JSON, wrong types, missing fields, numbers beyond i64, negative money,
//! over-long strings and unknown ids: each answers a 4xx problem+json, nothing panics or answers 500, and the
//! database is exactly as it was.

use crate::common::{CHUNXI, campaign_body, draft, live_campaign, merchant_body};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tuangou_testkit::{Backend, TestApp, on_both_backends};

/// Who sends a case.
#[derive(Clone, Copy)]
enum As {
    Nobody,
    Customer,
    Owner,
    Operator,
}

struct Case {
    method: Method,
    path: String,
    who: As,
    body: Vec<u8>,
    status: StatusCode,
    field: Option<&'static str>,
}

fn case(
    method: Method,
    path: &str,
    who: As,
    body: impl Into<Vec<u8>>,
    status: u16,
    field: Option<&'static str>,
) -> Case {
    Case { method, path: path.to_owned(), who, body: body.into(), status: StatusCode::from_u16(status).unwrap(), field }
}

/// `base` with the member at `pointer` set to `value` (added when missing; its parent must exist).
fn with(base: &Value, pointer: &str, value: Value) -> Vec<u8> {
    let mut body = base.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() { &mut body } else { body.pointer_mut(parent).unwrap() };
    parent.as_object_mut().unwrap().insert(key.to_owned(), value);
    serde_json::to_vec(&body).unwrap()
}

fn without(base: &Value, key: &str) -> Vec<u8> {
    let mut body = base.clone();
    body.as_object_mut().unwrap().remove(key);
    serde_json::to_vec(&body).unwrap()
}

/// Raw JSON text with a number no i64 holds, spliced where `"HUGE"` stands.
fn huge(base: &Value, pointer: &str) -> Vec<u8> {
    String::from_utf8(with(base, pointer, json!("HUGE")))
        .unwrap()
        .replace("\"HUGE\"", "92233720368547758070")
        .into_bytes()
}

async fn bad_input_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138040").await;
    let customer = app.customer("13800138041").await;
    let (merchant, live) = live_campaign(&app, &operator, &owner, "老码头", CHUNXI).await;
    let draft_id = draft(&app, &owner, &merchant, campaign_body()).await;
    let long = "长".repeat(10_000);
    let user = json!({"phone": "13800138099", "password": "password-1", "name": "新用户"});
    let shop = merchant_body("新店", CHUNXI);
    let deal = campaign_body();
    let credit = json!({"user_id": customer.id, "amount": 100, "reference": "ref-1"});
    let campaigns = format!("/api/v1/merchants/{merchant}/campaigns");
    let draft_url = format!("/api/v1/campaigns/{draft_id}");
    let staff = format!("/api/v1/merchants/{merchant}/staff");
    use As::*;
    let post = Method::POST;
    let mut cases = vec![
        // Sign up.
        case(post.clone(), "/api/v1/users", Nobody, "{", 400, None),
        case(post.clone(), "/api/v1/users", Nobody, "", 400, None),
        case(post.clone(), "/api/v1/users", Nobody, "[]", 400, None),
        case(post.clone(), "/api/v1/users", Nobody, "\"text\"", 400, None),
        case(post.clone(), "/api/v1/users", Nobody, "{} {}", 400, None),
        case(post.clone(), "/api/v1/users", Nobody, "{}", 400, Some("phone")),
        case(post.clone(), "/api/v1/users", Nobody, without(&user, "password"), 400, Some("password")),
        case(post.clone(), "/api/v1/users", Nobody, with(&user, "/phone", json!(13800138099u64)), 400, Some("phone")),
        case(post.clone(), "/api/v1/users", Nobody, with(&user, "/phone", json!("02888886666")), 400, Some("phone")),
        case(post.clone(), "/api/v1/users", Nobody, with(&user, "/phone", json!(long)), 400, Some("phone")),
        case(post.clone(), "/api/v1/users", Nobody, with(&user, "/name", json!(long)), 400, Some("name")),
        case(post.clone(), "/api/v1/users", Nobody, with(&user, "/name", json!("")), 400, Some("name")),
        case(post.clone(), "/api/v1/users", Nobody, with(&user, "/password", json!("short")), 400, Some("password")),
        case(
            post.clone(),
            "/api/v1/users",
            Nobody,
            with(&user, "/password", json!("x".repeat(129))),
            400,
            Some("password"),
        ),
        case(post.clone(), "/api/v1/users", Nobody, with(&user, "/name", json!(null)), 400, Some("name")),
        case(post.clone(), "/api/v1/users", Nobody, vec![b'{'; 70_000], 400, None),
        // Sign in.
        case(post.clone(), "/api/v1/sessions", Nobody, "{\"phone\": 1}", 400, Some("phone")),
        case(post.clone(), "/api/v1/sessions", Nobody, "{\"phone\": \"13800138040\"}", 400, Some("password")),
        case(post.clone(), "/api/v1/sessions", Nobody, json!({"phone": long, "password": long}).to_string(), 401, None),
        // Merchants.
        case(post.clone(), "/api/v1/merchants", Nobody, serde_json::to_vec(&shop).unwrap(), 401, None),
        case(post.clone(), "/api/v1/merchants", Customer, "{\"name\":", 400, None),
        case(post.clone(), "/api/v1/merchants", Customer, without(&shop, "address"), 400, Some("address")),
        case(post.clone(), "/api/v1/merchants", Customer, with(&shop, "/latitude", json!(91)), 400, Some("latitude")),
        case(
            post.clone(),
            "/api/v1/merchants",
            Customer,
            with(&shop, "/longitude", json!("east")),
            400,
            Some("longitude"),
        ),
        case(post.clone(), "/api/v1/merchants", Customer, huge(&shop, "/latitude"), 400, Some("latitude")),
        case(post.clone(), "/api/v1/merchants", Customer, with(&shop, "/name", json!(long)), 400, Some("name")),
        case(post.clone(), "/api/v1/merchants", Customer, with(&shop, "/phone", json!("call me")), 400, Some("phone")),
        case(
            post.clone(),
            "/api/v1/merchants",
            Customer,
            with(&shop, "/opening_hours", json!(long)),
            400,
            Some("opening_hours"),
        ),
        case(post.clone(), &staff, Owner, "{}", 400, Some("phone")),
        case(post.clone(), &staff, Owner, "{\"phone\": \"hello\"}", 400, Some("phone")),
        case(post.clone(), &staff, Owner, "{\"phone\": [1]}", 400, Some("phone")),
        case(
            post.clone(),
            "/api/v1/merchants/no-such-merchant/staff",
            Owner,
            "{\"phone\": \"13800138041\"}",
            404,
            None,
        ),
        case(Method::GET, "/api/v1/merchants/no-such-merchant", Nobody, "", 404, None),
        case(Method::GET, "/api/v1/merchants/..%2F..%2Fetc", Nobody, "", 404, None),
        case(Method::GET, "/api/v1/merchants/%FF%FE", Nobody, "", 404, None),
        case(Method::GET, "/api/v1/groups/%C3%28/events", Nobody, "", 404, None),
        case(post.clone(), "/api/v1/merchants/%FF/redemptions", Owner, "{\"code\": \"x\"}", 404, None),
        case(Method::GET, "/api/v1/merchants/no-such-merchant/wallet", Owner, "", 404, None),
        // Campaigns.
        case(post.clone(), &campaigns, Owner, "{", 400, None),
        case(post.clone(), &campaigns, Owner, without(&deal, "title"), 400, Some("title")),
        case(post.clone(), &campaigns, Owner, without(&deal, "reward"), 400, Some("reward")),
        case(post.clone(), &campaigns, Owner, with(&deal, "/title", json!(long)), 400, Some("title")),
        case(post.clone(), &campaigns, Owner, with(&deal, "/price", json!(-1)), 400, Some("price")),
        case(post.clone(), &campaigns, Owner, with(&deal, "/price", json!(10_000_000_001i64)), 400, Some("price")),
        case(post.clone(), &campaigns, Owner, huge(&deal, "/price"), 400, Some("price")),
        case(post.clone(), &campaigns, Owner, with(&deal, "/price", json!("990")), 400, Some("price")),
        case(post.clone(), &campaigns, Owner, with(&deal, "/price", json!(9.9)), 400, Some("price")),
        case(post.clone(), &campaigns, Owner, with(&deal, "/original_price", json!(500)), 400, Some("original_price")),
        case(
            post.clone(),
            &campaigns,
            Owner,
            with(&deal, "/original_price", json!(5_000_991)),
            400,
            Some("original_price"),
        ),
        case(post.clone(), &campaigns, Owner, with(&deal, "/quantity", json!(21)), 400, Some("quantity")),
        case(post.clone(), &campaigns, Owner, with(&deal, "/quantity", json!(0)), 400, Some("quantity")),
        case(post.clone(), &campaigns, Owner, with(&deal, "/group_size", json!(1_001)), 400, Some("group_size")),
        case(
            post.clone(),
            &campaigns,
            Owner,
            with(&deal, "/winners_per_group", json!(0)),
            400,
            Some("winners_per_group"),
        ),
        case(post.clone(), &campaigns, Owner, with(&deal, "/reward/kind", json!("gold")), 400, Some("reward.kind")),
        case(post.clone(), &campaigns, Owner, with(&deal, "/reward/amount", json!(-300)), 400, Some("reward.amount")),
        case(post.clone(), &campaigns, Owner, huge(&deal, "/reward/amount"), 400, Some("reward.amount")),
        case(
            post.clone(),
            &campaigns,
            Owner,
            with(&deal, "/commission_bps", json!(10_001)),
            400,
            Some("commission_bps"),
        ),
        case(
            post.clone(),
            &campaigns,
            Owner,
            with(&deal, "/group_ttl_seconds", json!(0)),
            400,
            Some("group_ttl_seconds"),
        ),
        case(post.clone(), &campaigns, Owner, with(&deal, "/draw_mode", json!("whenever")), 400, Some("draw_mode")),
        case(
            post.clone(),
            &campaigns,
            Owner,
            with(&deal, "/voucher_valid_days", json!(0)),
            400,
            Some("voucher_valid_days"),
        ),
        case(
            post.clone(),
            &campaigns,
            Owner,
            with(&deal, "/per_customer_limit", json!(-1)),
            400,
            Some("per_customer_limit"),
        ),
        case(post.clone(), &campaigns, Owner, with(&deal, "/ends_at", json!("tomorrow")), 400, Some("ends_at")),
        case(post.clone(), &campaigns, Customer, serde_json::to_vec(&deal).unwrap(), 403, None),
        case(post.clone(), "/api/v1/merchants/nope/campaigns", Owner, serde_json::to_vec(&deal).unwrap(), 404, None),
        case(Method::PATCH, &draft_url, Owner, "[]", 400, None),
        case(Method::PATCH, &draft_url, Owner, "{\"price\": \"cheap\"}", 400, Some("price")),
        case(Method::PATCH, &draft_url, Owner, "{\"reward\": {\"kind\": null}}", 400, Some("reward.kind")),
        case(Method::PATCH, &draft_url, Owner, "{\"group_size\": 92233720368547758070}", 400, Some("group_size")),
        case(Method::PATCH, "/api/v1/campaigns/no-such-campaign", Owner, "{}", 404, None),
        case(Method::PATCH, &format!("/api/v1/campaigns/{live}"), Owner, "{\"price\": 1}", 409, None),
        case(post.clone(), "/api/v1/campaigns/no-such-campaign/publish", Owner, "", 404, None),
        case(post.clone(), "/api/v1/campaigns/no-such-campaign/end", Owner, "", 404, None),
        case(post.clone(), &format!("{draft_url}/end"), Owner, "", 409, None),
        case(post.clone(), &format!("/api/v1/campaigns/{live}/publish"), Customer, "", 403, None),
        case(Method::GET, "/api/v1/campaigns/no-such-campaign", Nobody, "", 404, None),
        case(Method::GET, "/api/v1/campaigns?lat=abc&lng=1", Nobody, "", 400, Some("lat")),
        case(Method::GET, "/api/v1/campaigns?lat=91&lng=1", Nobody, "", 400, Some("lat")),
        case(Method::GET, "/api/v1/campaigns?lat=30", Nobody, "", 400, Some("lng")),
        case(Method::GET, "/api/v1/campaigns?lat=30&lng=104&radius_km=0", Nobody, "", 400, Some("radius_km")),
        case(Method::GET, "/api/v1/campaigns?limit=0", Nobody, "", 400, Some("limit")),
        case(Method::GET, "/api/v1/campaigns?limit=201", Nobody, "", 400, Some("limit")),
        case(Method::GET, "/api/v1/campaigns?limit=99999999999999999999", Nobody, "", 400, Some("limit")),
        case(Method::GET, "/api/v1/campaigns?cursor=zzz", Nobody, "", 400, Some("cursor")),
        case(Method::GET, &format!("/api/v1/campaigns?q={}", "x".repeat(41)), Nobody, "", 400, Some("q")),
        // Operator.
        case(post.clone(), "/api/v1/admin/credits", Customer, serde_json::to_vec(&credit).unwrap(), 403, None),
        case(post.clone(), "/api/v1/admin/credits", Operator, with(&credit, "/amount", json!(0)), 400, Some("amount")),
        case(
            post.clone(),
            "/api/v1/admin/credits",
            Operator,
            with(&credit, "/amount", json!(-100)),
            400,
            Some("amount"),
        ),
        case(
            post.clone(),
            "/api/v1/admin/credits",
            Operator,
            with(&credit, "/amount", json!(10_000_000_001i64)),
            400,
            Some("amount"),
        ),
        case(post.clone(), "/api/v1/admin/credits", Operator, huge(&credit, "/amount"), 400, Some("amount")),
        case(
            post.clone(),
            "/api/v1/admin/credits",
            Operator,
            with(&credit, "/amount", json!("100")),
            400,
            Some("amount"),
        ),
        case(post.clone(), "/api/v1/admin/credits", Operator, without(&credit, "reference"), 400, Some("reference")),
        case(
            post.clone(),
            "/api/v1/admin/credits",
            Operator,
            with(&credit, "/reference", json!(long)),
            400,
            Some("reference"),
        ),
        case(
            post.clone(),
            "/api/v1/admin/credits",
            Operator,
            with(&credit, "/reference", json!("  ")),
            400,
            Some("reference"),
        ),
        case(post.clone(), "/api/v1/admin/credits", Operator, with(&credit, "/user_id", json!("nobody")), 404, None),
        case(post.clone(), "/api/v1/admin/credits", Operator, with(&credit, "/user_id", json!("../x")), 404, None),
        case(post.clone(), "/api/v1/admin/merchants/nope/approve", Operator, "", 404, None),
        case(Method::GET, "/api/v1/admin/check", Customer, "", 403, None),
        // Routes and methods that do not exist, and broken credentials.
        case(Method::GET, "/api/v1/nothing-here", Nobody, "", 404, None),
        case(Method::DELETE, "/api/v1/campaigns", Nobody, "", 405, None),
        case(Method::PUT, "/api/v1/me", Customer, "{}", 405, None),
    ];
    cases.push(case(Method::GET, "/api/v1/me", Nobody, "", 401, None));

    let mut failures = Vec::new();
    for case in cases {
        let token = match case.who {
            Nobody => None,
            Customer => Some(customer.token.as_str()),
            Owner => Some(owner.token.as_str()),
            Operator => Some(operator.token.as_str()),
        };
        let before = app.db.fingerprint().await;
        let (status, body) = app.send_raw(case.method.clone(), &case.path, token, &case.body).await;
        let after = app.db.fingerprint().await;
        let preview = String::from_utf8_lossy(&case.body[..case.body.len().min(80)]).into_owned();
        if status != case.status || (case.field.is_some() && body["field"].as_str() != case.field) {
            failures.push(format!(
                "{} {} {preview}: expected {} {:?}, got {status} {body}",
                case.method, case.path, case.status, case.field
            ));
        }
        if before != after {
            failures.push(format!("{} {} {preview} changed the database", case.method, case.path));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let (status, _) = app
        .client
        .get(format!("{}/api/v1/me", app.base))
        .header("authorization", "Basic abc")
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a non-bearer Authorization header");
    app.finish().await;
}

on_both_backends!(bad_input_is_refused_and_changes_nothing);
