//! RSA2 (RSA-SHA256, PKCS#1 v1.5) as Alipay's OpenAPI uses it, through ring (maintained, constant-time, the
//! workspace's one crypto library; never the `rsa` crate, RUSTSEC-2023-0071).
//!
//! - The text signed is [`sign_content`]: the parameters sorted by key, empty values left out, joined as
//!   `k=v&k=v` with the values as they are (not URL-encoded).
//! - Our requests are signed with the app's private key ([`AppKey`]); Alipay's answers and notifications are
//!   verified with Alipay's public key ([`AlipayPublicKey`]). Signatures travel in standard base64.
//! - Keys come as Alipay's tools hand them out: PEM (`-----BEGIN … KEY-----`) or the bare base64 body without
//!   headers; a private key in PKCS#8 or PKCS#1, Alipay's public key as SubjectPublicKeyInfo.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use x509_parser::prelude::FromDer;

/// The DER inside a key's text: PEM armour and whitespace dropped, the rest standard base64.
fn key_der(text: &str) -> Option<Vec<u8>> {
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("-----"))
        .collect::<String>()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok().filter(|der| !der.is_empty())
}

/// The app's private key (应用私钥). `Debug` never shows it.
pub struct AppKey(RsaKeyPair);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey(…)")
    }
}

impl AppKey {
    /// PKCS#8 or PKCS#1, PEM or bare base64. The error never quotes the key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let der = key_der(text).ok_or("not PEM or base64 text")?;
        RsaKeyPair::from_pkcs8(&der)
            .or_else(|_| RsaKeyPair::from_der(&der))
            .map(Self)
            .map_err(|error| format!("not an RSA private key in PKCS#8 or PKCS#1 ({error})"))
    }

    /// The RSA-SHA256 signature of `content`, standard base64.
    pub fn sign(&self, content: &str) -> Result<String, String> {
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), content.as_bytes(), &mut signature)
            .map_err(|_| "RSA signing failed".to_owned())?;
        Ok(STANDARD.encode(signature))
    }
}

/// Alipay's public key (支付宝公钥), which signs its answers and notifications.
#[derive(Clone)]
pub struct AlipayPublicKey(Vec<u8>);

impl std::fmt::Debug for AlipayPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlipayPublicKey(…)")
    }
}

impl AlipayPublicKey {
    /// SubjectPublicKeyInfo (what Alipay hands out), PEM or bare base64; checked to be an RSA public key of 2048
    /// bits or more. Kept as the RSAPublicKey inside, which is what ring verifies with.
    pub fn parse(text: &str) -> Result<Self, String> {
        let der = key_der(text).ok_or("not PEM or base64 text")?;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&der)
            .map_err(|_| "not a public key (SubjectPublicKeyInfo)".to_owned())?;
        match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) if rsa.key_size() >= 2048 => {
                Ok(Self(spki.subject_public_key.data.to_vec()))
            }
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                Err(format!("an RSA key of {} bits: RSA2 needs 2048 or more", rsa.key_size()))
            }
            _ => Err("not an RSA public key".into()),
        }
    }

    /// Whether `signature` (standard base64) is the RSA-SHA256 signature of `content`.
    pub fn verifies(&self, content: &[u8], signature: &str) -> bool {
        let Ok(signature) = STANDARD.decode(signature.trim()) else { return false };
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.0).verify(content, &signature).is_ok()
    }
}

/// The text RSA2 signs: `pairs` sorted by key, those with an empty value left out, joined as `k=v&k=v`.
pub fn sign_content<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test-only keys made once with openssl (`crates/app/tests/fixtures/alipay/README.md`).
    const APP_PKCS1: &str = include_str!("../../../tests/fixtures/alipay/test_app_private_key_pkcs1.txt");
    const APP_PUBLIC: &str = include_str!("../../../tests/fixtures/alipay/test_app_public_key.txt");
    const OTHER_PKCS8_PEM: &str = include_str!("../../../tests/fixtures/alipay/test_alipay_private_key.pem");
    const OTHER_PUBLIC: &str = include_str!("../../../tests/fixtures/alipay/test_alipay_public_key.txt");

    /// PEM lines of 64 characters around a bare base64 body.
    fn pem(label: &str, bare: &str) -> String {
        let lines: Vec<String> = bare.as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    #[test]
    fn keys_are_read_with_or_without_pem_armour_and_sign_what_they_verify() {
        let bare_pkcs1 = AppKey::parse(APP_PKCS1).unwrap();
        let pem_pkcs1 = AppKey::parse(&pem("RSA PRIVATE KEY", APP_PKCS1)).unwrap();
        let public = AlipayPublicKey::parse(APP_PUBLIC).unwrap();
        let public_pem = AlipayPublicKey::parse(&pem("PUBLIC KEY", APP_PUBLIC)).unwrap();
        let content = sign_content([("b", "2"), ("a", "1"), ("empty", ""), ("c", "中文 & =")]);
        assert_eq!(content, "a=1&b=2&c=中文 & =");
        for key in [&bare_pkcs1, &pem_pkcs1] {
            let signature = key.sign(&content).unwrap();
            assert!(public.verifies(content.as_bytes(), &signature));
            assert!(public_pem.verifies(content.as_bytes(), &signature));
            assert!(!public.verifies(b"a=1&b=3", &signature), "another text");
            assert!(!public.verifies(content.as_bytes(), "not base64!"), "not base64");
        }
        // PKCS#8, PEM and bare; another key's signature does not verify.
        let pkcs8 = AppKey::parse(OTHER_PKCS8_PEM).unwrap();
        let bare_pkcs8: String = OTHER_PKCS8_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
        let other_public = AlipayPublicKey::parse(OTHER_PUBLIC).unwrap();
        for key in [&pkcs8, &AppKey::parse(&bare_pkcs8).unwrap()] {
            let signature = key.sign(&content).unwrap();
            assert!(other_public.verifies(content.as_bytes(), &signature));
            assert!(!public.verifies(content.as_bytes(), &signature), "another key");
        }
        assert_eq!(format!("{bare_pkcs1:?} {public:?}"), "AppKey(…) AlipayPublicKey(…)");
        assert!(AppKey::parse("MIIB").is_err());
        assert!(AppKey::parse(APP_PUBLIC).is_err(), "a public key is not a private key");
        assert!(AlipayPublicKey::parse("hello").is_err());
        assert!(AlipayPublicKey::parse(APP_PKCS1).is_err(), "a private key is not Alipay's public key");
    }
}
