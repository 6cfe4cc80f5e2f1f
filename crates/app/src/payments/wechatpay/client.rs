//! Calls to WeChat Pay's API: each request signed (`Authorization: WECHATPAY2-SHA256-RSA2048 …`), each answer
//! verified (`Wechatpay-Signature` over `timestamp\nnonce\nbody\n` with the key `Wechatpay-Serial` names, within
//! five minutes) before a byte of it is believed. An answer that does not verify, a timeout or a 5xx is
//! `Unavailable` (asked again later, by the same id); a verified 4xx is `Refused` with a stable code.

use super::WechatPaySettings;
use super::notification::verify_signed;
use super::signing::nonce;
use crate::Clock;
use crate::payments::port::{Headers, ProviderError, ProviderResult};
use std::time::Duration;

pub(super) struct Client {
    pub settings: WechatPaySettings,
    http: reqwest::Client,
    clock: Clock,
}

/// A verified answer's body (empty for 204).
pub(super) struct Answer {
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> ProviderResult<T> {
        serde_json::from_slice(&self.body)
            .map_err(|error| ProviderError::Unavailable(format!("WeChat Pay answered what we cannot read: {error}")))
    }
}

#[derive(serde::Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// A verified error answer as the port's error.
fn refusal(status: u16, body: &[u8]) -> ProviderError {
    let error: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code: &'static str = match (status, error.code.as_str()) {
        (429, _) | (500..=599, _) | (_, "SYSTEM_ERROR" | "FREQUENCY_LIMITED" | "RATELIMIT_EXCEEDED") => {
            return ProviderError::Unavailable(format!("WeChat Pay answered {status} {}", error.code));
        }
        (404, _) | (_, "ORDER_NOT_EXIST" | "ORDERNOTEXIST" | "RESOURCE_NOT_EXISTS") => "not_found",
        (_, "ORDER_CLOSED" | "ORDERCLOSED") => "payment_closed",
        (_, "ORDER_PAID" | "ORDERPAID") => "already_paid",
        (_, "NOT_ENOUGH") => "not_enough_balance",
        (_, "NO_STATEMENT_EXIST") => "no_statement",
        (_, "INVALID_REQUEST" | "PARAM_ERROR") => "invalid_request",
        (401, _) | (_, "SIGN_ERROR") => "signature_refused",
        (403, _) => "forbidden",
        _ => "refused",
    };
    ProviderError::Refused(code, format!("WeChat Pay: {} {}", error.code, error.message))
}

impl Client {
    pub fn new(settings: WechatPaySettings, clock: Clock) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_seconds))
            .user_agent("tuangou-wechatpay/1")
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { settings, http, clock }
    }

    /// A signed call of `method` on `path_and_query` (under the API base) with `body` (JSON) if any; the answer
    /// verified. 2xx → `Ok`; a verified 4xx → `Refused`; anything else → `Unavailable`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> ProviderResult<Answer> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let url = format!("{}{path_and_query}", self.settings.api_base);
        let authorization = self.settings.signer.authorization(
            method.as_str(),
            path_and_query,
            self.clock.now().0.div_euclid(1_000),
            &nonce(32),
            body.as_bytes(),
        );
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("authorization", authorization)
            .header("accept", "application/json");
        if method != reqwest::Method::GET {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| ProviderError::Unavailable(format!("WeChat Pay did not answer: {error}")))?;
        let status = response.status().as_u16();
        let headers = Headers::new(
            response
                .headers()
                .iter()
                .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))),
        );
        let body = response
            .bytes()
            .await
            .map_err(|error| ProviderError::Unavailable(format!("WeChat Pay's answer was cut: {error}")))?
            .to_vec();
        // 204 (close) carries nothing to believe; whatever else it answers must verify.
        if !(status == 204 && body.is_empty())
            && let Err(refusal) = verify_signed(&self.settings, &headers, &body, self.clock.now())
        {
            tracing::warn!(path = path_and_query, status, reason = %refusal, "a WeChat Pay answer does not verify: treated as no answer");
            return Err(ProviderError::Unavailable(format!("WeChat Pay's answer does not verify: {refusal}")));
        }
        if (200..300).contains(&status) { Ok(Answer { body }) } else { Err(refusal(status, &body)) }
    }

    /// Downloads a bill from the URL WeChat Pay gave (signed like a call; the file is checked by its hash).
    pub async fn download(&self, url: &str) -> ProviderResult<Vec<u8>> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| ProviderError::Unavailable("WeChat Pay gave a bill URL we cannot read".into()))?;
        let path_and_query = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let authorization = self.settings.signer.authorization(
            "GET",
            &path_and_query,
            self.clock.now().0.div_euclid(1_000),
            &nonce(32),
            b"",
        );
        let response = self
            .http
            .get(parsed)
            .header("authorization", authorization)
            .send()
            .await
            .map_err(|error| ProviderError::Unavailable(format!("the bill download failed: {error}")))?;
        if !response.status().is_success() {
            return Err(ProviderError::Unavailable(format!("the bill download answered {}", response.status())));
        }
        Ok(response
            .bytes()
            .await
            .map_err(|error| ProviderError::Unavailable(format!("the bill download was cut: {error}")))?
            .to_vec())
    }
}
