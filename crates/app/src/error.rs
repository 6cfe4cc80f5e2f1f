//! Why a use case refused: each variant maps to one HTTP status and carries the API's stable code.

use tuangou_domain::Invalid;
use tuangou_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input: which field and why (400).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No valid session (401 `not_signed_in`).
    #[error("sign in first")]
    NotSignedIn,
    /// A caller that is not who it claims, with the code (401): a payment notification whose signature does not
    /// match (`bad_signature`) or whose timestamp is stale (`stale_timestamp`).
    #[error("{1}")]
    Unauthenticated(&'static str, String),
    /// A payment provider did not answer, or failed: nothing is known to have changed there (503
    /// `provider_unavailable`).
    #[error("the payment provider is unavailable: {0}")]
    ProviderUnavailable(String),
    /// Wrong phone or password (401 `bad_credentials`).
    #[error("phone or password is wrong")]
    BadCredentials,
    /// Signed in, but not allowed (403).
    #[error("{1}")]
    Forbidden(&'static str, &'static str),
    /// Unknown, or not visible to the caller (404).
    #[error("{1}")]
    NotFound(&'static str, &'static str),
    /// Conflicts with the current state (409).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// The same `Idempotency-Key` with a different body (422 `idempotency_key_reused`).
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// Too many failed attempts: retry after this many seconds (429 `throttled`).
    #[error("too many failed attempts: retry later")]
    Throttled(u64),
    /// Gone: a voucher past its date (410 `expired`).
    #[error("{0}")]
    Gone(&'static str),
    /// An upload larger than allowed, in bytes or in pixels (413).
    #[error("{1}")]
    PayloadTooLarge(&'static str, String),
    /// Not enough money (402 `insufficient_funds`).
    #[error("not enough money available")]
    InsufficientFunds,
    /// Too many writes are waiting: retry after a second (503 `overloaded`, with `Retry-After`).
    #[error("the service is busy: retry shortly")]
    Overloaded,
    /// A fault of ours, logged in full, answered as 500 without details.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub(crate) fn not_found() -> Self {
        AppError::NotFound("not_found", "no such thing, or not yours to see")
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict(code, message.into())
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => AppError::not_found(),
            StoreError::Conflict(code) => AppError::conflict(code, conflict_message(code)),
            StoreError::InsufficientFunds(_) => AppError::InsufficientFunds,
            StoreError::Inconsistent(e) => AppError::Internal(e),
            StoreError::Throttled { retry_after_seconds } => AppError::Throttled(retry_after_seconds),
            StoreError::Overloaded => AppError::Overloaded,
            StoreError::Internal(e) => AppError::Internal(e),
            // Only ever inside a unit of work; answered as the conflict it names if it ever got out.
            StoreError::RunAgain(code) => AppError::conflict(code, conflict_message(code)),
            StoreError::Database(e) => AppError::Internal(e.to_string()),
        }
    }
}

fn conflict_message(code: &str) -> &'static str {
    match code {
        "phone_taken" => "this phone number is registered already",
        "already_staff" => "this person already works for this merchant",
        "campaign_live" => "the campaign is published: its rules can no longer change",
        "campaign_not_draft" => "the campaign is published or ended already",
        "campaign_not_live" => "the campaign is not live",
        "limit_reached" => "you have joined this campaign as often as it allows",
        "already_member" => "you are in this group already",
        "group_full" => "this group is full",
        "group_closed" => "this group is closed: it expired or its deadline passed",
        "sold_out" => "no seat is left in this campaign",
        "already_drawn" => "this group was drawn already",
        "not_full" => "this group is not full yet",
        "already_redeemed" => "this voucher was redeemed already",
        "voucher_refunded" => "this voucher was returned for a refund",
        "already_refunded" => "this voucher was refunded already",
        "not_refundable" => "a coupon has no cash value to refund",
        "money_held" => "money is still held in a group: wait for its draw or expiry",
        "withdrawal_pending" => "a withdrawal is on its way out: wait until it has succeeded or failed",
        "payout_in_progress" => "a payout of this merchant is in progress: wait until it has succeeded or failed",
        "voucher_pending" => "an unused voucher is pending: redeem or return it first",
        "balance_remaining" => "money remains in the wallet: spend or withdraw it first",
        "already_undone" => "this redemption was undone already",
        "undo_window_passed" => "a redemption can be undone within one hour only",
        "idempotency_key_exists" => "a request with this Idempotency-Key is being answered",
        _ => "conflicts with the current state",
    }
}
