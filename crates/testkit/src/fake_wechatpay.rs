//! A fake WeChat Pay (API v3), in process, for tests only: an HTTP server that speaks the wire format the real
//! one does, so the `wechatpay` adapter is exercised end to end without reaching Tencent.
//!
//! - It accepts a request only when its `Authorization: WECHATPAY2-SHA256-RSA2048 …` signature verifies with the
//!   test merchant's certificate (the published wechatpay-java test merchant key pair) and names our merchant
//!   number and serial; otherwise 401 `SIGN_ERROR`.
//! - Every answer is signed (`Wechatpay-Signature` over `timestamp\nnonce\nbody\n`) with its test platform
//!   certificate's key (made once with openssl for these tests: `fixtures/fake_wechatpay_platform_*.pem`),
//!   unless told to sign badly ([`FakeWechatPay::set_bad_signatures`]).
//! - It keeps payments, refunds and profit shares by our ids, serves a trade bill in WeChat Pay's format, and
//!   pays on [`FakeWechatPay::pay`], notifying the `notify_url` of the order signed with the WeChat Pay public key
//!   (the published wechatpay-java pair; so one run uses both kinds of key, as during WeChat Pay's switch-over)
//!   and encrypted with the APIv3 key. A refund is `PROCESSING` when asked and `SUCCESS` when asked again (its
//!   notification lost), or finishes on [`FakeWechatPay::finish_refund`], which sends its `REFUND.*`
//!   notification to the refund's `notify_url` the same way.
//!
//! Its crypto is `ring` directly, not the adapter's code, so a mistake in one is not hidden by the other.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tuangou_app::Clock;
use tuangou_domain::time::{Millis, china_time_seconds, parse_rfc3339};

/// The test merchant (wechatpay-java's published test merchant key pair).
pub const MERCHANT_PRIVATE_KEY: &str = include_str!("../../app/tests/fixtures/wechatpay/java_merchant_private_key.pem");
const MERCHANT_CERTIFICATE: &str = include_str!("../../app/tests/fixtures/wechatpay/java_merchant_certificate.pem");
pub const MERCHANT_SERIAL: &str = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
/// The fake's platform certificate (test only) and its key.
pub const PLATFORM_CERTIFICATE: &str = include_str!("../fixtures/fake_wechatpay_platform_certificate.pem");
const PLATFORM_KEY: &str = include_str!("../fixtures/fake_wechatpay_platform_key.pem");
pub const PLATFORM_SERIAL: &str = "3C1A2B4D5E6F708192A3B4C5D6E7F8091A2B3C4D";
/// The WeChat Pay public key (wechatpay-java's published test pair) and the id the fake names it by.
pub const PUBLIC_KEY: &str = include_str!("../../app/tests/fixtures/wechatpay/java_wechat_pay_public_key.pem");
const PUBLIC_KEY_PRIVATE: &str = include_str!("../../app/tests/fixtures/wechatpay/java_wechat_pay_private_key.pem");
pub const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0114232019112100000000000000000000";
pub const APIV3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
pub const MCHID: &str = "1900000001";
pub const APPID: &str = "wxd678efh567hg6787";
pub const SUB_MCHID: &str = "1900000109";

fn pem_der(text: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(text.as_bytes()).expect("test PEM").1.contents
}

fn private_key(text: &str) -> RsaKeyPair {
    RsaKeyPair::from_pkcs8(&pem_der(text)).expect("a PKCS#8 test key")
}

fn sign(key: &RsaKeyPair, message: &[u8]) -> String {
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature).expect("sign");
    BASE64.encode(signature)
}

fn lines(parts: &[&[u8]]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.iter().copied().chain([b'\n'])).collect()
}

fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string().to_uppercase()
}

/// A payment at the fake.
#[derive(Debug, Clone)]
pub struct FakePayment {
    /// What the order was created with (merchant fields, `notify_url`, `time_expire`, `settle_info`, …).
    pub order: Value,
    /// `jsapi`, `h5` or `native`.
    pub kind: String,
    pub transaction_id: String,
    pub amount: i64,
    /// `NOTPAY`, `SUCCESS`, `CLOSED`, `REFUND`.
    pub trade_state: String,
    pub success_time: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct FakeRefund {
    pub out_refund_no: String,
    pub out_trade_no: String,
    pub refund_id: String,
    pub amount: i64,
    pub status: String,
    pub at: Millis,
    pub request: Value,
}

#[derive(Debug, Clone)]
pub struct FakeSplit {
    pub out_order_no: String,
    pub transaction_id: String,
    pub order_id: String,
    /// The request as received (receivers, `unfreeze_unsplit`, `sub_mchid`).
    pub request: Value,
    pub looked_at: bool,
}

#[derive(Default)]
struct Books {
    /// By WeChat's `out_trade_no` (our id without hyphens).
    payments: BTreeMap<String, FakePayment>,
    refunds: BTreeMap<String, FakeRefund>,
    splits: BTreeMap<String, FakeSplit>,
    /// Every request accepted: (method, path and query).
    accepted: Vec<(String, String)>,
    /// Requests refused for their signature.
    refused: usize,
    /// The last notification sent.
    delivered: Option<(Vec<(String, String)>, String)>,
}

struct Inner {
    clock: Clock,
    base: String,
    merchant: Vec<u8>,
    platform: RsaKeyPair,
    public_key_private: RsaKeyPair,
    bad_signatures: AtomicBool,
    books: Mutex<Books>,
    http: reqwest::Client,
}

/// The fake's handle. Cheap to clone.
#[derive(Clone)]
pub struct FakeWechatPay(Arc<Inner>);

impl FakeWechatPay {
    /// Starts the fake on a port of its own; it reads time from `clock` (the service's, so both move together).
    pub async fn start(clock: Clock) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let der = pem_der(MERCHANT_CERTIFICATE);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("certificate");
        let merchant = cert.public_key().subject_public_key.data.to_vec();
        let fake = Self(Arc::new(Inner {
            clock,
            base,
            merchant,
            platform: private_key(PLATFORM_KEY),
            public_key_private: private_key(PUBLIC_KEY_PRIVATE),
            bad_signatures: AtomicBool::new(false),
            books: Mutex::new(Books::default()),
            http: reqwest::Client::new(),
        }));
        let router = axum::Router::new().fallback(handle).with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        fake
    }

    /// Where the adapter should call it (`payments_wechatpay_api_base`).
    pub fn base(&self) -> &str {
        &self.0.base
    }

    /// The service's WeChat Pay settings for this fake: direct mode, or partner mode (`sub_mchid`). Both kinds of
    /// key at once (WeChat Pay's switch-over): answers come signed with the certificate, notifications with the
    /// public key.
    pub fn settings(&self, partner: bool) -> tuangou_app::payments::wechatpay::WechatPaySettings {
        let config = tuangou_app::payments::wechatpay::WechatPayConfig {
            mchid: MCHID.into(),
            appid: APPID.into(),
            merchant_serial: MERCHANT_SERIAL.into(),
            private_key: MERCHANT_PRIVATE_KEY.into(),
            apiv3_key: APIV3_KEY.into(),
            platform_certificates: Some(PLATFORM_CERTIFICATE.into()),
            public_key: Some(PUBLIC_KEY.into()),
            public_key_id: Some(PUBLIC_KEY_ID.into()),
            sub_mchid: partner.then(|| SUB_MCHID.into()),
            api_base: Some(self.base().to_owned()),
            timeout_seconds: 5,
            ..Default::default()
        };
        tuangou_app::payments::wechatpay::WechatPaySettings::new(&config).expect("the test configuration is whole")
    }

    /// While on, every answer's signature is wrong (signed with another key): the adapter must not believe it.
    pub fn set_bad_signatures(&self, on: bool) {
        self.0.bad_signatures.store(on, Ordering::SeqCst);
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.0.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The payment for our id, as the fake keeps it.
    pub fn payment(&self, ours: &str) -> Option<FakePayment> {
        self.books().payments.get(&ours.replace('-', "")).cloned()
    }

    pub fn refund(&self, out_refund_no: &str) -> Option<FakeRefund> {
        self.books().refunds.get(out_refund_no).cloned()
    }

    pub fn splits(&self) -> Vec<FakeSplit> {
        self.books().splits.values().cloned().collect()
    }

    /// Requests accepted so far, and how many were refused for their signature.
    pub fn requests(&self) -> (Vec<(String, String)>, usize) {
        let books = self.books();
        (books.accepted.clone(), books.refused)
    }

    /// The payer pays (our id): the payment is `SUCCESS`, and the signed, encrypted notification is sent to its
    /// `notify_url`. Answers the status the service gave the notification.
    pub async fn pay(&self, ours: &str) -> StatusCode {
        let resource = self.pay_silently(ours);
        let (headers, body) = self.notification(&resource, Signing::default());
        self.deliver(&resource_notify_url(&self.payment(ours).expect("paid").order), headers, body).await
    }

    /// The payer pays, and the notification is lost: only a query finds out. Answers the transaction.
    pub fn pay_silently(&self, ours: &str) -> Value {
        let now = self.0.clock.now();
        let mut books = self.books();
        let payment = books.payments.get_mut(&ours.replace('-', "")).expect("a payment at the fake");
        assert_eq!(payment.trade_state, "NOTPAY", "only an unpaid payment can be paid");
        payment.trade_state = "SUCCESS".into();
        payment.success_time = Some(now);
        let payment = payment.clone();
        drop(books);
        self.transaction(&payment)
    }

    /// A transaction as WeChat Pay describes it (a query's answer, a notification's resource).
    fn transaction(&self, payment: &FakePayment) -> Value {
        let mut transaction = json!({
            "out_trade_no": payment.order["out_trade_no"], "transaction_id": payment.transaction_id,
            "trade_type": payment.kind.to_uppercase(), "trade_state": payment.trade_state,
            "trade_state_desc": "", "bank_type": "OTHERS", "attach": "",
            "amount": {"total": payment.amount, "payer_total": payment.amount, "currency": "CNY",
                "payer_currency": "CNY"},
        });
        for field in ["appid", "mchid", "sp_appid", "sp_mchid", "sub_appid", "sub_mchid"] {
            if let Some(value) = payment.order.get(field) {
                transaction[field] = value.clone();
            }
        }
        if let Some(at) = payment.success_time {
            transaction["success_time"] = json!(china_rfc3339(at));
        }
        transaction
    }

    /// The current transaction of our payment id, to build notifications from (tests change fields of it).
    pub fn transaction_of(&self, ours: &str) -> Value {
        self.transaction(&self.payment(ours).expect("a payment at the fake"))
    }

    /// The refund finishes at WeChat Pay with `status` (`SUCCESS`, `ABNORMAL` or `CLOSED`), and its notification
    /// (`REFUND.{status}`, signed and encrypted as WeChat Pay does) is sent to the refund's `notify_url`. Answers
    /// the status the service gave the notification.
    pub async fn finish_refund(&self, out_refund_no: &str, status: &str) -> StatusCode {
        let now = self.0.clock.now();
        let url = {
            let mut books = self.books();
            let refund = books.refunds.get_mut(out_refund_no).expect("a refund at the fake");
            refund.status = status.to_owned();
            refund.at = now;
            resource_notify_url(&refund.request)
        };
        let resource = self.refund_resource(out_refund_no);
        let (headers, body) = self.refund_notification(&format!("REFUND.{status}"), &resource, Signing::default());
        self.deliver(&url, headers, body).await
    }

    /// A refund as WeChat Pay describes it in a refund notification's resource (tests change fields of it).
    pub fn refund_resource(&self, out_refund_no: &str) -> Value {
        let books = self.books();
        let refund = books.refunds.get(out_refund_no).expect("a refund at the fake");
        let payment = &books.payments[&refund.out_trade_no];
        let mut resource = json!({
            "out_trade_no": refund.out_trade_no, "transaction_id": payment.transaction_id,
            "out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id,
            "refund_status": refund.status, "user_received_account": "招商银行信用卡0403",
            "amount": {"total": payment.amount, "refund": refund.amount, "payer_total": payment.amount,
                "payer_refund": refund.amount},
        });
        for field in ["mchid", "sp_mchid", "sub_mchid"] {
            if let Some(value) = payment.order.get(field) {
                resource[field] = value.clone();
            }
        }
        if refund.status == "SUCCESS" {
            resource["success_time"] = json!(china_rfc3339(refund.at));
        }
        resource
    }

    /// A refund notification (`event_type` `REFUND.SUCCESS`, `REFUND.ABNORMAL` or `REFUND.CLOSED`) of
    /// `resource`, signed and encrypted as [`Self::notification`].
    pub fn refund_notification(
        &self,
        event_type: &str,
        resource: &Value,
        signing: Signing,
    ) -> (Vec<(String, String)>, String) {
        let summary = if event_type == "REFUND.SUCCESS" { "退款成功" } else { "退款异常" };
        self.signed_notification(event_type, summary, "refund", resource, signing)
    }

    /// A `TRANSACTION.SUCCESS` notification of `resource`: (headers, body), signed and encrypted as `signing`
    /// says (by default as WeChat Pay would: the public key, now, the APIv3 key).
    pub fn notification(&self, resource: &Value, signing: Signing) -> (Vec<(String, String)>, String) {
        self.signed_notification("TRANSACTION.SUCCESS", "支付成功", "transaction", resource, signing)
    }

    /// A notification of `event_type` whose resource (`original_type`, also the associated data) is `resource`.
    fn signed_notification(
        &self,
        event_type: &str,
        summary: &str,
        original_type: &str,
        resource: &Value,
        signing: Signing,
    ) -> (Vec<(String, String)>, String) {
        let now = self.0.clock.now();
        let nonce12 = &nonce()[..12];
        let mut ciphertext = encrypt(nonce12, original_type, resource.to_string().as_bytes());
        if signing.tamper_ciphertext {
            let flipped = if ciphertext.starts_with('A') { "B" } else { "A" };
            ciphertext = format!("{flipped}{}", &ciphertext[1..]);
        }
        let body = json!({
            "id": uuid::Uuid::new_v4().to_string(), "create_time": china_rfc3339(now),
            "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
            "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
                "associated_data": original_type, "nonce": nonce12},
        })
        .to_string();
        let timestamp = (now.0.div_euclid(1_000) + signing.skew_seconds).to_string();
        let nonce = nonce();
        let (key, serial) = if signing.with_certificate {
            (&self.0.platform, PLATFORM_SERIAL)
        } else {
            (&self.0.public_key_private, PUBLIC_KEY_ID)
        };
        let mut signature = sign(key, &lines(&[timestamp.as_bytes(), nonce.as_bytes(), body.as_bytes()]));
        if signing.bad_signature {
            signature = sign(&private_key(MERCHANT_PRIVATE_KEY), body.as_bytes());
        }
        if let Some(probe) = &signing.signature {
            signature = probe.clone();
        }
        let headers = vec![
            ("Wechatpay-Timestamp".into(), timestamp),
            ("Wechatpay-Nonce".into(), nonce),
            ("Wechatpay-Serial".into(), signing.serial.clone().unwrap_or_else(|| serial.to_owned())),
            ("Wechatpay-Signature".into(), signature),
            ("Wechatpay-Signature-Type".into(), "WECHATPAY2-SHA256-RSA2048".into()),
        ];
        (headers, body)
    }

    /// The last notification [`Self::deliver`] sent (to send it again, as WeChat Pay retries).
    pub fn last_delivered(&self) -> Option<(Vec<(String, String)>, String)> {
        self.books().delivered.clone()
    }

    /// Posts a notification as WeChat Pay does; answers the service's status.
    pub async fn deliver(&self, url: &str, headers: Vec<(String, String)>, body: String) -> StatusCode {
        self.books().delivered = Some((headers.clone(), body.clone()));
        let mut request = self.0.http.post(url).header("content-type", "application/json").body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let status = request.send().await.expect("the service answers").status();
        StatusCode::from_u16(status.as_u16()).expect("a status")
    }

    /// An answer signed with the platform certificate (or badly, when told to).
    fn answer(&self, status: StatusCode, body: Option<Value>) -> Response {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let timestamp = self.0.clock.now().0.div_euclid(1_000).to_string();
        let nonce = nonce();
        let message = lines(&[timestamp.as_bytes(), nonce.as_bytes(), body.as_bytes()]);
        let signature = if self.0.bad_signatures.load(Ordering::SeqCst) {
            sign(&self.0.public_key_private, b"not this answer")
        } else {
            sign(&self.0.platform, &message)
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        for (name, value) in [
            ("content-type", "application/json".to_owned()),
            ("request-id", uuid::Uuid::new_v4().to_string()),
            ("wechatpay-timestamp", timestamp),
            ("wechatpay-nonce", nonce),
            ("wechatpay-serial", PLATFORM_SERIAL.to_owned()),
            ("wechatpay-signature", signature),
        ] {
            headers.insert(name, value.parse().expect("a header value"));
        }
        response
    }

    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        self.answer(status, Some(json!({"code": code, "message": message})))
    }

    /// Whether `authorization` signs this request with the test merchant's key, for our merchant and serial.
    fn authorized(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
        let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else { return false };
        let Some(params) = value.strip_prefix("WECHATPAY2-SHA256-RSA2048 ") else { return false };
        let mut fields = BTreeMap::new();
        for pair in params.split(',') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                fields.insert(name.to_owned(), value.trim_matches('"').to_owned());
            }
        }
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
        if field("mchid") != MCHID || field("serial_no") != MERCHANT_SERIAL {
            return false;
        }
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
        let message = lines(&[
            method.as_str().as_bytes(),
            path.as_bytes(),
            field("timestamp").as_bytes(),
            field("nonce_str").as_bytes(),
            body,
        ]);
        let Ok(signature) = BASE64.decode(field("signature")) else { return false };
        let fresh =
            field("timestamp").parse::<i64>().is_ok_and(|t| (t - self.0.clock.now().0.div_euclid(1_000)).abs() <= 300);
        fresh
            && UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.0.merchant)
                .verify(&message, &signature)
                .is_ok()
    }

    fn route(&self, method: &Method, uri: &Uri, body: &[u8]) -> Response {
        let path = uri.path();
        let query: BTreeMap<String, String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        let json_body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let now = self.0.clock.now();
        match (method.as_str(), segments.as_slice()) {
            ("POST", ["v3", "pay", "transactions", kind])
            | ("POST", ["v3", "pay", "partner", "transactions", kind])
                if ["jsapi", "h5", "native"].contains(kind) =>
            {
                self.create(kind, json_body, segments.contains(&"partner"))
            }
            ("GET", ["v3", "pay", "transactions", "out-trade-no", no])
            | ("GET", ["v3", "pay", "partner", "transactions", "out-trade-no", no]) => {
                let mut books = self.books();
                let Some(payment) = books.payments.get_mut(*no) else {
                    return self.error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在");
                };
                let mchid_ok = query.get("mchid").or(query.get("sp_mchid")).map(String::as_str) == Some(MCHID);
                if !mchid_ok {
                    return self.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "mchid");
                }
                expire(payment, now);
                let transaction = self.transaction(payment);
                self.answer(StatusCode::OK, Some(transaction))
            }
            ("POST", ["v3", "pay", "transactions", "out-trade-no", no, "close"])
            | ("POST", ["v3", "pay", "partner", "transactions", "out-trade-no", no, "close"]) => {
                let mut books = self.books();
                let Some(payment) = books.payments.get_mut(*no) else {
                    return self.error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在");
                };
                match payment.trade_state.as_str() {
                    "NOTPAY" | "CLOSED" => {
                        payment.trade_state = "CLOSED".into();
                        self.answer(StatusCode::NO_CONTENT, None)
                    }
                    _ => self.error(StatusCode::BAD_REQUEST, "ORDER_PAID", "订单已支付"),
                }
            }
            ("POST", ["v3", "refund", "domestic", "refunds"]) => self.refund_request(json_body, now),
            ("GET", ["v3", "refund", "domestic", "refunds", no]) => {
                let mut books = self.books();
                match books.refunds.get_mut(*no) {
                    Some(refund) => {
                        finish_processing(refund);
                        let answer = refund_json(refund);
                        self.answer(StatusCode::OK, Some(answer))
                    }
                    None => self.error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "退款单不存在"),
                }
            }
            ("POST", ["v3", "profitsharing", "orders"]) | ("POST", ["v3", "profitsharing", "orders", "unfreeze"]) => {
                self.split_request(json_body, now)
            }
            ("GET", ["v3", "profitsharing", "orders", no]) => {
                let mut books = self.books();
                match books.splits.get_mut(*no) {
                    Some(split) if query.get("transaction_id") == Some(&split.transaction_id) => {
                        split.looked_at = true;
                        let answer = split_json(split, now);
                        self.answer(StatusCode::OK, Some(answer))
                    }
                    _ => self.error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "分账单不存在"),
                }
            }
            ("GET", ["v3", "bill", "tradebill"]) => {
                let Some(date) = query.get("bill_date") else {
                    return self.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "bill_date");
                };
                let csv = self.bill_csv(date);
                let hash = hex::encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, csv.as_bytes()));
                let url = format!("{}/v3/billdownload/file?token={date}", self.0.base);
                self.answer(StatusCode::OK, Some(json!({"hash_type": "SHA1", "hash_value": hash, "download_url": url})))
            }
            ("GET", ["v3", "billdownload", "file"]) => {
                let csv = self.bill_csv(query.get("token").map(String::as_str).unwrap_or(""));
                (StatusCode::OK, csv).into_response()
            }
            _ => self.error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such API"),
        }
    }

    fn create(&self, kind: &str, order: Value, partner: bool) -> Response {
        let merchant_ok = if partner {
            order["sp_mchid"] == MCHID && order["sp_appid"] == APPID && order["sub_mchid"] == SUB_MCHID
        } else {
            order["mchid"] == MCHID && order["appid"] == APPID
        };
        let (Some(no), Some(amount)) = (order["out_trade_no"].as_str(), order["amount"]["total"].as_i64()) else {
            return self.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "out_trade_no, amount.total");
        };
        let expire_ok =
            order["time_expire"].as_str().is_some_and(|t| t.ends_with("+08:00") && parse_rfc3339(t).is_some());
        let payer_ok = match kind {
            "jsapi" => !order["payer"].is_null(),
            "h5" => order["scene_info"]["payer_client_ip"].is_string(),
            _ => true,
        };
        if !merchant_ok || no.len() > 32 || !expire_ok || !payer_ok || !order["notify_url"].is_string() {
            return self.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "the order is not what WeChat Pay takes");
        }
        let mut books = self.books();
        let count = books.payments.len();
        let payment = books.payments.entry(no.to_owned()).or_insert_with(|| FakePayment {
            order: order.clone(),
            kind: kind.to_owned(),
            transaction_id: format!("42000002632019021677{count:08}"),
            amount,
            trade_state: "NOTPAY".into(),
            success_time: None,
        });
        let answer = match kind {
            "jsapi" => json!({"prepay_id": format!("wx{}", payment.transaction_id)}),
            "h5" => {
                json!({"h5_url": format!("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx{}", payment.transaction_id)})
            }
            _ => json!({"code_url": format!("weixin://wxpay/bizpayurl?pr={}", &payment.transaction_id[20..])}),
        };
        self.answer(StatusCode::OK, Some(answer))
    }

    fn refund_request(&self, request: Value, now: Millis) -> Response {
        let mut books = self.books();
        let (Some(no), Some(out_refund_no)) = (request["out_trade_no"].as_str(), request["out_refund_no"].as_str())
        else {
            return self.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "out_trade_no, out_refund_no");
        };
        if let Some(refund) = books.refunds.get_mut(out_refund_no) {
            // The same refund asked again: the same refund, further along (an ended one stays as it ended).
            finish_processing(refund);
            let answer = refund_json(refund);
            return self.answer(StatusCode::OK, Some(answer));
        }
        let Some(payment) = books.payments.get(no).cloned() else {
            return self.error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在");
        };
        let refunded: i64 = books.refunds.values().filter(|r| r.out_trade_no == no).map(|r| r.amount).sum();
        let amount = request["amount"]["refund"].as_i64().unwrap_or(0);
        if !matches!(payment.trade_state.as_str(), "SUCCESS" | "REFUND")
            || request["amount"]["total"].as_i64() != Some(payment.amount)
            || amount <= 0
            || refunded + amount > payment.amount
        {
            return self.error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "退款金额不对");
        }
        let refund = FakeRefund {
            out_refund_no: out_refund_no.to_owned(),
            out_trade_no: no.to_owned(),
            refund_id: format!("5000070967201901190842{:07}", books.refunds.len()),
            amount,
            status: "PROCESSING".into(),
            at: now,
            request: request.clone(),
        };
        let answer = refund_json(&refund);
        books.refunds.insert(out_refund_no.to_owned(), refund);
        if let Some(payment) = books.payments.get_mut(no) {
            payment.trade_state = "REFUND".into();
        }
        self.answer(StatusCode::OK, Some(answer))
    }

    fn split_request(&self, request: Value, now: Millis) -> Response {
        let mut books = self.books();
        let (Some(out_order_no), Some(transaction_id)) = (
            request["out_order_no"].as_str().map(str::to_owned),
            request["transaction_id"].as_str().map(str::to_owned),
        ) else {
            return self.error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "out_order_no, transaction_id");
        };
        let (out_order_no, transaction_id) = (out_order_no.as_str(), transaction_id.as_str());
        if let Some(split) = books.splits.get_mut(out_order_no) {
            split.looked_at = true;
            let answer = split_json(split, now);
            return self.answer(StatusCode::OK, Some(answer));
        }
        let Some(payment) = books.payments.values().find(|p| p.transaction_id == transaction_id).cloned() else {
            return self.error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在");
        };
        let shared: i64 =
            request["receivers"].as_array().map_or(0, |r| r.iter().filter_map(|r| r["amount"].as_i64()).sum());
        if payment.order["settle_info"]["profit_sharing"] != true
            || request["sub_mchid"] != SUB_MCHID
            || shared > payment.amount
        {
            return self.error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "不能分账");
        }
        let split = FakeSplit {
            out_order_no: out_order_no.to_owned(),
            transaction_id: transaction_id.to_owned(),
            order_id: format!("3008450740201411110007820{:03}", books.splits.len()),
            request,
            looked_at: false,
        };
        let answer = split_json(&split, now);
        books.splits.insert(out_order_no.to_owned(), split);
        self.answer(StatusCode::OK, Some(answer))
    }

    /// The trade bill of `date` (`YYYY-MM-DD`) in WeChat Pay's format: a line per payment paid and per refund
    /// that day, and the summary footer.
    fn bill_csv(&self, date: &str) -> String {
        let books = self.books();
        let on_day = |at: Millis| china_time_seconds(at).starts_with(date);
        let f = |fields: &[String]| fields.iter().map(|f| format!("`{f}")).collect::<Vec<_>>().join(",");
        let yuan = |fen: i64| format!("{}.{:02}", fen / 100, fen % 100);
        let mut text = String::from(
            "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n",
        );
        let (mut count, mut paid, mut refunded) = (0, 0, 0);
        for (no, p) in &books.payments {
            let Some(at) = p.success_time.filter(|at| on_day(*at)) else { continue };
            count += 1;
            paid += p.amount;
            let sub = p.order["sub_mchid"].as_str().unwrap_or("0").to_owned();
            text.push_str(&f(&[
                china_time_seconds(at),
                APPID.into(),
                MCHID.into(),
                sub,
                String::new(),
                p.transaction_id.clone(),
                no.clone(),
                "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
                p.kind.to_uppercase(),
                "SUCCESS".into(),
                "OTHERS".into(),
                "CNY".into(),
                yuan(p.amount),
                "0.00".into(),
                "0".into(),
                "0".into(),
                "0.00".into(),
                "0.00".into(),
                String::new(),
                String::new(),
                "团购".into(),
                String::new(),
                "0.00000".into(),
                "0.60%".into(),
                yuan(p.amount),
                "0.00".into(),
                String::new(),
            ]));
            text.push_str("\r\n");
        }
        for r in books.refunds.values().filter(|r| r.status == "SUCCESS" && on_day(r.at)) {
            let p = &books.payments[&r.out_trade_no];
            count += 1;
            refunded += r.amount;
            let sub = p.order["sub_mchid"].as_str().unwrap_or("0").to_owned();
            text.push_str(&f(&[
                china_time_seconds(r.at),
                APPID.into(),
                MCHID.into(),
                sub,
                String::new(),
                p.transaction_id.clone(),
                r.out_trade_no.clone(),
                "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
                p.kind.to_uppercase(),
                "REFUND".into(),
                "OTHERS".into(),
                "CNY".into(),
                "0.00".into(),
                "0.00".into(),
                r.refund_id.clone(),
                r.out_refund_no.clone(),
                yuan(r.amount),
                "0.00".into(),
                "ORIGINAL".into(),
                "SUCCESS".into(),
                "团购".into(),
                String::new(),
                "0.00000".into(),
                "0.60%".into(),
                "0.00".into(),
                yuan(r.amount),
                String::new(),
            ]));
            text.push_str("\r\n");
        }
        text.push_str(
            "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n",
        );
        text.push_str(&f(&[
            format!("{count}.0"),
            yuan(paid),
            yuan(refunded),
            "0.0".into(),
            "0.00".into(),
            yuan(paid),
            yuan(refunded),
        ]));
        text.push_str("\r\n");
        text
    }
}

/// How a test notification is signed (the default: as WeChat Pay would, with the public key, now).
#[derive(Debug, Clone, Default)]
pub struct Signing {
    /// Sign with the platform certificate's key (and its serial) instead of the WeChat Pay public key.
    pub with_certificate: bool,
    /// Name another serial than the signing key's.
    pub serial: Option<String>,
    /// Seconds added to the timestamp.
    pub skew_seconds: i64,
    /// A signature made with another key.
    pub bad_signature: bool,
    /// The signature header as given (a `WECHATPAY/SIGNTEST/` probe, say).
    pub signature: Option<String>,
    /// One character of the ciphertext changed (the body is still signed).
    pub tamper_ciphertext: bool,
}

fn resource_notify_url(order: &Value) -> String {
    order["notify_url"].as_str().unwrap_or_default().to_owned()
}

fn encrypt(nonce: &str, associated_data: &str, plaintext: &[u8]) -> String {
    let key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, APIV3_KEY.as_bytes()).expect("32 bytes"),
    );
    let mut buffer = plaintext.to_vec();
    key.seal_in_place_append_tag(
        ring::aead::Nonce::try_assume_unique_for_key(nonce.as_bytes()).expect("12 bytes"),
        ring::aead::Aad::from(associated_data.as_bytes()),
        &mut buffer,
    )
    .expect("seal");
    BASE64.encode(buffer)
}

fn china_rfc3339(at: Millis) -> String {
    format!("{}+08:00", china_time_seconds(at).replacen(' ', "T", 1))
}

/// An order whose `time_expire` passed unpaid is closed, as WeChat Pay does.
fn expire(payment: &mut FakePayment, now: Millis) {
    let expired = payment.order["time_expire"].as_str().and_then(parse_rfc3339).is_some_and(|end| now.0 > end.0);
    if payment.trade_state == "NOTPAY" && expired {
        payment.trade_state = "CLOSED".into();
    }
}

/// A refund still processing succeeds when looked at again.
fn finish_processing(refund: &mut FakeRefund) {
    if refund.status == "PROCESSING" {
        refund.status = "SUCCESS".into();
    }
}

fn refund_json(refund: &FakeRefund) -> Value {
    let mut answer = json!({
        "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no, "out_trade_no": refund.out_trade_no,
        "channel": "ORIGINAL", "user_received_account": "招商银行信用卡0403", "status": refund.status,
        "create_time": china_rfc3339(refund.at), "amount": {"refund": refund.amount, "total": refund.request["amount"]["total"],
        "payer_refund": refund.amount, "currency": "CNY"},
    });
    if refund.status == "SUCCESS" {
        answer["success_time"] = json!(china_rfc3339(refund.at));
    }
    answer
}

/// A split is `PROCESSING` when asked, `FINISHED` once looked at again.
fn split_json(split: &FakeSplit, now: Millis) -> Value {
    let finished = split.looked_at;
    let receivers: Vec<Value> = split.request["receivers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            json!({"amount": r["amount"], "description": r["description"], "type": r["type"], "account": r["account"],
                "result": if finished { "SUCCESS" } else { "PENDING" }, "detail_id": "36011111111111111111111",
                "create_time": china_rfc3339(now), "finish_time": china_rfc3339(now)})
        })
        .collect();
    json!({"sub_mchid": split.request["sub_mchid"], "transaction_id": split.transaction_id,
        "out_order_no": split.out_order_no, "order_id": split.order_id,
        "state": if finished { "FINISHED" } else { "PROCESSING" }, "receivers": receivers})
}

async fn handle(
    State(fake): State<FakeWechatPay>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path() != "/v3/billdownload/file" || headers.contains_key("authorization") {
        if !fake.authorized(&method, &uri, &headers, &body) {
            fake.books().refused += 1;
            return fake.error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", "签名错误");
        }
        let path = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
        fake.books().accepted.push((method.to_string(), path));
    }
    fake.route(&method, &uri, &body)
}
