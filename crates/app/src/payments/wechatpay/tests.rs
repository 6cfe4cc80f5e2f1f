//! The published vectors (PAYMENTS.md), byte for byte, vendored under `crates/app/tests/fixtures/wechatpay/`:
//! wechatpay-go's notification (`core/notify/notify_test.go`), wechatpay-java's AES-GCM, signer, verifier and
//! public-key notification tests (`core/src/test/java/com/wechat/pay/java/core/…` and their resources), and
//! wechatpay-php's trade bill (`tests/fixtures/bill.ALL.csv`, CRLF as published).

use super::signing::{ApiV3Key, MerchantKey, PlatformKey, aead_open, signed_message};
use super::*;
use crate::payments::port::{EventKind, Headers, Refusal};

const GO_CERT: &str = include_str!("../../../tests/fixtures/wechatpay/go_notify_platform_certificate.pem");
const GO_BODY: &str = include_str!("../../../tests/fixtures/wechatpay/go_notify_body.json");
const GO_SIGNATURE: &str = include_str!("../../../tests/fixtures/wechatpay/go_notify_signature.txt");
const GO_SERIAL: &str = "D7CE59D1F522D701";
const GO_NONCE: &str = "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz";
const GO_TIMESTAMP: i64 = 1_624_523_846;
const GO_APIV3_KEY: &str = "testMchAPIv3Key0";
const GO_PLAINTEXT: &str = "{\"mchid\":\"1234567890\",\"appid\":\"054aa7d7a2a54ab5898df65bd96f001c\",\"create_time\":\"2020-06-30T12:12:00+08:00\",\"out_contract_code\":\"21640bdbd08e473e828f3206a2741c6e\"}";

const JAVA_APIV3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const JAVA_MERCHANT_KEY: &str = include_str!("../../../tests/fixtures/wechatpay/java_merchant_private_key.pem");
const JAVA_MERCHANT_CERT: &str = include_str!("../../../tests/fixtures/wechatpay/java_merchant_certificate.pem");
const JAVA_MERCHANT_SERIAL: &str = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
const JAVA_PAY_PUBLIC_KEY: &str = include_str!("../../../tests/fixtures/wechatpay/java_wechat_pay_public_key.pem");
const JAVA_PAY_PRIVATE_KEY: &str = include_str!("../../../tests/fixtures/wechatpay/java_wechat_pay_private_key.pem");
/// wechatpay-java's `WECHAT_PAY_CERTIFICATE_SERIAL_NUMBER`, the id its public-key configuration is given.
const JAVA_PUBLIC_KEY_ID: &str = "440024045C4A427599D09BB4E3DE0279F2E813FD";
/// `RSAVerifierTest`'s signature of "message" with the merchant key.
const JAVA_SIGNATURE: &str = "Rq+5ZpWV6IHTWE1+9gCrYJKguNgbItpMdlIA+PVCPCdUAKNlohZz7CL7Y8xWDIFJjdGnErMj6Z+Q/h9CF5MV+nAVkqDmBR0uP5ppsUEzco4ijvKHsvI2ro4boSW6vSfQs3W8I4QSI9a0/NFIgvj83Fv27LIYZf7deaFWmEwd1fpAeJRCyoKyBeJPdsjVx0//Lqe6Wze2zVdliLcBvaHCfpd8+rAVGS+FQDeWgHqJ7n/Zy09LmV1/ghs7pO1mdjdD16SHKlysAD3K5hNGUJX/SHrEXEcu1yO1AOb/YvOVkjNh8243rcfXNE5L4ph2XS11vS+2aToKYSOcKUagf0LLaw==";

const BILL: &str = include_str!("../../../tests/fixtures/wechatpay/bill.ALL.csv");

const MCHID: &str = "1900000001";
const APPID: &str = "wxd678efh567hg6787";

/// Our settings in the tests: the published merchant key, the Java APIv3 key, and both the Go vector's platform
/// certificate and the Java WeChat Pay public key (a switch-over).
fn config() -> WechatPayConfig {
    WechatPayConfig {
        mchid: MCHID.into(),
        appid: APPID.into(),
        merchant_serial: JAVA_MERCHANT_SERIAL.into(),
        private_key: JAVA_MERCHANT_KEY.into(),
        apiv3_key: JAVA_APIV3_KEY.into(),
        platform_certificates: Some(GO_CERT.into()),
        public_key: Some(JAVA_PAY_PUBLIC_KEY.into()),
        public_key_id: Some(JAVA_PUBLIC_KEY_ID.into()),
        ..WechatPayConfig::default()
    }
}

fn settings() -> WechatPaySettings {
    WechatPaySettings::new(&config()).unwrap()
}

fn go_headers(signature: &str, timestamp: i64) -> Headers {
    Headers::new([
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("Wechatpay-Nonce".to_owned(), GO_NONCE.to_owned()),
        ("Wechatpay-Timestamp".to_owned(), timestamp.to_string()),
        ("Wechatpay-Serial".to_owned(), GO_SERIAL.to_owned()),
        ("Wechatpay-Signature".to_owned(), signature.to_owned()),
    ])
}

/// wechatpay-go's notification: the platform certificate's serial is `D7CE59D1F522D701`, its signature of the raw
/// body verifies at 1624523846 (and not five minutes and a second later), and the resource opens to the published
/// plaintext. Its APIv3 key is 16 characters, so Go's `crypto/aes` runs AES-128-GCM on it; the real APIv3 key (32)
/// is AES-256-GCM, the Java vector below.
#[test]
fn the_go_notification_verifies_and_decrypts() {
    let keys = PlatformKey::certificates(GO_CERT).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].serial, GO_SERIAL);
    let settings = settings();
    let now = Millis(GO_TIMESTAMP * 1_000);
    let headers = go_headers(GO_SIGNATURE, GO_TIMESTAMP);
    notification::verify_signed(&settings, &headers, GO_BODY.as_bytes(), now).unwrap();
    let envelope: notification::Envelope = serde_json::from_str(GO_BODY).unwrap();
    assert_eq!(envelope.id, "3119dfba-e649-5eec-ab1e-3412bc4d2e17");
    assert_eq!(envelope.event_type, "PAYSCORE.USER_OPEN_SERVICE");
    let r = &envelope.resource;
    assert_eq!((r.algorithm.as_str(), r.associated_data.as_str()), ("AEAD_AES_256_GCM", "payscore"));
    let plain = aead_open(GO_APIV3_KEY.as_bytes(), &r.associated_data, &r.nonce, &r.ciphertext).unwrap();
    assert_eq!(String::from_utf8(plain).unwrap(), GO_PLAINTEXT);
    assert!(aead_open(b"testMchAPIv3Key1", &r.associated_data, &r.nonce, &r.ciphertext).is_err(), "another key");

    // Through the port: verified, but a payscore event is not a payment (refused, not read further).
    let provider = WechatPay::new(settings.clone(), Clock::manual(now), "http://127.0.0.1");
    let refused = provider.parse_notification(&headers, GO_BODY.as_bytes(), now).unwrap_err();
    assert!(matches!(refused, Refusal::Malformed(ref why) if why.contains("PAYSCORE")), "{refused:?}");
    // Five minutes either way is fine; a second more is stale.
    for skew in [-300_000, 300_000] {
        notification::verify_signed(&settings, &headers, GO_BODY.as_bytes(), now.plus_millis(skew)).unwrap();
    }
    let stale = provider.parse_notification(&headers, GO_BODY.as_bytes(), now.plus_millis(301_000)).unwrap_err();
    assert!(matches!(stale, Refusal::Stale(_)), "{stale:?}");
    // One byte of the body changed, or another timestamp: the signature no longer verifies.
    let tampered = GO_BODY.replace("签约成功", "签约失败");
    let bad = provider.parse_notification(&headers, tampered.as_bytes(), now).unwrap_err();
    assert!(matches!(bad, Refusal::BadSignature(_)), "{bad:?}");
    let moved = go_headers(GO_SIGNATURE, GO_TIMESTAMP + 1);
    assert!(matches!(provider.parse_notification(&moved, GO_BODY.as_bytes(), now), Err(Refusal::BadSignature(_))));
}

/// wechatpay-java `AeadAesCipherTest`: "message" with "associatedData" and nonce "uluk4a9R25RW" under the APIv3
/// key is "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=", both ways.
#[test]
fn aes_256_gcm_matches_the_java_vector() {
    let key = ApiV3Key::new(JAVA_APIV3_KEY).unwrap();
    assert_eq!(key.encrypt("associatedData", "uluk4a9R25RW", b"message").unwrap(), "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=");
    assert_eq!(key.decrypt("associatedData", "uluk4a9R25RW", "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=").unwrap(), b"message");
    assert!(key.decrypt("associatedDatb", "uluk4a9R25RW", "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=").is_err(), "other data");
    assert!(key.decrypt("associatedData", "uluk4a9R25RW", "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwA=").is_err(), "tampered");
    assert!(ApiV3Key::new("short").is_err());
    assert_eq!(format!("{key:?}"), "ApiV3Key(…)");
}

/// wechatpay-java `RSASignerTest` / `RSAVerifierTest`: our SHA256withRSA signature of "message" with the published
/// merchant key is the published one byte for byte (PKCS#1 v1.5 is deterministic); it verifies with the merchant
/// certificate (serial `5F1C72E2…`), and not with the WeChat Pay public key.
#[test]
fn rsa_signing_and_verifying_match_the_java_vectors() {
    let key = MerchantKey::from_pem(JAVA_MERCHANT_KEY).unwrap();
    assert_eq!(key.sign(b"message"), JAVA_SIGNATURE);
    let cert = &PlatformKey::certificates(JAVA_MERCHANT_CERT).unwrap()[0];
    assert_eq!(cert.serial, JAVA_MERCHANT_SERIAL);
    assert!(cert.verifies(b"message", JAVA_SIGNATURE));
    assert!(!cert.verifies(b"messagf", JAVA_SIGNATURE));
    let public_key = PlatformKey::public_key(JAVA_PUBLIC_KEY_ID, JAVA_PAY_PUBLIC_KEY).unwrap();
    assert!(!public_key.verifies(b"message", JAVA_SIGNATURE), "RSAVerifierTest.testPublicKeyVerify is false");
    assert_eq!(format!("{key:?}"), "MerchantKey(…)");
    assert!(MerchantKey::from_pem(JAVA_MERCHANT_CERT).is_err(), "a certificate is not a private key");
}

/// Our `Authorization` header signs `METHOD\nURL\ntimestamp\nnonce\nbody\n` with the merchant key.
#[test]
fn requests_are_signed_as_wechat_pay_v3_asks() {
    let settings = settings();
    let body = br#"{"mchid":"1900000001"}"#;
    let header = settings.signer.authorization("POST", "/v3/pay/transactions/native", 1_554_208_460, "NONCE1", body);
    let expected_signature = MerchantKey::from_pem(JAVA_MERCHANT_KEY).unwrap().sign(&signed_message(&[
        b"POST",
        b"/v3/pay/transactions/native",
        b"1554208460",
        b"NONCE1",
        body,
    ]));
    assert_eq!(
        header,
        format!(
            "WECHATPAY2-SHA256-RSA2048 mchid=\"{MCHID}\",nonce_str=\"NONCE1\",signature=\"{expected_signature}\",\
             timestamp=\"1554208460\",serial_no=\"{JAVA_MERCHANT_SERIAL}\""
        )
    );
}

/// A payment notification as WeChat Pay sends it when it signs with the WeChat Pay public key
/// (wechatpay-java's `RSAPublicKeyNotificationConfigTest` key pair and id): signed with the published WeChat Pay
/// private key, the resource encrypted with the APIv3 key.
fn transaction_notification(transaction: &serde_json::Value, timestamp: i64) -> (Headers, String) {
    let key = ApiV3Key::new(JAVA_APIV3_KEY).unwrap();
    let ciphertext = key.encrypt("transaction", "fdasflkja484", transaction.to_string().as_bytes()).unwrap();
    let body = serde_json::json!({
        "id": "EV-2018022511223320873", "create_time": "2015-05-20T13:29:35+08:00", "resource_type":
        "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
            "associated_data": "transaction", "nonce": "fdasflkja484"}
    })
    .to_string();
    (sign_as_wechat_pay(&body, timestamp, JAVA_PUBLIC_KEY_ID), body)
}

fn sign_as_wechat_pay(body: &str, timestamp: i64, serial: &str) -> Headers {
    let key = MerchantKey::from_pem(JAVA_PAY_PRIVATE_KEY).unwrap();
    let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
    let signature = key.sign(&signed_message(&[timestamp.to_string().as_bytes(), nonce.as_bytes(), body.as_bytes()]));
    Headers::new([
        ("Wechatpay-Nonce".to_owned(), nonce.to_owned()),
        ("Wechatpay-Timestamp".to_owned(), timestamp.to_string()),
        ("Wechatpay-Serial".to_owned(), serial.to_owned()),
        ("Wechatpay-Signature".to_owned(), signature),
    ])
}

fn transaction(mchid: &str, total: i64) -> serde_json::Value {
    serde_json::json!({
        "appid": APPID, "mchid": mchid, "out_trade_no": "019ad6a5b0f07c62a1b2c3d4e5f60718",
        "transaction_id": "4200000263201902167700134212", "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS", "success_time": "2026-11-30T20:05:06+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, "amount": {"total": total, "payer_total": total,
        "currency": "CNY", "payer_currency": "CNY"}
    })
}

/// Verified with the WeChat Pay public key chosen by its id while the platform certificate is configured too (a
/// switch-over); read into a paid event for our payment id (the hyphens back); every bad input refused.
#[test]
fn payment_notifications_verify_with_the_public_key_and_are_checked() {
    let now = Millis(1_764_504_306_000);
    let provider = WechatPay::new(settings(), Clock::manual(now), "http://127.0.0.1");
    let ts = now.0 / 1_000;
    let (headers, body) = transaction_notification(&transaction(MCHID, 990), ts);
    let event = provider.parse_notification(&headers, body.as_bytes(), now).unwrap();
    assert_eq!(event.event_id, "EV-2018022511223320873");
    assert_eq!(event.out_trade_no, "019ad6a5-b0f0-7c62-a1b2-c3d4e5f60718");
    assert_eq!(event.amount, Fen::from_stored(990));
    assert_eq!(event.kind, EventKind::Paid { at: parse_rfc3339("2026-11-30T20:05:06+08:00").unwrap() });
    // The go vector still verifies with the certificate by its serial in the same settings.
    notification::verify_signed(
        provider.settings(),
        &go_headers(GO_SIGNATURE, GO_TIMESTAMP),
        GO_BODY.as_bytes(),
        Millis(GO_TIMESTAMP * 1_000),
    )
    .unwrap();

    let refuse =
        |headers: &Headers, body: &str| provider.parse_notification(headers, body.as_bytes(), now).unwrap_err();
    // Another merchant's payment, signed and encrypted all right: refused.
    let (h, b) = transaction_notification(&transaction("1900000002", 990), ts);
    assert!(matches!(refuse(&h, &b), Refusal::Malformed(ref why) if why.contains("another merchant")));
    // A serial we do not know.
    let wrong_serial = sign_as_wechat_pay(&body, ts, "PUB_KEY_ID_0000000000000000000000000000");
    assert!(matches!(refuse(&wrong_serial, &body), Refusal::BadSignature(ref why) if why.contains("unknown serial")));
    // A signature probe.
    let mut probe: Vec<(String, String)> = ["Wechatpay-Nonce", "Wechatpay-Timestamp", "Wechatpay-Serial"]
        .iter()
        .map(|n| (n.to_string(), headers.get(n).unwrap().to_owned()))
        .collect();
    probe.push(("Wechatpay-Signature".into(), "WECHATPAY/SIGNTEST/abcdefg".into()));
    assert!(matches!(refuse(&Headers::new(probe), &body), Refusal::BadSignature(ref why) if why.contains("SIGNTEST")));
    // Stale.
    let (old, old_body) = transaction_notification(&transaction(MCHID, 990), ts - 301);
    assert!(matches!(refuse(&old, &old_body), Refusal::Stale(_)));
    // A ciphertext tampered with (and the body signed again, as by someone holding the platform key only).
    let mut envelope: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ciphertext = envelope["resource"]["ciphertext"].as_str().unwrap().to_owned();
    let flipped = if ciphertext.starts_with('A') { "B" } else { "A" };
    envelope["resource"]["ciphertext"] = serde_json::json!(format!("{flipped}{}", &ciphertext[1..]));
    let tampered = envelope.to_string();
    assert!(
        matches!(refuse(&sign_as_wechat_pay(&tampered, ts, JAVA_PUBLIC_KEY_ID), &tampered), Refusal::BadSignature(ref why) if why.contains("decrypt"))
    );
    // No signature at all.
    assert!(matches!(refuse(&Headers::default(), &body), Refusal::BadSignature(_)));
}

/// wechatpay-php's trade bill: 45 lines (31 payments, 14 refunds) whose amounts add up to the footer's totals
/// (订单总金额 0.47, 申请退款总金额 0.14); a footer that does not add up is refused.
#[test]
fn the_php_trade_bill_reads_into_lines() {
    assert!(BILL.contains("\r\n"), "vendored as published (CRLF)");
    let lines = parse_trade_bill(BILL).unwrap();
    assert_eq!(lines.len(), 45);
    let (payments, refunds): (Vec<_>, Vec<_>) = lines.iter().partition(|l| matches!(l, BillLine::Payment { .. }));
    assert_eq!((payments.len(), refunds.len()), (31, 14));
    let sum = |lines: &[&BillLine]| -> i64 {
        lines
            .iter()
            .map(|l| match l {
                BillLine::Payment { amount, .. } | BillLine::Refund { amount, .. } => amount.get(),
            })
            .sum()
    };
    assert_eq!((sum(&payments), sum(&refunds)), (47, 14));
    assert_eq!(
        lines[0],
        BillLine::Refund {
            at: parse_rfc3339("2019-02-19T05:01:46+08:00").unwrap(),
            out_trade_no: "autotest_20190216081946_82335".into(),
            out_refund_no: "REF4200000263201902167700963919".into(),
            provider_refund_id: "50000709672019011908420787722".into(),
            amount: Fen::from_stored(1).unwrap(),
        }
    );
    assert_eq!(
        lines[2],
        BillLine::Payment {
            at: parse_rfc3339("2019-02-19T01:52:32+08:00").unwrap(),
            out_trade_no: "autotest_20190219015232_89201".into(),
            provider_trade_id: "4200000263201902167700134902".into(),
            amount: Fen::from_stored(3).unwrap(),
        }
    );
    assert!(
        parse_trade_bill(&BILL.replace("`45.0,`0.47,`0.14", "`45.0,`0.48,`0.14"))
            .unwrap_err()
            .contains("应结订单总金额")
    );
    assert!(parse_trade_bill(&BILL.replace("`45.0,", "`44.0,")).is_err());
    let without_footer: String = BILL.split("总交易单数").next().unwrap().to_owned();
    assert!(parse_trade_bill(&without_footer).is_err());
}

/// A half-configured provider is refused with the setting's name; secrets never show in `Debug`.
#[test]
fn settings_name_what_is_missing_and_hide_secrets() {
    let missing = |change: fn(&mut WechatPayConfig)| {
        let mut config = config();
        change(&mut config);
        WechatPaySettings::new(&config).unwrap_err().0
    };
    assert_eq!(missing(|c| c.mchid.clear()), "mchid");
    assert_eq!(missing(|c| c.appid.clear()), "appid");
    assert_eq!(missing(|c| c.merchant_serial.clear()), "merchant_serial");
    assert_eq!(missing(|c| c.private_key.clear()), "private_key");
    assert_eq!(missing(|c| c.private_key = JAVA_MERCHANT_CERT.into()), "private_key");
    assert_eq!(missing(|c| c.apiv3_key = "too short".into()), "apiv3_key");
    assert_eq!(missing(|c| c.public_key_id = None), "public_key_id");
    assert_eq!(missing(|c| c.sub_appid = Some("wx1".into())), "sub_mchid");
    assert_eq!(
        missing(|c| {
            c.platform_certificates = None;
            c.public_key = None;
            c.public_key_id = None;
        }),
        "platform_certificates"
    );
    let shown = format!("{:?} {:?}", config(), settings());
    for secret in [JAVA_APIV3_KEY, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCaZzeh"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn our_ids_fit_wechat_pays_32_characters_and_come_back() {
    let ours = "019ad6a5-b0f0-7c62-a1b2-c3d4e5f60718";
    assert_eq!(wire_trade_no(ours), "019ad6a5b0f07c62a1b2c3d4e5f60718");
    assert_eq!(our_trade_no(&wire_trade_no(ours)), ours);
    assert_eq!(our_trade_no("autotest_20190219015232_89201"), "autotest_20190219015232_89201");
    assert_eq!(china_rfc3339(Millis(1_764_504_306_000)), "2025-11-30T20:05:06+08:00");
}
