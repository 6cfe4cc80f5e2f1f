//! The OpenAPI document: the handlers' annotations, completed by what the extractors every handler shares answer.
//!
//! The annotations say what is particular to an operation: its body and parameters (with the domain's limits as
//! JSON Schema constraints), its success and the refusals of its use case. What the edge answers for every
//! operation alike is added here, from the operation's shape, so it cannot be forgotten on one of them: 400 for a
//! body, a query or a header it parses; 401 when it takes a session; 403 for a cookie-signed write without its
//! CSRF token; 404 for a path id; 415 for a JSON body in another type; 503 `overloaded` (with `Retry-After`) for
//! a write the service is too busy to take; and every error as `application/problem+json` with the `Problem`
//! schema, as the server sends it. `tests/api/openapi.rs` checks the document against the router, and CI's
//! schemathesis step checks the server against the document.

use crate::api::{
    accounts, admin, campaigns, groups, merchants, payments, payouts, photos, reconciliations, service, vouchers,
};
use crate::extract::{JSON, MERGE_PATCH};
use serde_json::{Map, Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "tuangou", description = "Lottery group buying that brings customers into stores. See API.md."),
    paths(
        accounts::sign_up, accounts::sign_in, accounts::sign_out, accounts::me, accounts::wallet, accounts::history, accounts::close,
        admin::credit, admin::approve, admin::check,
        reconciliations::list,
        merchants::create, merchants::get, merchants::wallet, merchants::add_staff, merchants::stats,
        campaigns::create, campaigns::patch, campaigns::publish, campaigns::end, campaigns::list, campaigns::get,
        groups::open, groups::join_campaign, groups::join_group, groups::get, groups::draw, groups::group_events, groups::voucher_events,
        groups::campaign_events,
        vouchers::mine, vouchers::memberships, vouchers::qr, vouchers::refund, vouchers::preview, vouchers::redeem, vouchers::undo,
        payments::notify, payments::sandbox_pay, payments::sandbox_cancel, payments::sandbox_bill,
        payments::my_payment, payments::my_refunds, payments::admin_refunds, payments::admin_retry_refund,
        payouts::create, payouts::list, payouts::withdraw, payouts::withdrawals,
        photos::put_merchant_photo, photos::put_campaign_photo,
        service::healthz, service::readyz, service::metrics, service::openapi,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The media type of every error.
pub const PROBLEM: &str = "application/problem+json";

/// The served document: the annotations, completed with what the edge answers.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for (method, operation) in item.as_object_mut().into_iter().flatten() {
                if let Some(operation) = operation.as_object_mut() {
                    complete(path, method != "get", operation);
                }
            }
        }
    }
    doc
}

/// The session an operation takes: none, optional (a bad token is still 401), or required.
#[derive(PartialEq)]
enum Session {
    None,
    Optional,
    Required,
}

fn session_of(operation: &Map<String, Value>) -> Session {
    let requirements = operation.get("security").and_then(Value::as_array).cloned().unwrap_or_default();
    let anonymous = requirements.iter().any(|r| r.as_object().is_some_and(Map::is_empty));
    let signed_in = requirements.iter().any(|r| r.as_object().is_some_and(|o| !o.is_empty()));
    match (signed_in, anonymous) {
        (false, _) => Session::None,
        (true, true) => Session::Optional,
        (true, false) => Session::Required,
    }
}

/// What every answer of `status` means, for the answers an annotation leaves undescribed.
fn described(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "204" => "Done; no body",
        "400" => "Invalid request: malformed JSON, a wrong type, a missing or out-of-range field (named in `field`)",
        "401" => "Not signed in, or the session has ended",
        "402" => "`insufficient_funds`",
        "403" => "Not allowed; also a write signed in by cookie without its `X-CSRF-Token`",
        "404" => "Unknown (also what the caller may not see, and any malformed id)",
        "409" => "In conflict with the current state (`code` says how)",
        "410" => "`expired`",
        "415" => "The body is not `application/json`",
        "422" => "`idempotency_key_reused`: the same `Idempotency-Key` with another body",
        "429" => "`throttled`: too many attempts; retry after `Retry-After` seconds",
        "503" => "`overloaded`: the service is busy and changed nothing; retry after `Retry-After` seconds",
        _ => "See `code`",
    }
}

fn complete(path: &str, writes: bool, operation: &mut Map<String, Value>) {
    let session = session_of(operation);
    let mut parses_input = false;
    for parameter in operation.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
        if matches!(parameter["in"].as_str(), Some("query" | "header")) {
            parses_input = true;
            // An absent parameter is how a query or a header says "none": it is never `null`.
            not_null(&mut parameter["schema"]);
        }
    }
    let mut takes_json = false;
    if let Some(content) = operation.get_mut("requestBody").and_then(|b| b.get_mut("content")) {
        for media in content.as_object_mut().into_iter().flat_map(|c| c.values_mut()) {
            // An optional body is absent or an object, never `null`.
            if let Some(schema) = media.get_mut("schema") {
                not_null(schema);
            }
        }
        if let (Some(patch), Some(content)) = (content.get(MERGE_PATCH).cloned(), content.as_object_mut()) {
            // A merge patch is also accepted as plain JSON.
            content.entry(JSON).or_insert(patch);
        }
        takes_json = content.get(JSON).is_some();
    }
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else { return };
    let mut add = |status: &str| {
        responses.entry(status).or_insert_with(|| json!({}));
    };
    if takes_json || parses_input {
        add("400");
    }
    if session != Session::None {
        add("401");
    }
    if session == Session::Required && writes {
        add("403");
    }
    if path.contains('{') {
        add("404");
    }
    if takes_json {
        add("415");
    }
    if writes {
        add("503");
    }
    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else { continue };
        response.entry("description").or_insert_with(|| described(status).into());
        if status.parse::<u16>().is_ok_and(|s| s >= 400) {
            // Every error is problem+json, whatever the annotation said.
            response.insert("content".into(), json!({PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}));
            if matches!(status.as_str(), "429" | "503") {
                let seconds = json!({"description": "seconds to wait before retrying", "required": true,
                    "schema": {"type": "integer", "minimum": 1}});
                response.insert("headers".into(), json!({"Retry-After": seconds}));
            }
        }
    }
}

/// `{type: [T, "null"]}` → `{type: T}`; `{oneOf: [S, {type: "null"}]}` → `S`.
fn not_null(schema: &mut Value) {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            schema["type"] = types[0].clone();
        }
    }
    let alternatives = schema.get("oneOf").and_then(Value::as_array).cloned().unwrap_or_default();
    let kept: Vec<Value> = alternatives.into_iter().filter(|s| s.get("type") != Some(&json!("null"))).collect();
    if kept.len() == 1 && schema.get("oneOf").is_some() {
        *schema = kept[0].clone();
    }
}
