//! Joining from a share link in as few taps as a phone allows (issue 18): the inviter named, the group's real
//! progress and seats, a join bar on screen without scrolling, a short sign-up that completes the join and sends
//! the reader to pay; and the pages' errors in the reader's language, none before they typed.

use super::common::{self, campaign_with, live_campaign_with, named_customer};
use super::{open_group, shot};
use serde_json::json;
use std::cell::Cell;
use tuangou_app::Settings;
use tuangou_testkit::browser::Browser;
use tuangou_testkit::{Backend, TestApp, on_both_backends_in_a_browser, server_password};

/// Every tap of a test goes through here, so the test can say how many it took.
struct Taps<'a> {
    browser: &'a Browser,
    count: Cell<u32>,
}

impl<'a> Taps<'a> {
    fn new(browser: &'a Browser) -> Self {
        Taps { browser, count: Cell::new(0) }
    }

    async fn tap(&self, css: &str) {
        self.browser.click(css).await;
        self.count.set(self.count.get() + 1);
    }

    fn count(&self) -> u32 {
        self.count.get()
    }
}

/// A text's words, one space apart (a seat's number, name and mark are boxes of their own, read apart by lines).
fn words(text: String) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The box of the first element matching `css` and the window's height: `{top, bottom, width, height, window}`.
async fn box_of(browser: &Browser, css: &str) -> serde_json::Value {
    browser
        .run(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect();
             return {top: r.top, bottom: r.bottom, width: r.width, height: r.height, window: window.innerHeight};",
            vec![json!(css)],
        )
        .await
}

/// A new customer opens a friend's share link with an empty wallet: the page names the friend, shows the group's
/// progress as a real bar with its seats, and keeps the price and the join button on screen. Join → the short
/// sign-up (three fields) → the sandbox's pay page → pay → back in the group by itself, paid: one tap before the
/// form and two after it (sign up, pay), where it took six taps before.
async fn a_new_customer_joins_and_pays_from_a_share_link_in_two_taps_after_signing_up(backend: Backend) {
    use tuangou_app::payments::PaymentSettings;
    use tuangou_app::payments::sandbox::{Faults, SandboxKey, SandboxSettings};
    let sandbox = SandboxSettings { key: SandboxKey::from_bytes([7; 32]), faults: Faults::default() };
    let settings = Settings {
        payments: PaymentSettings { sandbox: Some(sandbox), partner_mode: false, ..PaymentSettings::default() },
        ..Settings::default()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    // The worker runs beside the server, as in `serve` (the sandbox's notification confirms the seat).
    let worker = {
        let app = app.app.clone();
        tokio::spawn(async move {
            loop {
                let _ = app.run_jobs_once().await;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
    };
    let operator = app.operator().await;
    let owner = app.customer("13800138700").await;
    let body = campaign_with(json!({"group_size": 3, "winners_per_group": 1, "quantity": 10}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let friend = named_customer(&app, "13700990101", "王小明").await;
    app.credit(&operator, json!({"user_id": friend.id}), 5_000).await;
    let (group, ticket) = open_group(&app, &campaign, &friend).await;

    let driver = tuangou_testkit::browser::Driver::start().await;
    let browser = driver.browser(&app.base).await;
    let taps = Taps::new(&browser);
    browser.open(&format!("/g/{group}?from={ticket}")).await;
    // The friend, by their masked name; the group's progress: a bar a third full, seats, how many are missing.
    assert_eq!(browser.text("[data-inviter]").await, "王*明 邀请你参团");
    browser.wait_for_text("[data-progress]", "1/3").await;
    assert_eq!(browser.text("[data-missing-count]").await, "还差 2 人");
    let track = box_of(&browser, ".progress").await;
    assert!(track["width"].as_f64().unwrap() > 300.0, "the progress bar spans the card: {track}");
    let bar = box_of(&browser, ".progress-bar").await;
    assert_eq!(bar["width"], track["width"], "the bar fills its track: {bar}");
    let value = browser.run("return document.querySelector('.progress-bar').position", vec![]).await;
    assert!((value.as_f64().unwrap() - 0.33).abs() < 0.01, "a third of it is filled: {value}");
    let seats = browser
        .run("return [document.querySelectorAll('.member:not(.empty)').length, document.querySelectorAll('.member.empty').length]", vec![])
        .await;
    assert_eq!(seats, json!([1, 2]), "one seat taken, two free");
    // The friend's seat by number and masked name, never by ticket (that is kept for the 如何验证 fold).
    assert_eq!(words(browser.text(".member[data-seq='1']").await), "1 号 王*明");
    // The join bar is on screen without scrolling, with the price and the rules in one line; the whole card is in
    // the page above it.
    let join = box_of(&browser, "[data-join-bar] [data-join]").await;
    let window = join["window"].as_f64().unwrap();
    assert!(join["top"].as_f64().unwrap() >= 0.0 && join["bottom"].as_f64().unwrap() <= window, "{join}");
    let bar_text = browser.text("[data-join-bar]").await;
    assert!(
        bar_text.contains("¥9.90") && bar_text.contains("3 人成团，1 人中奖") && bar_text.contains("还差 2 人"),
        "{bar_text}"
    );
    browser.find(".rules").await;
    browser.screenshot(&shot(backend, "join-share-link")).await;

    taps.tap("[data-join-bar] [data-join]").await;
    browser.wait_for_path("/signup").await;
    // The short sign-up says what is being joined, for how much, through whom, and offers signing in instead.
    assert_eq!(browser.text("[data-join-intent] [data-inviter]").await, "王*明 邀请你参团");
    browser.wait_for_text("[data-join-intent]", "¥9.90").await;
    browser.find("a[href^='/signin?'][href*='join=1']").await;
    let before_form = taps.count();
    browser.fill("#phone", "13700990102").await;
    browser.fill("#name", "小李").await;
    browser.fill("#password", server_password()).await;
    browser.screenshot(&shot(backend, "join-signup")).await;
    taps.tap("form[data-account] [type=submit]").await;
    // Signed up, the join happened at once: the wallet is empty, so the sandbox's pay page.
    browser.wait_for_path("/sandbox/pay/").await;
    browser.wait_for_text("[data-sandbox-amount]", "¥9.90").await;
    browser.screenshot(&shot(backend, "join-sandbox-pay")).await;
    taps.tap("[data-sandbox-pay]").await;
    // Paid, the sandbox sends the payer back by itself, as real providers do with return_url: no tap to return.
    browser.wait_for_path(&format!("/g/{group}")).await;
    browser.wait_for_text("[data-progress]", "2/3").await;
    let after_form = taps.count() - before_form;
    assert!(after_form <= 2, "{after_form} taps after the sign-up form");
    assert_eq!((before_form, taps.count()), (1, 3), "join; sign up, pay");

    let newcomer = app.sign_in("13700990102").await;
    let paid = async {
        loop {
            let (_, page) = app.get("/api/v1/me/memberships", Some(&newcomer.token)).await;
            if page["items"][0]["status"] == "waiting" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), paid).await.expect("the seat is paid");
    // Through the friend's link: the membership records the friend's ticket.
    let members =
        app.app.store().campaign_members(&tuangou_domain::ids::CampaignId::from_trusted(&campaign), 10).await.unwrap();
    let mine = members.iter().find(|m| m.user_id == newcomer.id).expect("joined");
    assert_eq!(mine.invited_by.as_deref(), Some(ticket.as_str()));
    browser.open(&format!("/g/{group}")).await;
    assert_eq!(words(browser.text(".member.me").await), "2 号 小* 你", "the reader's own seat, marked");
    let none = browser.run("return document.querySelector('[data-join-bar]') === null", vec![]).await;
    assert_eq!(none, json!(true), "a member is offered no join");
    browser.screenshot(&shot(backend, "join-paid")).await;

    // The deal's own page has the same bar. A customer with money signs in from it instead of signing up: joined
    // from the wallet into the group closest to full, which fills and is drawn.
    let third = &app.customers(&operator, 1, 5_000).await[0];
    let visitor = driver.browser(&app.base).await;
    visitor.open(&format!("/c/{campaign}")).await;
    let join = box_of(&visitor, "[data-join-bar] [data-join]").await;
    assert!(join["bottom"].as_f64().unwrap() <= join["window"].as_f64().unwrap(), "{join}");
    visitor.screenshot(&shot(backend, "join-deal")).await;
    visitor.click("[data-join-bar] [data-join]").await;
    visitor.wait_for_path("/signup").await;
    visitor.click("a[href^='/signin?'][href*='join=1']").await;
    visitor.wait_for_path("/signin").await;
    assert_eq!(visitor.text("form[data-account] [type=submit]").await, "登录并支付 ¥9.90 参团");
    visitor.fill("#phone", &third.phone).await;
    visitor.fill("#password", server_password()).await;
    visitor.screenshot(&shot(backend, "join-signin")).await;
    visitor.click("form[data-account] [type=submit]").await;
    visitor.wait_for_path(&format!("/g/{group}")).await;
    visitor.wait_for_text("[data-group-status]", "已开奖").await;
    // Whoever was not drawn sees their refund and reward, marked as an outcome (not as something loading).
    let (_, drawn) = app.get(&format!("/api/v1/groups/{group}"), None).await;
    let not_drawn = if drawn["draw"]["winners"] == json!([3]) { &browser } else { &visitor };
    not_drawn.open(&format!("/g/{group}")).await;
    let result = not_drawn.find(".result.not-drawn[data-result='lost']").await;
    assert!(result.text().await.unwrap().contains("已全额退款"));
    not_drawn.run("document.querySelector('[data-result]').scrollIntoView()", vec![]).await;
    not_drawn.screenshot(&shot(backend, "join-not-drawn")).await;
    visitor.close().await;
    browser.close().await;
    worker.abort();
    app.finish().await;
}

/// A refusal on a Chinese page is in Chinese, at the field it is about (not the API's English); the campaign
/// editor shows no error before anything was typed.
async fn errors_are_in_the_readers_language_and_wait_for_typing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.customer("13800138800").await;
    let merchant = common::merchant(&app, &owner, "春熙路茶馆", common::CHUNXI).await;
    let driver = tuangou_testkit::browser::Driver::start().await;
    let browser = driver.browser(&app.base).await;

    browser.open("/signup").await;
    browser.fill("#phone", "12345").await;
    browser.fill("#name", "小张").await;
    browser.fill("#password", server_password()).await;
    browser.click("form[data-account] [type=submit]").await;
    let error = browser.wait_for_text("[data-field-error='phone']", "手机号").await;
    assert_eq!(error, "请输入正确的手机号（1 开头的 11 位数字）");
    browser.find(".field.invalid #phone").await;
    browser.screenshot(&shot(backend, "signup-field-error")).await;
    // A phone that has an account: said so, in Chinese.
    browser.fill("#phone", &owner.phone).await;
    browser.click("form[data-account] [type=submit]").await;
    browser.wait_for_text("[data-error]", "这个手机号已经注册过了").await;

    browser.sign_in(&owner.phone, server_password(), &format!("/shop/{merchant}/campaigns/new")).await;
    // The preview of the empty form has answered (the editor counts its checks), and nothing is marked.
    browser.find("form[data-checked]").await;
    let marked = browser
        .run(
            "return [document.querySelectorAll('.field.invalid').length,
                     Array.from(document.querySelectorAll('.field-error, [data-error]')).map(e => e.textContent).join('')]",
            vec![],
        )
        .await;
    assert_eq!(marked, json!([0, ""]), "no error before typing");
    browser.screenshot(&shot(backend, "editor-untouched")).await;
    browser.fill("#title", "下午茶双人套餐").await;
    browser.fill("#group_size", "5").await;
    browser.fill("#winners_per_group", "9").await;
    let error = browser.wait_for_text("[data-field-error='winners_per_group']", "每团").await;
    assert_eq!(error, "每团中奖人数须至少 1 人，且不超过每团人数");
    // Only that field is marked.
    assert_eq!(browser.run("return document.querySelectorAll('.field.invalid').length", vec![]).await, json!(1));
    browser.screenshot(&shot(backend, "editor-field-error")).await;
    browser.close().await;
    app.finish().await;
}

on_both_backends_in_a_browser!(
    a_new_customer_joins_and_pays_from_a_share_link_in_two_taps_after_signing_up,
    errors_are_in_the_readers_language_and_wait_for_typing,
);
