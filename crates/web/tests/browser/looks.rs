//! Looks like a product (issue 18, point 7): an owner gives a store and a new deal their photos through the pages
//! (a refused file says why in Chinese and changes nothing), and the photo is on the home page's card, the deal's
//! and the store's pages, the share card and the poster; the signed-in header stays one row at 390 px.

use crate::common::{CHUNXI, merchant};
use crate::shot;
use image::ImageEncoder;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tuangou_testkit::browser::Driver;
use tuangou_testkit::{Backend, TestApp, on_both_backends_in_a_browser, server_password};

/// A phone-sized JPEG with detail, written where the browser can pick it.
fn photo_file(dir: &std::path::Path, name: &str, (r, g, b): (u8, u8, u8)) -> String {
    let (w, h) = (1600, 1200);
    let pixels = image::RgbImage::from_fn(w, h, |x, y| {
        let t = (x + y) as f32 / (w + h) as f32;
        image::Rgb([(f32::from(r) * (1.0 - t * 0.5)) as u8, (f32::from(g) * (1.0 - t * 0.3)) as u8, b])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 88)
        .write_image(&pixels, w, h, image::ExtendedColorType::Rgb8)
        .expect("a JPEG");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the photo");
    path.to_string_lossy().into_owned()
}

/// Whether the image matched by `css` loaded, and its natural width.
async fn loaded_width(browser: &tuangou_testkit::browser::Browser, css: &str) -> Value {
    browser
        .run(
            "const img = document.querySelector(arguments[0]);
             if (!img) return null;
             return new Promise((resolve) => {
               const done = () => resolve(img.naturalWidth);
               if (img.complete) done(); else { img.onload = done; img.onerror = () => resolve(0); }
             });",
            vec![json!(css)],
        )
        .await
}

async fn an_owner_uploads_photos_that_customers_see(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138500").await;
    let store = merchant(&app, &owner, "老码头火锅", CHUNXI).await;
    app.credit(&operator, json!({"merchant_id": store}), 1_000_000).await;
    let files = tempfile_dir();
    let store_photo = photo_file(files.path(), "store.jpg", (230, 120, 60));
    let deal_photo = photo_file(files.path(), "deal.jpg", (200, 60, 40));
    let not_a_photo = files.path().join("menu.png");
    std::fs::write(&not_a_photo, "这不是图片").unwrap();

    let driver = Driver::start().await;
    let browser = driver.browser(&app.base).await;
    browser.sign_in(&owner.phone, server_password(), &format!("/shop/{store}")).await;
    // The signed-in header is one row: its height is that of one line of links.
    let header =
        browser.run("return document.querySelector('header.top').getBoundingClientRect().height", vec![]).await;
    assert!(header.as_f64().unwrap_or(999.0) < 60.0, "the header wraps: {header} px high");
    browser.click("details.more > summary").await;
    browser.find(".more-menu [data-sign-out]").await;
    browser.screenshot(&shot(backend, "header-signed-in-menu")).await;
    browser.click("details.more > summary").await;

    // A file that is not a photo: refused in Chinese, nothing stored.
    browser.find("#store-photo").await.send_keys(&not_a_photo.to_string_lossy()).await.expect("choose a file");
    browser.wait_for_text("[data-field-error='photo']", "无法读取这张图片").await;
    let (_, profile) = app.get(&format!("/api/v1/merchants/{store}"), None).await;
    assert_eq!(profile["photo_url"], Value::Null, "nothing stored");
    // The store's photo, straight from the dashboard.
    browser.find("#store-photo").await.send_keys(&store_photo).await.expect("choose the photo");
    browser.wait_for_text("[data-photo-status]", "照片已保存").await;
    browser.run("document.querySelector('[data-photo-field]').scrollIntoView({block: 'center'})", vec![]).await;
    assert_eq!(browser.text("[data-field-error='photo']").await, "", "the earlier refusal is gone");
    let (_, profile) = app.get(&format!("/api/v1/merchants/{store}"), None).await;
    let store_url = profile["photo_url"].as_str().expect("the store has its photo").to_owned();
    browser.screenshot(&shot(backend, "store-dashboard-photo")).await;

    // A new deal with its photo, from the editor: saved, then the photo, then the board.
    browser.open(&format!("/shop/{store}/campaigns/new")).await;
    browser.fill("#title", "双人火锅套餐").await;
    browser.fill("#price", "9.90").await;
    browser.fill("#original_price", "198.00").await;
    browser.fill("#group_size", "5").await;
    browser.fill("#winners_per_group", "2").await;
    browser.fill("#quantity", "10").await;
    browser.find("#photo").await.send_keys(&deal_photo).await.expect("choose the photo");
    browser.wait_for_text("[data-photo-status]", "deal.jpg").await;
    browser.wait_for_text("[data-preview-target] .headline", "5 人成团，2 人中奖").await;
    browser.run("document.querySelector('[data-photo-field]').scrollIntoView({block: 'center'})", vec![]).await;
    browser.screenshot(&shot(backend, "editor-photo")).await;
    browser.click("#editor [type=submit]").await;
    let board = browser.wait_for_path("/shop/campaigns/").await;
    let campaign = board.trim_start_matches("/shop/campaigns/").to_owned();
    let (_, detail) = app.get(&format!("/api/v1/campaigns/{campaign}"), Some(&owner.token)).await;
    let deal_url = detail["photo_url"].as_str().expect("the deal has its photo").to_owned();
    assert_ne!(deal_url, store_url);
    browser.click("[data-action$='/publish']").await;
    browser.wait_for_text("h1 .badge", "进行中").await;
    browser.find(".chart-day-one").await;
    browser.run("document.querySelector('.chart-day-one').scrollIntoView({block: 'center'})", vec![]).await;
    browser.screenshot(&shot(backend, "campaign-board-day-one")).await;

    // A customer sees it: the home page's card, the deal's page, the store's page.
    let customer = app.customers(&operator, 1, 10_000).await.remove(0);
    let visitor = driver.browser(&app.base).await;
    visitor.open("/").await;
    visitor.wait_for_text("[data-deals]", "双人火锅套餐").await;
    let card = format!("[data-deals] a[href='/c/{campaign}'] img.deal-photo[src='{deal_url}']");
    assert_eq!(loaded_width(&visitor, &card).await, json!(1200), "the card shows the deal's photo, shrunk to 1200 px");
    visitor.screenshot(&shot(backend, "home-cards")).await;
    visitor.open(&format!("/c/{campaign}")).await;
    assert_eq!(loaded_width(&visitor, &format!("img.hero-photo[src='{deal_url}']")).await, json!(1200));
    visitor.screenshot(&shot(backend, "deal-photo")).await;
    visitor.open(&format!("/m/{store}")).await;
    assert_eq!(loaded_width(&visitor, &format!("img.hero-photo[src='{store_url}']")).await, json!(1200));
    visitor.screenshot(&shot(backend, "store-photo")).await;
    visitor.open(&format!("/m/{store}/poster")).await;
    visitor.find(".poster .qr svg").await;
    let poster = visitor.text(".poster").await;
    assert!(
        poster.contains("老码头火锅") && !poster.contains("http"),
        "the poster names the store, no raw URL: {poster}"
    );
    visitor.screenshot(&shot(backend, "poster")).await;

    // The share card of a member: photo, deal, store, QR and a caption, not an address.
    let (status, joined) =
        app.post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&customer.token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{joined}");
    let group = joined["group"]["id"].as_str().unwrap().to_owned();
    visitor.sign_in(&customer.phone, server_password(), &format!("/g/{group}")).await;
    let card = visitor.text(".share-card").await;
    assert!(card.contains("双人火锅套餐") && card.contains("老码头火锅") && card.contains("扫码"), "{card}");
    assert!(!card.contains("http"), "no raw URL on the share card: {card}");
    assert_eq!(loaded_width(&visitor, &format!(".share-card img.share-photo[src='{deal_url}']")).await, json!(1200));
    visitor.run("document.querySelector('.share-card').scrollIntoView()", vec![]).await;
    visitor.screenshot(&shot(backend, "share-card")).await;
    // The method and the hashes are folded under 如何验证.
    let hidden = visitor
        .run(
            "const box = document.querySelector('details.how-verify');
             return !box.open && !document.querySelector('.hash').checkVisibility()",
            vec![],
        )
        .await;
    assert_eq!(hidden, json!(true), "the commitment's hash is folded away");
    visitor.click("details.how-verify > summary").await;
    visitor.wait_for_text("details.how-verify", "tuangou-draw-v1").await;
    visitor.run("document.querySelector('details.how-verify').scrollIntoView()", vec![]).await;
    visitor.screenshot(&shot(backend, "how-to-verify")).await;
    visitor.close().await;
    browser.close().await;
    app.finish().await;
}

fn tempfile_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

on_both_backends_in_a_browser!(an_owner_uploads_photos_that_customers_see);
