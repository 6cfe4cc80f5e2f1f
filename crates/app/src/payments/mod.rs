//! Money from payment providers (PAYMENTS.md): the provider port, the built-in `sandbox` provider, and the use
//! cases on top of them that exist so far — opening a payment at a provider, and taking in its notifications.
//!
//! A notification is verified by its provider's adapter on the raw bytes, checked against our payment (it must be
//! one of ours, for the same amount), stored once by the provider's event id, and answered 2xx; a worker applies
//! it later ([`tuangou_store::Store::apply_next_payment_event`]). Anything that fails a check changes nothing and
//! is logged.

pub mod alipay;
pub mod payouts;
pub mod port;
pub mod reconcile;
pub mod sandbox;
mod seats;
pub mod wechatpay;

use crate::{App, AppError, AppResult};
use port::{EventKind, Headers, PayerHints, PaymentRequest, Provider, ProviderError, Refusal, TransferState};
use sandbox::{Sandbox, SandboxSettings};
use std::sync::Arc;
use tuangou_domain::Invalid;
use tuangou_domain::ids::UserId;
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;
use tuangou_store::{NewPayment, NewPaymentEvent, NewRefundEvent, PaymentRow, Store};

/// Which providers this instance offers (none but the sandbox so far, and that one only when enabled).
#[derive(Debug, Clone, Default)]
pub struct PaymentSettings {
    /// The sandbox provider, when enabled (`TUANGOU_PAYMENTS_SANDBOX=true` or `serve --demo`).
    pub sandbox: Option<SandboxSettings>,
    /// Alipay (OpenAPI, RSA2), when configured (`TUANGOU_PAYMENTS_ALIPAY_*`).
    pub alipay: Option<alipay::AlipaySettings>,
    /// Partner mode (PAYMENTS.md "Payouts"): each provider-paid purchase is split at the provider once its
    /// redemption can no longer be undone — the commission to the platform, the rest to the merchant
    /// ([`payouts`]). On in the demo; off by default (direct mode: owners request payouts).
    pub partner_mode: bool,
    /// WeChat Pay (API v3), when configured (`TUANGOU_PAYMENTS_WECHATPAY_*`).
    pub wechatpay: Option<wechatpay::WechatPaySettings>,
}

/// The providers an instance offers, by name.
#[derive(Clone, Default)]
pub(crate) struct Providers {
    all: Vec<Arc<dyn Provider>>,
    sandbox: Option<Arc<Sandbox>>,
}

impl Providers {
    pub(crate) fn new(settings: &PaymentSettings, store: &Store, clock: &crate::Clock, public_url: &str) -> Self {
        let mut providers = Providers::default();
        if let Some(sandbox) = &settings.sandbox {
            let sandbox = Arc::new(Sandbox::new(store.clone(), clock.clone(), sandbox.clone(), public_url));
            providers.all.push(sandbox.clone());
            providers.sandbox = Some(sandbox);
        }
        if let Some(wechatpay) = &settings.wechatpay {
            providers.all.push(Arc::new(wechatpay::WechatPay::new(wechatpay.clone(), clock.clone(), public_url)));
        }
        if let Some(alipay) = &settings.alipay {
            providers.all.push(Arc::new(alipay::Alipay::new(alipay.clone(), clock.clone(), public_url, store.clone())));
        }
        providers
    }
}

impl From<ProviderError> for AppError {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::Refused(code, message) => AppError::conflict(code, message),
            ProviderError::Unsupported(what) => {
                AppError::conflict("unsupported", format!("the payment provider does not support {what}"))
            }
            ProviderError::Unavailable(why) => AppError::ProviderUnavailable(why),
        }
    }
}

/// A payment to open at a provider.
#[derive(Debug, Clone)]
pub struct PaymentOrder {
    pub user: UserId,
    /// The provider's name (`sandbox`, …).
    pub provider: String,
    pub amount: Fen,
    pub description: String,
    pub expires_at: Millis,
    /// What it pays for, when that exists already.
    pub membership: Option<String>,
    pub payer: PayerHints,
}

/// What taking in a notification did.
#[derive(Debug, Clone)]
pub struct NotificationReceipt {
    /// The provider's id of the event.
    pub event_id: String,
    /// The event as stored (the first time it came): `received`, or `applied` once the worker applied it.
    pub status: String,
    /// The provider sent this event before: nothing changed.
    pub duplicate: bool,
}

impl App {
    /// The provider called `name`, when this instance offers it.
    pub fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.all.iter().find(|p| p.name() == name).cloned()
    }

    /// The names of the providers this instance offers (for reconciliation and the pages' forms).
    pub fn provider_names(&self) -> Vec<&'static str> {
        self.providers.all.iter().map(|p| p.name()).collect()
    }

    /// The provider the pages pay through when the wallet does not cover a price (the first one offered).
    pub fn offered_provider(&self) -> Option<&'static str> {
        self.providers.all.first().map(|p| p.name())
    }

    /// The sandbox provider, when enabled (its pages and buttons, its loop, tests' fault switches).
    pub fn sandbox(&self) -> Option<&Arc<Sandbox>> {
        self.providers.sandbox.as_ref()
    }

    /// Opens a payment: ours first (`created`, its id our `out_trade_no`), then at the provider, whose answer (the
    /// client's parameters and its id) is kept with it. No lock is held across the provider's call; a payment
    /// whose provider never answered stays `created` without a client, to be closed when its time is up.
    pub async fn open_payment(&self, order: PaymentOrder) -> AppResult<PaymentRow> {
        let provider = self.provider(&order.provider).ok_or_else(|| {
            AppError::from(Invalid::with_code("pay_with", "unknown_provider", "this payment provider is not offered"))
        })?;
        let new = NewPayment {
            id: tuangou_store::new_id(),
            provider: order.provider.clone(),
            user: order.user.clone(),
            membership: order.membership.clone(),
            amount: order.amount,
            description: order.description.clone(),
            expires_at: order.expires_at,
        };
        let payment = self.store.create_payment(&new, self.clock.now()).await?;
        let request = PaymentRequest {
            out_trade_no: payment.id.clone(),
            amount: order.amount,
            description: order.description,
            expires_at: order.expires_at,
            payer: order.payer,
        };
        let created = provider.create_payment(&request).await?;
        Ok(self
            .store
            .set_payment_client(&payment.id, created.provider_trade_id.as_deref(), &created.client.to_string())
            .await?)
    }

    /// A payment of ours by id.
    pub async fn payment(&self, id: &str) -> AppResult<PaymentRow> {
        self.store.payment(id).await?.ok_or_else(AppError::not_found)
    }

    /// Takes in a provider's notification (`POST /api/v1/payments/{provider}/notify`): verified on its raw bytes
    /// by the provider's adapter, checked against our payment (and, for a refund's, against our refund of that
    /// payment through that provider, of that amount), stored once. The same event again changes nothing.
    /// Refused — unknown provider (404), bad or missing signature and stale timestamp (401), malformed body,
    /// unknown payment or refund, amount mismatch (400) — it changes nothing and is logged.
    pub async fn receive_notification(
        &self,
        provider_name: &str,
        headers: &Headers,
        body: &[u8],
    ) -> AppResult<NotificationReceipt> {
        let provider = self.provider(provider_name).ok_or_else(AppError::not_found)?;
        let refuse = |code: &'static str, field: &str, why: String| {
            tracing::warn!(provider = provider_name, code, reason = %why, "payment notification refused");
            match code {
                "bad_signature" | "stale_timestamp" => AppError::Unauthenticated(code, why),
                _ => AppError::Invalid(Invalid::with_code(field, code, why)),
            }
        };
        let event = provider.parse_notification(headers, body, self.clock.now()).map_err(|refusal| match refusal {
            Refusal::BadSignature(why) => refuse("bad_signature", "", why),
            Refusal::Stale(why) => refuse("stale_timestamp", "", why),
            Refusal::Malformed(why) => refuse("bad_notification", "", why),
        })?;
        let payment = self.store.payment(&event.out_trade_no).await?.filter(|p| p.provider == provider_name);
        let Some(payment) = payment else {
            return Err(refuse(
                "unknown_payment",
                "payment_id",
                format!("no payment {:?} of ours", event.out_trade_no),
            ));
        };
        let raw = String::from_utf8(body.to_vec())
            .map_err(|_| refuse("bad_notification", "", "the body is not UTF-8 text".into()))?;
        let (kind, paid_at) = match event.kind {
            EventKind::Paid { at } => ("paid", Some(at)),
            EventKind::Closed => ("closed", None),
            EventKind::Refunded { out_refund_no, state } => {
                let Some(refund) = self.store.refund(&out_refund_no).await?.filter(|r| {
                    r.provider.as_deref() == Some(provider_name) && r.payment_id.as_deref() == Some(&payment.id)
                }) else {
                    let why = format!("no refund {out_refund_no:?} of payment {} through {provider_name}", payment.id);
                    return Err(refuse("unknown_refund", "refund_id", why));
                };
                if event.amount.map(Fen::get) != Some(refund.amount) {
                    let why = format!(
                        "refund {} is of {} fen, the notification says {:?}",
                        refund.id, refund.amount, event.amount
                    );
                    return Err(refuse("amount_mismatch", "amount", why));
                }
                let (outcome, settled_at) = match state {
                    TransferState::Succeeded { at } => ("succeeded", Some(at)),
                    _ => ("failed", None),
                };
                let new = NewRefundEvent {
                    provider: provider_name.to_owned(),
                    event_id: event.event_id,
                    refund_id: refund.id,
                    outcome,
                    settled_at,
                    raw,
                };
                let (stored, first) = self.store.record_refund_event(&new, self.clock.now()).await?;
                if first {
                    tracing::info!(provider = provider_name, event = %stored.event_id, refund = %stored.refund_id, outcome, "refund notification stored");
                }
                return Ok(NotificationReceipt { event_id: stored.event_id, status: stored.status, duplicate: !first });
            }
        };
        if let Some(amount) = event.amount
            && amount.get() != payment.amount
        {
            let why =
                format!("payment {} is for {} fen, the notification says {}", payment.id, payment.amount, amount.get());
            return Err(refuse("amount_mismatch", "amount", why));
        }
        let new = NewPaymentEvent {
            provider: provider_name.to_owned(),
            event_id: event.event_id,
            payment_id: payment.id,
            kind,
            amount: event.amount,
            paid_at,
            raw,
        };
        let (event, first) = self.store.record_payment_event(&new, self.clock.now()).await?;
        if first {
            tracing::info!(provider = provider_name, event = %event.event_id, payment = %event.payment_id, kind, "payment notification stored");
        }
        Ok(NotificationReceipt { event_id: event.event_id, status: event.status, duplicate: !first })
    }
}
