//! The served OpenAPI document is the server (issue 17, point 8): one `operationId` per operation, errors as
//! `application/problem+json`, every status the edge answers (401, 415, 503 …), the domain's limits as JSON
//! Schema constraints; and a walk of the served document that sends every operation the requests the edge
//! refuses (no session, a bad body, another media type, an unknown id) and checks that each answer is one the
//! document lists for it. CI's schemathesis step (`.ci/openapi-fuzz`) goes further with generated requests.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tuangou_testkit::{Backend, TestApp, on_both_backends};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                all.push((method.to_owned(), path.clone(), operation.clone()));
            }
        }
    }
    all
}

fn statuses(operation: &Value) -> BTreeSet<String> {
    operation["responses"].as_object().map(|r| r.keys().cloned().collect()).unwrap_or_default()
}

fn signed_in(operation: &Value) -> bool {
    operation["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()))
}

fn takes_json(operation: &Value) -> bool {
    operation["requestBody"]["content"].get("application/json").is_some()
}

/// What the document promises, checked on its text.
async fn the_document_describes_the_edge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, doc) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let all = operations(&doc);
    assert_eq!(all.len(), 55, "every route of the API, the sandbox provider and the service, once");

    let mut failures = Vec::new();
    let mut ids = BTreeMap::new();
    for (method, path, operation) in &all {
        let at = format!("{method} {path}");
        match operation["operationId"].as_str() {
            Some(id) => {
                if let Some(other) = ids.insert(id.to_owned(), at.clone()) {
                    failures.push(format!("operationId {id} twice: {other} and {at}"));
                }
            }
            None => failures.push(format!("{at} has no operationId")),
        }
        let answers = statuses(operation);
        for (status, response) in operation["responses"].as_object().unwrap() {
            let code: u16 = status.parse().unwrap_or(0);
            if code >= 400 {
                let content = response["content"].as_object().cloned().unwrap_or_default();
                let only_problem = content.len() == 1
                    && content
                        .get("application/problem+json")
                        .is_some_and(|c| c["schema"]["$ref"].as_str() == Some("#/components/schemas/Problem"));
                if !only_problem {
                    failures.push(format!("{at} answers {status} as {:?}", content.keys().collect::<Vec<_>>()));
                }
            }
            if (200..300).contains(&code) && code != 204 && response["content"].as_object().is_none_or(|c| c.is_empty())
            {
                failures.push(format!("{at} answers {status} without saying in which media type"));
            }
            if matches!(code, 429 | 503) && response["headers"].get("Retry-After").is_none() {
                failures.push(format!("{at} {status} without Retry-After"));
            }
        }
        let writes = method != "get";
        let mut must = Vec::new();
        if signed_in(operation) {
            must.push("401");
        }
        if takes_json(operation) {
            must.extend(["400", "415"]);
        }
        if path.contains('{') {
            must.push("404");
        }
        if writes {
            must.push("503");
        }
        for status in must {
            if !answers.contains(status) {
                failures.push(format!("{at} does not document {status}"));
            }
        }
    }
    // The throttled calls say so; the signed-in ones include the 13 that lacked 401.
    for (method, path) in [
        ("post", "/api/v1/sessions"),
        ("post", "/api/v1/users"),
        ("get", "/api/v1/merchants/{id}/vouchers/{code}"),
        ("post", "/api/v1/merchants/{id}/redemptions"),
    ] {
        if !statuses(&doc["paths"][path][method]).contains("429") {
            failures.push(format!("{method} {path} does not document 429"));
        }
    }
    let signed_in_count = all.iter().filter(|(_, _, o)| signed_in(o)).count();
    assert!(signed_in_count >= 27, "{signed_in_count} signed-in operations");

    // Limits and formats, as the domain enforces them.
    let schemas = &doc["components"]["schemas"];
    let limit = doc["paths"]["/api/v1/me/vouchers"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .cloned()
        .unwrap();
    assert_eq!((limit["schema"]["minimum"].as_i64(), limit["schema"]["maximum"].as_i64()), (Some(1), Some(200)));
    assert_eq!(schemas["CreditBody"]["properties"]["amount"]["minimum"], 1);
    assert_eq!(schemas["CreditBody"]["properties"]["amount"]["maximum"], 10_000_000_000_i64);
    assert_eq!(schemas["CampaignFields"]["properties"]["price"]["minimum"], 1);
    assert_eq!(schemas["CampaignFields"]["properties"]["group_size"]["maximum"], 1000);
    assert_eq!(schemas["SignUp"]["properties"]["password"]["minLength"], 8);
    assert_eq!(schemas["SignUp"]["properties"]["password"]["maxLength"], 128);
    assert_eq!(schemas["NewMerchantBody"]["properties"]["name"]["maxLength"], 60);
    let phone = regex::Regex::new(schemas["SignUp"]["properties"]["phone"]["pattern"].as_str().unwrap()).unwrap();
    let contact =
        regex::Regex::new(schemas["NewMerchantBody"]["properties"]["phone"]["pattern"].as_str().unwrap()).unwrap();
    // The pattern accepts what the domain accepts, written without separators.
    for (text, user, merchant) in [
        ("13800138000", true, true),
        ("+8613800138000", true, true),
        ("8613800138000", true, true),
        ("+14155550123", true, true),
        ("+447911123456", true, true),
        ("+8602888886666", false, false),
        ("12800138000", false, false),
        ("1380013800", false, false),
        ("02888886666", false, true),
        ("0288888666", false, true),
        ("+0123456789", false, false),
        ("+1234567", false, false),
        ("+1234567890123456", false, false),
        ("phone", false, false),
    ] {
        assert_eq!(phone.is_match(text), user, "user phone pattern on {text}");
        assert_eq!(tuangou_domain::phone::UserPhone::parse("phone", text).is_ok(), user, "the domain on {text}");
        assert_eq!(contact.is_match(text), merchant, "contact phone pattern on {text}");
        assert_eq!(tuangou_domain::phone::ContactPhone::parse("phone", text).is_ok(), merchant, "{text}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.finish().await;
}

/// The path with every parameter filled with an id of the right shape that names nothing.
fn unknown_ids(path: &str) -> String {
    let mut filled = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        filled.push_str(&rest[..start]);
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e + 1);
        filled.push_str("0192f0c1-7a2b-7c3d-8e4f-123456789abc");
        rest = &rest[end..];
    }
    filled.push_str(rest);
    filled
}

/// Who sends a request, with which token, and which body (`Content-Type`, text).
type Request<'a> = (&'static str, Option<&'a str>, Option<(&'static str, &'static str)>);

/// Walks the served document and sends every operation what the edge refuses, signed in and not: each answer
/// must be a status the document lists for that operation, errors as problem+json (`TestApp::read`).
async fn every_answer_is_one_the_document_lists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let customer = app.customer("13800138601").await;
    let (_, doc) = app.get("/api/v1/openapi.json", None).await;
    let mut all = operations(&doc);
    // Signing out and closing the account end the session the others use: last.
    all.sort_by_key(|(_, _, o)| matches!(o["operationId"].as_str(), Some("sign_out" | "close_my_account")));
    let mut failures = Vec::new();
    let mut sent = 0;
    for (method, path, operation) in &all {
        if path.ends_with("/events") {
            continue; // an event stream stays open; its 404 is below with the unknown ids
        }
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let documented = statuses(operation);
        let url = unknown_ids(path);
        let mut requests: Vec<Request<'_>> = vec![
            ("anonymous", None, None),
            ("a bad token", Some("not-a-session"), None),
            ("the operator", Some(operator.token.as_str()), None),
            ("a customer", Some(customer.token.as_str()), None),
        ];
        if takes_json(operation) {
            for body in [
                ("application/json", "{}"),
                ("application/json", "[]"),
                ("application/json", "{"),
                ("text/plain", "{}"),
            ] {
                requests.push(("the operator", Some(operator.token.as_str()), Some(body)));
                requests.push(("a customer", Some(customer.token.as_str()), Some(body)));
            }
        }
        for (who, token, body) in requests {
            let mut request = app.client.request(method.clone(), format!("{}{url}", app.base));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some((content_type, body)) = body {
                request = request.header("content-type", content_type).body(body);
            }
            let (status, answer) = TestApp::read(request.send().await.unwrap()).await;
            sent += 1;
            if !documented.contains(status.as_str()) {
                failures.push(format!("{method} {url} as {who} with {body:?}: {status} is not documented {answer}"));
            }
        }
    }
    for path in ["/api/v1/groups/{id}/events", "/api/v1/campaigns/{id}/events"] {
        let (status, _) = app.get(&unknown_ids(path), None).await;
        assert!(statuses(&doc["paths"][path]["get"]).contains(status.as_str()), "{path}: {status}");
    }
    assert!(sent > 150, "{sent} requests");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.finish().await;
}

on_both_backends!(the_document_describes_the_edge, every_answer_is_one_the_document_lists);
