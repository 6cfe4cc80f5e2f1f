//! The pages over plain HTTP (the browser tests drive them for real): every page renders for the people it is
//! for, in Simplified Chinese by default and in English, without a missing word or a customer's phone number on a
//! merchant's screen; unknown, forbidden and malformed addresses answer as pages, never 500; the editor's preview
//! checks like the API and writes nothing.

use crate::common::{CHUNXI, campaign_with, draft, live_campaign_with};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) content_type: String,
    pub(crate) location: String,
    set_cookie: String,
    cache_control: String,
    policy: String,
    pub(crate) body: String,
}

/// GETs a page, signed in by cookie as `who` (if any), in `lang`.
pub(crate) async fn page(app: &TestApp, path: &str, who: Option<&TestUser>, lang: &str) -> Page {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut request = client.get(format!("{}{path}", app.base)).header(ACCEPT_LANGUAGE, lang);
    if let Some(who) = who {
        request = request.header(COOKIE, format!("tuangou_session={}", who.token));
    }
    let response = request.send().await.expect("the server answers");
    let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    Page {
        status: response.status(),
        content_type: header(CONTENT_TYPE),
        location: header(LOCATION),
        set_cookie: header(SET_COOKIE),
        cache_control: header(CACHE_CONTROL),
        policy: header(reqwest::header::CONTENT_SECURITY_POLICY),
        body: response.text().await.unwrap(),
    }
}

/// The first inline script, event handler, `javascript:` link or style in `html`, if any: the pages' policy
/// (`script-src 'self'; style-src 'self'`) would block it.
fn inline_code(html: &str) -> Option<String> {
    for tag in html.split('<').skip(1).filter_map(|t| t.split('>').next()) {
        let name = tag.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        let attributes: Vec<String> = tag.split_whitespace().skip(1).map(str::to_ascii_lowercase).collect();
        let inline_script = name == "script" && !attributes.iter().any(|a| a.starts_with("src="));
        let handler = attributes.iter().any(|a| a.starts_with("on") && a.contains('='));
        let style = name == "style" || attributes.iter().any(|a| a.starts_with("style="));
        if inline_script || handler || style || tag.to_ascii_lowercase().contains("javascript:") {
            return Some(format!("<{tag}>"));
        }
    }
    None
}

/// A campaign whose one group is drawn, another group open, a draft beside it; returns what the pages need.
struct Town {
    operator: TestUser,
    owner: TestUser,
    clerk: TestUser,
    people: Vec<TestUser>,
    merchant: String,
    campaign: String,
    draft: String,
    drawn: String,
    open: String,
    winner: usize,
}

async fn town(app: &TestApp) -> Town {
    let operator = app.operator().await;
    let owner = app.customer("13800138500").await;
    let body =
        campaign_with(json!({"group_size": 3, "winners_per_group": 1, "quantity": 10, "referral_bonus_points": 5}));
    let (merchant, campaign) = live_campaign_with(app, &operator, &owner, body).await;
    let draft = draft(app, &owner, &merchant, campaign_with(json!({"title": "草稿团"}))).await;
    let clerk = app.customer("13800138501").await;
    app.post(&format!("/api/v1/merchants/{merchant}/staff"), Some(&owner.token), json!({"phone": clerk.phone})).await;
    let people = app.customers(&operator, 4, 5_000).await;
    let (_, first) = app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    let drawn = first["group"]["id"].as_str().unwrap().to_owned();
    let ticket = first["membership"]["ticket"].as_str().unwrap().to_owned();
    let mut record = Value::Null;
    for person in &people[1..3] {
        let (status, answer) = app
            .post(&format!("/api/v1/groups/{drawn}/members"), Some(&person.token), json!({"invited_by": ticket}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        record = answer["group"].clone();
    }
    assert_eq!(record["status"], "drawn");
    let winner = record["draw"]["winners"][0].as_u64().unwrap() as usize - 1;
    let (_, other) = app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[3].token), json!({})).await;
    let open = other["group"]["id"].as_str().unwrap().to_owned();
    Town { operator, owner, clerk, people, merchant, campaign, draft, drawn, open, winner }
}

/// Every page, for whom it is for, in both languages.
async fn every_page_renders_for_its_readers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = town(&app).await;
    let winner = &t.people[t.winner];
    let (_, vouchers) = app.get("/api/v1/me/vouchers", Some(&winner.token)).await;
    let voucher = vouchers["items"][0]["id"].as_str().unwrap().to_owned();
    let code = vouchers["items"][0]["code"].as_str().unwrap().to_owned();
    let (m, c) = (&t.merchant, &t.campaign);
    let pages: Vec<(String, Option<&TestUser>, &str)> = vec![
        ("/".into(), None, "双人火锅套餐"),
        (format!("/?lat={}&lng={}", CHUNXI.0, CHUNXI.1), None, "双人火锅套餐"),
        ("/?category=%E7%81%AB%E9%94%85".into(), None, "双人火锅套餐"),
        (format!("/c/{c}"), None, "class=\"headline\""),
        (format!("/c/{c}"), Some(&t.people[0]), "data-join"),
        (format!("/g/{}", t.open), None, "data-join"),
        (format!("/g/{}", t.drawn), Some(winner), "data-result=\"won\""),
        (format!("/g/{}/live", t.drawn), None, "data-reveal"),
        (format!("/m/{m}"), None, "双人火锅套餐"),
        (format!("/m/{m}/poster"), None, "<svg"),
        ("/verify".into(), None, "data-verify-paste"),
        ("/signin".into(), None, "data-account=\"signin\""),
        ("/signup".into(), None, "data-account=\"signup\""),
        ("/me".into(), Some(winner), &voucher),
        (format!("/me/vouchers/{voucher}"), Some(winner), &code),
        (format!("/r/{m}/{code}"), None, "data-scanned"),
        ("/shop/new".into(), Some(&t.owner), "POST /api/v1/merchants"),
        (format!("/shop/{m}"), Some(&t.owner), "草稿团"),
        (format!("/shop/{m}/campaigns/new"), Some(&t.owner), "data-preview"),
        (format!("/shop/campaigns/{c}"), Some(&t.owner), "<svg"),
        (format!("/shop/campaigns/{}/edit", t.draft), Some(&t.owner), "草稿团"),
        (format!("/shop/{m}/redeem"), Some(&t.clerk), "data-redeem"),
        ("/operator".into(), Some(&t.operator), "data-check=\"ok\""),
    ];
    let phones: Vec<&str> = t.people.iter().map(|p| p.phone.as_str()).collect();
    for (lang, html_lang) in [("zh-CN,zh;q=0.9", "zh-CN"), ("en-US,en;q=0.9", "en")] {
        for (path, who, expected) in &pages {
            let p = page(&app, path, *who, lang).await;
            assert_eq!(p.status, StatusCode::OK, "{path} ({lang}): {}", p.body);
            assert_eq!(p.content_type, "text/html; charset=utf-8", "{path}");
            assert!(p.body.contains(&format!("<html lang=\"{html_lang}\">")), "{path} in {html_lang}");
            assert!(p.body.contains(expected), "{path} ({lang}) lacks {expected}");
            // A key shown instead of its words would look like `nav-home`: none may be left.
            for key in ["nav-home", "rules-title", "status-", "group-progress", "stat-"] {
                assert!(!p.body.contains(&format!(">{key}")), "{path} ({lang}) shows the raw key {key}");
            }
            assert_eq!(p.cache_control, "no-store", "{path}: pages carry personal state");
            assert_eq!(p.policy, tuangou_web::security::PAGE_POLICY, "{path}");
            assert_eq!(inline_code(&p.body), None, "{path} ({lang}) holds code the policy blocks");
            if path.starts_with("/shop") || path.starts_with("/m/") || path.contains("/live") {
                for phone in &phones {
                    assert!(!p.body.contains(phone), "{path} shows a customer's phone number");
                }
            }
        }
    }
    // The rules card comes before the pay button on the campaign and group pages, in the reader's language.
    for path in [format!("/c/{c}"), format!("/g/{}", t.open)] {
        for (lang, words) in [("zh-CN", "3 人成团，1 人中奖"), ("en", "Groups of 3, 1 win")] {
            let body = page(&app, &path, Some(&t.people[1]), lang).await.body;
            let (rules, pay) = (body.find("class=\"rules\""), body.find("data-join="));
            assert!(rules.is_some() && pay.is_some() && rules < pay, "{path} ({lang}): rules, then the pay button");
            assert!(body.contains(words), "{path} ({lang})");
        }
    }
    let english = page(&app, "/", None, "en").await;
    assert!(english.body.contains("Deals near you"));
    let chinese = page(&app, "/", None, "").await;
    assert!(chinese.body.contains("附近好团"), "Chinese by default");
    let qr = page(&app, &format!("/g/{}/qr.svg?from=abc", t.open), None, "").await;
    assert_eq!((qr.status, qr.content_type.as_str()), (StatusCode::OK, "image/svg+xml"));
    let script = page(&app, "/assets/app.js", None, "").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.content_type.starts_with("text/javascript") && script.cache_control.contains("immutable"));
    app.finish().await;
}

/// Unknown, forbidden and malformed addresses answer as pages in the reader's language; signed-out readers are
/// sent to sign in and back; the language switch sticks; nothing answers 500.
async fn pages_refuse_cleanly_and_never_fail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = town(&app).await;
    let before = app.db.fingerprint().await;
    let customer = &t.people[0];
    let m = &t.merchant;
    let cases: Vec<(String, Option<&TestUser>, StatusCode)> = vec![
        ("/c/00000000-0000-0000-0000-000000000000".into(), None, StatusCode::NOT_FOUND),
        ("/c/..%2F..%2Fetc".into(), None, StatusCode::NOT_FOUND),
        ("/g/%FF%FE".into(), None, StatusCode::NOT_FOUND),
        ("/g/nope/live".into(), None, StatusCode::NOT_FOUND),
        ("/m/nope".into(), None, StatusCode::NOT_FOUND),
        (format!("/c/{}", t.draft), Some(customer), StatusCode::NOT_FOUND),
        (format!("/shop/{m}"), Some(customer), StatusCode::FORBIDDEN),
        (format!("/shop/{m}"), Some(&t.clerk), StatusCode::FORBIDDEN),
        (format!("/shop/{m}/redeem"), Some(customer), StatusCode::FORBIDDEN),
        (format!("/shop/campaigns/{}", t.campaign), Some(&t.clerk), StatusCode::FORBIDDEN),
        (format!("/shop/campaigns/{}/edit", t.campaign), Some(&t.owner), StatusCode::CONFLICT),
        ("/operator".into(), Some(customer), StatusCode::FORBIDDEN),
        ("/me/vouchers/nope".into(), Some(customer), StatusCode::NOT_FOUND),
        ("/?lat=91&lng=0".into(), None, StatusCode::BAD_REQUEST),
        ("/?lat=abc&lng=%00".into(), None, StatusCode::OK),
        ("/?q=%25%25%25".into(), None, StatusCode::OK),
        ("/assets/nope.js".into(), None, StatusCode::NOT_FOUND),
    ];
    for (path, who, status) in &cases {
        let p = page(&app, path, *who, "zh-CN").await;
        assert_eq!(p.status, *status, "{path}: {}", p.body);
        if path.starts_with("/assets") {
            continue;
        }
        assert_eq!(p.content_type, "text/html; charset=utf-8", "{path}");
        if *status == StatusCode::NOT_FOUND {
            assert!(p.body.contains("没有找到这个页面"), "{path}: {}", p.body);
        }
        if *status == StatusCode::BAD_REQUEST {
            // Said in the reader's language, not in the API's English detail.
            assert!(p.body.contains("纬度须在 -90 到 90 之间") && !p.body.contains("must be"), "{path}: {}", p.body);
        }
    }

    // Signed out: to the sign-in page, and back here afterwards; a stale cookie reads as signed out.
    for (path, who) in
        [("/me", None), ("/operator", None), ("/me", Some(TestUser { token: "stale".into(), ..customer.clone() }))]
    {
        let p = page(&app, path, who.as_ref(), "zh-CN").await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(p.location, format!("/signin?next=%2F{}", &path[1..]));
    }
    // `next` never leads to another site.
    let p = page(&app, "/signin?next=https%3A%2F%2Fevil.example%2F", None, "").await;
    assert!(p.body.contains("data-next=\"/\""), "{}", p.body);
    let p = page(&app, "/signin?next=%2F%2Fevil.example", None, "").await;
    assert!(p.body.contains("data-next=\"/\""));

    // The switch: `?lang=en` shows English and keeps it in a cookie.
    let p = page(&app, "/?lang=en", None, "zh-CN").await;
    assert!(p.body.contains("Deals near you") && p.set_cookie.starts_with("tuangou_lang=en"), "{}", p.set_cookie);
    assert!(p.body.contains("href=\"/?lang=zh\""), "the switch leads back");

    // The editor's preview checks like the API, marks the field, and writes nothing.
    let preview = format!("{}/shop/{m}/campaigns/preview", app.base);
    let bad = app.client.post(&preview).header("content-type", "application/json").body("{").send().await.unwrap();
    let (status, body) = TestApp::read(bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let plain = app.client.post(&preview).header("content-type", "text/plain").body("{}").send().await.unwrap();
    let (status, body) = TestApp::read(plain).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
    let k_over_n = campaign_with(json!({"winners_per_group": 9}));
    let (status, body) = TestApp::read(app.client.post(&preview).json(&k_over_n).send().await.unwrap()).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("winners_per_group")), "{body}");
    let prize = campaign_with(json!({"original_price": 10_000_000}));
    let (status, body) = TestApp::read(app.client.post(&preview).json(&prize).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("prize_cap_exceeded")), "{body}");
    let good = app.client.post(&preview).header(ACCEPT_LANGUAGE, "en").json(&campaign_with(json!({}))).send().await;
    let good = good.unwrap();
    assert_eq!(good.status(), StatusCode::OK);
    let html = good.text().await.unwrap();
    assert_eq!(inline_code(&html), None, "the preview is shown inside the editor's page");
    assert!(html.contains("Groups of 5, 2 win; everyone else gets a full refund and ¥3.00 cash"), "{html}");
    assert_eq!(app.db.fingerprint().await, before, "pages and previews change nothing");
    app.finish().await;
}

on_both_backends!(every_page_renders_for_its_readers, pages_refuse_cleanly_and_never_fail);
