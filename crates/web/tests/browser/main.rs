//! The pages end to end, in headless Chromium at 390×844 and in zh-CN, over HTTP against a real server on each
//! backend: a customer who opens a share link, signs up, joins and watches the group fill and its draw verify;
//! staff redeeming a voucher by its typed code; a merchant creating and publishing a campaign. Screenshots of the
//! key pages go to `target/screenshots/`.
//!
//! These tests need `chromium` and `chromium-driver`; the plain test command leaves them out (they are
//! `#[ignore]`d) and `.ci/run` runs them.

#[path = "../api/common.rs"]
mod common;
mod counter;
mod join_flow;
mod looks;

use common::{campaign_with, live_campaign_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tuangou_app::Settings;
use tuangou_testkit::browser::Driver;
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends_in_a_browser, server_password};

/// The screenshot's name for this backend (each backend writes its own set).
fn shot(backend: Backend, name: &str) -> String {
    format!("{}-{name}", if backend == Backend::Sqlite { "sqlite" } else { "postgres" })
}

async fn open_group(app: &TestApp, campaign: &str, who: &TestUser) -> (String, String) {
    let (status, body) = app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&who.token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (body["group"]["id"].as_str().unwrap().to_owned(), body["membership"]["ticket"].as_str().unwrap().to_owned())
}

/// The worker runs beside the server, as in `serve`.
fn worker_beside(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let app = app.app.clone();
    tokio::spawn(async move {
        loop {
            let _ = app.run_jobs_once().await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
}

/// A live campaign of groups of three (its owner's phone `owner`), and a group a friend opened and paid from
/// the wallet: (group, the friend's ticket).
async fn group_of_three(app: &TestApp, operator: &TestUser, owner: &str) -> (String, String) {
    let owner = app.customer(owner).await;
    let body = campaign_with(json!({"group_size": 3, "winners_per_group": 1, "quantity": 10}));
    let (_, campaign) = live_campaign_with(app, operator, &owner, body).await;
    let friend = &app.customers(operator, 1, 5_000).await[0];
    open_group(app, &campaign, friend).await
}

/// A customer taps a friend's share link, signs up, pays into the group, sees it fill live and the draw verified
/// in the browser; the verifier in the page also agrees with every published test vector.
async fn a_customer_joins_from_a_share_link_and_sees_the_draw_verified(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138200").await;
    let body =
        campaign_with(json!({"group_size": 3, "winners_per_group": 1, "quantity": 10, "referral_bonus_points": 5}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let friends = app.customers(&operator, 2, 5_000).await;
    let (group, ticket) = open_group(&app, &campaign, &friends[0]).await;

    let driver = Driver::start().await;
    let browser = driver.browser(&app.base).await;
    browser.open(&format!("/g/{group}?from={ticket}")).await;
    // The rules come before the pay button, in Chinese.
    let rules = browser.text(".rules .headline").await;
    assert_eq!(rules, "3 人成团，1 人中奖；未中奖全额退款并得 ¥3.00 现金奖励");
    browser.wait_for_text("[data-progress]", "1/3").await;
    browser.screenshot(&shot(backend, "group-share-link")).await;

    // Joining signed out leads to the short sign-up, which tries the join at once: with an empty wallet and no
    // provider offered it cannot pay, so the reader is back on the same link, where they were on the page, told
    // why in Chinese.
    browser.run("window.scrollTo(0, 400)", vec![]).await;
    browser.click("[data-join]").await;
    browser.wait_for_path("/signup").await;
    browser.fill("#phone", "13700990001").await;
    browser.fill("#name", "小王").await;
    browser.fill("#password", server_password()).await;
    browser.screenshot(&shot(backend, "signup")).await;
    browser.click("form[data-account] [type=submit]").await;
    let back = browser.wait_for_path(&format!("/g/{group}")).await;
    assert!(back.contains(&format!("from={ticket}")), "came back to the share link: {back}");
    browser.wait_for_text("[data-join-bar] [data-error]", "余额不足").await;
    assert_eq!(browser.run("return window.scrollY", vec![]).await, json!(400), "back where they were");
    let newcomer = app.sign_in("13700990001").await;
    app.credit(&operator, json!({"user_id": newcomer.id}), 2_000).await;

    browser.open(&format!("/g/{group}?from={ticket}")).await;
    browser.wait_for_text("main", "¥20.00").await;
    browser.click("[data-join]").await;
    browser.wait_for_text("[data-progress]", "2/3").await;
    assert!(browser.text(".member.me").await.contains("你"));
    browser.screenshot(&shot(backend, "group-joined")).await;

    // The newcomer came through the friend's link: the membership records the inviter's ticket.
    let members =
        app.app.store().campaign_members(&tuangou_domain::ids::CampaignId::from_trusted(&campaign), 10).await.unwrap();
    let mine = members.iter().find(|m| m.user_id == newcomer.id).expect("joined");
    assert_eq!(mine.invited_by.as_deref(), Some(ticket.as_str()));

    // The third member joins elsewhere: the page sees the group fill and the draw, live.
    let (status, answer) =
        app.post(&format!("/api/v1/groups/{group}/members"), Some(&friends[1].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    browser.wait_for_text("[data-group-status]", "已开奖").await;
    browser.find("[data-result]").await;
    browser.click("[data-verify-run]").await;
    let summary = browser.wait_for_text("[data-verify-summary]", "验证通过").await;
    assert!(summary.starts_with('✓'));
    let checks = browser.run("return Array.from(document.querySelectorAll('[data-verify-checks] li')).map(li => li.className + ':' + li.dataset.check)", vec![]).await;
    assert_eq!(checks, json!(["ok:algorithm", "ok:commitment", "ok:members", "ok:digest", "ok:winners"]));
    browser.run("document.querySelector('[data-verify]').scrollIntoView()", vec![]).await;
    browser.screenshot(&shot(backend, "group-drawn-verified")).await;
    // Members are shown by seat and name; their tickets, which the record lists, are in the 如何验证 fold.
    browser.click("#how-to-verify summary").await;
    let tickets = browser.text("[data-tickets]").await;
    assert!(tickets.contains(&format!("1 号 {ticket}")) && tickets.matches(" 号 ").count() == 3, "{tickets}");
    browser.run("document.querySelector('[data-tickets]').scrollIntoView()", vec![]).await;
    browser.screenshot(&shot(backend, "group-verify-tickets")).await;

    // The same verifier, in this browser, on every record of FAIRNESS.md's vectors: verified ones verify, tampered
    // ones are rejected.
    browser.open("/verify").await;
    browser.find("[data-verify-paste]").await;
    let vectors: Value = serde_json::from_str(include_str!("../../../domain/tests/draw-vectors.json")).unwrap();
    let records = vectors["records"].as_array().unwrap();
    let outcomes = browser
        .run(
            "return Promise.all(arguments[0].map(r => window.tuangouDraw.verifyRecord(r.record).then(v => v.ok)))",
            vec![json!(records)],
        )
        .await;
    let expected: Vec<bool> = records.iter().map(|r| r["expect"] == "verified").collect();
    assert_eq!(outcomes, json!(expected));
    assert!(expected.contains(&true) && expected.contains(&false));

    browser.close().await;
    app.finish().await;
}

/// Staff sign in, type a winner's code (in lower case, without dashes), see what it is, redeem it with one tap,
/// and are refused clearly when the same code comes again.
async fn staff_redeem_a_voucher_by_typed_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138300").await;
    let body = campaign_with(json!({"group_size": 2, "winners_per_group": 1, "quantity": 4}));
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let clerk = app.customer("13800138301").await;
    let (status, added) = app
        .post(&format!("/api/v1/merchants/{merchant}/staff"), Some(&owner.token), json!({"phone": clerk.phone}))
        .await;
    assert!(status.is_success(), "{added}");
    let people = app.customers(&operator, 2, 5_000).await;
    let (group, _) = open_group(&app, &campaign, &people[0]).await;
    let (status, record) =
        app.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{record}");
    let winner = &people[record["group"]["draw"]["winners"][0].as_u64().unwrap() as usize - 1];
    let (_, vouchers) = app.get("/api/v1/me/vouchers", Some(&winner.token)).await;
    let voucher = &vouchers["items"][0];
    let code = voucher["code"].as_str().unwrap().to_owned();

    let driver = Driver::start().await;
    // The winner's voucher page: a big QR code and the code.
    let customer = driver.browser(&app.base).await;
    customer.sign_in(&winner.phone, server_password(), "/me").await;
    customer.click(&format!("a[href='/me/vouchers/{}']", voucher["id"].as_str().unwrap())).await;
    assert_eq!(customer.text("[data-voucher-code]").await, code);
    customer.find(".qr svg").await;
    customer.screenshot(&shot(backend, "voucher")).await;
    customer.close().await;

    let staff = driver.browser(&app.base).await;
    let counter = format!("/shop/{merchant}/redeem");
    staff.sign_in(&clerk.phone, server_password(), &counter).await;
    let typed = code.replace('-', "").to_lowercase();
    staff.fill("#code", &typed).await;
    staff.click("form[data-lookup] [type=submit]").await;
    staff.wait_for_text("[data-result]", "可核销").await;
    staff.click("[data-redeem-go]").await;
    staff.wait_for_text("[data-result]", "核销成功").await;
    let state = staff.run("return document.querySelector('[data-result]').dataset.state", vec![]).await;
    assert_eq!(state, "ok");
    staff.screenshot(&shot(backend, "staff-redeem-success")).await;

    let (_, after) = app.get("/api/v1/me/vouchers", Some(&winner.token)).await;
    assert_eq!(after["items"][0]["status"], "redeemed");

    // The same code again: an unmistakable refusal, and nothing changes.
    staff.fill("#code", &code).await;
    staff.click("form[data-lookup] [type=submit]").await;
    staff.wait_for_text("[data-result]", "已经核销过").await;
    let state = staff.run("return document.querySelector('[data-result]').dataset.state", vec![]).await;
    assert_eq!(state, "fail");
    staff.screenshot(&shot(backend, "staff-redeem-refused")).await;
    // The recent list shows the redemption (the voucher, not the person).
    staff.open(&counter).await;
    let recent = staff.text("[data-recent]").await;
    assert!(recent.contains("双人火锅套餐") && !recent.contains(&winner.phone), "{recent}");
    staff.close().await;
    app.finish().await;
}

/// A new merchant opens a store, writes a campaign with the editor (its preview in plain words, a field-level
/// error, fixed), publishes it, and finds it on the public pages with its rules card before the pay button.
async fn a_merchant_creates_and_publishes_a_campaign(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138400").await;

    let driver = Driver::start().await;
    let browser = driver.browser(&app.base).await;
    browser.sign_in(&owner.phone, server_password(), "/shop/new").await;
    browser.fill("#name", "春熙路茶馆").await;
    browser.fill("#category", "茶饮").await;
    browser.fill("#address", "锦江区春熙路 1 号").await;
    browser.fill("#latitude", "30.6563").await;
    browser.fill("#longitude", "104.0800").await;
    browser.fill("#phone", "02886661234").await;
    browser.fill("#opening_hours", "09:00–21:00").await;
    browser.screenshot(&shot(backend, "merchant-onboarding")).await;
    browser.click("form[data-api] [type=submit]").await;
    let shop = browser.wait_for_path("/shop/0").await;
    let merchant = shop.trim_start_matches("/shop/").to_owned();
    app.credit(&operator, json!({"merchant_id": merchant}), 1_000_000).await;

    browser.open(&format!("/shop/{merchant}/campaigns/new")).await;
    browser.fill("#title", "下午茶双人套餐").await;
    browser.fill("#price", "9.90").await;
    browser.fill("#original_price", "68.00").await;
    browser.fill("#group_size", "5").await;
    browser.fill("#winners_per_group", "9").await;
    // K above N: the preview marks that very field, in words.
    browser.find(".field.invalid #winners_per_group").await;
    assert!(!browser.text("[data-field-error='winners_per_group']").await.is_empty());
    browser.fill("#winners_per_group", "2").await;
    browser.fill("#quantity", "10").await;
    browser
        .wait_for_text("[data-preview-target] .headline", "5 人成团，2 人中奖；未中奖全额退款并得 ¥2.00 现金奖励")
        .await;
    let cleared = browser.text("[data-field-error='winners_per_group']").await;
    assert_eq!(cleared, "", "the error goes once the field is fixed");
    browser.screenshot(&shot(backend, "campaign-editor")).await;
    browser.click("#editor [type=submit]").await;
    let board = browser.wait_for_path("/shop/campaigns/").await;
    let campaign = board.trim_start_matches("/shop/campaigns/").to_owned();
    browser.click("[data-action$='/publish']").await;
    browser.wait_for_text("h1 .badge", "进行中").await;
    browser.screenshot(&shot(backend, "campaign-dashboard")).await;

    let (status, published) = app.get(&format!("/api/v1/campaigns/{campaign}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((published["status"].as_str(), published["price"].as_i64()), (Some("live"), Some(990)));
    assert_eq!(published["rules_card"]["odds"], "2/5");

    // The public campaign page: the rules card comes before the pay button.
    browser.open(&format!("/c/{campaign}")).await;
    // The owner sees the rules, but no pay button: a store's own people cannot join its groups.
    browser.find(".rules").await;
    let pay = browser.run("return document.querySelector('[data-join]') === null", vec![]).await;
    assert_eq!(pay, json!(true), "no pay button for the owner");
    browser.wait_for_text("main", "不能参加本店的团").await;
    browser.close().await;

    let visitor = driver.browser(&app.base).await;
    visitor.open(&format!("/c/{campaign}")).await;
    let order = visitor
        .run(
            "const rules = document.querySelector('.rules'), pay = document.querySelector('[data-join]');
             return !!(rules && pay && (rules.compareDocumentPosition(pay) & Node.DOCUMENT_POSITION_FOLLOWING))",
            vec![],
        )
        .await;
    assert_eq!(order, json!(true), "the rules card comes before the pay button");
    visitor.screenshot(&shot(backend, "campaign")).await;
    visitor.open("/?lat=30.657&lng=104.066").await;
    visitor.wait_for_text("[data-deals]", "下午茶双人套餐").await;
    visitor.screenshot(&shot(backend, "home")).await;
    // The language switch keeps the page and shows it in English.
    visitor.click("a.lang").await;
    visitor.wait_for_text("h1", "Deals near you").await;
    visitor.open(&format!("/c/{campaign}")).await;
    visitor.wait_for_text(".rules .headline", "Groups of 5, 2 win").await;
    visitor.close().await;

    // The narrowest phones in use (360 px): the owner's and a visitor's pages still fit, every control labelled.
    let narrow = driver.browser_sized(&app.base, 360, 740).await;
    for path in [
        "/".to_owned(),
        format!("/c/{campaign}"),
        format!("/m/{merchant}"),
        format!("/m/{merchant}/poster"),
        "/signup".to_owned(),
        "/verify".to_owned(),
    ] {
        narrow.open(&path).await;
        narrow.find("main").await;
        narrow.check_page_basics(&format!("{path} at 360 px")).await;
    }
    narrow.sign_in(&owner.phone, server_password(), &format!("/shop/{merchant}")).await;
    for path in [
        format!("/shop/{merchant}"),
        format!("/shop/{merchant}/campaigns/new"),
        format!("/shop/campaigns/{campaign}"),
        format!("/shop/{merchant}/redeem"),
        "/me".to_owned(),
    ] {
        narrow.open(&path).await;
        narrow.find("main").await;
        narrow.check_page_basics(&format!("{path} at 360 px")).await;
    }
    narrow.close().await;
    app.finish().await;
}

/// The operator approves a waiting store from their page; the store's scheduled group fills, the big screen counts
/// down, and when staff draw it the screen reveals the winners and verifies the draw by itself; the customer's
/// own page shows the outcome.
async fn the_operator_approves_and_the_big_screen_reveals_a_scheduled_draw(backend: Backend) {
    let settings = Settings { require_merchant_approval: true, ..Settings::default() };
    let app = TestApp::spawn_with(backend, settings).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138600").await;
    let merchant = common::merchant(&app, &owner, "锦里冰粉", common::CHUNXI).await;

    let driver = Driver::start().await;
    let desk = driver.browser(&app.base).await;
    desk.sign_in(&operator.phone, server_password(), "/operator").await;
    desk.wait_for_text("[data-check]", "全部不变量成立").await;
    desk.wait_for_text("main", "锦里冰粉").await;
    desk.screenshot(&shot(backend, "operator")).await;
    desk.click(&format!("[data-action='POST /api/v1/admin/merchants/{merchant}/approve']")).await;
    desk.wait_for_text("main", "没有待审核的商家").await;
    desk.close().await;
    let (_, profile) = app.get(&format!("/api/v1/merchants/{merchant}"), None).await;
    assert_eq!(profile["status"], "active");

    app.credit(&operator, json!({"merchant_id": merchant}), 1_000_000).await;
    let body = campaign_with(json!({
        "group_size": 2, "winners_per_group": 1, "quantity": 4, "draw_mode": "scheduled", "draw_window_hours": 2
    }));
    let campaign = common::draft(&app, &owner, &merchant, body).await;
    let (status, answer) =
        app.post(&format!("/api/v1/campaigns/{campaign}/publish"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let people = app.customers(&operator, 2, 5_000).await;
    let (group, _) = open_group(&app, &campaign, &people[0]).await;
    let (status, full) = app.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), json!({})).await;
    assert_eq!((status, full["group"]["status"].as_str()), (StatusCode::CREATED, Some("full")), "{full}");

    let screen = driver.browser(&app.base).await;
    screen.open(&format!("/g/{group}/live")).await;
    let body_class = screen.run("return document.body.className", vec![]).await;
    assert_eq!(body_class, "big-screen");
    screen.wait_for_text(".countdown", ":").await;
    screen.screenshot(&shot(backend, "live-draw-waiting")).await;
    let (status, drawn) = app.post(&format!("/api/v1/groups/{group}/draw"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{drawn}");
    let winner = drawn["draw"]["winners"][0].as_u64().unwrap();
    screen.wait_for_text(&format!("[data-reveal] [data-winner-seat='{winner}']"), &format!("{winner} 号")).await;
    screen.wait_for_text("[data-verify-summary]", "验证通过").await;
    screen.screenshot(&shot(backend, "live-draw-reveal")).await;
    screen.close().await;

    let customer = driver.browser(&app.base).await;
    let loser = &people[if winner == 1 { 1 } else { 0 }];
    customer.sign_in(&loser.phone, server_password(), "/me").await;
    customer.wait_for_text("main", "未中奖").await;
    customer.wait_for_text("main", "奖励 ¥3.00 现金").await;
    customer.screenshot(&shot(backend, "me")).await;
    customer.close().await;
    app.finish().await;
}

// A new customer paying through the sandbox from a share link (join, sign up, pay, and back by itself: the taps counted) is
// `join_flow::a_new_customer_joins_and_pays_from_a_share_link_in_two_taps_after_signing_up`.

/// A customer with an empty wallet taps join on a group's page where WeChat Pay is the provider, in a desktop
/// browser: a Native order, so the page shows its QR code with "用微信扫码支付"; the payer pays at the (fake)
/// WeChat Pay, its notification comes, and the page, which keeps looking at the payment, reloads with the seat
/// paid.
async fn a_customer_scans_a_wechat_pay_qr_on_the_group_page(backend: Backend) {
    use tuangou_app::payments::PaymentSettings;
    use tuangou_testkit::fake_wechatpay::FakeWechatPay;
    let clock = tuangou_app::Clock::system();
    let fake = FakeWechatPay::start(clock.clone()).await;
    let payments = PaymentSettings { wechatpay: Some(fake.settings(false)), ..PaymentSettings::default() };
    let settings = Settings { payments, ..Settings::default() };
    let app =
        TestApp::spawn_on_with(std::sync::Arc::new(tuangou_testkit::TestDb::new(backend).await), settings, clock).await;
    let worker = worker_beside(&app);
    let operator = app.operator().await;
    let (group, _) = group_of_three(&app, &operator, "13800138601").await;
    let payer = app.customers(&operator, 1, 0).await.remove(0);

    let driver = Driver::start().await;
    let browser = driver.browser(&app.base).await;
    browser.sign_in(&payer.phone, server_password(), &format!("/g/{group}")).await;
    browser.click("[data-join]").await; // 402 from the wallet, then WeChat Pay: a Native order
    browser.find("[data-pay-qr] svg").await;
    assert!(browser.text("[data-pending-payment]").await.contains("用微信扫码支付"));
    browser.screenshot(&shot(backend, "group-wechat-pay-qr")).await;
    let payment = browser.run("return document.querySelector('[data-pay-qr]').dataset.payment", vec![]).await;
    let payment = payment.as_str().expect("the seat's payment").to_owned();
    assert_eq!(fake.payment(&payment).expect("the order reached WeChat Pay").kind, "native");
    assert!(fake.pay(&payment).await.is_success(), "the notification is taken in");
    let reloaded = async {
        while browser.run("return document.querySelector('[data-pay-qr]') !== null", vec![]).await == json!(true) {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(15), reloaded).await.expect("the page reloads once paid");
    assert!(browser.text(".member.me").await.contains("你"));
    let (_, mine) = app.get("/api/v1/me/memberships", Some(&payer.token)).await;
    assert_eq!(mine["items"][0]["status"], "waiting", "the seat is paid: {mine}");
    browser.screenshot(&shot(backend, "group-paid-through-wechat-pay")).await;
    browser.close().await;
    worker.abort();
    app.finish().await;
}

on_both_backends_in_a_browser!(
    a_customer_scans_a_wechat_pay_qr_on_the_group_page,
    the_operator_approves_and_the_big_screen_reveals_a_scheduled_draw,
    a_customer_joins_from_a_share_link_and_sees_the_draw_verified,
    staff_redeem_a_voucher_by_typed_code,
    a_merchant_creates_and_publishes_a_campaign,
);
