//! Alipay's asynchronous notification (异步通知): a `POST` of `application/x-www-form-urlencoded` parameters to
//! our `notify_url`, checked as Alipay's SDKs check it (`rsaCheckV1`): every parameter but `sign` and
//! `sign_type`, URL-decoded once, sorted by key and joined as `k=v&…` ([`super::signing::sign_content`]), must
//! carry Alipay's RSA-SHA256 signature in `sign`. Only then is anything read: `app_id` must be ours (and
//! `seller_id` our seller when configured), `trade_status` says what happened, `total_amount` (yuan, decimal
//! text) is read exactly into fen. The service answers the text `success` once it stored the event; Alipay
//! sends it again (up to 8 times over 25 hours) until it gets that answer, with the same `notify_id`, which is
//! the event's id.
//!
//! Alipay's notification carries no freshness guarantee beyond its signature (its retries span a day), so no
//! time window applies here: a replay is the same `notify_id`, stored once.

use super::signing::{AlipayPublicKey, sign_content};
use crate::payments::port::{EventKind, Refusal, VerifiedEvent};
use tuangou_domain::money::Fen;
use tuangou_domain::time::{Millis, parse_rfc3339};

/// Alipay's time text `yyyy-MM-dd HH:mm:ss`, Beijing time.
pub(crate) fn parse_beijing(text: &str) -> Option<Millis> {
    let text = text.trim();
    if text.len() != 19 {
        return None;
    }
    parse_rfc3339(&format!("{}+08:00", text.replacen(' ', "T", 1)))
}

/// What a notification is checked against.
#[derive(Debug, Clone)]
pub struct NotificationCheck {
    pub app_id: String,
    pub seller_id: Option<String>,
    pub public_key: AlipayPublicKey,
}

impl NotificationCheck {
    /// `rsaCheckV1` over the form-encoded body: `Ok` with the parameters (decoded once) when Alipay signed them.
    pub fn verify(&self, body: &[u8]) -> Result<Vec<(String, String)>, Refusal> {
        let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        let one = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let signature = one("sign").ok_or_else(|| Refusal::BadSignature("no sign parameter".into()))?;
        if let Some(kind) = one("sign_type")
            && kind != "RSA2"
        {
            return Err(Refusal::BadSignature(format!("sign_type {kind:?}: only RSA2 is accepted")));
        }
        let content = sign_content(
            params.iter().filter(|(k, _)| k != "sign" && k != "sign_type").map(|(k, v)| (k.as_str(), v.as_str())),
        );
        if !self.public_key.verifies(content.as_bytes(), signature) {
            return Err(Refusal::BadSignature("the sign does not verify with Alipay's public key".into()));
        }
        Ok(params)
    }

    /// Verifies, then reads the notification about a trade (`notify_type` `trade_status_sync`).
    pub fn parse(&self, body: &[u8]) -> Result<VerifiedEvent, Refusal> {
        let params = self.verify(body)?;
        let one = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let need =
            |name: &str| one(name).filter(|v| !v.is_empty()).ok_or_else(|| Refusal::Malformed(format!("no {name}")));
        let app_id = need("app_id")?;
        if app_id != self.app_id {
            return Err(Refusal::Malformed(format!("app_id {app_id:?} is not ours")));
        }
        if let (Some(ours), Some(theirs)) = (&self.seller_id, one("seller_id"))
            && ours != theirs
        {
            return Err(Refusal::Malformed(format!("seller_id {theirs:?} is not ours")));
        }
        let amount = need("total_amount")?;
        let amount = Fen::parse_yuan(amount)
            .ok_or_else(|| Refusal::Malformed(format!("total_amount {amount:?} is not yuan with two decimals")))?;
        let kind = match need("trade_status")? {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => {
                let at = one("gmt_payment").or(one("notify_time")).unwrap_or_default();
                EventKind::Paid {
                    at: parse_beijing(at)
                        .ok_or_else(|| Refusal::Malformed(format!("gmt_payment {at:?} is not a Beijing time")))?,
                }
            }
            "TRADE_CLOSED" => EventKind::Closed,
            other => return Err(Refusal::Malformed(format!("trade_status {other:?} says nothing to act on"))),
        };
        Ok(VerifiedEvent {
            event_id: need("notify_id")?.to_owned(),
            out_trade_no: need("out_trade_no")?.to_owned(),
            kind,
            amount: Some(amount),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// alipay/alipay-sdk-nodejs-all `test/alipay.test.ts`, "checkNotifySign" › "verify sign should delete
    /// sign_type": the notify public key (V1) given inline there.
    const VECTOR_PUBLIC_KEY: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqObrdC7hrgAVM98tK0nv3hSQRGGKT4lBsQjHiGjeYZjOPIPHR5knm2jnnz/YGIXIofVHkA/tAlBAd5DrY7YpvI4tP5EONLtZKC2ghBMx7McI2wRD0xiqzxOQr1FuhZGJ8/AUokBzJrzY+aGX2xcOrxFYRlFilvVLTXg4LWjR1tdPkO6+i7wQZAIVMClPkwVRZEbaERRHlKqTzv2gGv5rDU8gRoe1LeaN+6BlbTqHWkQcNCUNrA8C6l17XAXGKDsm/9TFWwO8EPHHHCaQdjtV5/FdcWIt+L8SR1ss7EXTjYDFtxcKVv9rEoY1lX8T4mX+GbXfZHraG5NCF1+XioL5JwIDAQAB";

    /// "with sign_type arguments verify success": the parameters exactly as there (`fund_bill_list`, an array in
    /// the test's object, is the JSON text the SDK stringifies it to, which is how Alipay sends it).
    const VERIFIES: &[(&str, &str)] = &[
        ("gmt_create", "2019-08-15 15:56:22"),
        ("charset", "utf-8"),
        ("seller_email", "z97-yuquerevenue@service.aliyun.com"),
        ("subject", "语雀空间 500人规模"),
        (
            "sign",
            "QfTb8tqE1BMhS5qAnXtvsF3/jBkEvu9q9en0pdbBUDDjvKycZhQb7h8GDs4FKfi049PynaNuatxSgLb/nLWZpXyyh0LEWdK2S6Ri7nPwrVgOs08zugLO20vOQz44y3ti2Ncm8/wZts1Fr2gZ7pShnVX3d1B50hbsXnObT1r/U8ONNQjWXd0HIul4TG+Q3fm3svmSvFEy0WnzuhcyHPX5Gm4ELNctL6Qd5YniGJFNcc7kopHYtI/XD9YCKCH6Ct02rzUs9i11C9CsadtZn+WhxF26Dqt9sGEFajkJ8cxUTLi8+VCpLHsgPE8P0y095uQcDdK0YjCh4x7wVSov+lrmOQ==",
        ),
        ("buyer_id", "2088102534368455"),
        ("invoice_amount", "0.10"),
        ("notify_id", "2019081500222155624068450559358070"),
        ("fund_bill_list", r#"[{"amount":"0.10","fundChannel":"ALIPAYACCOUNT"}]"#),
        ("notify_type", "trade_status_sync"),
        ("trade_status", "TRADE_SUCCESS"),
        ("receipt_amount", "0.10"),
        ("buyer_pay_amount", "0.10"),
        ("sign_type", "RSA2"),
        ("app_id", "2019073166072302"),
        ("seller_id", "2088531891668739"),
        ("gmt_payment", "2019-08-15 15:56:24"),
        ("notify_time", "2019-08-15 15:56:25"),
        ("version", "1.0"),
        ("out_trade_no", "20190815155618536-564-57"),
        ("total_amount", "0.10"),
        ("trade_no", "2019081522001468450512505578"),
        ("auth_app_id", "2019073166072302"),
        ("buyer_logon_id", "xud***@126.com"),
        ("point_amount", "0.00"),
    ];

    /// "verify fail": another app's notification, whose sign does not verify with this key.
    const FAILS: &[(&str, &str)] = &[
        ("app_id", "2018121762595097"),
        ("auth_app_id", "2018121762595097"),
        ("buyer_id", "2088512613526436"),
        ("buyer_logon_id", "152****6706"),
        ("buyer_pay_amount", "0.01"),
        ("charset", "utf-8"),
        ("fund_bill_list", r#"[{"amount":"0.01","fundChannel":"PCREDIT"}]"#),
        ("gmt_create", "2019-05-23 14:13:56"),
        ("gmt_payment", "2019-05-23 14:17:13"),
        ("invoice_amount", "0.01"),
        ("notify_id", "2019052300222141714026431019971405"),
        ("notify_time", "2019-05-23 14:17:14"),
        ("notify_type", "trade_status_sync"),
        ("out_trade_no", "tpxy23962362669658"),
        ("point_amount", "0.00"),
        ("receipt_amount", "0.01"),
        ("seller_email", "myapp@alitest.com"),
        ("seller_id", "2088331578818800"),
        (
            "sign",
            "T946S2qyNFAXLhAaRgNMmatxH6SO3MyWYFnTamQOgW1iAcheL/Zz+VoizwvEc6mTEwYewvvKS1wNkMQ1oEajMUHv9+cXQ9IFvU/qKS9Ktvw5xHvCaK0fj7LsVcQ7VxfyT3kSvXUDfKDP4cHSPuSZKwM2ybkzr53bIH9OUTpTQd2d3J0rbdf76OoUt+XF9vwqj7OVE7AGjH2HPWp842DgL/YVy4qeA9N2uFKRevT3YUskjaRxuI/E66reNjTMFhbjEqGLKvMcDD4BaQXnibq9ojAj60589fBwzKk3yWsVQmqGfksMQoheVMtZ3lAw4o2ty3TFngbVFFLwgx8FDpBZ9Q==",
        ),
        ("sign_type", "RSA2"),
        ("subject", "tpxy2222896485"),
        ("total_amount", "0.01"),
        ("trade_no", "111111112019052322001426431037869358"),
        ("trade_status", "TRADE_SUCCESS"),
        ("version", "1.0"),
    ];

    /// The body Alipay would post: the parameters form-encoded.
    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            serializer.append_pair(k, v);
        }
        serializer.finish().into_bytes()
    }

    fn check(app_id: &str) -> NotificationCheck {
        NotificationCheck {
            app_id: app_id.into(),
            seller_id: None,
            public_key: AlipayPublicKey::parse(VECTOR_PUBLIC_KEY).unwrap(),
        }
    }

    #[test]
    fn the_published_notification_verifies_and_reads() {
        let event = check("2019073166072302").parse(&form(VERIFIES)).unwrap();
        assert_eq!(event.event_id, "2019081500222155624068450559358070");
        assert_eq!(event.out_trade_no, "20190815155618536-564-57");
        assert_eq!(event.amount, Fen::from_stored(10));
        assert_eq!(event.kind, EventKind::Paid { at: parse_beijing("2019-08-15 15:56:24").unwrap() });
        assert_eq!(parse_beijing("2019-08-15 15:56:24"), Some(Millis(1_565_855_784_000)), "Beijing is UTC+8");
        // "without sign_type arguments verify success": sign_type is not signed, so it may be absent.
        let without: Vec<_> = VERIFIES.iter().copied().filter(|(k, _)| *k != "sign_type").collect();
        assert!(check("2019073166072302").parse(&form(&without)).is_ok());
        // Percent-encoded as Alipay sends it (`+` for a space): decoded once before the check.
        let raw = String::from_utf8(form(VERIFIES)).unwrap();
        assert!(raw.contains("subject=%E8%AF%AD%E9%9B%80%E7%A9%BA%E9%97%B4+500%E4%BA%BA"), "{raw}");
    }

    #[test]
    fn the_published_negative_case_and_tampering_are_refused() {
        let refused = check("2018121762595097").parse(&form(FAILS));
        assert!(matches!(refused, Err(Refusal::BadSignature(_))), "{refused:?}");
        let tampered: Vec<_> =
            VERIFIES.iter().map(|&(k, v)| if k == "total_amount" { (k, "1000.10") } else { (k, v) }).collect();
        assert!(matches!(check("2019073166072302").parse(&form(&tampered)), Err(Refusal::BadSignature(_))));
        let added: Vec<_> = VERIFIES.iter().copied().chain([("extra", "1")]).collect();
        assert!(matches!(check("2019073166072302").parse(&form(&added)), Err(Refusal::BadSignature(_))));
        let unsigned: Vec<_> = VERIFIES.iter().copied().filter(|(k, _)| *k != "sign").collect();
        assert!(matches!(check("2019073166072302").parse(&form(&unsigned)), Err(Refusal::BadSignature(_))));
        let rsa1: Vec<_> = VERIFIES.iter().map(|&(k, v)| if k == "sign_type" { (k, "RSA") } else { (k, v) }).collect();
        assert!(matches!(check("2019073166072302").parse(&form(&rsa1)), Err(Refusal::BadSignature(_))));
        // Signed, but for another app id than ours, or another seller.
        assert!(matches!(check("2021000000000000").parse(&form(VERIFIES)), Err(Refusal::Malformed(_))));
        let seller = NotificationCheck { seller_id: Some("2088000000000000".into()), ..check("2019073166072302") };
        assert!(matches!(seller.parse(&form(VERIFIES)), Err(Refusal::Malformed(_))));
    }
}
