//! Input is parsed at the edge (issue 17, points 5 and 6): a NUL in an id, a cursor, a path segment, a query
//! parameter or any JSON string is a 400 naming the field or a 404, never a 500 from PostgreSQL, and the same on
//! both backends; JSON bodies only as `application/json` (415 otherwise) and only as objects (400
//! `invalid_body`); sign-in and sign-up refuse cross-site browsers (login CSRF). None of it changes the database.

use crate::common::{CHUNXI, campaign_body, campaign_with, code, draft, live_campaign_with, merchant_body};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

/// A request and what it must answer: the status, and for a 400 the field it names.
struct Case {
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<Vec<u8>>,
    status: u16,
    field: Option<&'static str>,
}

fn case(method: Method, path: impl Into<String>, who: Option<&TestUser>, status: u16) -> Case {
    Case { method, path: path.into(), token: who.map(|u| u.token.clone()), body: None, status, field: None }
}

impl Case {
    /// A JSON body (raw text, so that `\u0000` escapes go out as written).
    fn body(mut self, raw: &str) -> Self {
        self.body = Some(raw.as_bytes().to_vec());
        self
    }

    fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

/// Runs every case; each must answer as written (problem+json, checked by `TestApp::read`) and change nothing.
async fn run(app: &TestApp, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in cases {
        let before = app.db.fingerprint().await;
        let (status, body) = match &case.body {
            Some(body) => app.send_raw(case.method.clone(), &case.path, case.token.as_deref(), body).await,
            None => app.send(case.method.clone(), &case.path, case.token.as_deref(), None).await,
        };
        let shown = case.body.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
        if status.as_u16() != case.status || (case.field.is_some() && body["field"].as_str() != case.field) {
            failures.push(format!(
                "{} {} {shown}: expected {} {:?}, got {status} {body}",
                case.method, case.path, case.status, case.field
            ));
        }
        if app.db.fingerprint().await != before {
            failures.push(format!("{} {} {shown} changed the database", case.method, case.path));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A customer with a purchase voucher: K = N = 2, so both members of a full group win. Returns the merchant, the
/// campaign, the winner and their voucher.
async fn a_winner(app: &TestApp, operator: &TestUser, owner: &TestUser) -> (String, String, TestUser, Value) {
    let body = campaign_with(json!({"quantity": 20, "group_size": 2, "winners_per_group": 2}));
    let (merchant, campaign) = live_campaign_with(app, operator, owner, body).await;
    let people = app.customers(operator, 2, 990).await;
    let (status, opened) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let group = opened["group"]["id"].as_str().unwrap();
    let (status, _) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, vouchers) = app.get("/api/v1/me/vouchers", Some(&people[0].token)).await;
    let voucher = vouchers["items"][0].clone();
    assert!(voucher["id"].is_string(), "{vouchers}");
    (merchant, campaign, people[0].clone(), voucher)
}

/// Every place a NUL could ride in on: 400 with the field for query parameters and JSON strings, 404 for path
/// segments (like any malformed id). PostgreSQL answered 500 for several of these before (its `text` refuses
/// NUL), SQLite 400 or 404.
async fn a_nul_anywhere_is_a_400_or_404_never_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138501").await;
    let (merchant, campaign, winner, voucher) = a_winner(&app, &operator, &owner).await;
    let voucher_id = voucher["id"].as_str().unwrap();
    let draft_id = draft(&app, &owner, &merchant, campaign_body()).await;
    let (o, w, op) = (Some(&owner), Some(&winner), Some(&operator));
    let user = |name: &str| format!(r#"{{"phone": "13800138599", "password": "password-1", "name": "{name}"}}"#);
    let deal = campaign_body().to_string().replace("双人火锅套餐", r"火锅\u0000");
    let shop = merchant_body("茶\u{0}馆", CHUNXI).to_string();
    let (get, post, delete) = (Method::GET, Method::POST, Method::DELETE);
    let cases = vec![
        // Cursors and query parameters: 400 naming them.
        case(get.clone(), "/api/v1/me/vouchers?cursor=a%00", w, 400).field("cursor"),
        case(get.clone(), "/api/v1/me/vouchers?cursor=%00", w, 400).field("cursor"),
        case(get.clone(), format!("/api/v1/me/vouchers?cursor={voucher_id}%00"), w, 400).field("cursor"),
        case(get.clone(), "/api/v1/me/vouchers?cursor=..%2Fx", w, 400).field("cursor"),
        case(get.clone(), "/api/v1/me/memberships?cursor=a%00", w, 400).field("cursor"),
        case(get.clone(), "/api/v1/me/memberships?cursor=%E5%90%8D", w, 400).field("cursor"),
        case(get.clone(), "/api/v1/me/vouchers?limit=1%00", w, 400).field("limit"),
        case(get.clone(), "/api/v1/campaigns?cursor=1%00", None, 400).field("cursor"),
        case(get.clone(), "/api/v1/campaigns?q=%E7%81%AB%00", None, 400).field("q"),
        case(get.clone(), "/api/v1/campaigns?category=%00", None, 400).field("category"),
        // Ids in paths: 404, like any id that is not ours.
        case(get.clone(), format!("/api/v1/me/vouchers/{voucher_id}%00/qr.svg"), w, 404),
        case(get.clone(), "/api/v1/me/vouchers/a%00/qr.svg", w, 404),
        case(post.clone(), format!("/api/v1/me/vouchers/{voucher_id}%00/refund"), w, 404),
        case(post.clone(), "/api/v1/me/vouchers/%00/refund", w, 404),
        case(get.clone(), format!("/api/v1/merchants/{merchant}/vouchers/%00"), o, 404),
        case(get.clone(), format!("/api/v1/merchants/{merchant}/vouchers/ABCD%00"), o, 404),
        case(delete.clone(), format!("/api/v1/merchants/{merchant}/redemptions/a%00"), o, 404),
        case(delete.clone(), format!("/api/v1/merchants/{merchant}/redemptions/%00"), o, 404),
        case(get.clone(), "/api/v1/merchants/a%00", None, 404),
        case(get.clone(), format!("/api/v1/merchants/{merchant}%00/wallet"), o, 404),
        case(get.clone(), format!("/api/v1/campaigns/{campaign}%00"), None, 404),
        case(get.clone(), "/api/v1/campaigns/%00/events", None, 404),
        case(get.clone(), "/api/v1/groups/a%00", None, 404),
        case(post.clone(), "/api/v1/groups/a%00/members", w, 404).body("{}"),
        case(post.clone(), "/api/v1/admin/merchants/a%00/approve", op, 404),
        // JSON strings: 400 naming the field.
        case(post.clone(), "/api/v1/users", None, 400).body(&user(r"小\u0000王")).field("name"),
        case(post.clone(), "/api/v1/users", None, 400)
            .body(r#"{"phone": "1380013\u00008599", "password": "password-1", "name": "x"}"#)
            .field("phone"),
        case(post.clone(), "/api/v1/users", None, 400)
            .body(r#"{"phone": "13800138599", "password": "pass\u0000word-1", "name": "x"}"#)
            .field("password"),
        case(post.clone(), "/api/v1/sessions", None, 400)
            .body(r#"{"phone": "13800138501\u0000", "password": "x"}"#)
            .field("phone"),
        case(post.clone(), "/api/v1/merchants", o, 400).body(&shop).field("name"),
        case(post.clone(), format!("/api/v1/merchants/{merchant}/campaigns"), o, 400).body(&deal).field("title"),
        case(Method::PATCH, format!("/api/v1/campaigns/{draft_id}"), o, 400)
            .body(r#"{"reward": {"kind": "cash\u0000"}}"#)
            .field("reward.kind"),
        case(Method::PATCH, format!("/api/v1/campaigns/{draft_id}"), o, 400).body(r#"{"x\u0000": 1}"#),
        case(post.clone(), format!("/api/v1/merchants/{merchant}/staff"), o, 400)
            .body(r#"{"phone": "\u0000"}"#)
            .field("phone"),
        case(post.clone(), "/api/v1/admin/credits", op, 400)
            .body(&format!(r#"{{"user_id": "{}", "amount": 1, "reference": "r\u0000"}}"#, winner.id))
            .field("reference"),
        case(post.clone(), format!("/api/v1/campaigns/{campaign}/join"), w, 400)
            .body(r#"{"client_seed": "seed\u0000"}"#)
            .field("client_seed"),
        case(post.clone(), format!("/api/v1/campaigns/{campaign}/groups"), w, 400)
            .body(r#"{"invited_by": "\u0000"}"#)
            .field("invited_by"),
        case(post.clone(), format!("/api/v1/merchants/{merchant}/redemptions"), o, 400)
            .body(r#"{"code": "\u0000"}"#)
            .field("code"),
        // An escaped backslash before `u0000` is text, not a NUL.
        case(post.clone(), "/api/v1/sessions", None, 401).body(r#"{"phone": "\\u0000", "password": "x"}"#),
    ];
    run(&app, cases).await;

    // The pages: the voucher page and every page's id, 404 in the reader's language; a query, 400; never 500.
    let pages = [
        (format!("/me/vouchers/{voucher_id}%00"), 404),
        ("/me/vouchers/a%00".to_owned(), 404),
        ("/g/a%00".to_owned(), 404),
        ("/g/a%00/live".to_owned(), 404),
        ("/g/a%00/qr.svg".to_owned(), 404),
        (format!("/c/{campaign}%00"), 404),
        (format!("/m/{merchant}%00"), 404),
        (format!("/shop/{merchant}%00"), 404),
        (format!("/shop/{merchant}%00/redeem"), 404),
        ("/shop/campaigns/%00/edit".to_owned(), 404),
        ("/?q=%00".to_owned(), 400),
    ];
    let before = app.db.fingerprint().await;
    for (path, expected) in pages {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .header("cookie", format!("tuangou_session={}", winner.token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{path}");
    }
    let page = app.client.get(format!("{}/me/vouchers/{voucher_id}", app.base));
    let page = page.header("cookie", format!("tuangou_session={}", winner.token)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the voucher's own page still shows");
    assert_eq!(app.db.fingerprint().await, before, "pages change nothing");

    // The cursor a list gives still pages through it.
    let (status, first) = app.get("/api/v1/me/memberships?limit=1", Some(&winner.token)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let next = first["next_cursor"].as_str().expect("a cursor");
    let (status, rest) = app.get(&format!("/api/v1/me/memberships?limit=1&cursor={next}"), Some(&winner.token)).await;
    assert_eq!((status, rest["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{rest}");
    app.finish().await;
}

/// Sends `body` to `path` with the given `Content-Type` (none when `None`), signed in as `who`.
async fn typed(
    app: &TestApp,
    method: Method,
    path: &str,
    who: Option<&TestUser>,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, format!("{}{path}", app.base)).body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(who) = who {
        request = request.bearer_auth(&who.token);
    }
    TestApp::read(request.send().await.unwrap()).await
}

/// A JSON body must say it is JSON: any other `Content-Type` (or none) is 415 `unsupported_media_type`, so a
/// cross-site `text/plain` form cannot reach a handler; arrays and scalars are 400 `invalid_body`.
async fn json_bodies_only_as_json_objects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138511").await;
    let body = campaign_with(json!({"quantity": 20, "group_size": 3, "winners_per_group": 1, "per_customer_limit": 2}));
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let customer = app.customers(&operator, 1, 10_000).await.remove(0);
    let draft_id = draft(&app, &owner, &merchant, campaign_body()).await;
    let sign_in = json!({"phone": "13800138511", "password": tuangou_testkit::server_password()}).to_string();
    let user = json!({"phone": "13800138519", "password": "password-1", "name": "新"}).to_string();
    let shop = merchant_body("新店", CHUNXI).to_string();
    let credit = json!({"user_id": customer.id, "amount": 1, "reference": "r-415"}).to_string();
    let writes: Vec<(Method, String, Option<&TestUser>, String)> = vec![
        (Method::POST, "/api/v1/users".into(), None, user.clone()),
        (Method::POST, "/api/v1/sessions".into(), None, sign_in.clone()),
        (Method::POST, "/api/v1/merchants".into(), Some(&owner), shop),
        (Method::POST, format!("/api/v1/merchants/{merchant}/campaigns"), Some(&owner), campaign_body().to_string()),
        (Method::PATCH, format!("/api/v1/campaigns/{draft_id}"), Some(&owner), r#"{"price": 900}"#.into()),
        (
            Method::POST,
            format!("/api/v1/merchants/{merchant}/staff"),
            Some(&owner),
            json!({"phone": customer.phone}).to_string(),
        ),
        (Method::POST, "/api/v1/admin/credits".into(), Some(&operator), credit),
        (Method::POST, format!("/api/v1/campaigns/{campaign}/join"), Some(&customer), "{}".into()),
        (Method::POST, format!("/api/v1/campaigns/{campaign}/groups"), Some(&customer), "{}".into()),
        (Method::POST, format!("/api/v1/merchants/{merchant}/redemptions"), Some(&owner), r#"{"code": "x"}"#.into()),
    ];
    let before = app.db.fingerprint().await;
    let mut failures = Vec::new();
    for (method, path, who, body) in &writes {
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/json; charset=latin1"),
            Some("application/jsonx"),
            Some("text/json"),
        ] {
            let (status, answer) = typed(&app, method.clone(), path, *who, content_type, body).await;
            if (status, code(&answer)) != (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type") {
                failures.push(format!("{method} {path} as {content_type:?}: {status} {answer}"));
            }
        }
        for array in ["[]", "[\"13800138511\", \"x\"]", "\"text\"", "1", "null", "true"] {
            let (status, answer) = typed(&app, method.clone(), path, *who, Some("application/json"), array).await;
            if (status, code(&answer)) != (StatusCode::BAD_REQUEST, "invalid_body") {
                failures.push(format!("{method} {path} {array}: {status} {answer}"));
            }
        }
    }
    // Nested objects too: an array where `reward` is expected names it.
    let reward_as_array = campaign_with(json!({"reward": ["cash", 300]})).to_string();
    let path = format!("/api/v1/merchants/{merchant}/campaigns");
    let (status, answer) =
        typed(&app, Method::POST, &path, Some(&owner), Some("application/json"), &reward_as_array).await;
    if (status, answer["field"].as_str()) != (StatusCode::BAD_REQUEST, Some("reward")) {
        failures.push(format!("reward as an array: {status} {answer}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(app.db.fingerprint().await, before, "nothing refused changed anything");

    // What is accepted: `application/json` in any case, with `charset=utf-8`; a merge patch as its own type; a
    // join with no body at all (whatever its type).
    for content_type in ["application/json", "Application/JSON; charset=UTF-8", "application/json;charset=\"utf-8\""] {
        let (status, answer) = typed(&app, Method::POST, "/api/v1/sessions", None, Some(content_type), &sign_in).await;
        assert_eq!(status, StatusCode::CREATED, "{content_type}: {answer}");
    }
    let patch = format!("/api/v1/campaigns/{draft_id}");
    let (status, answer) =
        typed(&app, Method::PATCH, &patch, Some(&owner), Some("application/merge-patch+json"), r#"{"price": 900}"#)
            .await;
    assert_eq!((status, answer["price"].as_i64()), (StatusCode::OK, Some(900)), "{answer}");
    let join = format!("/api/v1/campaigns/{campaign}/join");
    let (status, answer) = typed(&app, Method::POST, &join, Some(&customer), None, "").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = typed(&app, Method::POST, &join, Some(&customer), Some("text/plain"), "  ").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    app.finish().await;
}

/// Login CSRF: a browser signs in and up only from our own pages. Cross-site (by `Sec-Fetch-Site` or by an
/// `Origin` that is not this server) is 403 with nothing done; API clients, which send neither, pass.
async fn sign_in_and_up_refuse_cross_site_browsers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.customer("13800138521").await;
    let own = app.base.clone();
    let host = own.trim_start_matches("http://").to_owned();
    let sign_in = json!({"phone": "13800138521", "password": tuangou_testkit::server_password()});
    let send = |path: &'static str, body: Value, headers: Vec<(&'static str, String)>| {
        let mut request = app.client.post(format!("{}{path}", app.base)).json(&body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { TestApp::read(request.send().await.unwrap()).await }
    };
    let cookie = ("cookie", "tuangou_session=whatever; tuangou_lang=en".to_owned());
    let refused: Vec<Vec<(&'static str, String)>> = vec![
        vec![("sec-fetch-site", "cross-site".into())],
        vec![("sec-fetch-site", "same-site".into()), ("origin", own.clone())],
        vec![("sec-fetch-site", "cross-site".into()), cookie.clone()],
        vec![("origin", "https://evil.example".into())],
        vec![("origin", "null".into()), cookie.clone()],
        vec![("origin", format!("http://{host}.evil.example"))],
        vec![("origin", "http://127.0.0.1:1".into())],
    ];
    let before = app.db.fingerprint().await;
    for headers in refused {
        let (status, body) = send("/api/v1/sessions", sign_in.clone(), headers.clone()).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "csrf_failed"), "sign in with {headers:?}");
        let user = json!({"phone": "13800138529", "password": "password-1", "name": "x"});
        let (status, body) = send("/api/v1/users", user, headers.clone()).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "csrf_failed"), "sign up with {headers:?}");
    }
    assert_eq!(app.db.fingerprint().await, before, "no account, no session");
    let allowed: Vec<Vec<(&'static str, String)>> = vec![
        vec![],
        vec![cookie.clone()],
        vec![("sec-fetch-site", "same-origin".into()), ("origin", own.clone()), cookie.clone()],
        vec![("sec-fetch-site", "none".into())],
        vec![("origin", own.clone())],
        vec![("origin", own.replace("http://", "HTTP://"))],
    ];
    for (i, headers) in allowed.into_iter().enumerate() {
        let (status, body) = send("/api/v1/sessions", sign_in.clone(), headers.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "sign in with {headers:?}: {body}");
        let user = json!({"phone": format!("1380013854{i}"), "password": "password-1", "name": "x"});
        let (status, body) = send("/api/v1/users", user, headers.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "sign up with {headers:?}: {body}");
    }
    app.finish().await;
}

on_both_backends!(
    a_nul_anywhere_is_a_400_or_404_never_a_500,
    json_bodies_only_as_json_objects,
    sign_in_and_up_refuse_cross_site_browsers
);
