//! An in-process fake of Alipay's OpenAPI gateway, for the `alipay` adapter's tests: it speaks the wire format
//! (form-encoded signed requests to `gateway.do`; answers `{"<method>_response": {…}, "sign": …}` signed over the
//! exact bytes of the response value, with `/` escaped as `\/` as Alipay writes it, so only a check on the raw
//! bytes passes), keeps trades and refunds, lets the payer open the pay page and pay, and posts signed
//! form-encoded notifications to the `notify_url` our request named.
//!
//! Keys: test-only pairs made once with openssl and vendored (`crates/app/tests/fixtures/alipay/`; ring, the
//! workspace's crypto library, cannot generate RSA keys). The fake uses the adapter's RSA
//! primitives (`AppKey::sign`, `AlipayPublicKey::verifies`, checked against Alipay's published vector in the
//! adapter's unit tests) but builds every signed text itself: what it signs and checks is written here, from
//! Alipay's documentation, not borrowed from the code under test.
//!
//! It accepts a request only when our signature verifies with our app's public key (and carries the merchant's
//! `app_auth_token`, when told to expect one); anything else is answered `40002 isv.invalid-signature` and counted
//! ([`FakeAlipay::refused`]). It settles frozen trades (`alipay.trade.order.settle`, 分账: a settle is
//! `PROCESSING` when first looked at, `SUCCESS` after) and serves the bill as Alipay does: a zip of GBK CSVs.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tuangou_app::Clock;
use tuangou_app::payments::alipay::signing::{AlipayPublicKey, AppKey};
use tuangou_domain::time::{ChinaDay, Millis, china_time_seconds};

pub const APP_ID: &str = "2021000000000042";
pub const SELLER_ID: &str = "2088000000000042";
/// The platform's account that receives the commission of a settle (partner mode).
pub const ROYALTY_ACCOUNT: &str = "2088000000000777";
/// The merchant's authorization of our app.
pub const APP_AUTH_TOKEN: &str = "202511BB4c3f0e7a1b2c4d5e6f7a8b9c0d1e2X42";

#[derive(Debug, Clone)]
pub struct Trade {
    pub out_trade_no: String,
    pub trade_no: String,
    pub total_amount: String,
    pub subject: String,
    pub status: &'static str,
    pub time_expire: String,
    pub notify_url: String,
    pub gmt_create: String,
    pub gmt_payment: Option<String>,
    pub refunds: Vec<RefundDone>,
    /// Paid with its money frozen for profit sharing (`extend_params.royalty_freeze`).
    pub royalty_freeze: bool,
    pub settles: Vec<Settle>,
}

/// An `alipay.trade.order.settle` of a trade.
#[derive(Debug, Clone)]
pub struct Settle {
    pub out_request_no: String,
    pub settle_no: String,
    /// The request's `royalty_parameters` and `extend_params`, as received.
    pub royalty_parameters: Value,
    pub extend_params: Value,
    pub at: String,
    pub looked_at: bool,
}

#[derive(Debug, Clone)]
pub struct RefundDone {
    pub out_request_no: String,
    pub amount: String,
    pub gmt_refund_pay: String,
}

#[derive(Default)]
struct Books {
    trades: BTreeMap<String, Trade>,
    refused: usize,
    tamper_answers: bool,
    /// Only the answers of this method are tampered with.
    tamper_method: Option<String>,
    clock: Option<Clock>,
    seq: u64,
    /// The last notification sent: its URL and body, to send again as Alipay's retries do.
    last_sent: Option<(String, String)>,
    /// Every request must carry this `app_auth_token`, when set.
    app_auth_token: Option<String>,
}

pub struct FakeAlipay {
    pub base: String,
    /// Our app's keys: the private one goes to the service's settings, the public one is the fake's to check with.
    pub app_private_key: String,
    app_public_key: AlipayPublicKey,
    /// Alipay's keys: the fake signs with the private one; the public one goes to the service's settings.
    alipay_key: AppKey,
    pub alipay_public_key: String,
    books: Mutex<Books>,
    http: reqwest::Client,
}

/// Alipay's RSA2 text: the parameters but `sign` (and, for notifications, `sign_type`), sorted, `k=v&…`.
fn signed_text(params: &[(String, String)], skip_sign_type: bool) -> String {
    let mut kept: Vec<&(String, String)> =
        params.iter().filter(|(k, v)| k != "sign" && !(skip_sign_type && k == "sign_type") && !v.is_empty()).collect();
    kept.sort();
    kept.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

pub fn form(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

fn fen_text(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn parse_fen(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    whole.parse::<i64>().unwrap() * 100 + format!("{fraction:0<2}").parse::<i64>().unwrap()
}

impl FakeAlipay {
    pub async fn start() -> Arc<Self> {
        let keys = "../app/tests/fixtures/alipay";
        let read =
            |name: &str| std::fs::read_to_string(format!("{}/{keys}/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let (app_private_key, app_public) = (read("test_app_private_key_pkcs1.txt"), read("test_app_public_key.txt"));
        let (alipay_private, alipay_public_key) =
            (read("test_alipay_private_key.pem"), read("test_alipay_public_key.txt"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fake = Arc::new(Self {
            base,
            app_private_key,
            app_public_key: AlipayPublicKey::parse(&app_public).unwrap(),
            alipay_key: AppKey::parse(&alipay_private).unwrap(),
            alipay_public_key,
            books: Mutex::new(Books::default()),
            http: reqwest::Client::new(),
        });
        let router = Router::new()
            .route("/gateway.do", get(pay_page).post(api))
            .route("/bills/{date}", get(bill))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        fake
    }

    pub fn gateway(&self) -> String {
        format!("{}/gateway.do", self.base)
    }

    /// The fake's time follows the service's clock (tests move both together).
    pub fn set_clock(&self, clock: Clock) {
        self.books.lock().unwrap().clock = Some(clock);
    }

    fn now(&self) -> Millis {
        let clock = self.books.lock().unwrap().clock.clone();
        clock.map(|c| c.now()).unwrap_or_else(|| {
            Millis(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64)
        })
    }

    /// From now on, a request without the merchant's `app_auth_token` is refused.
    pub fn expect_app_auth_token(&self, token: &str) {
        self.books.lock().unwrap().app_auth_token = Some(token.to_owned());
    }

    /// Requests refused because our signature did not verify.
    pub fn refused(&self) -> usize {
        self.books.lock().unwrap().refused
    }

    /// Signs answers over other bytes than the ones sent: every answer then fails the adapter's check.
    pub fn tamper_answers(&self, on: bool) {
        self.books.lock().unwrap().tamper_answers = on;
    }

    /// As [`Self::tamper_answers`], for the answers of `method` only (`None`: none).
    pub fn tamper_answers_of(&self, method: Option<&str>) {
        self.books.lock().unwrap().tamper_method = method.map(|m| format!("{}_response", m.replace('.', "_")));
    }

    pub fn trade(&self, out_trade_no: &str) -> Option<Trade> {
        self.books.lock().unwrap().trades.get(out_trade_no).cloned()
    }

    /// Whether our request's parameters carry our app's signature.
    fn verifies(&self, params: &[(String, String)]) -> bool {
        let sign = params.iter().find(|(k, _)| k == "sign").map(|(_, v)| v.clone()).unwrap_or_default();
        let token = self.books.lock().unwrap().app_auth_token.clone();
        let authorized = token.is_none_or(|token| params.iter().any(|(k, v)| k == "app_auth_token" && *v == token));
        let ours = authorized
            && params.iter().any(|(k, v)| k == "app_id" && v == APP_ID)
            && params.iter().any(|(k, v)| k == "sign_type" && v == "RSA2");
        ours && self.app_public_key.verifies(signed_text(params, false).as_bytes(), &sign)
    }

    /// A signed answer: `{"<key>":<value>,"sign":"…"}` over the value's exact bytes.
    fn answer(&self, key: &str, value: Value) -> Response {
        let raw = value.to_string().replace('/', "\\/");
        let tampered = {
            let books = self.books.lock().unwrap();
            books.tamper_answers || books.tamper_method.as_deref() == Some(key)
        };
        let signed = if tampered { format!("{raw} ") } else { raw.clone() };
        let sign = self.alipay_key.sign(&signed).unwrap();
        let body = format!("{{\"{key}\":{raw},\"sign\":\"{sign}\"}}");
        ([("content-type", "text/html;charset=utf-8")], body).into_response()
    }

    /// The payer's browser opens the pay page the service handed out: Alipay creates the trade then.
    pub async fn open(&self, url: &str) -> reqwest::StatusCode {
        self.http.get(url).send().await.unwrap().status()
    }

    /// The notification parameters Alipay would send about `out_trade_no` now (unsigned).
    pub fn notification(&self, out_trade_no: &str) -> Vec<(String, String)> {
        let trade = self.trade(out_trade_no).expect("a trade the fake knows");
        let now = china_time_seconds(self.now());
        let id = {
            let mut books = self.books.lock().unwrap();
            books.seq += 1;
            format!("{}0022{:012}", now.replace(['-', ' ', ':'], ""), books.seq)
        };
        let amount = trade.total_amount.clone();
        let mut params: Vec<(String, String)> = [
            ("gmt_create", trade.gmt_create.clone()),
            ("charset", "utf-8".into()),
            ("seller_email", "tuangou@example.com".into()),
            ("subject", trade.subject.clone()),
            ("buyer_id", "2088102534368455".into()),
            ("invoice_amount", amount.clone()),
            ("notify_id", id),
            ("fund_bill_list", format!(r#"[{{"amount":"{amount}","fundChannel":"ALIPAYACCOUNT"}}]"#)),
            ("notify_type", "trade_status_sync".into()),
            ("trade_status", trade.status.into()),
            ("receipt_amount", amount.clone()),
            ("buyer_pay_amount", amount.clone()),
            ("app_id", APP_ID.into()),
            ("seller_id", SELLER_ID.into()),
            ("notify_time", now),
            ("version", "1.0".into()),
            ("out_trade_no", trade.out_trade_no.clone()),
            ("total_amount", amount),
            ("trade_no", trade.trade_no.clone()),
            ("auth_app_id", APP_ID.into()),
            ("buyer_logon_id", "xud***@126.com".into()),
            ("point_amount", "0.00".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(paid) = trade.gmt_payment {
            params.push(("gmt_payment".into(), paid));
        }
        params
    }

    /// Signs notification parameters as Alipay does (`sign_type=RSA2` added, not signed; `sign` appended).
    pub fn sign_notification(&self, mut params: Vec<(String, String)>) -> Vec<(String, String)> {
        params.retain(|(k, _)| k != "sign" && k != "sign_type");
        let sign = self.alipay_key.sign(&signed_text(&params, true)).unwrap();
        params.push(("sign_type".into(), "RSA2".into()));
        params.push(("sign".into(), sign));
        params
    }

    /// Posts a form body to the trade's notify URL; the service's answer (status, text).
    pub async fn post_notification(&self, notify_url: &str, body: String) -> (reqwest::StatusCode, String) {
        let response = self
            .http
            .post(notify_url)
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// The payer pays: the trade is `TRADE_SUCCESS` and its signed notification is posted at once. Answers the
    /// service's answer to it. Refused (`None`) when the trade is not waiting or its `time_expire` passed.
    pub async fn pay(&self, out_trade_no: &str) -> Option<(reqwest::StatusCode, String)> {
        let now = china_time_seconds(self.now());
        let notify_url = {
            let mut books = self.books.lock().unwrap();
            let trade = books.trades.get_mut(out_trade_no)?;
            if trade.status != "WAIT_BUYER_PAY" || now > trade.time_expire {
                return None;
            }
            trade.status = "TRADE_SUCCESS";
            trade.gmt_payment = Some(now);
            trade.notify_url.clone()
        };
        let body = form(&self.sign_notification(self.notification(out_trade_no)));
        self.books.lock().unwrap().last_sent = Some((notify_url.clone(), body.clone()));
        Some(self.post_notification(&notify_url, body).await)
    }

    /// Sends the last notification again, byte for byte (same `notify_id`), as Alipay retries one.
    pub async fn send_again(&self) -> (reqwest::StatusCode, String) {
        let (url, body) = self.books.lock().unwrap().last_sent.clone().expect("a notification was sent");
        self.post_notification(&url, body).await
    }

    fn handle(&self, method: &str, biz: &Map<String, Value>, base: &str) -> (String, Value) {
        let key = format!("{}_response", method.replace('.', "_"));
        let now = china_time_seconds(self.now());
        let text = |name: &str| biz.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let fail = |sub_code: &str, sub_msg: &str| json!({"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg});
        let mut books = self.books.lock().unwrap();
        let out_trade_no = text("out_trade_no");
        let value = match method {
            "alipay.trade.query" => match books.trades.get(&out_trade_no) {
                None => fail("ACQ.TRADE_NOT_EXIST", "交易不存在"),
                Some(t) => {
                    let mut v = json!({"code": "10000", "msg": "Success", "trade_no": t.trade_no,
                        "out_trade_no": t.out_trade_no, "trade_status": t.status, "total_amount": t.total_amount,
                        "buyer_logon_id": "xud***@126.com"});
                    if let Some(paid) = &t.gmt_payment {
                        v["send_pay_date"] = json!(paid);
                    }
                    v
                }
            },
            "alipay.trade.close" => match books.trades.get_mut(&out_trade_no) {
                None => fail("ACQ.TRADE_NOT_EXIST", "交易不存在"),
                Some(t) if t.status == "WAIT_BUYER_PAY" => {
                    t.status = "TRADE_CLOSED";
                    json!({"code": "10000", "msg": "Success", "trade_no": t.trade_no, "out_trade_no": t.out_trade_no})
                }
                Some(_) => fail("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"),
            },
            "alipay.trade.refund" => match books.trades.get_mut(&out_trade_no) {
                None => fail("ACQ.TRADE_NOT_EXIST", "交易不存在"),
                Some(t) if t.status != "TRADE_SUCCESS" => fail("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"),
                Some(t) => {
                    let request_no = text("out_request_no");
                    let asked = parse_fen(&text("refund_amount"));
                    let done: i64 = t.refunds.iter().map(|r| parse_fen(&r.amount)).sum();
                    let again = t.refunds.iter().find(|r| r.out_request_no == request_no).cloned();
                    let change = match again {
                        Some(_) => "N",
                        None if done + asked > parse_fen(&t.total_amount) => {
                            return (key, fail("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限"));
                        }
                        None => {
                            t.refunds.push(RefundDone {
                                out_request_no: request_no,
                                amount: fen_text(asked),
                                gmt_refund_pay: now.clone(),
                            });
                            "Y"
                        }
                    };
                    let total: i64 = t.refunds.iter().map(|r| parse_fen(&r.amount)).sum();
                    json!({"code": "10000", "msg": "Success", "trade_no": t.trade_no, "out_trade_no": t.out_trade_no,
                        "buyer_logon_id": "xud***@126.com", "fund_change": change, "refund_fee": fen_text(total),
                        "gmt_refund_pay": now})
                }
            },
            "alipay.trade.fastpay.refund.query" => {
                let found = books.trades.get(&out_trade_no).and_then(|t| {
                    t.refunds.iter().find(|r| r.out_request_no == text("out_request_no")).map(|r| (t, r))
                });
                match found {
                    Some((t, r)) => json!({"code": "10000", "msg": "Success", "trade_no": t.trade_no,
                        "out_trade_no": t.out_trade_no, "out_request_no": r.out_request_no,
                        "total_amount": t.total_amount, "refund_amount": r.amount, "refund_status": "REFUND_SUCCESS",
                        "gmt_refund_pay": r.gmt_refund_pay}),
                    None => json!({"code": "10000", "msg": "Success", "out_trade_no": out_trade_no,
                        "out_request_no": text("out_request_no")}),
                }
            }
            "alipay.trade.order.settle" => {
                let trade_no = text("trade_no");
                match books.trades.values_mut().find(|t| t.trade_no == trade_no) {
                    None => fail("ACQ.TRADE_NOT_EXIST", "交易不存在"),
                    Some(t) if t.status != "TRADE_SUCCESS" || !t.royalty_freeze => {
                        fail("ACQ.TRADE_SETTLE_ERROR", "交易未冻结或状态不对，不能分账")
                    }
                    Some(t) => {
                        let request_no = text("out_request_no");
                        let royalty = biz.get("royalty_parameters").cloned().unwrap_or(json!([]));
                        let extend = biz.get("extend_params").cloned().unwrap_or(json!({}));
                        let transfers = royalty.as_array().cloned().unwrap_or_default();
                        let shared: i64 =
                            transfers.iter().map(|r| parse_fen(r["amount"].as_str().unwrap_or("0"))).sum();
                        let refunded: i64 = t.refunds.iter().map(|r| parse_fen(&r.amount)).sum();
                        let well_formed = transfers.iter().all(|r| {
                            r["royalty_type"] == "transfer"
                                && r["trans_in_type"] == "userId"
                                && r["trans_in"].as_str().is_some_and(|a| a.len() == 16 && a.starts_with("2088"))
                        });
                        if let Some(done) = t.settles.iter().find(|s| s.out_request_no == request_no) {
                            json!({"code": "10000", "msg": "Success", "trade_no": t.trade_no, "settle_no": done.settle_no})
                        } else if !well_formed
                            || extend["royalty_finish"] != "true"
                            || shared > parse_fen(&t.total_amount) - refunded
                            || t.settles.iter().any(|s| s.extend_params["royalty_finish"] == "true")
                        {
                            fail("ACQ.INVALID_PARAMETER", "分账参数不对，或分账已完结")
                        } else {
                            let settle_no = format!("20251127{:016}", t.settles.len() + 1);
                            t.settles.push(Settle {
                                out_request_no: request_no,
                                settle_no: settle_no.clone(),
                                royalty_parameters: royalty,
                                extend_params: extend,
                                at: now.clone(),
                                looked_at: false,
                            });
                            json!({"code": "10000", "msg": "Success", "trade_no": t.trade_no, "settle_no": settle_no})
                        }
                    }
                }
            }
            "alipay.trade.order.settle.query" => {
                let (trade_no, request_no) = (text("trade_no"), text("out_request_no"));
                let trade = books.trades.values_mut().find(|t| t.trade_no == trade_no);
                match trade.and_then(|t| {
                    let total =
                        parse_fen(&t.total_amount) - t.refunds.iter().map(|r| parse_fen(&r.amount)).sum::<i64>();
                    t.settles.iter_mut().find(|s| s.out_request_no == request_no).map(|s| (s, total))
                }) {
                    None => fail("ACQ.TRADE_SETTLE_NOT_EXIST", "分账请求不存在"),
                    Some((settle, total)) => {
                        let state = if settle.looked_at { "SUCCESS" } else { "PROCESSING" };
                        settle.looked_at = true;
                        let mut details = Vec::new();
                        let mut shared = 0;
                        for r in settle.royalty_parameters.as_array().cloned().unwrap_or_default() {
                            shared += parse_fen(r["amount"].as_str().unwrap_or("0"));
                            details.push(json!({"operation_type": "transfer", "execute_dt": settle.at,
                                "trans_out": SELLER_ID, "trans_out_type": "userId", "trans_in": r["trans_in"],
                                "trans_in_type": "userId", "amount": r["amount"], "state": state,
                                "detail_id": format!("{}{}", settle.settle_no, details.len())}));
                        }
                        details.push(json!({"operation_type": "unfreeze", "execute_dt": settle.at,
                            "trans_out": SELLER_ID, "trans_in": SELLER_ID, "amount": fen_text(total - shared),
                            "state": state, "detail_id": format!("{}u", settle.settle_no)}));
                        json!({"code": "10000", "msg": "Success", "out_request_no": settle.out_request_no,
                            "operation_dt": settle.at, "royalty_detail_list": details})
                    }
                }
            }
            "alipay.data.dataservice.bill.downloadurl.query" => {
                let date = text("bill_date");
                json!({"code": "10000", "msg": "Success", "bill_download_url": format!("{base}/bills/{date}")})
            }
            _ => json!({"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-method",
                "sub_msg": "不存在的方法名"}),
        };
        drop(books);
        (key, value)
    }

    /// The day's bill as Alipay serves it: a zip of the 业务明细 CSV and its 汇总, in GBK.
    fn bill_zip(&self, day: ChinaDay) -> Vec<u8> {
        use std::io::Write;
        let detail = self.bill_csv(day);
        let summary = format!(
            "#支付宝业务汇总查询\n#账号：[{SELLER_ID}0156]\n\
             #-----------------------------------------业务汇总列表----------------------------------------\n\
             门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）\n\
             #-----------------------------------------业务汇总列表结束------------------------------------\n"
        );
        let stem = format!("{SELLER_ID}0156_{}", day.to_string().replace('-', ""));
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in [(format!("{stem}_业务明细.csv"), detail), (format!("{stem}_业务明细(汇总).csv"), summary)]
        {
            zip.start_file(name, options).unwrap();
            zip.write_all(&encoding_rs::GBK.encode(&text.replace('\n', "\r\n")).0).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// The day's 业务明细 CSV, as text.
    fn bill_csv(&self, day: ChinaDay) -> String {
        let books = self.books.lock().unwrap();
        let on_day = |at: &str| at.starts_with(&day.to_string());
        let mut rows = Vec::new();
        let (mut trades, mut traded, mut refunds, mut refunded) = (0, 0_i64, 0, 0_i64);
        for t in books.trades.values() {
            if let Some(paid) = t.gmt_payment.as_deref().filter(|at| on_day(at)) {
                trades += 1;
                traded += parse_fen(&t.total_amount);
                rows.push((paid.to_owned(), format!("{}\t,{}\t,交易\t,{}\t,{},{},\t,\t,\t,\t,xud***@126.com\t,{},{},0.00,0.00,0.00,0.00,0.00,\t,0.00,0.00,\t,0.00,0.00,\t",
                    t.trade_no, t.out_trade_no, t.subject.replace(',', " "), t.gmt_create, paid, t.total_amount, t.total_amount)));
            }
            for r in t.refunds.iter().filter(|r| on_day(&r.gmt_refund_pay)) {
                refunds += 1;
                refunded -= parse_fen(&r.amount);
                rows.push((r.gmt_refund_pay.clone(), format!("{}\t,{}\t,退款\t,{}\t,{},{},\t,\t,\t,\t,xud***@126.com\t,-{},-{},0.00,0.00,0.00,0.00,0.00,\t,0.00,0.00,{}\t,0.00,0.00,\t",
                    t.trade_no, t.out_trade_no, t.subject.replace(',', " "), t.gmt_create, r.gmt_refund_pay, r.amount, r.amount, r.out_request_no)));
            }
        }
        rows.sort();
        let mut csv = format!(
            "#支付宝业务明细查询\n#账号：[{SELLER_ID}0156]\n#起始日期：[{day} 00:00:00]   终止日期：[{day} 23:59:59]\n\
             #-----------------------------------------业务明细列表----------------------------------------\n\
             支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n"
        );
        for (_, row) in rows {
            csv.push_str(&row);
            csv.push('\n');
        }
        let signed = |fen: i64| if fen < 0 { format!("-{}", fen_text(-fen)) } else { fen_text(fen) };
        csv.push_str(
            "#-----------------------------------------业务明细列表结束------------------------------------\n",
        );
        csv.push_str(&format!("#交易合计：{trades}笔，商家实收：{}元，商家优惠：0.00元\n", signed(traded)));
        csv.push_str(&format!("#退款合计：{refunds}笔，商家实收：{}元，商家优惠：0.00元\n", signed(refunded)));
        csv.push_str("#导出时间：[2025年11月28日 09:12:34]\n");
        csv
    }
}

fn params_of(query: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    params.extend(form_urlencoded::parse(body).into_owned());
    params
}

fn one<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
}

/// `GET gateway.do?…`: the cashier page of `alipay.trade.wap.pay` / `alipay.trade.page.pay`. A request that
/// verifies creates the trade (`WAIT_BUYER_PAY`) as Alipay does when the payer arrives.
async fn pay_page(State(fake): State<Arc<FakeAlipay>>, RawQuery(query): RawQuery) -> Response {
    let params = params_of(query.as_deref(), b"");
    let method = one(&params, "method");
    if !fake.verifies(&params) || !matches!(method, "alipay.trade.wap.pay" | "alipay.trade.page.pay") {
        fake.books.lock().unwrap().refused += 1;
        return (axum::http::StatusCode::BAD_REQUEST, Html("<p>错误代码 invalid-signature</p>")).into_response();
    }
    let biz: Map<String, Value> = serde_json::from_str(one(&params, "biz_content")).unwrap_or_default();
    let text = |name: &str| biz.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let now = china_time_seconds(fake.now());
    let mut books = fake.books.lock().unwrap();
    books.seq += 1;
    let trade_no = format!("{}22001400{:08}", now[..10].replace('-', ""), books.seq);
    books.trades.entry(text("out_trade_no")).or_insert(Trade {
        out_trade_no: text("out_trade_no"),
        trade_no,
        total_amount: text("total_amount"),
        subject: text("subject"),
        status: "WAIT_BUYER_PAY",
        time_expire: text("time_expire"),
        notify_url: one(&params, "notify_url").to_owned(),
        gmt_create: now,
        gmt_payment: None,
        refunds: Vec::new(),
        royalty_freeze: biz.get("extend_params").is_some_and(|e| e["royalty_freeze"] == "true"),
        settles: Vec::new(),
    });
    Html("<h1>支付宝 收银台</h1>").into_response()
}

/// `POST gateway.do`: an API call, signed by us, answered signed by Alipay's key.
async fn api(State(fake): State<Arc<FakeAlipay>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let params = params_of(query.as_deref(), &body);
    let method = one(&params, "method").to_owned();
    if !fake.verifies(&params) {
        fake.books.lock().unwrap().refused += 1;
        let error = json!({"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature",
            "sub_msg": "验签出错"});
        return fake.answer("error_response", error);
    }
    let biz: Map<String, Value> = serde_json::from_str(one(&params, "biz_content")).unwrap_or_default();
    let (key, value) = fake.handle(&method, &biz, &fake.base);
    fake.answer(&key, value)
}

/// The bill download (`bill_download_url`).
async fn bill(State(fake): State<Arc<FakeAlipay>>, Path(date): Path<String>) -> Response {
    match ChinaDay::parse(&date) {
        Some(day) => fake.bill_zip(day).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
