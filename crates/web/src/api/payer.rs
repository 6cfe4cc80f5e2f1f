//! What a join sees of the payer, for the provider's kind of order (WeChat Pay: JSAPI inside WeChat, H5 in a
//! mobile browser, Native — a QR code — anywhere else): the browser from `User-Agent`, the client's address (the
//! connection's peer, as the other per-address rules use it), and the WeChat `openid` the client may send.
//!
//! `payer_openid` (API.md is silent; our choice): optional, only with `pay_with` `wechatpay` (400 naming it
//! otherwise), 1–128 characters of `[A-Za-z0-9_-]` (WeChat's openids are 28 of them). It is the payer's id under
//! our app id (or the sub-merchant's `sub_appid` in partner mode), which a client inside WeChat gets by WeChat's
//! OAuth; it makes a JSAPI order only when the request comes from WeChat's browser, the one place
//! `WeixinJSBridge` exists.

use crate::problem::Problem;
use axum::http::{HeaderMap, header};
use std::net::IpAddr;
use tuangou_app::payments::port::{Browser, PayerHints};

/// The browser a `User-Agent` names: WeChat's (`MicroMessenger`), a mobile one, or anything else.
pub(crate) fn browser_of(user_agent: &str) -> Browser {
    if user_agent.contains("MicroMessenger") {
        Browser::WeChat
    } else if ["Mobi", "Android", "iPhone", "iPad"].iter().any(|m| user_agent.contains(m)) {
        Browser::Mobile
    } else {
        Browser::Other
    }
}

/// Checks `payer_openid` as the module says.
pub(crate) fn check_openid(openid: Option<&str>, pay_with: Option<&str>) -> Result<(), Problem> {
    let Some(openid) = openid else { return Ok(()) };
    if pay_with != Some("wechatpay") {
        return Err(Problem::invalid("payer_openid", "invalid_field", "only with pay_with wechatpay"));
    }
    let plausible = (1..=128).contains(&openid.len())
        && openid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plausible {
        return Err(Problem::invalid("payer_openid", "invalid_field", "must be 1 to 128 of A-Z, a-z, 0-9, - and _"));
    }
    Ok(())
}

/// The hints of a join request (the return URL is the app's: the group's page).
pub(crate) fn payer_hints(headers: &HeaderMap, peer: Option<IpAddr>, openid: Option<String>) -> PayerHints {
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    PayerHints {
        return_url: None,
        client_ip: peer.map(|ip| ip.to_canonical().to_string()),
        provider_user: openid,
        browser: browser_of(user_agent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_is_read_from_the_user_agent() {
        let wechat = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                      Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN";
        assert_eq!(browser_of(wechat), Browser::WeChat);
        let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                       Chrome/120.0 Mobile Safari/537.36";
        assert_eq!(browser_of(android), Browser::Mobile);
        let desktop =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(browser_of(desktop), Browser::Other);
        assert_eq!(browser_of(""), Browser::Other);
    }

    #[test]
    fn an_openid_is_bounded_and_only_for_wechat_pay() {
        assert!(check_openid(None, None).is_ok());
        assert!(check_openid(Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), Some("wechatpay")).is_ok());
        for (openid, pay_with) in [
            ("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", Some("alipay")),
            ("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", None),
            ("", Some("wechatpay")),
            ("has space", Some("wechatpay")),
            ("零", Some("wechatpay")),
        ] {
            assert!(check_openid(Some(openid), pay_with).is_err(), "{openid:?} {pay_with:?}");
        }
        assert!(check_openid(Some(&"o".repeat(129)), Some("wechatpay")).is_err());
    }
}
