//! Configuration, layered: built-in defaults, then an optional TOML file, then `TUANGOU_*` environment
//! variables, then command-line flags. There is no global configuration: `main` reads it once and passes it on.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://…`. Secret (it may hold a password): never logged, hidden from `Debug`.
    pub database_url: String,
    /// Where `serve` listens.
    pub listen: String,
    /// The address customers reach the service at (links, QR codes); defaults to `http://{listen}`.
    pub public_url: Option<String>,
    /// New merchants wait for the operator's approval.
    pub require_merchant_approval: bool,
    pub session_ttl_hours: i64,
    /// PostgreSQL connections per instance.
    pub postgres_connections: u32,
    /// `text` (default) or `json` logs.
    pub log_format: String,
    /// A tracing filter such as `info` or `tuangou=debug` (`RUST_LOG` wins when set).
    pub log_level: String,
    /// The server secret (64 hex characters) that voucher codes are derived and hashed with. Secret: never logged.
    /// Every instance on one database needs the same one. When unset, it is read from `secret_file`.
    pub secret: Option<String>,
    /// Where the server secret is kept when `secret` is unset; made (readable by its owner only) on first run.
    pub secret_file: String,
    /// A request's headers must arrive within this many seconds (also how long an idle connection stays open).
    pub header_timeout_seconds: u64,
    /// A request's body must arrive whole within this many seconds after its headers.
    pub body_timeout_seconds: u64,
    /// Connections served at once; more wait until one closes. Keep it below the open-file limit.
    pub max_connections: usize,
    /// Believe `X-Forwarded-Proto: https` from the proxy in front (cookies become `Secure`). Only when every
    /// request comes through that proxy.
    pub trust_forwarded_proto: bool,
    /// Where uploaded photos of stores and deals are kept. Default: `tuangou-media` beside the SQLite database
    /// file (on PostgreSQL, in the working directory). Every instance serving one database needs the same
    /// directory (a shared volume).
    pub media_dir: Option<String>,
    /// Offer the built-in sandbox payment provider (`serve --demo` turns it on too).
    pub payments_sandbox: bool,
    /// The sandbox's signing key (64 hex characters). Secret: never logged. When unset, it is read from
    /// `tuangou.sandbox.key` beside the server secret's file, made there on first use.
    pub payments_sandbox_key: Option<String>,
    /// The sandbox's fault switches, a comma list: `duplicate`, `reorder`, `delay_ms=N`, `drop`, `fail_refunds`,
    /// `late_pay`.
    pub payments_sandbox_faults: String,
    /// WeChat Pay (API v3), on when any `payments_wechatpay_*` key is set (README, "WeChat Pay"). The merchant
    /// number (in partner mode the service provider's `sp_mchid`).
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_mchid: Option<String>,
    /// The app id (in partner mode `sp_appid`).
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_appid: Option<String>,
    /// The serial number of the merchant's API certificate.
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_merchant_serial: Option<String>,
    /// The merchant's API private key: PEM text, or the path of a PEM file. Secret: never logged.
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_private_key: Option<String>,
    /// The APIv3 key (32 characters). Secret: never logged.
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_apiv3_key: Option<String>,
    /// WeChat Pay platform certificate(s): PEM text or a file path (several certificates may follow each other).
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_platform_certificates: Option<String>,
    /// The WeChat Pay public key (PEM text or a file path) and its id (`PUB_KEY_ID_…`). Both this and the
    /// certificates may be set at once, during WeChat Pay's switch-over.
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_public_key: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_public_key_id: Option<String>,
    /// Partner mode (the default the README recommends): the sub-merchant's number and optionally its app id.
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_sub_mchid: Option<String>,
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_sub_appid: Option<String>,
    /// Where WeChat Pay notifies us (default: `public_url`), without the path.
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_notify_url_base: Option<String>,
    /// WeChat Pay's API (default `https://api.mch.weixin.qq.com`).
    #[serde(deserialize_with = "text_or_number")]
    pub payments_wechatpay_api_base: Option<String>,
    /// Alipay (README "Alipay"): the app's id at Alipay's open platform. Setting any `payments_alipay_*` key but
    /// the optional ones means all of app id, private key (or its file) and Alipay public key are needed.
    #[serde(deserialize_with = "text_or_number")]
    pub payments_alipay_app_id: Option<String>,
    /// The app's RSA2 private key, PEM or bare base64, PKCS#8 or PKCS#1. Secret: never logged.
    pub payments_alipay_private_key: Option<String>,
    /// A file holding that private key, instead of the key itself.
    pub payments_alipay_private_key_file: Option<String>,
    /// Alipay's public key (支付宝公钥), PEM or bare base64.
    pub payments_alipay_public_key: Option<String>,
    /// The gateway (default Alipay's production `https://openapi.alipay.com/gateway.do`).
    pub payments_alipay_gateway: Option<String>,
    /// Where Alipay posts notifications (default `{public_url}/api/v1/payments/alipay/notify`).
    pub payments_alipay_notify_url: Option<String>,
    /// The seller's id (PID, 2088…): notifications naming another seller are refused.
    #[serde(deserialize_with = "text_or_number")]
    pub payments_alipay_seller_id: Option<String>,
    /// Profit sharing (partner mode): the platform's Alipay user id (2088…) that receives the commission.
    #[serde(deserialize_with = "text_or_number")]
    pub payments_alipay_royalty_account: Option<String>,
    /// The merchant's authorization of our app (`app_auth_token`), when the app acts for it. Secret.
    pub payments_alipay_app_auth_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://tuangou.db".into(),
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            require_merchant_approval: false,
            session_ttl_hours: 24 * 30,
            postgres_connections: 16,
            log_format: "text".into(),
            log_level: "info".into(),
            secret: None,
            secret_file: "tuangou.secret".into(),
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            max_connections: 512,
            trust_forwarded_proto: false,
            media_dir: None,
            payments_sandbox: false,
            payments_sandbox_key: None,
            payments_sandbox_faults: String::new(),
            payments_wechatpay_mchid: None,
            payments_wechatpay_appid: None,
            payments_wechatpay_merchant_serial: None,
            payments_wechatpay_private_key: None,
            payments_wechatpay_apiv3_key: None,
            payments_wechatpay_platform_certificates: None,
            payments_wechatpay_public_key: None,
            payments_wechatpay_public_key_id: None,
            payments_wechatpay_sub_mchid: None,
            payments_wechatpay_sub_appid: None,
            payments_wechatpay_notify_url_base: None,
            payments_wechatpay_api_base: None,
            payments_alipay_app_id: None,
            payments_alipay_private_key: None,
            payments_alipay_private_key_file: None,
            payments_alipay_public_key: None,
            payments_alipay_gateway: None,
            payments_alipay_notify_url: None,
            payments_alipay_seller_id: None,
            payments_alipay_royalty_account: None,
            payments_alipay_app_auth_token: None,
        }
    }
}

/// A text setting that may look like a number (a merchant number such as `1900000001` in the environment, which
/// figment reads as an integer): kept as the text it was.
fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
    }
    Ok(Option::<Loose>::deserialize(deserializer)?.map(|value| match value {
        Loose::Text(text) => text,
        Loose::Unsigned(n) => n.to_string(),
        Loose::Signed(n) => n.to_string(),
        Loose::Float(n) => n.to_string(),
    }))
}

/// The URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _password)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("require_merchant_approval", &self.require_merchant_approval)
            .field("session_ttl_hours", &self.session_ttl_hours)
            .field("postgres_connections", &self.postgres_connections)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("secret_file", &self.secret_file)
            .field("header_timeout_seconds", &self.header_timeout_seconds)
            .field("body_timeout_seconds", &self.body_timeout_seconds)
            .field("max_connections", &self.max_connections)
            .field("trust_forwarded_proto", &self.trust_forwarded_proto)
            .field("media_dir", &self.media_dir)
            .field("payments_sandbox", &self.payments_sandbox)
            .field("payments_sandbox_key", &self.payments_sandbox_key.as_ref().map(|_| "***"))
            .field("payments_sandbox_faults", &self.payments_sandbox_faults)
            .field("payments_wechatpay_mchid", &self.payments_wechatpay_mchid)
            .field("payments_wechatpay_appid", &self.payments_wechatpay_appid)
            .field("payments_wechatpay_merchant_serial", &self.payments_wechatpay_merchant_serial)
            .field("payments_wechatpay_private_key", &self.payments_wechatpay_private_key.as_ref().map(|_| "***"))
            .field("payments_wechatpay_apiv3_key", &self.payments_wechatpay_apiv3_key.as_ref().map(|_| "***"))
            .field(
                "payments_wechatpay_platform_certificates",
                &self.payments_wechatpay_platform_certificates.as_ref().map(|_| "…"),
            )
            .field("payments_wechatpay_public_key", &self.payments_wechatpay_public_key.as_ref().map(|_| "…"))
            .field("payments_wechatpay_public_key_id", &self.payments_wechatpay_public_key_id)
            .field("payments_wechatpay_sub_mchid", &self.payments_wechatpay_sub_mchid)
            .field("payments_wechatpay_sub_appid", &self.payments_wechatpay_sub_appid)
            .field("payments_wechatpay_notify_url_base", &self.payments_wechatpay_notify_url_base)
            .field("payments_wechatpay_api_base", &self.payments_wechatpay_api_base)
            .field("payments_alipay_app_id", &self.payments_alipay_app_id)
            .field("payments_alipay_private_key", &self.payments_alipay_private_key.as_ref().map(|_| "***"))
            .field("payments_alipay_private_key_file", &self.payments_alipay_private_key_file)
            .field("payments_alipay_public_key", &self.payments_alipay_public_key.as_ref().map(|_| "…"))
            .field("payments_alipay_gateway", &self.payments_alipay_gateway)
            .field("payments_alipay_notify_url", &self.payments_alipay_notify_url)
            .field("payments_alipay_seller_id", &self.payments_alipay_seller_id)
            .field("payments_alipay_royalty_account", &self.payments_alipay_royalty_account)
            .field("payments_alipay_app_auth_token", &self.payments_alipay_app_auth_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Config {
    /// Defaults, then `file` (or `tuangou.toml` in the working directory when it exists), then the environment.
    pub fn load(file: Option<PathBuf>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => figment = figment.merge(Toml::file("tuangou.toml")),
        }
        figment.merge(Env::prefixed("TUANGOU_")).extract().map_err(Box::new)
    }

    /// The server secret: from configuration, else from `secret_file`, made there on first run.
    pub fn server_secret(&self) -> anyhow::Result<tuangou_app::ServerSecret> {
        let path = std::path::Path::new(&self.secret_file);
        let (text, complaint) = key_text(self.secret.as_deref(), "secret", path)?;
        tuangou_app::ServerSecret::from_hex(&text).ok_or_else(|| anyhow::anyhow!(complaint))
    }

    /// The sandbox provider's settings when it is on (configured, or `demo`): its key from configuration, else
    /// from `tuangou.sandbox.key` beside the secret file, made there on first use; its fault switches.
    pub fn sandbox(&self, demo: bool) -> anyhow::Result<Option<tuangou_app::payments::sandbox::SandboxSettings>> {
        use tuangou_app::payments::sandbox::{Faults, SandboxKey, SandboxSettings};
        if !(self.payments_sandbox || demo) {
            return Ok(None);
        }
        let faults = Faults::parse(&self.payments_sandbox_faults)
            .map_err(|why| anyhow::anyhow!("payments_sandbox_faults: {why}"))?;
        let (text, complaint) =
            key_text(self.payments_sandbox_key.as_deref(), "payments_sandbox_key", &self.sandbox_key_file())?;
        let key = SandboxKey::from_hex(&text).ok_or_else(|| anyhow::anyhow!(complaint))?;
        Ok(Some(SandboxSettings { key, faults }))
    }

    /// WeChat Pay's settings when any `payments_wechatpay_*` key is set: all that is required must be, and every
    /// key must parse, or the service refuses to start naming the setting (`payments_wechatpay_…`).
    pub fn wechatpay(&self) -> anyhow::Result<Option<tuangou_app::payments::wechatpay::WechatPaySettings>> {
        use tuangou_app::payments::wechatpay::{WechatPayConfig, WechatPaySettings};
        let any = [
            &self.payments_wechatpay_mchid,
            &self.payments_wechatpay_appid,
            &self.payments_wechatpay_merchant_serial,
            &self.payments_wechatpay_private_key,
            &self.payments_wechatpay_apiv3_key,
            &self.payments_wechatpay_platform_certificates,
            &self.payments_wechatpay_public_key,
            &self.payments_wechatpay_public_key_id,
            &self.payments_wechatpay_sub_mchid,
            &self.payments_wechatpay_sub_appid,
        ]
        .iter()
        .any(|value| value.as_deref().is_some_and(|v| !v.trim().is_empty()));
        if !any {
            return Ok(None);
        }
        let pem = |name: &str, value: &Option<String>| -> anyhow::Result<Option<String>> {
            match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(text) if text.starts_with("-----BEGIN") => Ok(Some(text.to_owned())),
                Some(path) => std::fs::read_to_string(path)
                    .map(Some)
                    .map_err(|error| anyhow::anyhow!("payments_wechatpay_{name}: cannot read {path}: {error}")),
            }
        };
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let config = WechatPayConfig {
            mchid: text(&self.payments_wechatpay_mchid),
            appid: text(&self.payments_wechatpay_appid),
            merchant_serial: text(&self.payments_wechatpay_merchant_serial),
            private_key: pem("private_key", &self.payments_wechatpay_private_key)?.unwrap_or_default(),
            apiv3_key: text(&self.payments_wechatpay_apiv3_key),
            platform_certificates: pem("platform_certificates", &self.payments_wechatpay_platform_certificates)?,
            public_key: pem("public_key", &self.payments_wechatpay_public_key)?,
            public_key_id: self.payments_wechatpay_public_key_id.clone(),
            sub_mchid: self.payments_wechatpay_sub_mchid.clone(),
            sub_appid: self.payments_wechatpay_sub_appid.clone(),
            notify_url_base: self.payments_wechatpay_notify_url_base.clone(),
            api_base: self.payments_wechatpay_api_base.clone(),
            timeout_seconds: 10,
        };
        WechatPaySettings::new(&config)
            .map(Some)
            .map_err(|(name, why)| anyhow::anyhow!("payments_wechatpay_{name} {why} (WeChat Pay is half configured)"))
    }

    /// The Alipay provider's settings when configured: `None` when no `payments_alipay_*` key is set; an error
    /// naming the missing key when only some are (a half-configured provider does not start), or naming the key
    /// that is not a key (never quoting it).
    pub fn alipay(&self) -> anyhow::Result<Option<tuangou_app::payments::alipay::AlipaySettings>> {
        use anyhow::Context;
        let given =
            |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let private_key =
            match (given(&self.payments_alipay_private_key), given(&self.payments_alipay_private_key_file)) {
                (Some(key), _) => Some(key),
                (None, Some(file)) => Some(
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("payments_alipay_private_key_file: reading {file}"))?,
                ),
                (None, None) => None,
            };
        let (app_id, public_key) = (given(&self.payments_alipay_app_id), given(&self.payments_alipay_public_key));
        let optional = [
            &self.payments_alipay_gateway,
            &self.payments_alipay_notify_url,
            &self.payments_alipay_seller_id,
            &self.payments_alipay_royalty_account,
            &self.payments_alipay_app_auth_token,
        ];
        if app_id.is_none()
            && private_key.is_none()
            && public_key.is_none()
            && optional.iter().all(|v| given(v).is_none())
        {
            return Ok(None);
        }
        let missing = |name: &str| anyhow::anyhow!("Alipay is half configured: {name} is missing (README, Alipay)");
        let app_id = app_id.ok_or_else(|| missing("payments_alipay_app_id"))?;
        let private_key =
            private_key.ok_or_else(|| missing("payments_alipay_private_key (or payments_alipay_private_key_file)"))?;
        let public_key = public_key.ok_or_else(|| missing("payments_alipay_public_key"))?;
        let mut settings = tuangou_app::payments::alipay::AlipaySettings::new(&app_id, &private_key, &public_key)
            .map_err(|why| anyhow::anyhow!("payments_alipay: {why}"))?;
        if let Some(gateway) = given(&self.payments_alipay_gateway) {
            settings.gateway_url = gateway;
        }
        settings.notify_url = given(&self.payments_alipay_notify_url);
        settings.seller_id = given(&self.payments_alipay_seller_id);
        settings.royalty_account = given(&self.payments_alipay_royalty_account);
        settings.app_auth_token = given(&self.payments_alipay_app_auth_token);
        Ok(Some(settings))
    }

    /// Where the sandbox's key is kept when not configured: beside the server secret's file.
    pub fn sandbox_key_file(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.secret_file).with_file_name("tuangou.sandbox.key")
    }

    /// Where photos are kept: `media_dir`, else `tuangou-media` beside the SQLite file, else in the working
    /// directory.
    pub fn media_dir(&self) -> PathBuf {
        if let Some(dir) = self.media_dir.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let file = self.database_url.strip_prefix("sqlite://").map(|rest| rest.split('?').next().unwrap_or(rest));
        match file.and_then(|f| std::path::Path::new(f).parent()) {
            Some(parent) => parent.join(tuangou_app::DEFAULT_MEDIA_DIR),
            None => PathBuf::from(tuangou_app::DEFAULT_MEDIA_DIR),
        }
    }

    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// What the server grants each client (timeouts, the connection limit) and whether it trusts its proxy.
    pub fn http(&self) -> tuangou_web::HttpSettings {
        use std::time::Duration;
        tuangou_web::HttpSettings {
            header_timeout: Duration::from_secs(self.header_timeout_seconds.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout_seconds.max(1)),
            max_connections: self.max_connections.max(1),
            trust_forwarded_proto: self.trust_forwarded_proto,
            ..tuangou_web::HttpSettings::default()
        }
    }
}

/// A key's text (64 hex characters) and what to say if it is not one: `configured` (the setting `setting`) when
/// set, else what `path` holds, else a new random key written there (readable by its owner only) on first use.
fn key_text(configured: Option<&str>, setting: &str, path: &std::path::Path) -> anyhow::Result<(String, String)> {
    use anyhow::Context;
    if let Some(text) = configured {
        return Ok((text.to_owned(), format!("{setting} must be 64 hex characters")));
    }
    let complaint = format!("{} must hold 64 hex characters", path.display());
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok((text, complaint));
    }
    let text = hex::encode(tuangou_app::random_secret());
    write_private(path, &text).with_context(|| format!("making {}", path.display()))?;
    Ok((text, complaint))
}

/// Writes a file only its owner can read (on Unix).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_database_password() {
        let config = Config { database_url: "postgres://app:s3cret@db:5432/tuangou".into(), ..Config::default() };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db:5432/tuangou"));
        let with_secret =
            Config { secret: Some("ab".repeat(32)), payments_sandbox_key: Some("cd".repeat(32)), ..Config::default() };
        assert!(!format!("{with_secret:?}").contains("abab"));
        assert!(!format!("{with_secret:?}").contains("cdcd"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "listen = \"0.0.0.0:9000\"\nsession_ttl_hours = 5\nmax_connections = 64\ntrust_forwarded_proto = true",
            )?;
            jail.set_env("TUANGOU_SESSION_TTL_HOURS", "7");
            jail.set_env("TUANGOU_HEADER_TIMEOUT_SECONDS", "3");
            let config = Config::load(Some("custom.toml".into())).map_err(|e| e.to_string())?;
            assert_eq!(config.listen, "0.0.0.0:9000");
            assert_eq!(config.session_ttl_hours, 7);
            assert_eq!(config.database_url, "sqlite://tuangou.db");
            let http = config.http();
            assert_eq!(http.header_timeout, std::time::Duration::from_secs(3));
            assert_eq!(http.body_timeout, std::time::Duration::from_secs(30));
            assert_eq!(http.max_connections, 64);
            assert!(http.trust_forwarded_proto);
            Ok(())
        });
    }

    /// Photos live beside the SQLite file unless `media_dir` (file or `TUANGOU_MEDIA_DIR`) says otherwise.
    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn the_media_directory_defaults_beside_the_database() {
        figment::Jail::expect_with(|jail| {
            let beside = Config { database_url: "sqlite:///var/lib/tuangou/data.db".into(), ..Config::default() };
            assert_eq!(beside.media_dir(), PathBuf::from("/var/lib/tuangou/tuangou-media"));
            assert_eq!(Config::default().media_dir(), PathBuf::from("tuangou-media"));
            let postgres = Config { database_url: "postgres://db/tuangou".into(), ..Config::default() };
            assert_eq!(postgres.media_dir(), PathBuf::from("tuangou-media"));
            jail.set_env("TUANGOU_MEDIA_DIR", "/srv/photos");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.media_dir(), PathBuf::from("/srv/photos"));
            Ok(())
        });
    }

    /// WeChat Pay is off unless configured; half configured, the error names the missing key; keys may be PEM text
    /// or file paths; secrets stay out of `Debug`.
    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn wechatpay_is_configured_whole_or_refused() {
        const KEY: &str = include_str!("../../app/tests/fixtures/wechatpay/java_merchant_private_key.pem");
        const CERT: &str = include_str!("../../app/tests/fixtures/wechatpay/go_notify_platform_certificate.pem");
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert!(config.wechatpay().map_err(|e| e.to_string())?.is_none(), "off by default");
            jail.set_env("TUANGOU_PAYMENTS_WECHATPAY_MCHID", "1900000001");
            let half = Config::load(None).map_err(|e| e.to_string())?.wechatpay().unwrap_err().to_string();
            assert!(half.contains("payments_wechatpay_appid"), "{half}");
            jail.set_env("TUANGOU_PAYMENTS_WECHATPAY_APPID", "wxd678efh567hg6787");
            jail.set_env("TUANGOU_PAYMENTS_WECHATPAY_MERCHANT_SERIAL", "5F1C72E2A8931B72A2E13AF8DEE92471EB397115");
            let half = Config::load(None).map_err(|e| e.to_string())?.wechatpay().unwrap_err().to_string();
            assert!(half.contains("payments_wechatpay_private_key"), "{half}");
            jail.create_file("merchant.pem", KEY)?;
            jail.set_env("TUANGOU_PAYMENTS_WECHATPAY_PRIVATE_KEY", "merchant.pem");
            jail.set_env("TUANGOU_PAYMENTS_WECHATPAY_APIV3_KEY", "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb");
            let half = Config::load(None).map_err(|e| e.to_string())?.wechatpay().unwrap_err().to_string();
            assert!(half.contains("payments_wechatpay_platform_certificates"), "{half}");
            jail.set_env("TUANGOU_PAYMENTS_WECHATPAY_PLATFORM_CERTIFICATES", CERT);
            jail.set_env("TUANGOU_PAYMENTS_WECHATPAY_SUB_MCHID", "1900000109");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let settings = config.wechatpay().map_err(|e| e.to_string())?.expect("on");
            assert_eq!(settings.mchid(), "1900000001");
            assert_eq!(settings.partner.as_ref().map(|p| p.sub_mchid.as_str()), Some("1900000109"));
            let shown = format!("{config:?} {settings:?}");
            assert!(
                !shown.contains("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb") && !shown.contains("MIIEvQIBADANBgkqhkiG9w0B"),
                "{shown}"
            );
            jail.set_env("TUANGOU_PAYMENTS_WECHATPAY_APIV3_KEY", "short");
            let bad = Config::load(None).map_err(|e| e.to_string())?.wechatpay().unwrap_err().to_string();
            assert!(bad.contains("payments_wechatpay_apiv3_key") && !bad.contains("short"), "{bad}");
            Ok(())
        });
    }

    /// Alipay is off unless configured; a half-configured Alipay names what is missing; a bad key is named, never
    /// quoted; the private key never shows in `Debug`, and may come from a file.
    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn alipay_is_configured_whole_or_refused() {
        // Test-only keys (crates/app/tests/fixtures/alipay/README.md).
        let private = include_str!("../../app/tests/fixtures/alipay/test_app_private_key_pkcs1.txt");
        let public = include_str!("../../app/tests/fixtures/alipay/test_app_public_key.txt");
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert!(config.alipay().map_err(|e| e.to_string())?.is_none(), "off by default");
            jail.set_env("TUANGOU_PAYMENTS_ALIPAY_APP_ID", "2021000000000001");
            let half = Config::load(None).map_err(|e| e.to_string())?.alipay().unwrap_err().to_string();
            assert!(half.contains("payments_alipay_private_key"), "{half}");
            jail.set_env("TUANGOU_PAYMENTS_ALIPAY_PRIVATE_KEY", private);
            let half = Config::load(None).map_err(|e| e.to_string())?.alipay().unwrap_err().to_string();
            assert!(half.contains("payments_alipay_public_key"), "{half}");
            jail.set_env("TUANGOU_PAYMENTS_ALIPAY_PUBLIC_KEY", "bm90IGEga2V5");
            let bad = Config::load(None).map_err(|e| e.to_string())?.alipay().unwrap_err().to_string();
            assert!(bad.contains("public key") && !bad.contains(&private[..40]), "{bad}");
            jail.set_env("TUANGOU_PAYMENTS_ALIPAY_PUBLIC_KEY", public);
            jail.set_env("TUANGOU_PAYMENTS_ALIPAY_GATEWAY", "http://127.0.0.1:9/gateway.do");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let settings = config.alipay().map_err(|e| e.to_string())?.expect("on");
            assert_eq!(
                (settings.app_id.as_str(), settings.gateway_url.as_str()),
                ("2021000000000001", "http://127.0.0.1:9/gateway.do")
            );
            assert_eq!(settings.notify_url, None, "under the public address");
            let shown = format!("{config:?} {settings:?}");
            assert!(!shown.contains(&private[..40]) && !shown.contains(&private[200..240]), "{shown}");
            jail.create_file(
                "app.key",
                &format!("-----BEGIN PRIVATE KEY-----\n{private}\n-----END PRIVATE KEY-----\n"),
            )?;
            jail.set_env("TUANGOU_PAYMENTS_ALIPAY_PRIVATE_KEY", "");
            jail.set_env("TUANGOU_PAYMENTS_ALIPAY_PRIVATE_KEY_FILE", "app.key");
            assert!(Config::load(None).map_err(|e| e.to_string())?.alipay().map_err(|e| e.to_string())?.is_some());
            jail.set_env("TUANGOU_PAYMENTS_ALIPAY_APP_ID", "");
            let half = Config::load(None).map_err(|e| e.to_string())?.alipay().unwrap_err().to_string();
            assert!(half.contains("payments_alipay_app_id"), "{half}");
            Ok(())
        });
    }

    /// The sandbox is off unless configured or demoed; its key is made once beside the secret and kept; a bad
    /// fault switch is refused.
    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn the_sandbox_is_configured_and_keeps_its_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_dir("keys")?;
            jail.set_env("TUANGOU_SECRET_FILE", "keys/tuangou.secret");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert!(config.sandbox(false).map_err(|e| e.to_string())?.is_none(), "off by default");
            jail.set_env("TUANGOU_PAYMENTS_SANDBOX", "true");
            jail.set_env("TUANGOU_PAYMENTS_SANDBOX_FAULTS", "duplicate,delay_ms=20");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let first = config.sandbox(false).map_err(|e| e.to_string())?.expect("on");
            assert!(first.faults.duplicate && first.faults.delay_ms == 20);
            assert!(jail.directory().join("keys/tuangou.sandbox.key").exists(), "made beside the secret");
            let again = config.sandbox(false).map_err(|e| e.to_string())?.expect("on");
            assert_eq!(first.key, again.key, "kept");
            jail.set_env("TUANGOU_PAYMENTS_SANDBOX_KEY", "ef".repeat(32));
            let configured =
                Config::load(None).map_err(|e| e.to_string())?.sandbox(false).map_err(|e| e.to_string())?;
            assert_eq!(configured.expect("on").key.to_hex(), "ef".repeat(32));
            jail.set_env("TUANGOU_PAYMENTS_SANDBOX_FAULTS", "explode");
            let refused = Config::load(None).map_err(|e| e.to_string())?.sandbox(false);
            assert!(refused.is_err());
            Ok(())
        });
    }
}
