//! The counter and the store's screen in a real browser (issue 18): staff read a photo of a voucher's QR code with
//! the page's own decoder (jsQR where the browser has no BarcodeDetector, as on Linux Chromium) and redeem with one
//! more tap, while the customer's voucher page shows the redemption live; an owner of two stores reaches the second
//! from the header's store switcher; staff start a scheduled draw from the big screen and the room sees the winners
//! by seat and masked name, with a QR code to join the next group.

use crate::common::{self, CHUNXI, campaign_with, won_voucher};
use crate::shot;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use tuangou_testkit::browser::Driver;
use tuangou_testkit::{Backend, TestApp, on_both_backends_in_a_browser, server_password};

/// Writes `text` as a QR code in a grayscale PNG (8 pixels a module, with the standard quiet zone), as a phone's
/// photo of the voucher would hold it.
fn qr_png(text: &str, path: &Path) {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::new(text.as_bytes()).expect("a QR code");
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (x, y) = ((i % modules + QUIET) * SCALE, (i / modules + QUIET) * SCALE);
        for row in y..y + SCALE {
            pixels[row * side + x..row * side + x + SCALE].fill(0);
        }
    }
    gray_png(&pixels, side, path);
}

/// Writes a square grayscale PNG.
fn gray_png(pixels: &[u8], side: usize, path: &Path) {
    let file = std::fs::File::create(path).expect("a PNG file");
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().expect("a PNG header").write_image_data(pixels).expect("PNG data");
}

/// The other store's owner reads a photo of a voucher's QR code, or types its code, and is refused as for any
/// unknown code. A clerk who works at both stores types the code at the other one's counter and lands on the
/// first store's counter with it looked up; then reads the photo there: the page decodes it itself, sees the
/// voucher belongs to the first store, opens that counter with the deal, the price and the store shown; one tap
/// redeems it, and the customer's voucher page says when and where, live.
async fn staff_scan_a_voucher_photo_and_redeem_it_in_one_more_tap(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800139300").await;
    let (merchant, winner, voucher) = won_voucher(&app, &operator, &owner, json!({})).await;
    let code = voucher["code"].as_str().unwrap().to_owned();
    let clerk = app.customer("13800139301").await;
    let (status, added) = app
        .post(&format!("/api/v1/merchants/{merchant}/staff"), Some(&owner.token), json!({"phone": clerk.phone}))
        .await;
    assert!(status.is_success(), "{added}");
    let other_owner = app.customer("13800139302").await;
    let other = common::merchant(&app, &other_owner, "隔壁茶馆", CHUNXI).await;
    let (status, added) = app
        .post(&format!("/api/v1/merchants/{other}/staff"), Some(&other_owner.token), json!({"phone": clerk.phone}))
        .await;
    assert!(status.is_success(), "{added}");

    let driver = Driver::start().await;
    // The customer's voucher page: the deal, the store, where it is and when it opens; it stays open.
    let customer = driver.browser(&app.base).await;
    customer
        .sign_in(&winner.phone, server_password(), &format!("/me/vouchers/{}", voucher["id"].as_str().unwrap()))
        .await;
    assert_eq!(customer.text("[data-voucher-deal]").await, "双人火锅套餐");
    assert_eq!(customer.text("[data-voucher-store]").await, "老码头");
    let place = customer.text("[data-voucher-where]").await;
    assert!(place.contains("锦江区春熙路 8 号") && place.contains("11:00–23:00") && place.contains("高德"), "{place}");
    customer.check_page_basics("voucher").await;
    customer.screenshot(&shot(backend, "voucher-names-deal-and-store")).await;
    customer.open("/me").await;
    let line = customer.text("[data-voucher-line]").await;
    assert!(line.contains("双人火锅套餐") && line.contains("老码头"), "{line}");
    customer.screenshot(&shot(backend, "me-vouchers")).await;
    // The voucher's address, as its QR code holds it, opened by anyone but the store's staff (here its owner,
    // scanning it with the phone's camera): whose voucher it is, and to show it at the counter.
    let address = format!("{}/r/{merchant}/{code}", app.app.settings().public_url.trim_end_matches('/'));
    customer.open(&address).await;
    customer.wait_for_text("h1", "请出示给店员扫码").await;
    customer.check_page_basics("voucher-address").await;
    customer.screenshot(&shot(backend, "voucher-address-for-customers")).await;
    customer.open(&format!("/me/vouchers/{}", voucher["id"].as_str().unwrap())).await;
    customer.find("[data-voucher-code]").await;

    // The photo holds what the voucher's QR code holds: its address.
    let photos = tempfile::tempdir().unwrap();
    let photo = photos.path().join("voucher.png");
    qr_png(&address, &photo);

    // The other store's owner, who works only there, scans it: refused as a typed code is, nothing redeemed.
    let neighbour = driver.browser(&app.base).await;
    neighbour.sign_in(&other_owner.phone, server_password(), &format!("/shop/{other}/redeem")).await;
    neighbour.find("[data-scan-photo]:not([hidden])").await;
    neighbour.find("[data-scan-file]").await.send_keys(photo.to_str().unwrap()).await.expect("the photo is chosen");
    neighbour.wait_for_text("[data-result]", "不是本店的券").await;
    assert_eq!(neighbour.path().await, format!("/shop/{other}/redeem"));
    neighbour.screenshot(&shot(backend, "counter-scanned-other-store")).await;
    // Typed, the same refusal: nothing says the code is another store's.
    let typed = code.replace('-', "").to_lowercase();
    neighbour.open(&format!("/shop/{other}/redeem")).await;
    neighbour.fill("#code", &typed).await;
    neighbour.click("form[data-lookup] button[type=submit]").await;
    neighbour.wait_for_text("[data-result]", "不是本店的券").await;
    assert_eq!(neighbour.path().await, format!("/shop/{other}/redeem"));
    neighbour.close().await;

    // The clerk types the code at the other store's counter: the counter moves to the voucher's store, the code
    // looked up there, ready to redeem.
    let staff = driver.browser(&app.base).await;
    staff.sign_in(&clerk.phone, server_password(), &format!("/shop/{other}/redeem")).await;
    staff.fill("#code", &typed).await;
    staff.click("form[data-lookup] button[type=submit]").await;
    staff.wait_for_path(&format!("/shop/{merchant}/redeem")).await;
    let ready = staff.wait_for_text("[data-result]", "可核销").await;
    assert!(ready.contains("双人火锅套餐") && ready.contains("老码头") && ready.contains(&code), "{ready}");
    staff.find("[data-redeem-go]:not([hidden])").await;
    staff.screenshot(&shot(backend, "counter-typed-other-store")).await;

    // The same from a photo of the QR code, at the other store's counter again.
    staff.open(&format!("/shop/{other}/redeem")).await;
    staff.find("[data-scan-photo]:not([hidden])").await;
    staff.check_page_basics("counter").await;
    staff.screenshot(&shot(backend, "counter-ready-to-scan")).await;
    staff.find("[data-scan-file]").await.send_keys(photo.to_str().unwrap()).await.expect("the photo is chosen");
    // The voucher is the first store's: its counter opens with the code looked up.
    staff.wait_for_path(&format!("/shop/{merchant}/redeem")).await;
    let ready = staff.wait_for_text("[data-result]", "可核销").await;
    assert!(ready.contains("双人火锅套餐") && ready.contains("¥9.90") && ready.contains("老码头"), "{ready}");
    assert_eq!(staff.run("return document.querySelector('#code').value", vec![]).await, json!(code));
    staff.screenshot(&shot(backend, "counter-scanned-preview")).await;
    staff.click("[data-redeem-go]").await; // the one tap
    let done = staff.wait_for_text("[data-result]", "核销成功").await;
    assert!(done.contains("双人火锅套餐") && done.contains("老码头"), "{done}");
    assert_eq!(staff.run("return document.querySelector('[data-result]').dataset.state", vec![]).await, "ok");
    staff.screenshot(&shot(backend, "counter-scanned-redeemed")).await;

    // The photo was read by the page's decoder: jsQR where the browser has no BarcodeDetector.
    staff.open(&format!("/shop/{merchant}/redeem")).await;
    staff.find("[data-scan-photo]:not([hidden])").await;
    staff.find("[data-scan-file]").await.send_keys(photo.to_str().unwrap()).await.expect("the photo is chosen");
    staff.wait_for_text("[data-result]", "已经核销过").await;
    staff.screenshot(&shot(backend, "counter-scanned-again-refused")).await;
    let decoder = staff.run("return window.tuangouScan.decoder", vec![]).await;
    let native = staff.run("return 'BarcodeDetector' in window", vec![]).await;
    assert_eq!(decoder, if native == json!(true) { "BarcodeDetector" } else { "jsQR" });
    // A photo without a QR code in it: said so, nothing looked up.
    let blank = photos.path().join("blank.png");
    gray_png(&[200; 240 * 240], 240, &blank);
    staff.find("[data-scan-file]").await.send_keys(blank.to_str().unwrap()).await.expect("the photo is chosen");
    staff.wait_for_text("[data-result]", "没有识别到二维码").await;
    staff.close().await;

    // The customer's page showed the redemption as it happened: when and where.
    let redeemed = customer.wait_for_text("[data-voucher-redeemed]", "在 老码头 核销").await;
    assert!(redeemed.starts_with("已于 "), "{redeemed}");
    // The counter said the same time, in China Standard Time as every page says times.
    let at = redeemed.trim_start_matches("已于 ").split(" 在 ").next().unwrap();
    assert!(done.contains(at), "the counter: {done}; the voucher: {redeemed}");
    customer.screenshot(&shot(backend, "voucher-redeemed-live")).await;
    customer.close().await;
    app.finish().await;
}

/// An owner of two stores opens the header's store menu on any page and reaches the second store's dashboard and
/// counter; the menu names both.
async fn an_owner_of_two_stores_reaches_the_second_from_the_header(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.customer("13800139400").await;
    let first = common::merchant(&app, &owner, "老码头", CHUNXI).await;
    let second = common::merchant(&app, &owner, "老码头·玉林店", (30.6300, 104.0500)).await;

    let driver = Driver::start().await;
    let browser = driver.browser(&app.base).await;
    browser.sign_in(&owner.phone, server_password(), "/").await;
    browser.click("[data-store-switcher] summary").await;
    let menu = browser.text(".store-menu").await;
    assert!(menu.contains("老码头") && menu.contains("老码头·玉林店"), "{menu}");
    browser.check_page_basics("store-switcher").await;
    browser.screenshot(&shot(backend, "store-switcher-open")).await;
    browser.click(&format!("[data-store-page='{second}']")).await;
    browser.wait_for_path(&format!("/shop/{second}")).await;
    browser.wait_for_text("h1", "老码头·玉林店").await;
    browser.click("[data-store-switcher] summary").await;
    let current =
        browser.run("return document.querySelector('.store-menu li[aria-current]').textContent", vec![]).await;
    assert!(current.as_str().unwrap().contains("玉林店"), "{current}");
    browser.click(&format!("[data-store-counter='{second}']")).await;
    browser.wait_for_path(&format!("/shop/{second}/redeem")).await;
    browser.wait_for_text("h1", "老码头·玉林店").await;
    browser.click("[data-store-switcher] summary").await;
    browser.click(&format!("[data-store-counter='{first}']")).await;
    browser.wait_for_path(&format!("/shop/{first}/redeem")).await;
    let heading = browser.text("h1").await;
    assert!(heading.ends_with("老码头"), "{heading}");
    browser.close().await;
    app.finish().await;
}

/// Staff start a full scheduled group's draw from the big screen (after confirming); the screen plays the reveal
/// and shows the winner by seat and masked name, proves the draw, and offers a QR code to join the next group.
async fn staff_start_the_live_draw_from_the_big_screen(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800139500").await;
    let body = campaign_with(json!({
        "group_size": 2, "winners_per_group": 1, "quantity": 4, "draw_mode": "scheduled", "draw_window_hours": 2
    }));
    let (_, campaign) = common::live_campaign_with(&app, &operator, &owner, body).await;
    let people = app.customers(&operator, 2, 5_000).await;
    let mut group = String::new();
    for (i, person) in people.iter().enumerate() {
        let (status, joined) =
            app.post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&person.token), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{joined}");
        if i == 0 {
            group = joined["group"]["id"].as_str().unwrap().to_owned();
        }
    }

    let driver = Driver::start().await;
    // A screen nobody signed in to shows no draw button: the system draws at the end of the window.
    let anyone = driver.browser(&app.base).await;
    anyone.open(&format!("/g/{group}/live")).await;
    anyone.find("[data-join-next] svg").await;
    let buttons = anyone.run("return document.querySelectorAll('[data-draw]').length", vec![]).await;
    assert_eq!(buttons, 0);
    anyone.close().await;

    let screen = driver.browser(&app.base).await;
    screen.sign_in(&owner.phone, server_password(), &format!("/g/{group}/live")).await;
    screen.find("[data-draw]").await;
    screen.check_page_basics("live-draw-ready").await;
    screen.screenshot(&shot(backend, "live-draw-ready")).await;
    // Dismissing the confirmation draws nothing.
    screen.click("[data-draw]").await;
    screen.client.dismiss_alert().await.expect("a confirmation");
    let (_, still) = app.get(&format!("/api/v1/groups/{group}"), None).await;
    assert_eq!(still["status"], "full");
    screen.click("[data-draw]").await;
    screen.client.accept_alert().await.expect("a confirmation");
    screen.find("[data-reveal]").await;
    let (_, drawn) = app.get(&format!("/api/v1/groups/{group}"), None).await;
    assert_eq!(drawn["status"], "drawn");
    let winner = drawn["draw"]["winners"][0].as_u64().unwrap();
    let seat = screen.wait_for_text(&format!("[data-winner-seat='{winner}']"), &format!("{winner} 号")).await;
    assert!(seat.contains("测*"), "the winner by seat and masked name: {seat}");
    assert!(!seat.contains("测试"), "never the full name: {seat}");
    screen.wait_for_text("[data-verify-summary]", "验证通过").await;
    screen.find("[data-join-next] svg").await;
    screen.screenshot(&shot(backend, "live-draw-revealed")).await;
    // The reveal animates, unless the room's screen asks for less motion.
    let animated =
        screen.run("return getComputedStyle(document.querySelector('.winner-card')).animationName", vec![]).await;
    assert_eq!(animated, "winner-in");
    let reduced = screen
        .run(
            "const s = document.styleSheets[0]; return Array.from(s.cssRules).some(r => r.conditionText && r.conditionText.includes('prefers-reduced-motion') && r.cssText.includes('winner-card'))",
            vec![],
        )
        .await;
    assert_eq!(reduced, true, "reduced motion turns the reveal off");
    screen.close().await;
    app.finish().await;
}

on_both_backends_in_a_browser!(
    staff_scan_a_voucher_photo_and_redeem_it_in_one_more_tap,
    an_owner_of_two_stores_reaches_the_second_from_the_header,
    staff_start_the_live_draw_from_the_big_screen,
);
