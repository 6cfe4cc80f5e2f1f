//! The `alipay` provider: Alipay's OpenAPI (RSA2) behind the port (PAYMENTS.md, README "Alipay").
//!
//! - Paying: `alipay.trade.wap.pay` (mobile browsers) and `alipay.trade.page.pay` (desktop) are signed URLs on
//!   the gateway that the payer's browser opens: the client gets `{url}` (the mobile page, what the pages open)
//!   and `{desktop_url}`. Nothing is called at creation, so Alipay knows the trade only once the payer opened
//!   it; `time_expire` (Beijing time) is the payment's window, so Alipay itself refuses money after it.
//! - `alipay.trade.query`, `alipay.trade.close` (a trade Alipay never saw is `not_found`: with the window over
//!   it can no longer be paid), `alipay.trade.refund` by `out_request_no` = our refund id (Alipay's refund is
//!   synchronous: `fund_change` `Y` is done; else `alipay.trade.fastpay.refund.query` says where it stands),
//!   the bill ([`bill`]: the zip of GBK CSVs Alipay serves).
//! - Nothing is kept in memory: the refund query needs the payment too, read from our refunds table through
//!   the store ([`Store::refund`]); the settle calls need Alipay's `trade_no`, asked by our `out_trade_no`. A
//!   restarted instance answers every query the same.
//! - Profit sharing (分账, partner mode, when `royalty_account` is configured): the pay pages freeze the money for
//!   sharing (`extend_params.royalty_freeze`); a split is `alipay.trade.order.settle` by `out_request_no` = our
//!   split id, one `royalty_parameters` transfer of the commission to the platform's account (`trans_in_type`
//!   `userId`), and `extend_params.royalty_finish` `true`, which ends the sharing and unfreezes the rest to the
//!   merchant — with no commission, the settle carries no transfer and only unfreezes. Its state is
//!   `alipay.trade.order.settle.query` (`royalty_detail_list`: all `SUCCESS` → succeeded, a `FAIL` → failed,
//!   else processing). The trades are the merchant's own when the app acts for it (`app_auth_token`).
//! - Notifications: [`notification`] (`rsaCheckV1`; the web layer answers Alipay the text `success`).
//! - Not offered (documented in README): payouts — `alipay.fund.trans.uni.transfer` must be called in Alipay's
//!   public-key-*certificate* mode (`app_cert_sn`, `alipay_root_cert_sn`), which this adapter does not speak,
//!   and paying merchants out of a pooled balance is 二清. It answers `Unsupported`.

mod bill;
mod client;
pub mod config;
pub mod notification;
pub mod signing;

pub use bill::parse_bill;
pub use config::AlipaySettings;

pub use bill::read_bill_file;

use super::payouts::PLATFORM_RECEIVER;
use super::port::{
    Bill, CreatedPayment, Headers, PaymentRequest, PaymentState, PaymentStatus, Provider, ProviderError,
    ProviderResult, RefundRequest, Refusal, SplitRequest, TransferState, TransferStatus, VerifiedEvent,
};
use crate::Clock;
use client::Gateway;
use futures::future::BoxFuture;
use notification::{NotificationCheck, parse_beijing};
use serde_json::{Map, Value, json};
use tuangou_domain::money::Fen;
use tuangou_domain::time::{ChinaDay, Millis, china_time_seconds};
use tuangou_store::Store;

/// The answer the notification endpoint gives Alipay once a notification is taken in.
pub const NOTIFICATION_ANSWER: &str = "success";

/// The `alipay` provider.
pub struct Alipay {
    gateway: Gateway,
    check: NotificationCheck,
    clock: Clock,
    public_url: String,
    /// Our refunds, read only: Alipay's refund query needs the payment, the port's names the refund alone.
    store: Store,
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
    pub fn new(settings: AlipaySettings, clock: Clock, public_url: &str, store: Store) -> Self {
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
            store,
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

    async fn query_refund_of(&self, out_trade_no: &str, out_refund_no: &str) -> ProviderResult<TransferStatus> {
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
        Ok(TransferStatus {
            out_no: out_refund_no.to_owned(),
            provider_id: format!("{}/{out_refund_no}", text(&answer, "trade_no")),
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
        let raw = read_bill_file(&bytes).map_err(unavailable)?;
        let lines = parse_bill(&raw).map_err(unavailable)?;
        Ok(Bill { day, raw, lines })
    }

    /// Alipay's `trade_no` of our paid payment `out_trade_no` (the settle calls name trades so).
    async fn paid_trade_no(&self, out_trade_no: &str) -> ProviderResult<String> {
        let answer = self.gateway.call("alipay.trade.query", json!({ "out_trade_no": out_trade_no })).await?;
        match (text(&answer, "trade_status"), text(&answer, "trade_no")) {
            ("TRADE_SUCCESS" | "TRADE_FINISHED", trade_no) if !trade_no.is_empty() => Ok(trade_no.to_owned()),
            _ => Err(ProviderError::Refused("not_paid", "the payment is not paid at Alipay".into())),
        }
    }

    async fn split_now(&self, request: &SplitRequest) -> ProviderResult<TransferStatus> {
        let Some(account) = &self.gateway.settings().royalty_account else {
            return Err(ProviderError::Unsupported("profit sharing without a royalty account (README, Alipay)"));
        };
        let trade_no = self.paid_trade_no(&request.out_trade_no).await?;
        let desc: String = request.description.chars().take(100).collect();
        let royalty: Vec<Value> = request
            .receivers
            .iter()
            .filter(|(receiver, share)| receiver == PLATFORM_RECEIVER && *share > Fen::ZERO)
            .map(|(_, share)| {
                json!({ "royalty_type": "transfer", "trans_in_type": "userId", "trans_in": account,
                    "amount": share.yuan_text(), "desc": desc })
            })
            .collect();
        let biz = json!({ "out_request_no": request.out_order_no, "trade_no": trade_no,
            "royalty_parameters": royalty, "extend_params": { "royalty_finish": "true" } });
        let answer = self.gateway.call("alipay.trade.order.settle", biz).await?;
        if text(&answer, "trade_no") != trade_no {
            return Err(ProviderError::Unavailable("Alipay answered about another trade".into()));
        }
        self.settle_status(&trade_no, &request.out_order_no).await
    }

    /// Where the settle `out_request_no` of the trade stands (`alipay.trade.order.settle.query`).
    async fn settle_status(&self, trade_no: &str, out_request_no: &str) -> ProviderResult<TransferStatus> {
        let biz = json!({ "out_request_no": out_request_no, "trade_no": trade_no });
        let answer = self.gateway.call("alipay.trade.order.settle.query", biz).await?;
        if text(&answer, "out_request_no") != out_request_no {
            return Err(ProviderError::Unavailable("Alipay answered about another settle".into()));
        }
        let details: Vec<&Map<String, Value>> = answer
            .get("royalty_detail_list")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_object).collect())
            .unwrap_or_default();
        let mut amount = Fen::ZERO;
        for detail in details.iter().filter(|d| text(d, "operation_type") == "transfer") {
            amount = amount
                .checked_add(yuan(detail, "amount")?)
                .ok_or_else(|| ProviderError::Unavailable("Alipay answered amounts too large".into()))?;
        }
        let states: Vec<&str> = details.iter().map(|d| text(d, "state")).collect();
        let state = if states.contains(&"FAIL") {
            TransferState::Failed
        } else if !states.is_empty() && states.iter().all(|s| *s == "SUCCESS") {
            let done = details.iter().filter_map(|d| parse_beijing(text(d, "execute_dt"))).max();
            TransferState::Succeeded { at: done.unwrap_or_else(|| self.clock.now()) }
        } else {
            TransferState::Processing
        };
        Ok(TransferStatus {
            out_no: out_request_no.to_owned(),
            provider_id: format!("{trade_no}/{out_request_no}"),
            amount,
            state,
        })
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
            if self.gateway.settings().royalty_account.is_some() {
                // Partner mode: the money stays frozen until the split settles it (see the module's notes).
                biz["extend_params"] = json!({ "royalty_freeze": "true" });
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

    fn refund<'a>(&'a self, request: &'a RefundRequest) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(async move {
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
                return Ok(TransferStatus {
                    out_no: request.out_refund_no.clone(),
                    provider_id: format!("{}/{}", text(&answer, "trade_no"), request.out_refund_no),
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

    fn query_refund<'a>(&'a self, out_refund_no: &'a str) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(async move {
            let refund =
                self.store.refund(out_refund_no).await.map_err(|e| ProviderError::Unavailable(e.to_string()))?;
            match refund.and_then(|r| r.payment_id) {
                Some(out_trade_no) => self.query_refund_of(&out_trade_no, out_refund_no).await,
                None => {
                    Err(ProviderError::Refused("not_found", "no refund of ours through a payment by that id".into()))
                }
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

    fn payouts_unsupported(&self) -> &'static str {
        "payouts through Alipay (certificate mode; see README)"
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
            if self.gateway.settings().royalty_account.is_none() {
                return Err(ProviderError::Unsupported("profit sharing without a royalty account (README, Alipay)"));
            }
            let trade_no = self.paid_trade_no(out_trade_no).await?;
            self.settle_status(&trade_no, out_order_no).await
        })
    }
}
