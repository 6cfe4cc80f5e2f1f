//! The `alipay` provider: Alipay's OpenAPI (RSA2) behind the port (PAYMENTS.md, README "Alipay").
//!
//! - Paying: `alipay.trade.wap.pay` (mobile browsers) and `alipay.trade.page.pay` (desktop) are signed URLs on
//!   the gateway that the payer's browser opens: the client gets `{url}` (the mobile page, what the pages open)
//!   and `{desktop_url}`. Nothing is called at creation, so Alipay knows the trade only once the payer opened
//!   it; `time_expire` (Beijing time) is the payment's window, so Alipay itself refuses money after it.
//! - `alipay.trade.query`, `alipay.trade.close` (a trade Alipay never saw is `not_found`: with the window over
//!   it can no longer be paid), `alipay.trade.refund` by `out_request_no` = our refund id (Alipay's refund is
//!   synchronous: `fund_change` `Y` is done; else `alipay.trade.fastpay.refund.query` says where it stands),
//!   the bill ([`bill`]).
//! - Notifications: [`notification`] (`rsaCheckV1`; the web layer answers Alipay the text `success`).
//! - Not offered (documented in README): payouts — `alipay.fund.trans.uni.transfer` must be called in Alipay's
//!   public-key-*certificate* mode (`app_cert_sn`, `alipay_root_cert_sn`), which this adapter does not speak,
//!   and paying merchants out of a pooled balance is 二清; and profit sharing — Alipay's 分账 is
//!   `alipay.trade.order.settle` (with `royalty_freeze` at payment), not implemented yet. Both answer
//!   `Unsupported`, so with `alipay` only direct-mode operation without payouts through Alipay is possible.

mod bill;
mod client;
pub mod config;
pub mod notification;
pub mod signing;

pub use bill::parse_bill;
pub use config::AlipaySettings;

use super::port::{
    Bill, CreatedPayment, Headers, PaymentRequest, PaymentState, PaymentStatus, PayoutRequest, PayoutStatus, Provider,
    ProviderError, ProviderResult, RefundRequest, RefundStatus, Refusal, TransferState, VerifiedEvent,
};
use crate::Clock;
use client::Gateway;
use futures::future::BoxFuture;
use notification::{NotificationCheck, parse_beijing};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use tuangou_domain::money::Fen;
use tuangou_domain::time::{ChinaDay, Millis, china_time_seconds};

/// The answer the notification endpoint gives Alipay once a notification is taken in.
pub const NOTIFICATION_ANSWER: &str = "success";

/// The `alipay` provider.
pub struct Alipay {
    gateway: Gateway,
    check: NotificationCheck,
    clock: Clock,
    public_url: String,
    /// Our refund ids → their payments: Alipay's refund query needs both, the port's gives the refund id only.
    refunds: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Alipay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alipay").field("settings", self.gateway.settings()).finish()
    }
}

fn text<'a>(object: &'a Map<String, Value>, name: &str) -> &'a str {
    object.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn yuan(object: &Map<String, Value>, name: &str) -> ProviderResult<Fen> {
    let value = text(object, name);
    Fen::parse_yuan(value)
        .ok_or_else(|| ProviderError::Unavailable(format!("Alipay answered {name} {value:?}, not yuan")))
}

impl Alipay {
    pub fn new(settings: AlipaySettings, clock: Clock, public_url: &str) -> Self {
        let check = NotificationCheck {
            app_id: settings.app_id.clone(),
            seller_id: settings.seller_id.clone(),
            public_key: settings.alipay_public_key.clone(),
        };
        Self {
            gateway: Gateway::new(settings, clock.clone(), public_url),
            check,
            clock,
            public_url: public_url.trim_end_matches('/').to_owned(),
            refunds: Mutex::new(HashMap::new()),
        }
    }

    fn status_of(&self, out_trade_no: &str, answer: &Map<String, Value>) -> ProviderResult<PaymentStatus> {
        let state = match text(answer, "trade_status") {
            "WAIT_BUYER_PAY" => PaymentState::NotPaid,
            "TRADE_SUCCESS" | "TRADE_FINISHED" => PaymentState::Paid {
                at: parse_beijing(text(answer, "send_pay_date")).unwrap_or_else(|| self.clock.now()),
            },
            "TRADE_CLOSED" => PaymentState::Closed,
            other => return Err(ProviderError::Unavailable(format!("Alipay answered trade_status {other:?}"))),
        };
        Ok(PaymentStatus {
            out_trade_no: out_trade_no.to_owned(),
            provider_trade_id: text(answer, "trade_no").to_owned(),
            amount: yuan(answer, "total_amount")?,
            state,
            // Alipay's trade query does not report refunds; the refund queries do.
            refunded: Fen::ZERO,
        })
    }

    async fn query_refund_of(&self, out_trade_no: &str, out_refund_no: &str) -> ProviderResult<RefundStatus> {
        let biz = json!({ "out_trade_no": out_trade_no, "out_request_no": out_refund_no,
            "query_options": ["gmt_refund_pay"] });
        let answer = self.gateway.call("alipay.trade.fastpay.refund.query", biz).await?;
        // Found (`refund_amount` given) and `REFUND_SUCCESS` (or no status, as older answers give): done. Not found:
        // it did not happen, and the same `out_request_no` may be asked again.
        let state = match (text(&answer, "refund_amount"), text(&answer, "refund_status")) {
            ("", _) => TransferState::Failed,
            (_, "REFUND_SUCCESS" | "") => TransferState::Succeeded {
                at: parse_beijing(text(&answer, "gmt_refund_pay")).unwrap_or_else(|| self.clock.now()),
            },
            _ => TransferState::Processing,
        };
        let amount = if state == TransferState::Failed { Fen::ZERO } else { yuan(&answer, "refund_amount")? };
        Ok(RefundStatus {
            out_refund_no: out_refund_no.to_owned(),
            provider_refund_id: format!("{}/{out_refund_no}", text(&answer, "trade_no")),
            amount,
            state,
        })
    }

    async fn bill(&self, day: ChinaDay) -> ProviderResult<Bill> {
        let biz = json!({ "bill_type": "trade", "bill_date": day.to_string() });
        let answer = match self.gateway.call("alipay.data.dataservice.bill.downloadurl.query", biz).await {
            Err(ProviderError::Refused("bill_not_ready", why)) => return Err(ProviderError::Unavailable(why)),
            other => other?,
        };
        let url = text(&answer, "bill_download_url");
        let unavailable = |why: String| ProviderError::Unavailable(format!("the bill of {day}: {why}"));
        let response = self.gateway.http().get(url).send().await.map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("the download answered {}", response.status())));
        }
        let bytes = response.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        if bytes.starts_with(b"PK\x03\x04") {
            return Err(unavailable("a zipped bill: this adapter reads the plain CSV only (README, Alipay)".into()));
        }
        let raw = String::from_utf8(bytes.to_vec()).map_err(|_| unavailable("not UTF-8 (GBK is not read)".into()))?;
        let lines = parse_bill(&raw).map_err(unavailable)?;
        Ok(Bill { day, raw, lines })
    }

    /// An absolute URL for Alipay's `return_url` (ours are often paths on the site).
    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') { format!("{}{url}", self.public_url) } else { url.to_owned() }
    }
}

impl Provider for Alipay {
    fn name(&self) -> &'static str {
        "alipay"
    }

    fn create_payment<'a>(&'a self, request: &'a PaymentRequest) -> BoxFuture<'a, ProviderResult<CreatedPayment>> {
        Box::pin(async move {
            let subject: String = request.description.chars().take(256).collect();
            let mut biz = json!({
                "out_trade_no": request.out_trade_no,
                "total_amount": request.amount.yuan_text(),
                "subject": subject,
                "time_expire": china_time_seconds(request.expires_at),
            });
            let mut extra = Vec::new();
            if let Some(back) = &request.payer.return_url {
                extra.push(("return_url", self.absolute(back)));
            }
            biz["product_code"] = json!("QUICK_WAP_WAY");
            if let Some(back) = &request.payer.return_url {
                biz["quit_url"] = json!(self.absolute(back));
            }
            let url = self.gateway.page_url("alipay.trade.wap.pay", &biz, &extra)?;
            if let Some(object) = biz.as_object_mut() {
                object.remove("quit_url");
            }
            biz["product_code"] = json!("FAST_INSTANT_TRADE_PAY");
            let desktop_url = self.gateway.page_url("alipay.trade.page.pay", &biz, &extra)?;
            Ok(CreatedPayment { provider_trade_id: None, client: json!({ "url": url, "desktop_url": desktop_url }) })
        })
    }

    fn query_payment<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, ProviderResult<PaymentStatus>> {
        Box::pin(async move {
            let answer = self.gateway.call("alipay.trade.query", json!({ "out_trade_no": out_trade_no })).await?;
            self.status_of(out_trade_no, &answer)
        })
    }

    fn close_payment<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, ProviderResult<PaymentStatus>> {
        Box::pin(async move {
            match self.gateway.call("alipay.trade.close", json!({ "out_trade_no": out_trade_no })).await {
                // Closed now, or not closable because it was paid (or closed) meanwhile: the query says which.
                Ok(_) | Err(ProviderError::Refused("payment_closed", _)) => {}
                Err(error) => return Err(error),
            }
            self.query_payment(out_trade_no).await
        })
    }

    fn refund<'a>(&'a self, request: &'a RefundRequest) -> BoxFuture<'a, ProviderResult<RefundStatus>> {
        Box::pin(async move {
            self.refunds
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(request.out_refund_no.clone(), request.out_trade_no.clone());
            let reason: String = request.reason.chars().take(256).collect();
            let biz = json!({
                "out_trade_no": request.out_trade_no,
                "refund_amount": request.amount.yuan_text(),
                "out_request_no": request.out_refund_no,
                "refund_reason": reason,
                "query_options": ["gmt_refund_pay"],
            });
            let answer = self.gateway.call("alipay.trade.refund", biz).await?;
            if text(&answer, "fund_change") == "Y" {
                return Ok(RefundStatus {
                    out_refund_no: request.out_refund_no.clone(),
                    provider_refund_id: format!("{}/{}", text(&answer, "trade_no"), request.out_refund_no),
                    amount: request.amount,
                    state: TransferState::Succeeded {
                        at: parse_beijing(text(&answer, "gmt_refund_pay")).unwrap_or_else(|| self.clock.now()),
                    },
                });
            }
            // `N`: this refund id was refunded before (an answer we lost), or Alipay is still at it: ask.
            self.query_refund_of(&request.out_trade_no, &request.out_refund_no).await
        })
    }

    fn query_refund<'a>(&'a self, out_refund_no: &'a str) -> BoxFuture<'a, ProviderResult<RefundStatus>> {
        Box::pin(async move {
            let payment =
                self.refunds.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(out_refund_no).cloned();
            match payment {
                Some(out_trade_no) => self.query_refund_of(&out_trade_no, out_refund_no).await,
                None => Err(ProviderError::Refused(
                    "not_found",
                    "Alipay's refund query needs the payment too: ask again through refund (same out_request_no)"
                        .into(),
                )),
            }
        })
    }

    fn parse_notification(&self, headers: &Headers, body: &[u8], now: Millis) -> Result<VerifiedEvent, Refusal> {
        let _ = (headers, now);
        self.check.parse(body)
    }

    fn fetch_bill(&self, day: ChinaDay) -> BoxFuture<'_, ProviderResult<Bill>> {
        Box::pin(self.bill(day))
    }

    fn pay_out<'a>(&'a self, request: &'a PayoutRequest) -> BoxFuture<'a, ProviderResult<PayoutStatus>> {
        let _ = request;
        Box::pin(async { Err(ProviderError::Unsupported("payouts through Alipay (certificate mode; see README)")) })
    }

    fn query_payout<'a>(&'a self, out_payout_no: &'a str) -> BoxFuture<'a, ProviderResult<PayoutStatus>> {
        let _ = out_payout_no;
        Box::pin(async { Err(ProviderError::Unsupported("payouts through Alipay (certificate mode; see README)")) })
    }
}
