//! What the `wechatpay` adapter needs from the configuration, checked once when the service starts: a provider
//! that is half configured, or whose keys do not parse, is refused with the name of the setting at fault.

use super::signing::{ApiV3Key, MerchantKey, PlatformKey, PlatformKeys, RequestSigner};
use std::sync::Arc;

/// WeChat Pay's API.
pub const DEFAULT_API_BASE: &str = "https://api.mch.weixin.qq.com";

/// The configuration's texts, as given (PEM texts already read from their files). Secrets: `Debug` hides them.
#[derive(Clone, Default)]
pub struct WechatPayConfig {
    /// The merchant number: in partner mode, the service provider's (`sp_mchid`).
    pub mchid: String,
    /// The app id payments are made in (公众号/小程序): in partner mode the service provider's (`sp_appid`).
    pub appid: String,
    /// The serial number of the merchant's API certificate (`serial_no` of every request).
    pub merchant_serial: String,
    /// The merchant's API private key, PEM.
    pub private_key: String,
    /// The APIv3 key (32 characters).
    pub apiv3_key: String,
    /// Platform certificates, PEM (one or more), when WeChat Pay signs with certificates.
    pub platform_certificates: Option<String>,
    /// The WeChat Pay public key (PEM) and its id (`PUB_KEY_ID_…`), when it signs with the public key.
    pub public_key: Option<String>,
    pub public_key_id: Option<String>,
    /// Partner mode: the sub-merchant (the merchant's own account) and optionally its app id.
    pub sub_mchid: Option<String>,
    pub sub_appid: Option<String>,
    /// Where WeChat Pay notifies us: this base + `/api/v1/payments/wechatpay/notify` (default: the public URL).
    pub notify_url_base: Option<String>,
    /// WeChat Pay's API (default [`DEFAULT_API_BASE`]; tests point it at their fake).
    pub api_base: Option<String>,
    /// A call's timeout.
    pub timeout_seconds: u64,
}

impl std::fmt::Debug for WechatPayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPayConfig")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("merchant_serial", &self.merchant_serial)
            .field("private_key", &"***")
            .field("apiv3_key", &"***")
            .field("platform_certificates", &self.platform_certificates.as_ref().map(|_| "…"))
            .field("public_key_id", &self.public_key_id)
            .field("sub_mchid", &self.sub_mchid)
            .field("sub_appid", &self.sub_appid)
            .field("notify_url_base", &self.notify_url_base)
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// Partner (service provider) mode: payments land in the sub-merchant's own account (PAYMENTS.md: no 二清).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub sub_mchid: String,
    pub sub_appid: Option<String>,
}

/// The adapter's settings, parsed: keys ready to use. Cheap to clone; `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct WechatPaySettings {
    pub appid: String,
    pub partner: Option<Partner>,
    pub(super) signer: Arc<RequestSigner>,
    pub(super) apiv3_key: ApiV3Key,
    pub(super) platform_keys: PlatformKeys,
    pub notify_url_base: Option<String>,
    pub api_base: String,
    pub timeout_seconds: u64,
}

impl WechatPaySettings {
    pub fn mchid(&self) -> &str {
        &self.signer.mchid
    }

    /// Checks and parses the configuration. `Err` names the setting (`mchid`, `private_key`, …) and why, never
    /// a secret's value.
    pub fn new(config: &WechatPayConfig) -> Result<Self, (&'static str, String)> {
        let required = |name: &'static str, value: &str| {
            if value.trim().is_empty() { Err((name, "is required".to_owned())) } else { Ok(value.trim().to_owned()) }
        };
        let mchid = required("mchid", &config.mchid)?;
        let appid = required("appid", &config.appid)?;
        let merchant_serial = required("merchant_serial", &config.merchant_serial)?;
        required("private_key", &config.private_key)?;
        required("apiv3_key", &config.apiv3_key)?;
        let key = MerchantKey::from_pem(&config.private_key).map_err(|why| ("private_key", why))?;
        let apiv3_key = ApiV3Key::new(&config.apiv3_key).map_err(|why| ("apiv3_key", why))?;
        let mut keys = Vec::new();
        if let Some(text) = config.platform_certificates.as_deref().filter(|t| !t.trim().is_empty()) {
            keys.extend(PlatformKey::certificates(text).map_err(|why| ("platform_certificates", why))?);
        }
        let public_key = config.public_key.as_deref().filter(|t| !t.trim().is_empty());
        let public_key_id = config.public_key_id.as_deref().filter(|t| !t.trim().is_empty());
        match (public_key, public_key_id) {
            (Some(pem), Some(id)) => keys.push(PlatformKey::public_key(id, pem).map_err(|why| ("public_key", why))?),
            (Some(_), None) => return Err(("public_key_id", "is required with public_key".into())),
            (None, Some(_)) => return Err(("public_key", "is required with public_key_id".into())),
            (None, None) => {}
        }
        if keys.is_empty() {
            return Err((
                "platform_certificates",
                "or public_key with public_key_id is required (WeChat Pay's answers must be verified)".into(),
            ));
        }
        let sub_mchid = config.sub_mchid.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let sub_appid = config.sub_appid.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let partner = match (sub_mchid, sub_appid) {
            (Some(sub_mchid), sub_appid) => {
                Some(Partner { sub_mchid: sub_mchid.to_owned(), sub_appid: sub_appid.map(str::to_owned) })
            }
            (None, Some(_)) => return Err(("sub_mchid", "is required with sub_appid (partner mode)".into())),
            (None, None) => None,
        };
        Ok(Self {
            appid,
            partner,
            signer: Arc::new(RequestSigner { mchid, serial: merchant_serial, key }),
            apiv3_key,
            platform_keys: PlatformKeys::new(keys),
            notify_url_base: config.notify_url_base.clone().filter(|t| !t.trim().is_empty()),
            api_base: config
                .api_base
                .clone()
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_API_BASE.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            timeout_seconds: config.timeout_seconds.max(1),
        })
    }
}
