//! Photos of stores and deals (issue 18): the owner uploads one as the body of a PUT; it is stored re-encoded,
//! shrunk and without its metadata, and served for ever under its content's hash. Every refusal — wrong type,
//! too many bytes, a decompression bomb, someone else's store — stores nothing.

use crate::common::{CHUNXI, campaign_body, code, draft, live_campaign, merchant};
use image::{ImageDecoder, ImageEncoder};
use reqwest::StatusCode;
use serde_json::Value;
use std::io::Cursor;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

/// An EXIF block (little-endian TIFF) whose GPS IFD places the photo at 30°39'22.8" N: what a phone writes.
fn exif_with_location() -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes()); // IFD0 at 8
    tiff.extend(1u16.to_le_bytes()); // one entry: the GPS IFD's offset
    tiff.extend([0x25, 0x88, 4, 0]); // tag 0x8825, LONG
    tiff.extend(1u32.to_le_bytes());
    tiff.extend(26u32.to_le_bytes()); // GPS IFD at 26
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    tiff.extend(2u16.to_le_bytes()); // GPS IFD: latitude ref and latitude
    tiff.extend([1, 0, 2, 0]); // GPSLatitudeRef, ASCII
    tiff.extend(2u32.to_le_bytes());
    tiff.extend(*b"N\0\0\0");
    tiff.extend([2, 0, 5, 0]); // GPSLatitude, RATIONAL × 3
    tiff.extend(3u32.to_le_bytes());
    tiff.extend(56u32.to_le_bytes());
    tiff.extend(0u32.to_le_bytes());
    for (numerator, denominator) in [(30u32, 1u32), (39, 1), (2280, 100)] {
        tiff.extend(numerator.to_le_bytes());
        tiff.extend(denominator.to_le_bytes());
    }
    tiff
}

/// A photo with some detail (a gradient), `width` × `height`.
fn pixels(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]))
}

fn jpeg_with_location(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
    encoder.set_exif_metadata(exif_with_location()).expect("EXIF in a JPEG");
    encoder.write_image(&pixels(width, height), width, height, image::ExtendedColorType::Rgb8).expect("a JPEG");
    bytes
}

fn png_with_location(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    encoder.set_exif_metadata(exif_with_location()).expect("EXIF in a PNG");
    encoder.write_image(&pixels(width, height), width, height, image::ExtendedColorType::Rgb8).expect("a PNG");
    bytes
}

/// The EXIF a file carries, as the decoder reads it.
fn exif_of(bytes: &[u8]) -> Option<Vec<u8>> {
    let reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().ok()?;
    reader.into_decoder().ok()?.exif_metadata().ok().flatten()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// CRC-32 (ISO-HDLC), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A decompression bomb: a 60-byte PNG that declares 30000 × 30000 pixels (2.7 GB decoded).
fn png_bomb() -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut body = kind.to_vec();
        body.extend(data);
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
        out
    };
    let mut header = 30_000u32.to_be_bytes().to_vec();
    header.extend(30_000u32.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &header));
    png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    png.extend(chunk(b"IEND", &[]));
    png
}

async fn put(app: &TestApp, path: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let mut request = app.client.put(format!("{}{path}", app.base)).header("content-type", content_type).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    TestApp::read(request.send().await.expect("the server answers")).await
}

/// The photos stored so far.
fn stored(app: &TestApp) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(app.db.media.path()).map_or(Vec::new(), |dir| dir.flatten().map(|e| e.path()).collect())
}

async fn fetch(app: &TestApp, url: &str) -> reqwest::Response {
    app.client.get(format!("{}{url}", app.base)).send().await.expect("the server answers")
}

async fn an_owner_uploads_photos_that_are_shrunk_and_lose_their_location(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138300").await;
    let (store, campaign) = live_campaign(&app, &operator, &owner, "老码头火锅", CHUNXI).await;

    // A phone's JPEG, larger than kept, with GPS in its EXIF.
    let original = jpeg_with_location(2400, 1800);
    assert!(exif_of(&original).is_some_and(|e| contains(&e, &[0x25, 0x88])), "the upload carries a GPS IFD");
    let (status, body) =
        put(&app, &format!("/api/v1/merchants/{store}/photo"), Some(&owner.token), "image/jpeg", original).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["photo_url"].as_str().expect("photo_url").to_owned();
    assert!(url.starts_with("/media/") && url.ends_with(".jpg"), "{url}");
    let (_, profile) = app.get(&format!("/api/v1/merchants/{store}"), None).await;
    assert_eq!(profile["photo_url"], url.as_str(), "the public profile shows it");

    let response = fetch(&app, &url).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let served = response.bytes().await.unwrap().to_vec();
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(url.contains(etag.trim_matches('"')), "the ETag is the content's hash: {etag} for {url}");
    let photo = image::load_from_memory(&served).expect("a photo");
    assert_eq!((photo.width(), photo.height()), (1200, 900), "shrunk to 1200 px on its longest side");
    assert_eq!(exif_of(&served), None, "no EXIF left");
    assert!(!contains(&served, b"Exif") && !contains(&served, &exif_with_location()), "no trace of the location");

    // A revalidation is answered 304 without the photo.
    let again = app.client.get(format!("{}{url}", app.base)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());

    // A PNG with EXIF for the deal, live already: a photo is presentation, not one of the rules.
    let original = png_with_location(640, 480);
    assert!(exif_of(&original).is_some(), "the PNG carries EXIF");
    let (status, body) =
        put(&app, &format!("/api/v1/campaigns/{campaign}/photo"), Some(&owner.token), "image/png", original).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["status"].as_str(), body["price"].as_i64()), (Some("live"), Some(990)), "rules unchanged");
    let deal_url = body["photo_url"].as_str().unwrap().to_owned();
    let served = fetch(&app, &deal_url).await.bytes().await.unwrap().to_vec();
    assert_eq!(image::guess_format(&served).ok(), Some(image::ImageFormat::Jpeg), "re-encoded as JPEG");
    assert_eq!(exif_of(&served), None);
    assert_eq!(image::load_from_memory(&served).unwrap().width(), 640, "a small photo keeps its size");
    let (_, listing) = app.get("/api/v1/campaigns", None).await;
    assert_eq!(listing["items"][0]["photo_url"], deal_url.as_str(), "the listing shows it");
    let (_, detail) = app.get(&format!("/api/v1/campaigns/{campaign}"), None).await;
    assert_eq!(detail["photo_url"], deal_url.as_str());
    assert_eq!(stored(&app).len(), 2);

    // The home page's card and the deal's page show it.
    let home = fetch(&app, "/").await.text().await.unwrap();
    assert!(home.contains(&format!("src=\"{deal_url}\"")), "the home page's card shows the deal's photo");
    let page = fetch(&app, &format!("/m/{store}")).await.text().await.unwrap();
    assert!(page.contains(&format!("src=\"{url}\"")), "the store's page shows its photo");
    app.finish().await;
}

/// A lossless WebP, made here with `image`'s own encoder: red on the left half, blue on the right.
fn webp_halves(width: u32, height: u32) -> Vec<u8> {
    let halves = image::RgbImage::from_fn(width, height, |x, _| match x < width / 2 {
        true => image::Rgb([200, 30, 30]),
        false => image::Rgb([30, 30, 200]),
    });
    let mut bytes = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut bytes)
        .write_image(&halves, width, height, image::ExtendedColorType::Rgb8)
        .expect("a WebP");
    bytes
}

/// Whether two colours are within `by` of each other in every channel (JPEG moves them a little).
fn near(a: image::Rgb<u8>, b: [u8; 3], by: u8) -> bool {
    a.0.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= by)
}

/// A WebP (as Android phones save photos) is accepted, re-encoded as a JPEG, shrunk like any photo and served.
async fn a_webp_photo_is_reencoded_as_jpeg_and_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138310").await;
    let (store, _) = live_campaign(&app, &operator, &owner, "老码头火锅", CHUNXI).await;
    let original = webp_halves(1600, 1000);
    assert_eq!(image::guess_format(&original).ok(), Some(image::ImageFormat::WebP), "the upload is a real WebP");

    let (status, body) =
        put(&app, &format!("/api/v1/merchants/{store}/photo"), Some(&owner.token), "image/webp", original).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["photo_url"].as_str().expect("photo_url").to_owned();
    assert!(url.starts_with("/media/") && url.ends_with(".jpg"), "{url}");
    let response = fetch(&app, &url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let served = response.bytes().await.unwrap().to_vec();
    assert_eq!(image::guess_format(&served).ok(), Some(image::ImageFormat::Jpeg), "re-encoded as JPEG");
    let photo = image::load_from_memory(&served).expect("a JPEG").to_rgb8();
    assert_eq!(photo.dimensions(), (1200, 750), "shrunk to 1200 px on its longest side");
    // The WebP's own picture, not something else: red on the left, blue on the right.
    assert!(near(*photo.get_pixel(300, 375), [200, 30, 30], 24), "{:?}", photo.get_pixel(300, 375));
    assert!(near(*photo.get_pixel(900, 375), [30, 30, 200], 24), "{:?}", photo.get_pixel(900, 375));
    assert_eq!(stored(&app).len(), 1);
    let page = fetch(&app, &format!("/m/{store}")).await.text().await.unwrap();
    assert!(page.contains(&format!("src=\"{url}\"")), "the store's page shows it");
    app.finish().await;
}

/// What is sent, by whom, as which type, and the refusal expected: (what, path, token, type, body, status, code).
type Refusal<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, Vec<u8>, StatusCode, &'a str);

async fn bad_uploads_are_refused_and_store_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.customer("13800138301").await;
    let clerk = app.customer("13800138302").await;
    let stranger = app.customer("13800138303").await;
    let store = merchant(&app, &owner, "茶馆", CHUNXI).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/merchants/{store}/staff"),
            Some(&owner.token),
            serde_json::json!({"phone": clerk.phone}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let campaign = draft(&app, &owner, &store, campaign_body()).await;
    let store_photo = format!("/api/v1/merchants/{store}/photo");
    let deal_photo = format!("/api/v1/campaigns/{campaign}/photo");
    let good = jpeg_with_location(64, 48);

    let refusals: Vec<Refusal<'_>> = vec![
        ("signed out", &store_photo, None, "image/jpeg", good.clone(), StatusCode::UNAUTHORIZED, "not_signed_in"),
        (
            "a stranger",
            &store_photo,
            Some(&stranger.token),
            "image/jpeg",
            good.clone(),
            StatusCode::FORBIDDEN,
            "owner_only",
        ),
        (
            "the staff",
            &store_photo,
            Some(&clerk.token),
            "image/jpeg",
            good.clone(),
            StatusCode::FORBIDDEN,
            "owner_only",
        ),
        (
            "staff on a deal",
            &deal_photo,
            Some(&clerk.token),
            "image/jpeg",
            good.clone(),
            StatusCode::FORBIDDEN,
            "owner_only",
        ),
        (
            "a GIF",
            &store_photo,
            Some(&owner.token),
            "image/gif",
            b"GIF89a".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "JSON",
            &deal_photo,
            Some(&owner.token),
            "application/json",
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "a PNG sent as JPEG",
            &store_photo,
            Some(&owner.token),
            "image/jpeg",
            png_with_location(8, 8),
            StatusCode::BAD_REQUEST,
            "invalid_photo",
        ),
        (
            "text sent as PNG",
            &store_photo,
            Some(&owner.token),
            "image/png",
            b"not a picture".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_photo",
        ),
        (
            "a cut JPEG",
            &deal_photo,
            Some(&owner.token),
            "image/jpeg",
            good[..good.len() / 2].to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_photo",
        ),
        (
            "a bomb",
            &store_photo,
            Some(&owner.token),
            "image/png",
            png_bomb(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "photo_too_many_pixels",
        ),
        (
            "a bomb on a deal",
            &deal_photo,
            Some(&owner.token),
            "image/png",
            png_bomb(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "photo_too_many_pixels",
        ),
        (
            "11 MB",
            &store_photo,
            Some(&owner.token),
            "image/jpeg",
            vec![0xFF; 11 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "photo_too_large",
        ),
        (
            "an unknown store",
            "/api/v1/merchants/no-such-store/photo",
            Some(&owner.token),
            "image/jpeg",
            good.clone(),
            StatusCode::NOT_FOUND,
            "unknown_merchant",
        ),
    ];
    for (what, path, token, content_type, body, status, expected) in refusals {
        let (got, answer) = put(&app, path, token, content_type, body).await;
        assert_eq!((got, code(&answer)), (status, expected), "{what}: {answer}");
        assert!(stored(&app).is_empty(), "{what} stored a file");
    }
    let (_, profile) = app.get(&format!("/api/v1/merchants/{store}"), None).await;
    assert_eq!(profile["photo_url"], Value::Null, "no photo after refusals");
    let (_, deal) = app.get(&format!("/api/v1/campaigns/{campaign}"), Some(&owner.token)).await;
    assert_eq!(deal["photo_url"], Value::Null);

    // Names that are not a stored photo's are 404, traversal included.
    for path in ["/media/nothing.jpg", "/media/..%2F..%2Fetc%2Fpasswd", &format!("/media/{}.jpg", "ab".repeat(32))] {
        let (status, _) = app.get(path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    app.finish().await;
}

/// Every page links the icon, and `/favicon.ico` answers one (no 404 in any browser's console).
async fn the_site_has_an_icon(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = fetch(&app, "/favicon.ico").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/x-icon");
    let ico = response.bytes().await.unwrap();
    assert_eq!(&ico[..4], &[0, 0, 1, 0], "an ICO file");
    let response = fetch(&app, "/favicon.svg").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().starts_with("<svg"));
    let home = fetch(&app, "/").await.text().await.unwrap();
    assert!(home.contains("rel=\"icon\" href=\"/favicon.svg\""), "{home}");
    app.finish().await;
}

on_both_backends!(
    an_owner_uploads_photos_that_are_shrunk_and_lose_their_location,
    a_webp_photo_is_reencoded_as_jpeg_and_served,
    bad_uploads_are_refused_and_store_nothing,
    the_site_has_an_icon
);
