//! The provider port: what the use cases ask of a payment provider, whichever it is (PAYMENTS.md).
//!
//! One trait, [`Provider`], with one adapter per provider: `sandbox` (built in, [`super::sandbox`]), and later
//! `wechatpay` and `alipay`. The use cases hold providers as `Arc<dyn Provider>` by name, so the trait's methods
//! return boxed futures (a native `async fn` in a trait cannot be called through `dyn`). Money is [`Fen`], time
//! is [`Millis`]; our ids (`out_trade_no`, `out_refund_no`, payout and split numbers) are strings we make, and
//! every call that makes something is idempotent by our id, so a call whose answer was lost is simply made again.

use futures::future::BoxFuture;
use tuangou_domain::money::Fen;
use tuangou_domain::time::{ChinaDay, Millis};

pub type ProviderResult<T> = Result<T, ProviderError>;

/// Why a provider call did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered no, for good: a stable snake_case code (`payment_closed`, `not_paid`,
    /// `refund_exceeds_payment`, `not_found`, …) and its words.
    #[error("the provider refused: {0} ({1})")]
    Refused(&'static str, String),
    /// The provider does not offer this call (a provider without profit sharing, say).
    #[error("the provider does not support {0}")]
    Unsupported(&'static str),
    /// The call failed or timed out, so its outcome is unknown: ask again later with the same id.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// What the payer's browser is, as the web edge read it from the `User-Agent` (WeChat Pay chooses its kind of
/// order by it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Browser {
    /// A desktop browser, an API client, or not known: a QR code to scan is the way to pay.
    #[default]
    Other,
    /// A mobile browser outside WeChat: the provider's mobile pay page (WeChat Pay's H5).
    Mobile,
    /// WeChat's own browser (`MicroMessenger`): WeChat Pay's JSAPI, when the payer's `openid` is known.
    WeChat,
}

/// What we know of the payer that helps the provider choose how to take the money.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayerHints {
    /// Where the payer's browser goes once they paid or gave up (H5 and the sandbox's page).
    pub return_url: Option<String>,
    /// The payer's IP address (WeChat's H5 orders require it).
    pub client_ip: Option<String>,
    /// The payer's id at the provider when known (a WeChat `openid`, for JSAPI orders inside WeChat).
    pub provider_user: Option<String>,
    /// What the payer's browser is.
    pub browser: Browser,
}

/// A payment to create at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// Our id for it: the provider's `out_trade_no`.
    pub out_trade_no: String,
    pub amount: Fen,
    /// What the payer sees on the provider's page and statement.
    pub description: String,
    /// After this the provider refuses to take the money (a provider may still, which is late money).
    pub expires_at: Millis,
    pub payer: PayerHints,
}

/// What a created payment gives the client to pay with.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedPayment {
    /// The provider's id for the payment, when it gives one at creation.
    pub provider_trade_id: Option<String>,
    /// What the client needs: `{"url": …}` for the sandbox and H5, a QR text for Native, signed JSAPI parameters.
    pub client: serde_json::Value,
}

/// Where a payment stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// Waiting for the payer.
    NotPaid,
    Paid {
        at: Millis,
    },
    /// Closed (by us, by the payer, or by its expiry) without money.
    Closed,
}

/// A payment as the provider knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentStatus {
    pub out_trade_no: String,
    pub provider_trade_id: String,
    pub amount: Fen,
    pub state: PaymentState,
    /// How much of it the provider has refunded or is refunding.
    pub refunded: Fen,
}

/// A refund to make, at most once per `out_refund_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub out_trade_no: String,
    /// Our id for it, derived from its cause, so it cannot be asked for twice.
    pub out_refund_no: String,
    pub amount: Fen,
    pub reason: String,
}

/// Where a refund (or a transfer) stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    /// Accepted, not finished: ask again later.
    Processing,
    Succeeded {
        at: Millis,
    },
    /// It did not happen; the same id may be tried again.
    Failed,
}

/// A refund, payout or split as the provider knows it: the three have the same shape, told apart by the call
/// that answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferStatus {
    /// Our id for it: the `out_refund_no`, the `out_payout_no` or the split's `out_order_no`.
    pub out_no: String,
    /// The provider's id for it.
    pub provider_id: String,
    pub amount: Fen,
    pub state: TransferState,
}

/// A payout from our balance at the provider to someone's account there (a merchant's payout, a customer's
/// withdrawal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRequest {
    pub out_payout_no: String,
    /// The receiving account at the provider (an `openid`, an Alipay login, the sandbox's any text).
    pub payee: String,
    pub amount: Fen,
    pub description: String,
}

/// A profit share (分账) of a paid payment to receivers (the platform's commission to the platform, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRequest {
    pub out_trade_no: String,
    pub out_order_no: String,
    /// Each receiver's account and share.
    pub receivers: Vec<(String, Fen)>,
    pub description: String,
}

/// A notification's headers, names compared without case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// The first value of the header `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What a verified notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Paid {
        at: Millis,
    },
    Closed,
    /// A refund of the payment ended at the provider: `Succeeded` (the money is back with the payer) or `Failed`
    /// (closed, or abnormal: the refund worker tries again, then the operator).
    Refunded {
        out_refund_no: String,
        state: TransferState,
    },
}

/// A notification whose signature and time were checked: safe to store and act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// The provider's id for this notification (a duplicate carries the same).
    pub event_id: String,
    /// Our id of the payment it is about.
    pub out_trade_no: String,
    pub kind: EventKind,
    /// The amount the provider says was paid (or would have been); for a refund, the amount refunded.
    pub amount: Option<Fen>,
}

/// Why a notification is not accepted: it changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The signature is missing or does not match (401).
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The timestamp is more than five minutes from now (401).
    #[error("stale timestamp: {0}")]
    Stale(String),
    /// The body or headers are not what this provider sends (400).
    #[error("malformed notification: {0}")]
    Malformed(String),
}

/// How far a notification's timestamp may be from now, either way.
pub const NOTIFICATION_TOLERANCE_MS: i64 = 300_000;

/// One line of a provider's daily bill, as the adapter read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillLine {
    Payment { at: Millis, out_trade_no: String, provider_trade_id: String, amount: Fen },
    Refund { at: Millis, out_trade_no: String, out_refund_no: String, provider_refund_id: String, amount: Fen },
}

/// A provider's bill for one business day: the file as the provider serves it, and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    pub day: ChinaDay,
    pub raw: String,
    pub lines: Vec<BillLine>,
}

/// A payment provider (PAYMENTS.md): everything the use cases ask of WeChat Pay, Alipay or the sandbox.
pub trait Provider: Send + Sync {
    /// The name in URLs and stored rows: `sandbox`, `wechatpay`, `alipay`.
    fn name(&self) -> &'static str;

    /// Creates a payment (idempotent by `out_trade_no`) and answers what the client pays with.
    fn create_payment<'a>(&'a self, request: &'a PaymentRequest) -> BoxFuture<'a, ProviderResult<CreatedPayment>>;

    fn query_payment<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, ProviderResult<PaymentStatus>>;

    /// Closes a payment not paid yet, and answers where it stands: `Closed`, or `Paid` when it was paid after all.
    fn close_payment<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, ProviderResult<PaymentStatus>>;

    /// Refunds (part of) a paid payment to where the money came from, once per `out_refund_no`.
    fn refund<'a>(&'a self, request: &'a RefundRequest) -> BoxFuture<'a, ProviderResult<TransferStatus>>;

    fn query_refund<'a>(&'a self, out_refund_no: &'a str) -> BoxFuture<'a, ProviderResult<TransferStatus>>;

    /// Checks a notification on its raw bytes (signature, timestamp within [`NOTIFICATION_TOLERANCE_MS`] of
    /// `now`) and reads it. Local: no call to the provider.
    fn parse_notification(&self, headers: &Headers, body: &[u8], now: Millis) -> Result<VerifiedEvent, Refusal>;

    /// The bill of one business day (China Standard Time).
    fn fetch_bill(&self, day: ChinaDay) -> BoxFuture<'_, ProviderResult<Bill>>;

    /// Why this provider does not pay out, in the words of the `Unsupported` refusal that [`Provider::pay_out`]
    /// and [`Provider::query_payout`] answer unless the adapter offers payouts (only the sandbox does).
    fn payouts_unsupported(&self) -> &'static str {
        "payouts"
    }

    /// Pays out to an account at the provider, once per `out_payout_no`.
    fn pay_out<'a>(&'a self, request: &'a PayoutRequest) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        let _ = request;
        let why = self.payouts_unsupported();
        Box::pin(async move { Err(ProviderError::Unsupported(why)) })
    }

    fn query_payout<'a>(&'a self, out_payout_no: &'a str) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        let _ = out_payout_no;
        let why = self.payouts_unsupported();
        Box::pin(async move { Err(ProviderError::Unsupported(why)) })
    }

    /// Shares a paid payment with receivers, once per `out_order_no`, where the provider offers it.
    fn split<'a>(&'a self, request: &'a SplitRequest) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        let _ = request;
        Box::pin(async { Err(ProviderError::Unsupported("profit sharing")) })
    }

    /// Where the split `out_order_no` of the payment `out_trade_no` stands (WeChat Pay's query needs the payment).
    fn query_split<'a>(
        &'a self,
        out_trade_no: &'a str,
        out_order_no: &'a str,
    ) -> BoxFuture<'a, ProviderResult<TransferStatus>> {
        let _ = (out_trade_no, out_order_no);
        Box::pin(async { Err(ProviderError::Unsupported("profit sharing")) })
    }
}
