//! Notifications (支付通知): verified on the raw bytes with the key `Wechatpay-Serial` names (a platform
//! certificate or the WeChat Pay public key), within five minutes of now, then `resource` opened with the APIv3
//! key (AEAD_AES_256_GCM), then checked to be ours (our merchant number and app id).
//!
//! Two kinds are taken in: payments (`TRANSACTION.SUCCESS`, the resource a transaction) and refunds
//! (`REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`, the resource a refund whose `refund_status` must say
//! the same as the event). Any other event is refused as malformed.

use super::WechatPaySettings;
use crate::payments::port::{EventKind, Headers, NOTIFICATION_TOLERANCE_MS, Refusal, TransferState, VerifiedEvent};
use tuangou_domain::money::Fen;
use tuangou_domain::time::{Millis, parse_rfc3339};

pub const SERIAL: &str = "Wechatpay-Serial";
pub const SIGNATURE: &str = "Wechatpay-Signature";
pub const TIMESTAMP: &str = "Wechatpay-Timestamp";
pub const NONCE: &str = "Wechatpay-Nonce";
/// WeChat Pay's probes (签名探测) carry a signature starting so: never valid, always refused.
pub const SIGNTEST_PREFIX: &str = "WECHATPAY/SIGNTEST/";

#[derive(Debug, serde::Deserialize)]
pub(super) struct Envelope {
    pub id: String,
    #[serde(default)]
    pub event_type: String,
    pub resource: Resource,
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct Resource {
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: String,
    pub nonce: String,
}

/// A transaction as WeChat Pay describes it (in a notification's resource and a query's answer), direct or
/// partner mode.
#[derive(Debug, Clone, serde::Deserialize)]
pub(super) struct Transaction {
    #[serde(default)]
    pub mchid: Option<String>,
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub sp_mchid: Option<String>,
    #[serde(default)]
    pub sp_appid: Option<String>,
    #[serde(default)]
    pub sub_mchid: Option<String>,
    pub out_trade_no: String,
    #[serde(default)]
    pub transaction_id: Option<String>,
    pub trade_state: String,
    #[serde(default)]
    pub success_time: Option<String>,
    #[serde(default)]
    pub amount: Option<TransactionAmount>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(super) struct TransactionAmount {
    pub total: i64,
}

/// A refund as a refund notification's resource describes it (direct or partner mode).
#[derive(Debug, Clone, serde::Deserialize)]
pub(super) struct RefundNotice {
    #[serde(default)]
    pub mchid: Option<String>,
    #[serde(default)]
    pub sp_mchid: Option<String>,
    #[serde(default)]
    pub sub_mchid: Option<String>,
    pub out_trade_no: String,
    pub out_refund_no: String,
    pub refund_status: String,
    #[serde(default)]
    pub success_time: Option<String>,
    pub amount: RefundNoticeAmount,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(super) struct RefundNoticeAmount {
    pub refund: i64,
}

/// Whether the merchant numbers are ours: `mchid` in direct mode; `sp_mchid` and our `sub_mchid` in partner mode.
fn merchant_is_ours(
    settings: &WechatPaySettings,
    mchid: Option<&str>,
    sp_mchid: Option<&str>,
    sub_mchid: Option<&str>,
) -> Result<(), String> {
    let mchid = match &settings.partner {
        None => mchid,
        Some(partner) => {
            if sub_mchid != Some(partner.sub_mchid.as_str()) {
                return Err("another sub-merchant's".into());
            }
            sp_mchid
        }
    };
    if mchid != Some(settings.mchid()) {
        return Err("another merchant's".into());
    }
    Ok(())
}

impl Transaction {
    /// Whether it is ours: our merchant number and app id (and our sub-merchant in partner mode).
    pub fn is_ours(&self, settings: &WechatPaySettings) -> Result<(), String> {
        merchant_is_ours(settings, self.mchid.as_deref(), self.sp_mchid.as_deref(), self.sub_mchid.as_deref())
            .map_err(|whose| format!("{whose} transaction"))?;
        let appid = match &settings.partner {
            None => self.appid.as_deref(),
            Some(_) => self.sp_appid.as_deref(),
        };
        if appid.is_some_and(|appid| appid != settings.appid) {
            return Err("another app's transaction".into());
        }
        Ok(())
    }

    pub fn amount(&self) -> Option<Fen> {
        self.amount.as_ref().and_then(|a| Fen::from_stored(a.total))
    }

    pub fn paid_at(&self) -> Option<Millis> {
        self.success_time.as_deref().and_then(parse_rfc3339)
    }
}

/// Checks the signature of `timestamp\nnonce\nbody\n` (the raw bytes) with the key the serial names, and the
/// timestamp against `now`. The same check applies to the answers of WeChat Pay's API.
pub(super) fn verify_signed(
    settings: &WechatPaySettings,
    headers: &Headers,
    body: &[u8],
    now: Millis,
) -> Result<(), Refusal> {
    let header = |name: &str| headers.get(name).ok_or_else(|| Refusal::BadSignature(format!("no {name} header")));
    let signature = header(SIGNATURE)?;
    if signature.starts_with(SIGNTEST_PREFIX) {
        return Err(Refusal::BadSignature("a signature probe (WECHATPAY/SIGNTEST/) is never valid".into()));
    }
    let (serial, timestamp, nonce) = (header(SERIAL)?, header(TIMESTAMP)?, header(NONCE)?);
    settings
        .platform_keys
        .verify(serial, timestamp, nonce, body, signature, now.0.div_euclid(1_000))
        .map_err(Refusal::BadSignature)?;
    let seconds =
        timestamp.trim().parse::<i64>().map_err(|_| Refusal::Malformed(format!("{TIMESTAMP} is not Unix seconds")))?;
    if (now.0 - seconds.saturating_mul(1_000)).abs() > NOTIFICATION_TOLERANCE_MS {
        return Err(Refusal::Stale(format!("signed at {seconds}, more than five minutes from now")));
    }
    Ok(())
}

/// Opens a notification's `resource` with the APIv3 key.
pub(super) fn decrypt(settings: &WechatPaySettings, resource: &Resource) -> Result<Vec<u8>, Refusal> {
    if resource.algorithm != "AEAD_AES_256_GCM" {
        return Err(Refusal::Malformed(format!("unknown algorithm {:?}", resource.algorithm)));
    }
    settings
        .apiv3_key
        .decrypt(&resource.associated_data, &resource.nonce, &resource.ciphertext)
        .map_err(Refusal::BadSignature)
}

/// The whole check of a notification (see the module's documentation).
pub(super) fn parse(
    settings: &WechatPaySettings,
    headers: &Headers,
    body: &[u8],
    now: Millis,
) -> Result<VerifiedEvent, Refusal> {
    verify_signed(settings, headers, body, now)?;
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|error| Refusal::Malformed(format!("not a WeChat Pay notification: {error}")))?;
    match envelope.event_type.as_str() {
        "TRANSACTION.SUCCESS" => payment_event(settings, &envelope),
        "REFUND.SUCCESS" | "REFUND.ABNORMAL" | "REFUND.CLOSED" => refund_event(settings, &envelope),
        other => Err(Refusal::Malformed(format!("event {other:?} is not taken in"))),
    }
}

/// A `TRANSACTION.SUCCESS`: the payment was paid.
fn payment_event(settings: &WechatPaySettings, envelope: &Envelope) -> Result<VerifiedEvent, Refusal> {
    let plain = decrypt(settings, &envelope.resource)?;
    let transaction: Transaction =
        serde_json::from_slice(&plain).map_err(|error| Refusal::Malformed(format!("not a transaction: {error}")))?;
    transaction.is_ours(settings).map_err(Refusal::Malformed)?;
    if transaction.trade_state != "SUCCESS" {
        return Err(Refusal::Malformed(format!("trade_state {:?} in a payment notification", transaction.trade_state)));
    }
    let at = transaction.paid_at().ok_or_else(|| Refusal::Malformed("no success_time (RFC 3339)".into()))?;
    let amount = transaction.amount().ok_or_else(|| Refusal::Malformed("no amount.total".into()))?;
    Ok(VerifiedEvent {
        event_id: envelope.id.clone(),
        out_trade_no: transaction.out_trade_no,
        kind: EventKind::Paid { at },
        amount: Some(amount),
    })
}

/// A `REFUND.*`: a refund ended, well (`SUCCESS`, with its `success_time`) or not (`ABNORMAL`, `CLOSED`).
fn refund_event(settings: &WechatPaySettings, envelope: &Envelope) -> Result<VerifiedEvent, Refusal> {
    let plain = decrypt(settings, &envelope.resource)?;
    let refund: RefundNotice =
        serde_json::from_slice(&plain).map_err(|error| Refusal::Malformed(format!("not a refund: {error}")))?;
    merchant_is_ours(settings, refund.mchid.as_deref(), refund.sp_mchid.as_deref(), refund.sub_mchid.as_deref())
        .map_err(|whose| Refusal::Malformed(format!("{whose} refund")))?;
    let said = envelope.event_type.trim_start_matches("REFUND.");
    if refund.refund_status != said {
        return Err(Refusal::Malformed(format!(
            "refund_status {:?} in a {} notification",
            refund.refund_status, envelope.event_type
        )));
    }
    let state = match said {
        "SUCCESS" => TransferState::Succeeded {
            at: refund
                .success_time
                .as_deref()
                .and_then(parse_rfc3339)
                .ok_or_else(|| Refusal::Malformed("a successful refund without success_time (RFC 3339)".into()))?,
        },
        _ => TransferState::Failed,
    };
    let amount = Fen::from_stored(refund.amount.refund)
        .filter(|amount| *amount > Fen::ZERO)
        .ok_or_else(|| Refusal::Malformed("amount.refund is not a positive amount".into()))?;
    Ok(VerifiedEvent {
        event_id: envelope.id.clone(),
        out_trade_no: refund.out_trade_no,
        kind: EventKind::Refunded { out_refund_no: refund.out_refund_no, state },
        amount: Some(amount),
    })
}
