//! The `sandbox` provider: built into the binary for the demo, the tests and anyone trying tuangou, and behaving
//! like a real provider rather than a stub (API.md, "The sandbox provider").
//!
//! It keeps its own books in its own tables (`store::sandbox`): a payment has the sandbox's id and state, refunds,
//! payouts and splits are made once per our id and finish a moment later, as a real provider's do. The payer pays
//! (or cancels) on its page (`/sandbox/pay/{id}`, served by the web layer from [`Sandbox::pay`] and
//! [`Sandbox::cancel`]); each change it must report becomes a notification it owes, kept with the change, and a
//! background loop ([`Sandbox::run`], one step: [`Sandbox::run_once`]) delivers them to the service's
//! `POST /api/v1/payments/sandbox/notify` signed with its key, retrying with backoff until answered 2xx. Because
//! what it owes is stored, a restart or `kill -9` delays a notification but never loses it.
//!
//! Fault switches (`TUANGOU_PAYMENTS_SANDBOX_FAULTS`, changeable while it runs with [`Sandbox::set_faults`]) make
//! it misbehave the ways real providers do: `duplicate`, `reorder`, `delay_ms=N`, `drop`, `fail_refunds`,
//! `late_pay`, `fail_payouts` (payouts and splits fail), `payouts_unavailable` (their calls go unanswered),
//! `unavailable` (payment and refund calls go unanswered). Time is the service's [`Clock`], so tests move both together.

use super::port::{
    Bill, BillLine, CreatedPayment, EventKind, Headers, NOTIFICATION_TOLERANCE_MS, PaymentRequest, PaymentState,
    PaymentStatus, PayoutRequest, Provider, ProviderError, ProviderResult, RefundRequest, Refusal, SplitRequest,
    TransferState, TransferStatus, VerifiedEvent,
};
use crate::{AppError, AppResult, Clock};
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::RwLock;
use std::time::Duration;
use tokio::sync::watch;
use tuangou_domain::money::Fen;
use tuangou_domain::time::{ChinaDay, Millis, china_time_seconds, parse_rfc3339, rfc3339};
use tuangou_store::{
    NewSandboxNotification, NewSandboxPayment, SandboxChange, SandboxPaymentRow, SandboxRefundRow, SandboxTransferRow,
    Store, StoreError,
};

/// The header with the Unix seconds a notification was signed at.
pub const TIMESTAMP_HEADER: &str = "Sandbox-Timestamp";
/// The header with the lowercase hex HMAC-SHA256 of `timestamp + "." + body`.
pub const SIGNATURE_HEADER: &str = "Sandbox-Signature";
/// Where the sandbox notifies the service, under its public address.
pub const NOTIFY_PATH: &str = "/api/v1/payments/sandbox/notify";
/// The merchant number the sandbox's bill shows.
const MERCHANT_NO: &str = "tuangou-sandbox";

/// How often the loop runs a step.
const TICK: Duration = Duration::from_millis(100);
/// With `reorder`, a lone notification waits this long for another to overtake it.
const REORDER_HOLD_MS: i64 = 2_000;
/// Deliveries tried before the sandbox gives a notification up (a real provider gives up after about a day).
const MAX_ATTEMPTS: i64 = 15;
/// The most notifications one step delivers.
const BATCH: i64 = 50;

/// The sandbox's signing key: 32 bytes. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxKey([u8; 32]);

impl std::fmt::Debug for SandboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SandboxKey(…)")
    }
}

impl SandboxKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// 64 hex characters, as `TUANGOU_PAYMENTS_SANDBOX_KEY` or the key file spells it.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The signature of `body` sent at `timestamp` (Unix seconds): lowercase hex.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        hex::encode(self.mac(&timestamp.to_string(), body).finalize().into_bytes())
    }

    /// Whether `signature` (hex) signs `body` at `timestamp`, compared in constant time.
    fn verifies(&self, timestamp: &str, body: &[u8], signature: &str) -> bool {
        match hex::decode(signature) {
            Ok(bytes) => self.mac(timestamp, body).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

/// The fault switches: how the sandbox misbehaves (all off by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every notification is sent twice.
    pub duplicate: bool,
    /// Notifications are delivered newest first (a lone one waits a moment for another to overtake it).
    pub reorder: bool,
    /// Each notification waits this long before it is first sent.
    pub delay_ms: i64,
    /// No notification is ever sent: the service must find payments by querying.
    pub drop: bool,
    /// Refunds fail while the switch is on (the same refund id succeeds once it is off).
    pub fail_refunds: bool,
    /// Paying succeeds even after the payment was closed or expired: late money.
    pub late_pay: bool,
    /// Payouts and splits fail while the switch is on.
    pub fail_payouts: bool,
    /// Payout and split calls (and their queries) go unanswered while the switch is on: the caller learns nothing.
    pub payouts_unavailable: bool,
    /// Payment and refund calls (create, query, close, refund and its query) go unanswered while the switch is on,
    /// as when the provider times out: the caller learns nothing and must ask again later.
    pub unavailable: bool,
}

impl Faults {
    /// A comma list such as `duplicate,delay_ms=500`; an unknown switch is refused, naming it.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut faults = Faults::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('=') {
                Some(("delay_ms", ms)) => {
                    faults.delay_ms = ms
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|ms| (0..=86_400_000).contains(ms))
                        .ok_or_else(|| format!("delay_ms must be a number of milliseconds, not {ms:?}"))?;
                }
                None if item == "duplicate" => faults.duplicate = true,
                None if item == "reorder" => faults.reorder = true,
                None if item == "drop" => faults.drop = true,
                None if item == "fail_refunds" => faults.fail_refunds = true,
                None if item == "late_pay" => faults.late_pay = true,
                None if item == "fail_payouts" => faults.fail_payouts = true,
                None if item == "payouts_unavailable" => faults.payouts_unavailable = true,
                None if item == "unavailable" => faults.unavailable = true,
                _ => {
                    return Err(format!(
                        "unknown sandbox fault {item:?} (known: duplicate, reorder, delay_ms=N, drop, fail_refunds, late_pay, \
                         fail_payouts, payouts_unavailable, unavailable)"
                    ));
                }
            }
        }
        Ok(faults)
    }
}

/// What the sandbox needs from the configuration.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub key: SandboxKey,
    pub faults: Faults,
}

/// The sandbox provider. Cheap to share (`Arc`); its books are in the store.
pub struct Sandbox {
    store: Store,
    clock: Clock,
    key: SandboxKey,
    faults: RwLock<Faults>,
    /// The service's public address: pay pages link there, notifications go there.
    service_url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("service_url", &self.service_url).field("faults", &self.faults()).finish()
    }
}

/// The notification body (API.md): `{event_id, payment_id, status, amount, paid_at}`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct NotificationBody {
    event_id: String,
    payment_id: String,
    status: String,
    amount: i64,
    paid_at: Option<String>,
}

fn refused(error: StoreError) -> ProviderError {
    match error {
        StoreError::NotFound => ProviderError::Refused("not_found", "the sandbox has no such payment".into()),
        StoreError::Conflict(code) => ProviderError::Refused(code, code.replace('_', " ")),
        other => ProviderError::Unavailable(other.to_string()),
    }
}

fn fen(value: i64) -> Fen {
    Fen::from_stored(value).unwrap_or(Fen::ZERO)
}

impl Sandbox {
    pub fn new(store: Store, clock: Clock, settings: SandboxSettings, service_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            store,
            clock,
            key: settings.key,
            faults: RwLock::new(settings.faults),
            service_url: service_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    pub fn faults(&self) -> Faults {
        self.faults.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Turns fault switches on or off while the sandbox runs (tests do; a restart reads the configuration).
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = faults;
    }

    /// The payment as the sandbox keeps it, by our id or its own (for its pay page).
    pub async fn payment(&self, id: &str) -> AppResult<SandboxPaymentRow> {
        self.store.sandbox_payment(id).await?.ok_or_else(AppError::not_found)
    }

    /// The payer pays (the pay page's button): 200 `paid`, the signed notification follows. Already paid: the
    /// same answer, nothing changes. Closed at the sandbox, or expired: `payment_closed` (unless `late_pay`).
    pub async fn pay(&self, id: &str) -> AppResult<SandboxPaymentRow> {
        let payment = self.payment(id).await?;
        let now = self.clock.now();
        let faults = self.faults();
        let body = NotificationBody {
            event_id: event_id(),
            payment_id: payment.out_trade_no.clone(),
            status: "paid".into(),
            amount: payment.amount,
            paid_at: Some(rfc3339(now)),
        };
        let change = SandboxChange {
            out_trade_no: payment.out_trade_no.clone(),
            now,
            late: faults.late_pay,
            notification: Some(self.owed(body, &faults, now)),
        };
        match self.store.sandbox_pay(&change).await {
            Ok((row, _)) => Ok(row),
            Err(StoreError::Conflict("payment_closed")) => Err(AppError::conflict(
                "payment_closed",
                "this payment was closed (or its time ran out): it can no longer be paid",
            )),
            Err(error) => Err(error.into()),
        }
    }

    /// The payer gives up (the pay page's other button): 200 `closed`, and the service is told. A paid payment
    /// cannot be cancelled (`already_paid`).
    pub async fn cancel(&self, id: &str) -> AppResult<SandboxPaymentRow> {
        let payment = self.payment(id).await?;
        let now = self.clock.now();
        let faults = self.faults();
        let body = NotificationBody {
            event_id: event_id(),
            payment_id: payment.out_trade_no.clone(),
            status: "closed".into(),
            amount: payment.amount,
            paid_at: None,
        };
        let change = SandboxChange {
            out_trade_no: payment.out_trade_no.clone(),
            now,
            late: false,
            notification: Some(self.owed(body, &faults, now)),
        };
        let (row, _) = self.store.sandbox_close(&change).await?;
        if row.status == "paid" {
            return Err(AppError::conflict("already_paid", "this payment is paid: it can no longer be cancelled"));
        }
        Ok(row)
    }

    /// A notification to owe, as the switches make it.
    fn owed(&self, body: NotificationBody, faults: &Faults, now: Millis) -> NewSandboxNotification {
        let id = body.event_id.clone();
        NewSandboxNotification {
            id,
            body: serde_json::to_string(&body).unwrap_or_default(),
            status: if faults.drop { "dropped" } else { "pending" },
            due_at: now.plus_millis(faults.delay_ms),
        }
    }

    /// One step of the sandbox's own work: finish the refunds and transfers that are processing, then deliver the
    /// notifications that are due. Returns how many things it did.
    pub async fn run_once(&self) -> AppResult<usize> {
        let settled = self.store.sandbox_settle(self.clock.now(), self.clock.now()).await?;
        Ok(settled as usize + self.deliver_due().await?)
    }

    /// Runs [`Sandbox::run_once`] every tick until `shutdown` turns true. Errors are logged, never fatal.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(error) = self.run_once().await {
                        tracing::warn!(%error, "the sandbox provider's step failed; retrying next tick");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Delivers the notifications that are due, each signed at the moment it is sent; one not answered 2xx is
    /// tried again later (1 s, 2 s, 4 s, … up to 5 minutes apart), and given up after [`MAX_ATTEMPTS`].
    pub async fn deliver_due(&self) -> AppResult<usize> {
        let now = self.clock.now();
        let faults = self.faults();
        let mut due = self.store.sandbox_due_notifications(now, BATCH).await?;
        if faults.reorder {
            let lone_and_fresh = due.len() < 2 && due.first().is_none_or(|n| now.0 - n.due_at < REORDER_HOLD_MS);
            if lone_and_fresh {
                return Ok(0);
            }
            due.reverse();
        }
        let mut delivered = 0;
        for notification in due {
            let copies = if faults.duplicate { 2 } else { 1 };
            let (mut sends, mut outcome) = (0, Ok(()));
            while sends < copies && outcome.is_ok() {
                outcome = self.send(&notification.body).await;
                sends += 1;
            }
            let now = self.clock.now();
            match outcome {
                Ok(()) => {
                    delivered += 1;
                    self.store.sandbox_notification_tried(&notification.id, sends, true, None, None, now).await?;
                }
                Err(error) => {
                    let attempts = notification.attempts + 1;
                    let retry_at =
                        (attempts < MAX_ATTEMPTS).then(|| now.plus_millis((1_000_i64 << attempts.min(9)).min(300_000)));
                    tracing::info!(notification = %notification.id, attempts, %error, "sandbox notification not accepted");
                    self.store
                        .sandbox_notification_tried(&notification.id, sends, false, retry_at, Some(&error), now)
                        .await?;
                }
            }
        }
        Ok(delivered)
    }

    /// Sends one signed notification; `Err` with why unless the service answered 2xx.
    async fn send(&self, body: &str) -> Result<(), String> {
        let timestamp = self.clock.now().0.div_euclid(1_000);
        let signature = self.key.sign(timestamp, body.as_bytes());
        let response = self
            .http
            .post(format!("{}{NOTIFY_PATH}", self.service_url))
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|error| error.to_string())?;
        if response.status().is_success() { Ok(()) } else { Err(format!("answered {}", response.status())) }
    }

    /// The day's bill as the sandbox serves it (CSV in the shape of WeChat Pay's trade bill).
    pub async fn bill_csv(&self, day: ChinaDay) -> AppResult<String> {
        Ok(self.bill(day).await.map_err(|error| AppError::Internal(error.to_string()))?.raw)
    }

    async fn bill(&self, day: ChinaDay) -> ProviderResult<Bill> {
        let books = self.store.sandbox_day(day.start(), day.end()).await.map_err(refused)?;
        let raw = bill_text(&books.payments, &books.refunds);
        let lines = parse_bill(&raw).map_err(ProviderError::Unavailable)?;
        Ok(Bill { day, raw, lines })
    }

    /// `Unavailable` while the `unavailable` switch is on (a payment or refund call that times out).
    fn answering(&self) -> ProviderResult<()> {
        if self.faults().unavailable {
            return Err(ProviderError::Unavailable("the sandbox is switched not to answer".into()));
        }
        Ok(())
    }

    /// The switches as a payout or split call sees them: `Unavailable` while `payouts_unavailable` is on.
    fn transfer_faults(&self) -> ProviderResult<Faults> {
        let faults = self.faults();
        if faults.payouts_unavailable {
            return Err(ProviderError::Unavailable("the sandbox is switched not to answer payouts".into()));
        }
        Ok(faults)
    }

    fn status_of(&self, row: &SandboxPaymentRow) -> PaymentStatus {
        let state = match (row.status.as_str(), row.paid_at) {
            ("paid", Some(at)) => PaymentState::Paid { at: Millis(at) },
            ("created", _) if self.clock.now().0 < row.expires_at => PaymentState::NotPaid,
            _ => PaymentState::Closed,
        };
        PaymentStatus {
            out_trade_no: row.out_trade_no.clone(),
            provider_trade_id: row.id.clone(),
            amount: fen(row.amount),
            state,
            refunded: fen(row.refunded),
        }
    }
}

fn event_id() -> String {
    format!("evt_{}", tuangou_store::new_id().replace('-', ""))
}

fn transfer_state(status: &str, settled_at: Option<i64>) -> TransferState {
    match (status, settled_at) {
        ("succeeded", Some(at)) => TransferState::Succeeded { at: Millis(at) },
        ("failed", _) => TransferState::Failed,
        _ => TransferState::Processing,
    }
}

fn refund_status(row: &SandboxRefundRow) -> TransferStatus {
    TransferStatus {
        out_no: row.out_refund_no.clone(),
        provider_id: row.id.clone(),
        amount: fen(row.amount),
        state: transfer_state(&row.status, row.settled_at),
    }
}

/// A payout or a split, as the sandbox keeps both.
fn transfer_status(row: &SandboxTransferRow) -> TransferStatus {
    TransferStatus {
        out_no: row.out_no.clone(),
        provider_id: row.id.clone(),
        amount: fen(row.amount),
        state: transfer_state(&row.status, row.settled_at),
    }
}

impl Provider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn create_payment<'a>(&'a self, request: &'a PaymentRequest) -> BoxFuture<'a, ProviderResult<CreatedPayment>> {
        Box::pin(async move {
            self.answering()?;
            let new = NewSandboxPayment {
                out_trade_no: request.out_trade_no.clone(),
                amount: request.amount,
                description: request.description.clone(),
                return_url: request.payer.return_url.clone(),
                expires_at: request.expires_at,
            };
            let row = self.store.sandbox_create_payment(&new, self.clock.now()).await.map_err(refused)?;
            let url = format!("{}/sandbox/pay/{}", self.service_url, row.out_trade_no);
            Ok(CreatedPayment { provider_trade_id: Some(row.id), client: serde_json::json!({ "url": url }) })
        })
    }

    fn query_payment<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, ProviderResult<PaymentStatus>> {
        Box::pin(async move {
            self.answering()?;
            match self.store.sandbox_payment(out_trade_no).await.map_err(refused)? {
                Some(row) => Ok(self.status_of(&row)),
                None => Err(refused(StoreError::NotFound)),
            }
        })
    }

    fn close_payment<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, ProviderResult<PaymentStatus>> {
        Box::pin(async move {
            self.answering()?;
            // Closing at the merchant's request is not notified (as with WeChat Pay): the caller has the answer.
            let change = SandboxChange {
                out_trade_no: out_trade_no.to_owned(),
                now: self.clock.now(),
                late: false,
                notification: None,
            };
            let (row, _) = self.store.sandbox_close(&change).await.map_err(refused)?;
            Ok(self.status_of(&row))
        })
    }

    fn refund<'a>(&'a self, request: &'a RefundRequest) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(async move {
            self.answering()?;
            let fail = self.faults().fail_refunds;
            let row = self
                .store
                .sandbox_refund(
                    &request.out_trade_no,
                    &request.out_refund_no,
                    request.amount,
                    &request.reason,
                    fail,
                    self.clock.now(),
                )
                .await
                .map_err(refused)?;
            Ok(refund_status(&row))
        })
    }

    fn query_refund<'a>(&'a self, out_refund_no: &'a str) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(async move {
            self.answering()?;
            match self.store.sandbox_refund_by(out_refund_no).await.map_err(refused)? {
                Some(row) => Ok(refund_status(&row)),
                None => Err(ProviderError::Refused("not_found", "the sandbox has no such refund".into())),
            }
        })
    }

    fn parse_notification(&self, headers: &Headers, body: &[u8], now: Millis) -> Result<VerifiedEvent, Refusal> {
        let timestamp = headers
            .get(TIMESTAMP_HEADER)
            .ok_or_else(|| Refusal::BadSignature(format!("no {TIMESTAMP_HEADER} header")))?;
        let signature = headers
            .get(SIGNATURE_HEADER)
            .ok_or_else(|| Refusal::BadSignature(format!("no {SIGNATURE_HEADER} header")))?;
        // The signature first: nothing unsigned is read any further.
        if !self.key.verifies(timestamp, body, signature) {
            return Err(Refusal::BadSignature("the signature does not match the body".into()));
        }
        let seconds = timestamp
            .parse::<i64>()
            .map_err(|_| Refusal::Malformed(format!("{TIMESTAMP_HEADER} is not Unix seconds")))?;
        let sent = Millis(seconds.saturating_mul(1_000));
        if (now.0 - sent.0).abs() > NOTIFICATION_TOLERANCE_MS {
            return Err(Refusal::Stale(format!("signed at {}, more than five minutes from now", rfc3339(sent))));
        }
        let body: NotificationBody = serde_json::from_slice(body)
            .map_err(|error| Refusal::Malformed(format!("not a sandbox event: {error}")))?;
        let amount = Fen::from_stored(body.amount).ok_or_else(|| Refusal::Malformed("a negative amount".into()))?;
        let kind = match body.status.as_str() {
            "paid" => EventKind::Paid {
                at: body
                    .paid_at
                    .as_deref()
                    .and_then(parse_rfc3339)
                    .ok_or_else(|| Refusal::Malformed("a paid event needs paid_at (RFC 3339)".into()))?,
            },
            "closed" => EventKind::Closed,
            other => return Err(Refusal::Malformed(format!("unknown status {other:?}"))),
        };
        Ok(VerifiedEvent { event_id: body.event_id, out_trade_no: body.payment_id, kind, amount: Some(amount) })
    }

    fn fetch_bill(&self, day: ChinaDay) -> BoxFuture<'_, ProviderResult<Bill>> {
        Box::pin(self.bill(day))
    }

    fn pay_out<'a>(&'a self, request: &'a PayoutRequest) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(async move {
            let faults = self.transfer_faults()?;
            let row = self
                .store
                .sandbox_transfer(
                    "payout",
                    &request.out_payout_no,
                    None,
                    &request.payee,
                    request.amount,
                    faults.fail_payouts,
                    self.clock.now(),
                )
                .await
                .map_err(refused)?;
            Ok(transfer_status(&row))
        })
    }

    fn query_payout<'a>(&'a self, out_payout_no: &'a str) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(async move {
            self.transfer_faults()?;
            match self.store.sandbox_transfer_by("payout", out_payout_no).await.map_err(refused)? {
                Some(row) => Ok(transfer_status(&row)),
                None => Err(ProviderError::Refused("not_found", "the sandbox has no such payout".into())),
            }
        })
    }

    fn split<'a>(&'a self, request: &'a SplitRequest) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        Box::pin(async move {
            let faults = self.transfer_faults()?;
            let total = request
                .receivers
                .iter()
                .try_fold(Fen::ZERO, |sum, (_, share)| sum.checked_add(*share))
                .filter(|total| *total > Fen::ZERO)
                .ok_or_else(|| ProviderError::Refused("bad_split", "the shares must add up to more than 0".into()))?;
            let receivers: Vec<serde_json::Value> = request
                .receivers
                .iter()
                .map(|(account, share)| serde_json::json!({ "account": account, "amount": share.get() }))
                .collect();
            let row = self
                .store
                .sandbox_transfer(
                    "split",
                    &request.out_order_no,
                    Some(&request.out_trade_no),
                    &serde_json::Value::Array(receivers).to_string(),
                    total,
                    faults.fail_payouts,
                    self.clock.now(),
                )
                .await
                .map_err(refused)?;
            Ok(transfer_status(&row))
        })
    }

    fn query_split<'a>(
        &'a self,
        out_trade_no: &'a str,
        out_order_no: &'a str,
    ) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        let _ = out_trade_no;
        Box::pin(async move {
            self.transfer_faults()?;
            match self.store.sandbox_transfer_by("split", out_order_no).await.map_err(refused)? {
                Some(row) => Ok(transfer_status(&row)),
                None => Err(ProviderError::Refused("not_found", "the sandbox has no such split".into())),
            }
        })
    }
}

/// The bill's header line (a subset of WeChat Pay's trade bill columns, in its order and words).
const BILL_HEADER: &str = "交易时间,商户号,交易单号,商户订单号,交易状态,应结订单金额,退款单号,商户退款单号,退款金额,退款状态,商品名称,订单金额,申请退款金额";
const BILL_FOOTER_HEADER: &str = "总交易单数,应结订单总金额,退款总金额,订单总金额,申请退款总金额";

/// A bill field: backtick first (as WeChat Pay writes them, so spreadsheets keep long numbers as text), with no
/// comma or line break inside.
fn field(text: &str) -> String {
    let clean: String = text.chars().map(|c| if matches!(c, ',' | '\n' | '\r' | '`') { ' ' } else { c }).collect();
    format!("`{clean}")
}

/// The bill file: the header, a line per payment paid and per refund that succeeded that day (ordered by time),
/// and the summary footer (counts and totals in yuan with two decimals).
fn bill_text(payments: &[SandboxPaymentRow], refunds: &[(SandboxRefundRow, SandboxPaymentRow)]) -> String {
    let mut lines: Vec<(i64, String)> = Vec::new();
    let (mut paid, mut refunded) = (0_i64, 0_i64);
    for p in payments {
        let at = p.paid_at.unwrap_or(p.created_at);
        paid += p.amount;
        let amount = fen(p.amount).yuan_text();
        let fields = [
            china_time_seconds(Millis(at)),
            MERCHANT_NO.into(),
            p.id.clone(),
            p.out_trade_no.clone(),
            "SUCCESS".into(),
            amount.clone(),
            "0".into(),
            "0".into(),
            "0.00".into(),
            String::new(),
            p.description.clone(),
            amount,
            "0.00".into(),
        ];
        lines.push((at, fields.iter().map(|f| field(f)).collect::<Vec<_>>().join(",")));
    }
    for (r, p) in refunds {
        let at = r.settled_at.unwrap_or(r.requested_at);
        refunded += r.amount;
        let amount = fen(r.amount).yuan_text();
        let fields = [
            china_time_seconds(Millis(at)),
            MERCHANT_NO.into(),
            p.id.clone(),
            p.out_trade_no.clone(),
            "REFUND".into(),
            "0.00".into(),
            r.id.clone(),
            r.out_refund_no.clone(),
            amount.clone(),
            "SUCCESS".into(),
            p.description.clone(),
            "0.00".into(),
            amount,
        ];
        lines.push((at, fields.iter().map(|f| field(f)).collect::<Vec<_>>().join(",")));
    }
    lines.sort();
    let mut text = String::from(BILL_HEADER);
    text.push('\n');
    for (_, line) in &lines {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(BILL_FOOTER_HEADER);
    text.push('\n');
    let (paid, refunded) = (fen(paid).yuan_text(), fen(refunded).yuan_text());
    let footer = [lines.len().to_string(), paid.clone(), refunded.clone(), paid, refunded];
    text.push_str(&footer.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
    text.push('\n');
    text
}

/// Reads a sandbox bill back into lines (as reconciliation will, for every provider's own format), checking the
/// footer's count and totals against the lines.
pub fn parse_bill(raw: &str) -> Result<Vec<BillLine>, String> {
    let mut rows = raw.lines();
    if rows.next() != Some(BILL_HEADER) {
        return Err("not a sandbox bill: the header differs".into());
    }
    let cells = |line: &str| -> Vec<String> {
        line.split(',').map(|cell| cell.strip_prefix('`').unwrap_or(cell).to_owned()).collect()
    };
    let amount = |text: &str| Fen::parse_yuan(text).ok_or_else(|| format!("not an amount in yuan: {text:?}"));
    let time = |text: &str| {
        // `YYYY-MM-DD HH:MM:SS` in China Standard Time.
        parse_rfc3339(&format!("{}+08:00", text.replacen(' ', "T", 1))).ok_or_else(|| format!("not a time: {text:?}"))
    };
    let (mut lines, mut paid, mut refunded) = (Vec::new(), Fen::ZERO, Fen::ZERO);
    for row in rows.by_ref() {
        if row == BILL_FOOTER_HEADER {
            break;
        }
        let c = cells(row);
        if c.len() != 13 {
            return Err(format!("a bill line has {} fields, not 13", c.len()));
        }
        match c[4].as_str() {
            "SUCCESS" => {
                let value = amount(&c[5])?;
                paid = paid.checked_add(value).ok_or("total overflows")?;
                lines.push(BillLine::Payment {
                    at: time(&c[0])?,
                    out_trade_no: c[3].clone(),
                    provider_trade_id: c[2].clone(),
                    amount: value,
                });
            }
            "REFUND" => {
                let value = amount(&c[8])?;
                refunded = refunded.checked_add(value).ok_or("total overflows")?;
                lines.push(BillLine::Refund {
                    at: time(&c[0])?,
                    out_trade_no: c[3].clone(),
                    out_refund_no: c[7].clone(),
                    provider_refund_id: c[6].clone(),
                    amount: value,
                });
            }
            other => return Err(format!("unknown trade state {other:?}")),
        }
    }
    let footer = rows.next().map(cells).ok_or("the bill has no summary")?;
    let count_matches = footer.first().and_then(|n| n.parse::<usize>().ok()) == Some(lines.len());
    let totals_match = footer.get(1).and_then(|t| Fen::parse_yuan(t)) == Some(paid)
        && footer.get(2).and_then(|t| Fen::parse_yuan(t)) == Some(refunded);
    if !count_matches || !totals_match {
        return Err("the bill's summary does not add up to its lines".into());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_a_comma_list() {
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
        let all = Faults::parse(
            " duplicate,reorder , delay_ms=250,drop,fail_refunds,late_pay,fail_payouts,payouts_unavailable,unavailable",
        )
        .unwrap();
        assert_eq!(
            all,
            Faults {
                duplicate: true,
                reorder: true,
                delay_ms: 250,
                drop: true,
                fail_refunds: true,
                late_pay: true,
                fail_payouts: true,
                payouts_unavailable: true,
                unavailable: true,
            }
        );
        assert!(Faults::parse("duplicates").unwrap_err().contains("duplicates"));
        assert!(Faults::parse("delay_ms=soon").is_err());
        assert!(Faults::parse("delay_ms=-1").is_err());
    }

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        let key = SandboxKey::from_bytes([7; 32]);
        let body = br#"{"event_id":"e1"}"#;
        let signature = key.sign(1_700_000_000, body);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"1700000000.");
        mac.update(body);
        assert_eq!(signature, hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature, signature.to_lowercase());
        assert!(key.verifies("1700000000", body, &signature));
        assert!(!key.verifies("1700000001", body, &signature), "the timestamp is signed");
        assert!(!key.verifies("1700000000", b"{}", &signature), "the body is signed");
        assert!(!key.verifies("1700000000", body, "zz"), "not hex");
        assert!(!SandboxKey::from_bytes([8; 32]).verifies("1700000000", body, &signature), "another key");
        assert_eq!(SandboxKey::from_hex(&key.to_hex()), Some(key.clone()));
        assert_eq!(format!("{key:?}"), "SandboxKey(…)");
    }

    fn payment(id: &str, amount: i64, paid_at: i64) -> SandboxPaymentRow {
        SandboxPaymentRow {
            id: format!("sbx_{id}"),
            out_trade_no: id.into(),
            amount,
            description: "四人火锅, 团购".into(),
            return_url: None,
            status: "paid".into(),
            refunded: 0,
            split: 0,
            created_at: paid_at - 1_000,
            expires_at: paid_at + 300_000,
            paid_at: Some(paid_at),
            closed_at: None,
        }
    }

    /// The bill reads back into the lines it was made from, and its footer adds up; a tampered total is caught.
    #[test]
    fn the_bill_reads_back() {
        let day = ChinaDay::parse("2025-11-27").unwrap();
        let at = day.start().0 + 3_600_000;
        let (a, b) = (payment("p1", 1_990, at), payment("p2", 1, at + 1_000));
        let refund = SandboxRefundRow {
            id: "sbr_r1".into(),
            out_refund_no: "refund-p1".into(),
            payment_id: a.id.clone(),
            amount: 1_990,
            reason: "not drawn".into(),
            status: "succeeded".into(),
            requested_at: at + 5_000,
            settled_at: Some(at + 6_000),
        };
        let raw = bill_text(&[a.clone(), b], &[(refund, a)]);
        assert!(raw.starts_with(BILL_HEADER));
        assert!(raw.contains("`2025-11-27 01:00:00,`tuangou-sandbox,`sbx_p1,`p1,`SUCCESS,`19.90,"), "{raw}");
        assert!(raw.ends_with("`3,`19.91,`19.90,`19.91,`19.90\n"), "{raw}");
        assert!(raw.contains("四人火锅  团购"), "a comma inside a field is blanked: {raw}");
        let lines = parse_bill(&raw).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            BillLine::Payment {
                at: Millis(at),
                out_trade_no: "p1".into(),
                provider_trade_id: "sbx_p1".into(),
                amount: Fen::from_stored(1_990).unwrap()
            }
        );
        assert!(matches!(&lines[2], BillLine::Refund { out_refund_no, amount, .. }
            if out_refund_no == "refund-p1" && amount.get() == 1_990));
        assert!(parse_bill(&raw.replace("`19.91,`19.90,`19.91", "`19.92,`19.90,`19.91")).is_err());
        assert!(parse_bill("交易时间\n").is_err());
    }
}
