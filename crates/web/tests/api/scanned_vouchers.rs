//! Vouchers that name their deal and store, and the address their QR code holds (issue 18): the voucher page and
//! 我的券 say what the voucher is for and where (address, directions, hours), and after redemption when and
//! where; the QR code is `/r/{merchant}/{code}`, which opens the counter for that store's staff, refuses another
//! store's staff as a typed code is refused, and tells anyone else to show it at the counter; the voucher's own
//! event stream tells its owner of the redemption.

use crate::common::{CHUNXI, merchant, won_voucher};
use crate::live_events::Watcher;
use crate::pages::page;
use reqwest::StatusCode;
use serde_json::json;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

async fn a_voucher_names_its_deal_and_store_and_its_qr_opens_the_counter(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800139100").await;
    let (m, winner, voucher) = won_voucher(&app, &operator, &owner, json!({})).await;
    let (id, code) = (voucher["id"].as_str().unwrap(), voucher["code"].as_str().unwrap());
    assert_eq!(voucher["campaign_title"], "双人火锅套餐");
    assert!(voucher.get("redeemed_at").is_none(), "not redeemed yet: {voucher}");
    let clerk = app.customer("13800139101").await;
    let (status, added) =
        app.post(&format!("/api/v1/merchants/{m}/staff"), Some(&owner.token), json!({"phone": clerk.phone})).await;
    assert!(status.is_success(), "{added}");
    // Another store, whose owner works only there.
    let other_owner = app.customer("13800139102").await;
    let other = merchant(&app, &other_owner, "隔壁茶馆", CHUNXI).await;

    // The voucher page names the deal and the store, with its address, directions and hours.
    let shown = page(&app, &format!("/me/vouchers/{id}"), Some(&winner), "zh-CN").await;
    assert_eq!(shown.status, StatusCode::OK);
    for words in ["双人火锅套餐", "老码头", "锦江区春熙路 8 号", "11:00–23:00", "uri.amap.com", code]
    {
        assert!(shown.body.contains(words), "the voucher page lacks {words}");
    }
    let mine = page(&app, "/me", Some(&winner), "zh-CN").await.body;
    assert!(mine.contains("双人火锅套餐") && mine.contains("老码头"), "我的券 names the deal and the store");

    // Its QR code holds the voucher's address, exactly.
    let address = format!("{}/r/{m}/{code}", app.app.settings().public_url.trim_end_matches('/'));
    let served = app
        .client
        .get(format!("{}/api/v1/me/vouchers/{id}/qr.svg", app.base))
        .bearer_auth(&winner.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, tuangou_web::api::vouchers::qr_svg(&address).unwrap());
    assert!(shown.body.contains(&served), "the page shows the same code");

    // The store's staff land on its counter, the code looked up as the page opens.
    let path = format!("/r/{m}/{code}");
    let scanned = page(&app, &path, Some(&clerk), "zh-CN").await;
    let counter = format!("/shop/{m}/redeem?code={code}");
    assert!(scanned.status.is_redirection(), "{}", scanned.status);
    assert_eq!(scanned.location, counter);
    let opened = page(&app, &counter, Some(&clerk), "zh-CN").await;
    assert!(opened.body.contains(&format!("data-code=\"{code}\"")), "the counter looks the code up");
    // A code not shaped like one is not put into the page.
    let odd = page(&app, &format!("/shop/{m}/redeem?code=%22%3E%3Cb%3E"), Some(&clerk), "zh-CN").await;
    assert!(odd.body.contains("data-code=\"\""), "nothing but a code is carried over");

    // Another store's staff land on their own counter, which refuses the code as it refuses it typed.
    let elsewhere = page(&app, &path, Some(&other_owner), "zh-CN").await;
    assert_eq!(elsewhere.location, format!("/shop/{other}/redeem?code={code}"));
    let typed = code.replace('-', "").to_lowercase();
    for asked in [code.to_owned(), typed] {
        let (status, refusal) =
            app.get(&format!("/api/v1/merchants/{other}/vouchers/{asked}"), Some(&other_owner.token)).await;
        assert_eq!((status, refusal["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_code")), "{refusal}");
    }

    // Anyone else: a page saying whose voucher it is and to show it to the staff, and nothing looked up.
    for (who, link) in [(None, "/signin?next="), (Some(&winner), "href=\"/me\"")] {
        let helpful = page(&app, &path, who, "zh-CN").await;
        assert_eq!(helpful.status, StatusCode::OK);
        for words in ["请出示给店员扫码", "老码头", "锦江区春熙路 8 号", "11:00–23:00", link] {
            assert!(helpful.body.contains(words), "the scanned page lacks {words}");
        }
        assert!(!helpful.body.contains("双人火锅套餐"), "the address alone tells nothing about the voucher");
    }
    let english = page(&app, &path, None, "en").await;
    assert!(english.body.contains("Show this to the staff"));
    // Addresses that name nothing.
    for nothing in [format!("/r/{m}/not-a-code"), format!("/r/nobody/{code}"), format!("/r/{m}/{code}%00")] {
        assert_eq!(page(&app, &nothing, Some(&clerk), "zh-CN").await.status, StatusCode::NOT_FOUND, "{nothing}");
    }

    // Redeemed: when and where, on the voucher page, in 我的券 and in the API.
    let (status, redeemed) =
        app.post(&format!("/api/v1/merchants/{m}/redemptions"), Some(&clerk.token), json!({"code": code})).await;
    assert_eq!(status, StatusCode::CREATED, "{redeemed}");
    assert_eq!(redeemed["voucher"]["campaign_title"], "双人火锅套餐");
    let (_, after) = app.get("/api/v1/me/vouchers", Some(&winner.token)).await;
    assert_eq!(after["items"][0]["redeemed_at"], redeemed["redeemed_at"]);
    let shown = page(&app, &format!("/me/vouchers/{id}"), Some(&winner), "zh-CN").await.body;
    assert!(shown.contains("data-voucher-redeemed") && shown.contains("在 老码头 核销"), "when and where");
    assert!(page(&app, "/me", Some(&winner), "zh-CN").await.body.contains("在 老码头 核销"));
    app.finish().await;
}

async fn the_voucher_stream_tells_its_owner_of_the_redemption(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800139200").await;
    let (m, winner, voucher) = won_voucher(&app, &operator, &owner, json!({})).await;
    let (id, code) = (voucher["id"].as_str().unwrap(), voucher["code"].as_str().unwrap());
    let stream = format!("/api/v1/me/vouchers/{id}/events");
    let (status, _) = app.get(&stream, Some(&owner.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "someone else's voucher");
    let (status, _) = app.get(&stream, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let mut watcher = Watcher::open_as(&app, &stream, Some(&winner.token)).await;
    let (status, redeemed) =
        app.post(&format!("/api/v1/merchants/{m}/redemptions"), Some(&owner.token), json!({"code": code})).await;
    assert_eq!(status, StatusCode::CREATED, "{redeemed}");
    watcher.wait_for("event: redeemed").await;
    let undo = format!("/api/v1/merchants/{m}/redemptions/{}", redeemed["id"].as_str().unwrap());
    let (status, undone) = app.send(reqwest::Method::DELETE, &undo, Some(&owner.token), None).await;
    assert_eq!(status, StatusCode::OK, "{undone}");
    watcher.wait_for("event: undone").await;
    app.finish().await;
}

/// A code typed at the counter of one store is found at every store the clerk works at (the answer names the
/// voucher's store, where alone it is redeemed); staff of a store they do not work at are refused exactly as for
/// a code that does not exist.
async fn a_typed_code_is_found_at_every_store_the_clerk_works_at(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800139600").await;
    let (m, _winner, voucher) = won_voucher(&app, &operator, &owner, json!({})).await;
    let code = voucher["code"].as_str().unwrap();
    let other_owner = app.customer("13800139601").await;
    let other = merchant(&app, &other_owner, "隔壁茶馆", CHUNXI).await;
    let clerk = app.customer("13800139602").await;
    for (store, its_owner) in [(&m, &owner), (&other, &other_owner)] {
        let (status, added) = app
            .post(&format!("/api/v1/merchants/{store}/staff"), Some(&its_owner.token), json!({"phone": clerk.phone}))
            .await;
        assert!(status.is_success(), "{added}");
    }

    // Typed at the other store's counter, as staff type it: the voucher, naming its own store.
    let typed = code.replace('-', "").to_lowercase();
    let (status, found) = app.get(&format!("/api/v1/merchants/{other}/vouchers/{typed}"), Some(&clerk.token)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!((found["merchant_id"].as_str(), found["code"].as_str()), (Some(m.as_str()), Some(code)));
    assert_eq!(found["status"], "issued");

    // The other store's owner, who does not work at the voucher's store: the refusal of a code that is no one's.
    let mut refusals = Vec::new();
    for asked in [typed.as_str(), "ABCD-EFGH-JKMN-P"] {
        let (status, body) =
            app.get(&format!("/api/v1/merchants/{other}/vouchers/{asked}"), Some(&other_owner.token)).await;
        refusals.push((status, body["code"].clone(), body["detail"].clone()));
    }
    let (theirs, nobodys) = (&refusals[0], &refusals[1]);
    assert_eq!((theirs.0, theirs.1.as_str()), (StatusCode::NOT_FOUND, Some("unknown_code")));
    assert_eq!(theirs, nobodys, "nothing tells another store's voucher from no voucher");

    // Redeemed only at its own store: the other counter refuses it, its own takes it.
    let (status, refusal) =
        app.post(&format!("/api/v1/merchants/{other}/redemptions"), Some(&clerk.token), json!({"code": code})).await;
    assert_eq!((status, refusal["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_code")), "{refusal}");
    let (status, redeemed) =
        app.post(&format!("/api/v1/merchants/{m}/redemptions"), Some(&clerk.token), json!({"code": code})).await;
    assert_eq!(status, StatusCode::CREATED, "{redeemed}");
    app.finish().await;
}

on_both_backends!(
    a_voucher_names_its_deal_and_store_and_its_qr_opens_the_counter,
    a_typed_code_is_found_at_every_store_the_clerk_works_at,
    the_voucher_stream_tells_its_owner_of_the_redemption,
);
