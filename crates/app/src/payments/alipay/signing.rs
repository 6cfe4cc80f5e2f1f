//! RSA2 (RSA-SHA256, PKCS#1 v1.5) as Alipay's OpenAPI uses it, through aws-lc-rs (maintained, constant-time;
//! never the `rsa` crate, RUSTSEC-2023-0071).
//!
//! - The text signed is [`sign_content`]: the parameters sorted by key, empty values left out, joined as
//!   `k=v&k=v` with the values as they are (not URL-encoded).
//! - Our requests are signed with the app's private key ([`AppKey`]); Alipay's answers and notifications are
//!   verified with Alipay's public key ([`AlipayPublicKey`]). Signatures travel in standard base64.
//! - Keys come as Alipay's tools hand them out: PEM (`-----BEGIN … KEY-----`) or the bare base64 body without
//!   headers; a private key in PKCS#8 or PKCS#1, a public key as SubjectPublicKeyInfo or PKCS#1.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, RsaKeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

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
        let mut signature = vec![0; self.0.public_modulus_len()];
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
    /// SubjectPublicKeyInfo or PKCS#1, PEM or bare base64; checked to be an RSA public key of 2048 bits or more.
    pub fn parse(text: &str) -> Result<Self, String> {
        let der = key_der(text).ok_or("not PEM or base64 text")?;
        aws_lc_rs::rsa::PublicKey::from_der(&der).map_err(|error| format!("not an RSA public key ({error})")).and_then(
            |key| match key.modulus_len() {
                n if n >= 256 => Ok(Self(der)),
                n => Err(format!("an RSA key of {} bits: RSA2 needs 2048 or more", n * 8)),
            },
        )
    }

    /// Whether `signature` (standard base64) is the RSA-SHA256 signature of `content`.
    pub fn verifies(&self, content: &[u8], signature: &str) -> bool {
        let Ok(signature) = STANDARD.decode(signature.trim()) else { return false };
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.0).verify(content, &signature).is_ok()
    }
}

/// A fresh RSA-2048 key pair as Alipay's key tool writes it: the private key as bare base64 PKCS#8, the public
/// key as bare base64 SubjectPublicKeyInfo. For tests and fakes (production keys come from the configuration).
pub fn generate_key_pair() -> Result<(String, String), String> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
    use aws_lc_rs::signature::KeyPair as _;
    let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| "RSA key generation failed")?;
    let private = AsDer::<Pkcs8V1Der>::as_der(&pair).map_err(|_| "PKCS#8 encoding failed")?;
    let public = AsDer::<PublicKeyX509Der>::as_der(pair.public_key()).map_err(|_| "SPKI encoding failed")?;
    Ok((STANDARD.encode(private.as_ref()), STANDARD.encode(public.as_ref())))
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
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair as _;

    #[test]
    fn keys_are_read_with_or_without_pem_armour_and_sign_what_they_verify() {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = STANDARD.encode(AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap().as_ref());
        let spki = STANDARD
            .encode(AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key()).unwrap().as_ref());
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", {
            let mut wrapped = String::new();
            for (i, c) in pkcs8.chars().enumerate() {
                if i > 0 && i % 64 == 0 {
                    wrapped.push('\n');
                }
                wrapped.push(c);
            }
            wrapped
        });
        let bare = AppKey::parse(&pkcs8).unwrap();
        let armoured = AppKey::parse(&pem).unwrap();
        let public = AlipayPublicKey::parse(&spki).unwrap();
        let public_pem =
            AlipayPublicKey::parse(&format!("-----BEGIN PUBLIC KEY-----\n{spki}\n-----END PUBLIC KEY-----"));
        let content = sign_content([("b", "2"), ("a", "1"), ("empty", ""), ("c", "中文 & =")]);
        assert_eq!(content, "a=1&b=2&c=中文 & =");
        for key in [&bare, &armoured] {
            let signature = key.sign(&content).unwrap();
            assert!(public.verifies(content.as_bytes(), &signature));
            assert!(public_pem.as_ref().unwrap().verifies(content.as_bytes(), &signature));
            assert!(!public.verifies(b"a=1&b=3", &signature), "another text");
            assert!(!public.verifies(content.as_bytes(), "not base64!"), "not base64");
        }
        // PKCS#1 (`BEGIN RSA PRIVATE KEY`, Alipay's tool's default): the RSAPrivateKey inside the PKCS#8 wrapping.
        let der = STANDARD.decode(&pkcs8).unwrap();
        assert_eq!((der[22], der[23]), (0x04, 0x82), "a 2048-bit PKCS#8 key: the RSAPrivateKey octet string at 22");
        let pkcs1 = AppKey::parse(&STANDARD.encode(&der[26..])).unwrap();
        assert!(public.verifies(content.as_bytes(), &pkcs1.sign(&content).unwrap()));
        assert_eq!(format!("{bare:?} {public:?}"), "AppKey(…) AlipayPublicKey(…)");
        assert!(AppKey::parse("MIIB").is_err());
        assert!(AppKey::parse(&spki).is_err(), "a public key is not a private key");
        assert!(AlipayPublicKey::parse("hello").is_err());
    }
}
