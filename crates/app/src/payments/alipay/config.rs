//! What the `alipay` adapter needs from the configuration (README "Alipay"): the app's id and private key, Alipay's
//! public key, the gateway, where notifications go, and optionally the seller's id (the PID notifications must
//! name). Keys are parsed once here, so a bad key stops the service at start, naming the setting, never quoting it.

use super::signing::{AlipayPublicKey, AppKey};
use std::sync::Arc;

/// Alipay's production gateway (`openapi-sandbox.dl.alipaydev.com/gateway.do` is its developer sandbox).
pub const DEFAULT_GATEWAY: &str = "https://openapi.alipay.com/gateway.do";
/// Where Alipay notifies the service, under its public address, unless configured otherwise.
pub const NOTIFY_PATH: &str = "/api/v1/payments/alipay/notify";

/// The `alipay` provider's settings. `Debug` shows the app id and URLs, never the private key.
#[derive(Clone)]
pub struct AlipaySettings {
    /// The app's id at Alipay's open platform (`app_id`, 2021…).
    pub app_id: String,
    /// The app's private key (应用私钥), which signs our requests. Secret.
    pub app_key: Arc<AppKey>,
    /// Alipay's public key (支付宝公钥), which signs Alipay's answers and notifications.
    pub alipay_public_key: AlipayPublicKey,
    /// The gateway requests go to ([`DEFAULT_GATEWAY`]; tests point it at their fake).
    pub gateway_url: String,
    /// Where Alipay posts notifications; `None`: `{public_url}`[`NOTIFY_PATH`].
    pub notify_url: Option<String>,
    /// The seller's id (PID, 2088…): when set, a notification for another seller is refused.
    pub seller_id: Option<String>,
    /// Profit sharing (分账, partner mode): the platform's Alipay account (its user id, 2088…) that receives the
    /// commission. When set, payments are made with their money frozen for sharing (`royalty_freeze`) and splits
    /// go through `alipay.trade.order.settle`; when not, profit sharing is `Unsupported`.
    pub royalty_account: Option<String>,
    /// The merchant's authorization of our app (`app_auth_token`), when the app acts for the merchant as its
    /// service provider (服务商): the trades are then the merchant's own. Secret.
    pub app_auth_token: Option<String>,
}

impl std::fmt::Debug for AlipaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipaySettings")
            .field("app_id", &self.app_id)
            .field("app_key", &"***")
            .field("gateway_url", &self.gateway_url)
            .field("notify_url", &self.notify_url)
            .field("seller_id", &self.seller_id)
            .field("royalty_account", &self.royalty_account)
            .field("app_auth_token", &self.app_auth_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl AlipaySettings {
    /// Settings from the keys' texts (PEM or bare base64): `Err` names what is wrong, never quoting a key.
    pub fn new(app_id: &str, app_private_key: &str, alipay_public_key: &str) -> Result<Self, String> {
        if app_id.trim().is_empty() {
            return Err("the app id is empty".into());
        }
        let app_key = AppKey::parse(app_private_key).map_err(|why| format!("the app private key: {why}"))?;
        let alipay_public_key =
            AlipayPublicKey::parse(alipay_public_key).map_err(|why| format!("the Alipay public key: {why}"))?;
        Ok(Self {
            app_id: app_id.trim().to_owned(),
            app_key: Arc::new(app_key),
            alipay_public_key,
            gateway_url: DEFAULT_GATEWAY.into(),
            notify_url: None,
            seller_id: None,
            royalty_account: None,
            app_auth_token: None,
        })
    }
}
