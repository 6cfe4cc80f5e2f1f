//! The `wechatpay` provider: WeChat Pay API v3 behind the port (PAYMENTS.md), direct-merchant or partner
//! (service provider: `sp_mchid` + `sub_mchid`) mode as configured.
//!
//! - `config`: the settings, checked at start (a half-configured provider is refused, naming the setting);
//! - `signing`: SHA256withRSA with the merchant key, verification by serial (platform certificates and the WeChat
//!   Pay public key at once, for the switch-over), AEAD_AES_256_GCM with the APIv3 key (`ring`);
//! - `client`: signed calls, every answer verified (one that does not is `Unavailable`, never success);
//! - `notification`: payment notifications, checked on the raw bytes;
//! - `bill`: the trade bill.
//!
//! Choices:
//! - **Which order** (`create_payment`), from what the web edge saw of the payer: WeChat's own browser
//!   (`MicroMessenger`) with the payer's `openid` known (`provider_user`) → JSAPI (the client gets `appId,
//!   timeStamp, nonceStr, package, signType, paySign`, signed with the merchant key, for
//!   `WeixinJSBridge.invoke('getBrandWCPayRequest', …)`); a mobile browser outside WeChat with its IP known → H5
//!   (the client gets `url`, WeChat Pay's `h5_url`); anything else — a desktop, an API client, WeChat without an
//!   openid (H5 is refused inside WeChat) — Native (`code_url`, the text of a QR code the page shows).
//!   `time_expire` is the payment window's end (RFC 3339, +08:00), so WeChat Pay itself refuses late payment.
//! - **Our ids on the wire**: WeChat Pay's `out_trade_no` is at most 32 characters; our payment ids are UUIDs
//!   (36), so they go without their hyphens and come back with them ([`wire_trade_no`], [`our_trade_no`]).
//! - **Refunds** are asked with our `notify_url`: WeChat Pay's refund notification (`REFUND.SUCCESS`,
//!   `REFUND.ABNORMAL`, `REFUND.CLOSED`) settles the refund as soon as it comes; the refund worker's own asking
//!   again stays the way when one is lost. The refund call needs the payment's total, so it queries it first.
//! - **Profit sharing** (partner mode only): the platform's commission goes to the service provider's merchant
//!   number (`MERCHANT_ID` = `sp_mchid`), the merchant's share is released to the sub-merchant by
//!   `unfreeze_unsplit: true` (or `/v3/profitsharing/orders/unfreeze` when there is no commission). Querying a
//!   split needs the payment's `transaction_id`: the adapter keeps nothing in memory, it asks WeChat Pay for the
//!   payment by our `out_trade_no` (the port's query names it), so a restarted instance answers the same.
//! - **Payouts** are `Unsupported`: WeChat Pay's transfers (商家转账到零钱) are a separate product needing its own
//!   access and, for large amounts, the payee's real name encrypted with the platform key; in partner mode the
//!   merchants' money reaches them by the split, and direct-mode payouts wait for that product.
//! - A query's `refunded` is 0: WeChat Pay's trade query does not say how much was refunded.

mod bill;
mod client;
pub mod config;
mod notification;
pub mod signing;

pub use bill::parse_trade_bill;
pub use config::{Partner, WechatPayConfig, WechatPaySettings};
pub use notification::{NONCE, SERIAL, SIGNATURE, SIGNTEST_PREFIX, TIMESTAMP};

use super::payouts::PLATFORM_RECEIVER;
use super::port::{
    Bill, BillLine, Browser, CreatedPayment, Headers, PaymentRequest, PaymentState, PaymentStatus, Provider,
    ProviderError, ProviderResult, RefundRequest, Refusal, SplitRequest, TransferState, TransferStatus, VerifiedEvent,
};
use crate::Clock;
use client::Client;
use futures::future::BoxFuture;
use notification::Transaction;
use reqwest::Method;
use serde_json::json;
use tuangou_domain::money::Fen;
use tuangou_domain::time::{ChinaDay, Millis, china_time_seconds, parse_rfc3339};

/// Where WeChat Pay notifies us, under the notify URL base.
pub const NOTIFY_PATH: &str = "/api/v1/payments/wechatpay/notify";

/// Our payment id as WeChat Pay's `out_trade_no` (at most 32 characters): a UUID without its hyphens.
pub fn wire_trade_no(ours: &str) -> String {
    if ours.len() == 36 && ours.matches('-').count() == 4 { ours.replace('-', "") } else { ours.to_owned() }
}

/// WeChat Pay's `out_trade_no` back as our payment id.
pub fn our_trade_no(wire: &str) -> String {
    if wire.len() == 32 && wire.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        format!("{}-{}-{}-{}-{}", &wire[..8], &wire[8..12], &wire[12..16], &wire[16..20], &wire[20..])
    } else {
        wire.to_owned()
    }
}

/// RFC 3339 in China Standard Time (`2026-11-30T21:05:00+08:00`), as WeChat Pay writes times.
pub fn china_rfc3339(at: Millis) -> String {
    format!("{}+08:00", china_time_seconds(at).replacen(' ', "T", 1))
}

fn fen(value: i64) -> Fen {
    Fen::from_stored(value).unwrap_or(Fen::ZERO)
}

/// At most `max` characters of `text` (WeChat Pay limits descriptions and reasons by characters).
fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The WeChat Pay provider.
pub struct WechatPay {
    client: Client,
    clock: Clock,
    notify_url: String,
}

impl std::fmt::Debug for WechatPay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPay").field("settings", &self.client.settings).finish()
    }
}

#[derive(serde::Deserialize)]
struct RefundAnswer {
    #[serde(default)]
    refund_id: String,
    out_refund_no: String,
    status: String,
    #[serde(default)]
    success_time: Option<String>,
    amount: RefundAmount,
}

#[derive(serde::Deserialize)]
struct RefundAmount {
    refund: i64,
}

#[derive(serde::Deserialize)]
struct SplitAnswer {
    #[serde(default)]
    order_id: String,
    out_order_no: String,
    state: String,
    #[serde(default)]
    receivers: Vec<SplitReceiver>,
}

#[derive(serde::Deserialize)]
struct SplitReceiver {
    amount: i64,
    #[serde(default)]
    result: String,
    #[serde(default)]
    finish_time: Option<String>,
}

#[derive(serde::Deserialize)]
struct BillAnswer {
    #[serde(default)]
    hash_type: String,
    #[serde(default)]
    hash_value: String,
    download_url: String,
}

impl WechatPay {
    /// The provider; `public_url` is the service's address, the notify URL's base unless configured.
    pub fn new(settings: WechatPaySettings, clock: Clock, public_url: &str) -> Self {
        let base = settings.notify_url_base.clone().unwrap_or_else(|| public_url.to_owned());
        let notify_url = format!("{}{NOTIFY_PATH}", base.trim_end_matches('/'));
        Self { client: Client::new(settings, clock.clone()), clock, notify_url }
    }

    fn settings(&self) -> &WechatPaySettings {
        &self.client.settings
    }

    /// The merchant fields of a body: `appid`/`mchid`, or in partner mode `sp_appid`/`sp_mchid`/`sub_mchid`
    /// (and `sub_appid`).
    fn merchant_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let s = self.settings();
        let mut map = serde_json::Map::new();
        match &s.partner {
            None => {
                map.insert("appid".into(), json!(s.appid));
                map.insert("mchid".into(), json!(s.mchid()));
            }
            Some(partner) => {
                map.insert("sp_appid".into(), json!(s.appid));
                map.insert("sp_mchid".into(), json!(s.mchid()));
                map.insert("sub_mchid".into(), json!(partner.sub_mchid));
                if let Some(sub_appid) = &partner.sub_appid {
                    map.insert("sub_appid".into(), json!(sub_appid));
                }
            }
        }
        map
    }

    /// `/v3/pay/transactions/…` or, in partner mode, `/v3/pay/partner/transactions/…`.
    fn transactions_path(&self, rest: &str) -> String {
        match self.settings().partner {
            None => format!("/v3/pay/transactions/{rest}"),
            Some(_) => format!("/v3/pay/partner/transactions/{rest}"),
        }
    }

    /// `?sub_mchid=…` in partner mode (with `first` the separator), else nothing.
    fn sub_mchid_query(&self, first: char) -> String {
        match &self.settings().partner {
            Some(partner) => format!("{first}sub_mchid={}", partner.sub_mchid),
            None => String::new(),
        }
    }

    async fn transaction(&self, out_trade_no: &str) -> ProviderResult<Transaction> {
        let wire = wire_trade_no(out_trade_no);
        let query = match &self.settings().partner {
            None => format!("mchid={}", self.settings().mchid()),
            Some(partner) => format!("sp_mchid={}&sub_mchid={}", self.settings().mchid(), partner.sub_mchid),
        };
        let path = self.transactions_path(&format!("out-trade-no/{wire}?{query}"));
        let transaction: Transaction = self.client.call(Method::GET, &path, None).await?.json()?;
        if transaction.out_trade_no != wire {
            return Err(ProviderError::Unavailable("WeChat Pay answered about another payment".into()));
        }
        transaction.is_ours(self.settings()).map_err(|why| ProviderError::Refused("not_ours", why))?;
        Ok(transaction)
    }

    fn status_of(&self, transaction: &Transaction) -> ProviderResult<PaymentStatus> {
        let state = match transaction.trade_state.as_str() {
            "SUCCESS" | "REFUND" => PaymentState::Paid {
                at: transaction
                    .paid_at()
                    .ok_or_else(|| ProviderError::Unavailable("a paid transaction without success_time".into()))?,
            },
            "NOTPAY" | "USERPAYING" => PaymentState::NotPaid,
            "CLOSED" | "REVOKED" | "PAYERROR" => PaymentState::Closed,
            other => return Err(ProviderError::Unavailable(format!("unknown trade_state {other:?}"))),
        };
        Ok(PaymentStatus {
            out_trade_no: our_trade_no(&transaction.out_trade_no),
            provider_trade_id: transaction.transaction_id.clone().unwrap_or_default(),
            amount: transaction.amount().unwrap_or(Fen::ZERO),
            state,
            refunded: Fen::ZERO,
        })
    }

    fn refund_status(&self, answer: RefundAnswer) -> TransferStatus {
        let state = match answer.status.as_str() {
            "SUCCESS" => TransferState::Succeeded {
                at: answer.success_time.as_deref().and_then(parse_rfc3339).unwrap_or_else(|| self.clock.now()),
            },
            "CLOSED" | "ABNORMAL" => TransferState::Failed,
            _ => TransferState::Processing,
        };
        TransferStatus {
            out_no: answer.out_refund_no,
            provider_id: answer.refund_id,
            amount: fen(answer.amount.refund),
            state,
        }
    }

    fn split_status(&self, answer: SplitAnswer) -> TransferStatus {
        let amount = answer.receivers.iter().fold(Fen::ZERO, |sum, r| sum.checked_add(fen(r.amount)).unwrap_or(sum));
        let state = match answer.state.as_str() {
            "FINISHED" if answer.receivers.iter().any(|r| r.result == "CLOSED") => TransferState::Failed,
            "FINISHED" => TransferState::Succeeded {
                at: answer
                    .receivers
                    .iter()
                    .filter_map(|r| r.finish_time.as_deref().and_then(parse_rfc3339))
                    .max()
                    .unwrap_or_else(|| self.clock.now()),
            },
            _ => TransferState::Processing,
        };
        TransferStatus { out_no: answer.out_order_no, provider_id: answer.order_id, amount, state }
    }

    async fn create(&self, request: &PaymentRequest) -> ProviderResult<CreatedPayment> {
        let s = self.settings();
        let mut body = self.merchant_fields();
        body.insert("description".into(), json!(clip(&request.description, 127)));
        body.insert("out_trade_no".into(), json!(wire_trade_no(&request.out_trade_no)));
        body.insert("time_expire".into(), json!(china_rfc3339(request.expires_at)));
        body.insert("notify_url".into(), json!(self.notify_url));
        body.insert("amount".into(), json!({"total": request.amount.get(), "currency": "CNY"}));
        if s.partner.is_some() {
            body.insert("settle_info".into(), json!({"profit_sharing": true}));
        }
        // The app id the payer's openid belongs to: the sub-merchant's when configured, else ours.
        let sub_appid = s.partner.as_ref().and_then(|p| p.sub_appid.clone());
        let payer = &request.payer;
        let (kind, client_app) = match (payer.browser, &payer.provider_user, &payer.client_ip) {
            (Browser::WeChat, Some(openid), _) => {
                let payer = match (&s.partner, &sub_appid) {
                    (None, _) => json!({"openid": openid}),
                    (Some(_), Some(_)) => json!({"sub_openid": openid}),
                    (Some(_), None) => json!({"sp_openid": openid}),
                };
                body.insert("payer".into(), payer);
                ("jsapi", sub_appid.unwrap_or_else(|| s.appid.clone()))
            }
            (Browser::Mobile, _, Some(ip)) => {
                body.insert("scene_info".into(), json!({"payer_client_ip": ip, "h5_info": {"type": "Wap"}}));
                ("h5", s.appid.clone())
            }
            _ => ("native", s.appid.clone()),
        };
        let body = serde_json::Value::Object(body);
        let answer: serde_json::Value =
            self.client.call(Method::POST, &self.transactions_path(kind), Some(&body)).await?.json()?;
        let field = |name: &str| {
            answer[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ProviderError::Unavailable(format!("WeChat Pay's answer has no {name}")))
        };
        let client = match kind {
            "jsapi" => {
                let package = format!("prepay_id={}", field("prepay_id")?);
                let time_stamp = self.clock.now().0.div_euclid(1_000).to_string();
                let nonce_str = signing::nonce(32);
                let message = signing::signed_message(&[
                    client_app.as_bytes(),
                    time_stamp.as_bytes(),
                    nonce_str.as_bytes(),
                    package.as_bytes(),
                ]);
                json!({
                    "type": "jsapi", "appId": client_app, "timeStamp": time_stamp, "nonceStr": nonce_str,
                    "package": package, "signType": "RSA", "paySign": s.signer.key.sign(&message),
                })
            }
            "h5" => json!({"type": "h5", "url": field("h5_url")?}),
            _ => json!({"type": "native", "code_url": field("code_url")?}),
        };
        Ok(CreatedPayment { provider_trade_id: None, client })
    }

    async fn close(&self, out_trade_no: &str) -> ProviderResult<PaymentStatus> {
        let before = self.status_of(&self.transaction(out_trade_no).await?)?;
        if !matches!(before.state, PaymentState::NotPaid) {
            return Ok(before);
        }
        let mut body = self.merchant_fields();
        body.remove("appid");
        body.remove("sp_appid");
        body.remove("sub_appid");
        let path = self.transactions_path(&format!("out-trade-no/{}/close", wire_trade_no(out_trade_no)));
        match self.client.call(Method::POST, &path, Some(&serde_json::Value::Object(body))).await {
            Ok(_) | Err(ProviderError::Refused("payment_closed" | "already_paid", _)) => {}
            Err(error) => return Err(error),
        }
        let after = self.status_of(&self.transaction(out_trade_no).await?)?;
        match after.state {
            PaymentState::NotPaid => Err(ProviderError::Unavailable("WeChat Pay has not closed it yet".into())),
            _ => Ok(after),
        }
    }

    async fn refund_now(&self, request: &RefundRequest) -> ProviderResult<TransferStatus> {
        let transaction = self.transaction(&request.out_trade_no).await?;
        let total = transaction
            .amount()
            .ok_or_else(|| ProviderError::Unavailable("WeChat Pay did not say the payment's amount".into()))?;
        let mut body = json!({
            "out_trade_no": wire_trade_no(&request.out_trade_no),
            "out_refund_no": request.out_refund_no,
            "reason": clip(&request.reason, 80),
            "notify_url": self.notify_url,
            "amount": {"refund": request.amount.get(), "total": total.get(), "currency": "CNY"},
        });
        if let Some(partner) = &self.settings().partner {
            body["sub_mchid"] = json!(partner.sub_mchid);
        }
        let answer: RefundAnswer =
            self.client.call(Method::POST, "/v3/refund/domestic/refunds", Some(&body)).await?.json()?;
        if answer.out_refund_no != request.out_refund_no {
            return Err(ProviderError::Unavailable("WeChat Pay answered about another refund".into()));
        }
        Ok(self.refund_status(answer))
    }

    /// WeChat Pay's `transaction_id` of our paid payment `out_trade_no` (profit sharing names payments so).
    async fn transaction_id(&self, out_trade_no: &str) -> ProviderResult<String> {
        let transaction = self.transaction(out_trade_no).await?;
        transaction
            .transaction_id
            .filter(|_| matches!(transaction.trade_state.as_str(), "SUCCESS" | "REFUND"))
            .ok_or_else(|| ProviderError::Refused("not_paid", "the payment is not paid at WeChat Pay".into()))
    }

    async fn split_now(&self, request: &SplitRequest) -> ProviderResult<TransferStatus> {
        let Some(partner) = self.settings().partner.clone() else {
            return Err(ProviderError::Unsupported("profit sharing outside partner mode"));
        };
        let transaction_id = self.transaction_id(&request.out_trade_no).await?;
        let receivers: Vec<serde_json::Value> = request
            .receivers
            .iter()
            .filter(|(account, share)| account == PLATFORM_RECEIVER && *share > Fen::ZERO)
            .map(|(_, share)| {
                json!({"type": "MERCHANT_ID", "account": self.settings().mchid(), "amount": share.get(),
                    "description": clip(&request.description, 80)})
            })
            .collect();
        let (path, body) = if receivers.is_empty() {
            let body = json!({"sub_mchid": partner.sub_mchid, "transaction_id": transaction_id,
                "out_order_no": request.out_order_no, "description": clip(&request.description, 80)});
            ("/v3/profitsharing/orders/unfreeze", body)
        } else {
            let body = json!({"sub_mchid": partner.sub_mchid, "appid": self.settings().appid,
                "transaction_id": transaction_id, "out_order_no": request.out_order_no, "receivers": receivers,
                "unfreeze_unsplit": true});
            ("/v3/profitsharing/orders", body)
        };
        let answer: SplitAnswer = self.client.call(Method::POST, path, Some(&body)).await?.json()?;
        if answer.out_order_no != request.out_order_no {
            return Err(ProviderError::Unavailable("WeChat Pay answered about another split".into()));
        }
        Ok(self.split_status(answer))
    }

    async fn bill(&self, day: ChinaDay) -> ProviderResult<Bill> {
        let path = format!("/v3/bill/tradebill?bill_date={day}&bill_type=ALL{}", self.sub_mchid_query('&'));
        let answer: BillAnswer = match self.client.call(Method::GET, &path, None).await {
            Ok(answer) => answer.json()?,
            // WeChat Pay has no bill for a day without trades.
            Err(ProviderError::Refused(_, why)) if why.contains("NO_STATEMENT_EXIST") => {
                return Ok(Bill { day, raw: String::new(), lines: Vec::new() });
            }
            Err(error) => return Err(error),
        };
        let bytes = self.client.download(&answer.download_url).await?;
        if !answer.hash_type.eq_ignore_ascii_case("SHA1") {
            return Err(ProviderError::Unavailable(format!("unknown bill hash type {:?}", answer.hash_type)));
        }
        let digest = hex::encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bytes));
        if !digest.eq_ignore_ascii_case(&answer.hash_value) {
            return Err(ProviderError::Unavailable("the bill's hash does not match the file".into()));
        }
        let raw = String::from_utf8(bytes).map_err(|_| ProviderError::Unavailable("the bill is not UTF-8".into()))?;
        let lines = parse_trade_bill(&raw)
            .map_err(ProviderError::Unavailable)?
            .into_iter()
            .map(|line| match line {
                BillLine::Payment { at, out_trade_no, provider_trade_id, amount } => {
                    BillLine::Payment { at, out_trade_no: our_trade_no(&out_trade_no), provider_trade_id, amount }
                }
                BillLine::Refund { at, out_trade_no, out_refund_no, provider_refund_id, amount } => BillLine::Refund {
                    at,
                    out_trade_no: our_trade_no(&out_trade_no),
                    out_refund_no,
                    provider_refund_id,
                    amount,
                },
            })
            .collect();
        Ok(Bill { day, raw, lines })
    }
}

impl Provider for WechatPay {
    fn name(&self) -> &'static str {
        "wechatpay"
    }

    fn create_payment<'a>(&'a self, request: &'a PaymentRequest) -> BoxFuture<'a, ProviderResult<CreatedPayment>> {
        Box::pin(self.create(request))
    }

    fn query_payment<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, ProviderResult<PaymentStatus>> {
        Box::pin(async move { self.status_of(&self.transaction(out_trade_no).await?) })
    }

    fn close_payment<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, ProviderResult<PaymentStatus>> {
        Box::pin(self.close(out_trade_no))
    }

    fn refund<'a>(&'a self, request: &'a RefundRequest) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(self.refund_now(request))
    }

    fn query_refund<'a>(&'a self, out_refund_no: &'a str) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(async move {
            let path = format!("/v3/refund/domestic/refunds/{out_refund_no}{}", self.sub_mchid_query('?'));
            let answer: RefundAnswer = self.client.call(Method::GET, &path, None).await?.json()?;
            Ok(self.refund_status(answer))
        })
    }

    fn parse_notification(&self, headers: &Headers, body: &[u8], now: Millis) -> Result<VerifiedEvent, Refusal> {
        let mut event = notification::parse(self.settings(), headers, body, now)?;
        event.out_trade_no = our_trade_no(&event.out_trade_no);
        Ok(event)
    }

    fn fetch_bill(&self, day: ChinaDay) -> BoxFuture<'_, ProviderResult<Bill>> {
        Box::pin(self.bill(day))
    }

    fn payouts_unsupported(&self) -> &'static str {
        "payouts through WeChat Pay (see the adapter's notes)"
    }

    fn split<'a>(&'a self, request: &'a SplitRequest) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(self.split_now(request))
    }

    fn query_split<'a>(
        &'a self,
        out_trade_no: &'a str,
        out_order_no: &'a str,
    ) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(async move {
            let transaction_id = self.transaction_id(out_trade_no).await?;
            let path = format!(
                "/v3/profitsharing/orders/{out_order_no}?transaction_id={transaction_id}{}",
                self.sub_mchid_query('&')
            );
            let answer: SplitAnswer = self.client.call(Method::GET, &path, None).await?.json()?;
            if answer.out_order_no != out_order_no {
                return Err(ProviderError::Unavailable("WeChat Pay answered about another split".into()));
            }
            Ok(self.split_status(answer))
        })
    }
}

#[cfg(test)]
mod tests;
