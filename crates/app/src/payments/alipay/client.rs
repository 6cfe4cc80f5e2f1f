//! Alipay's OpenAPI gateway (`gateway.do`), as its SDKs speak it.
//!
//! A request is the common parameters (`app_id, method, format=JSON, charset=utf-8, sign_type=RSA2, timestamp`
//! (Beijing time), `version=1.0`, `notify_url`, `biz_content` (the call's JSON)) signed with the app's key over
//! [`sign_content`], posted form-encoded. The answer is `{"<method>_response": {…}, "sign": "…"}` where `sign` is
//! Alipay's signature over the *exact bytes* of the `<method>_response` value: it is verified on those bytes
//! (serde_json's `RawValue`), before anything in it is read. An answer that does not verify, or that is not
//! Alipay's shape, is `Unavailable` (the call's outcome is unknown: it is made again later), never a success.
//! `code` `10000` is success; `40004` a business failure whose `sub_code` becomes the port's refusal; `20000`
//! and `ACQ.SYSTEM_ERROR` mean "try again".
//!
//! The pay pages (`alipay.trade.wap.pay`, `alipay.trade.page.pay`) are not calls: they are the same signed
//! parameters as a URL on the gateway that the payer's browser opens ([`Gateway::page_url`]).

use super::config::AlipaySettings;
use super::signing::sign_content;
use crate::Clock;
use crate::payments::port::{ProviderError, ProviderResult};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::time::Duration;
use tuangou_domain::time::china_time_seconds;

pub(crate) struct Gateway {
    settings: AlipaySettings,
    notify_url: String,
    clock: Clock,
    http: reqwest::Client,
}

/// A business failure's `sub_code` as the port's refusal code; `None`: try again later.
fn refusal_code(sub_code: &str) -> Option<&'static str> {
    Some(match sub_code {
        "ACQ.SYSTEM_ERROR" | "aop.ACQ.SYSTEM_ERROR" | "isp.unknow-error" => return None,
        "ACQ.TRADE_NOT_EXIST" | "isv.trade_not_exist" => "not_found",
        "ACQ.TRADE_STATUS_ERROR" | "ACQ.TRADE_HAS_CLOSE" | "ACQ.TRADE_HAS_FINISHED" => "payment_closed",
        "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL" | "ACQ.REFUND_FEE_ERROR" | "ACQ.REASON_TRADE_REFUND_FEE_ERR" => {
            "refund_exceeds_payment"
        }
        "ACQ.TRADE_NOT_ALLOW_REFUND" | "ACQ.SELLER_BALANCE_NOT_ENOUGH" => "refund_not_allowed",
        "isp.bill_not_exist" | "isv.bill_not_exist" => "bill_not_ready",
        _ => "provider_refused",
    })
}

impl Gateway {
    pub(crate) fn new(settings: AlipaySettings, clock: Clock, public_url: &str) -> Self {
        let notify_url = settings
            .notify_url
            .clone()
            .unwrap_or_else(|| format!("{}{}", public_url.trim_end_matches('/'), super::config::NOTIFY_PATH));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { settings, notify_url, clock, http }
    }

    pub(crate) fn settings(&self) -> &AlipaySettings {
        &self.settings
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The common parameters of `method` with `biz_content` and `extra` (`return_url`), signed.
    pub(crate) fn signed(
        &self,
        method: &str,
        biz_content: &serde_json::Value,
        extra: &[(&str, String)],
    ) -> ProviderResult<Vec<(String, String)>> {
        let mut params: Vec<(String, String)> = [
            ("app_id", self.settings.app_id.clone()),
            ("method", method.to_owned()),
            ("format", "JSON".to_owned()),
            ("charset", "utf-8".to_owned()),
            ("sign_type", "RSA2".to_owned()),
            ("timestamp", china_time_seconds(self.clock.now())),
            ("version", "1.0".to_owned()),
            ("notify_url", self.notify_url.clone()),
            ("biz_content", biz_content.to_string()),
        ]
        .into_iter()
        .chain(self.settings.app_auth_token.clone().map(|token| ("app_auth_token", token)))
        .chain(extra.iter().cloned())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let content = sign_content(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let sign = self.settings.app_key.sign(&content).map_err(ProviderError::Unavailable)?;
        params.push(("sign".into(), sign));
        Ok(params)
    }

    /// A pay page: the gateway's URL with the signed parameters as its query (GET), for the payer's browser.
    pub(crate) fn page_url(
        &self,
        method: &str,
        biz_content: &serde_json::Value,
        extra: &[(&str, String)],
    ) -> ProviderResult<String> {
        let params = self.signed(method, biz_content, extra)?;
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let joiner = if self.settings.gateway_url.contains('?') { '&' } else { '?' };
        Ok(format!("{}{joiner}{query}", self.settings.gateway_url))
    }

    /// Calls `method` and answers its verified `<method>_response` object when `code` is `10000`.
    pub(crate) async fn call(
        &self,
        method: &str,
        biz_content: serde_json::Value,
    ) -> ProviderResult<serde_json::Map<String, serde_json::Value>> {
        let params = self.signed(method, &biz_content, &[])?;
        let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let response = self
            .http
            .post(&self.settings.gateway_url)
            .header("content-type", "application/x-www-form-urlencoded;charset=utf-8")
            .body(form)
            .send()
            .await
            .map_err(|error| ProviderError::Unavailable(format!("{method}: {error}")))?;
        if !response.status().is_success() {
            return Err(ProviderError::Unavailable(format!("{method}: the gateway answered {}", response.status())));
        }
        let body = response.bytes().await.map_err(|error| ProviderError::Unavailable(format!("{method}: {error}")))?;
        let object = self.verified(method, &body)?;
        let text = |name: &str| object.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        match text("code").as_str() {
            "10000" => Ok(object),
            code => {
                let (sub_code, why) =
                    (text("sub_code"), format!("{method}: {code} {} {}", text("sub_code"), text("sub_msg")));
                match (code, refusal_code(&sub_code)) {
                    ("20000" | "20001", _) | (_, None) => Err(ProviderError::Unavailable(why)),
                    (_, Some(refusal)) => Err(ProviderError::Refused(refusal, why)),
                }
            }
        }
    }

    /// The `<method>_response` object of an answer, once its `sign` verified over that value's exact bytes.
    pub(crate) fn verified(
        &self,
        method: &str,
        body: &[u8],
    ) -> ProviderResult<serde_json::Map<String, serde_json::Value>> {
        let unusable = |why: &str| {
            tracing::warn!(method, why, "an Alipay answer was not usable; the call is made again later");
            ProviderError::Unavailable(format!("{method}: {why}"))
        };
        let envelope: HashMap<String, &RawValue> =
            serde_json::from_slice(body).map_err(|_| unusable("the answer is not Alipay's JSON"))?;
        let key = format!("{}_response", method.replace('.', "_"));
        let value = envelope
            .get(&key)
            .or_else(|| envelope.get("error_response"))
            .ok_or_else(|| unusable("the answer has no response object"))?;
        let sign: Option<String> = envelope.get("sign").and_then(|raw| serde_json::from_str(raw.get()).ok());
        let sign = sign.ok_or_else(|| unusable("the answer is not signed"))?;
        if !self.settings.alipay_public_key.verifies(value.get().as_bytes(), &sign) {
            return Err(unusable("the answer's sign does not verify with Alipay's public key"));
        }
        match serde_json::from_str(value.get()) {
            Ok(serde_json::Value::Object(object)) => Ok(object),
            _ => Err(unusable("the response is not an object")),
        }
    }
}
