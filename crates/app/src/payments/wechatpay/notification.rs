//! Notifications (支付通知): verified on the raw bytes with the key `Wechatpay-Serial` names (a platform
//! certificate or the WeChat Pay public key), within five minutes of now, then `resource` opened with the APIv3
//! key (AEAD_AES_256_GCM), then checked to be ours (our merchant number and app id).
//!
//! Only payment notifications (`TRANSACTION.SUCCESS`) are taken in: refunds are asked for without a
//! `notify_url` and followed by query (the port has no refund event), so a refund notification that comes
//! anyway is refused as malformed (WeChat Pay retries it, and the refund worker learns the same by query).

use super::WechatPaySettings;
use crate::payments::port::{EventKind, Headers, NOTIFICATION_TOLERANCE_MS, Refusal, VerifiedEvent};
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

impl Transaction {
    /// Whether it is ours: our merchant number and app id (and our sub-merchant in partner mode).
    pub fn is_ours(&self, settings: &WechatPaySettings) -> Result<(), String> {
        let (mchid, appid) = match &settings.partner {
            None => (self.mchid.as_deref(), self.appid.as_deref()),
            Some(partner) => {
                if self.sub_mchid.as_deref() != Some(partner.sub_mchid.as_str()) {
                    return Err("another sub-merchant's transaction".into());
                }
                (self.sp_mchid.as_deref(), self.sp_appid.as_deref())
            }
        };
        if mchid != Some(settings.mchid()) {
            return Err("another merchant's transaction".into());
        }
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
    if envelope.event_type != "TRANSACTION.SUCCESS" {
        return Err(Refusal::Malformed(format!(
            "event {:?} is not taken in (only TRANSACTION.SUCCESS; refunds are followed by query)",
            envelope.event_type
        )));
    }
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
        event_id: envelope.id,
        out_trade_no: transaction.out_trade_no,
        kind: EventKind::Paid { at },
        amount: Some(amount),
    })
}
