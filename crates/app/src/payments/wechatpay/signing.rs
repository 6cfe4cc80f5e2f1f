//! WeChat Pay API v3's cryptography, all through `ring` (constant time; no private-key operation through the
//! `rsa` crate, RUSTSEC-2023-0071): SHA256withRSA (PKCS#1 v1.5) signing with the merchant's private key,
//! verification with a platform certificate's or the WeChat Pay public key's RSA key, chosen by serial, and
//! AEAD_AES_256_GCM decryption with the APIv3 key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey};
use x509_parser::prelude::FromDer;

/// The merchant's API private key (PKCS#8 `PRIVATE KEY`, or PKCS#1 `RSA PRIVATE KEY`, PEM). `Debug` hides it.
pub struct MerchantKey(RsaKeyPair);

impl std::fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MerchantKey(…)")
    }
}

/// The PEM blocks of `text`: (label, DER).
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut blocks = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
        let pem = pem.map_err(|_| "not PEM text".to_owned())?;
        blocks.push((pem.label, pem.contents));
    }
    if blocks.is_empty() {
        return Err("no PEM block found".into());
    }
    Ok(blocks)
}

impl MerchantKey {
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let (label, der) = pem_blocks(text)?.into_iter().next().ok_or("no PEM block")?;
        let key = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            other => return Err(format!("a {other:?} PEM block is not an RSA private key")),
        }
        .map_err(|error| format!("not a usable RSA private key: {error}"))?;
        Ok(Self(key))
    }

    /// SHA256withRSA of `message`, base64.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut signature = vec![0; self.0.public().modulus_len()];
        // Signing with a parsed key into a buffer of the modulus' length only fails if the RNG does (it is not
        // used by PKCS#1 v1.5 padding beyond blinding); that would be a broken system.
        self.0.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature).expect("RSA signing");
        BASE64.encode(signature)
    }
}

/// A key that WeChat Pay signs with: a platform certificate's (by the certificate's serial number) or the
/// WeChat Pay public key (by its id, `PUB_KEY_ID_…`).
#[derive(Clone)]
pub struct PlatformKey {
    /// What `Wechatpay-Serial` names it by (upper-case hex for a certificate, the id for a public key).
    pub serial: String,
    /// PKCS#1 `RSAPublicKey` DER.
    public_key: Vec<u8>,
    /// The certificate's end of validity (Unix seconds), when it is a certificate.
    pub not_after: Option<i64>,
}

impl std::fmt::Debug for PlatformKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformKey").field("serial", &self.serial).finish()
    }
}

impl PlatformKey {
    /// Every certificate in `text` (PEM, one or more `CERTIFICATE` blocks), each named by its serial number.
    pub fn certificates(text: &str) -> Result<Vec<Self>, String> {
        let mut keys = Vec::new();
        for (label, der) in pem_blocks(text)? {
            if label != "CERTIFICATE" {
                return Err(format!("a {label:?} PEM block is not a certificate"));
            }
            let (_, cert) = x509_parser::parse_x509_certificate(&der)
                .map_err(|error| format!("not an X.509 certificate: {error}"))?;
            let serial: String = hex::encode_upper(cert.tbs_certificate.raw_serial());
            let serial = serial.trim_start_matches("00").to_owned();
            keys.push(Self {
                serial,
                public_key: cert.public_key().subject_public_key.data.to_vec(),
                not_after: Some(cert.validity().not_after.timestamp()),
            });
        }
        Ok(keys)
    }

    /// The WeChat Pay public key (`PUBLIC KEY` PEM, SubjectPublicKeyInfo) with its id.
    pub fn public_key(id: &str, text: &str) -> Result<Self, String> {
        let (label, der) = pem_blocks(text)?.into_iter().next().ok_or("no PEM block")?;
        if label != "PUBLIC KEY" {
            return Err(format!("a {label:?} PEM block is not a public key"));
        }
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&der)
            .map_err(|error| format!("not a SubjectPublicKeyInfo: {error}"))?;
        Ok(Self { serial: id.trim().to_owned(), public_key: spki.subject_public_key.data.to_vec(), not_after: None })
    }

    /// Whether `signature` (base64) is this key's SHA256withRSA signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(signature) = BASE64.decode(signature.trim()) else { return false };
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.public_key).verify(message, &signature).is_ok()
    }
}

/// The keys WeChat Pay may sign with, by serial: every configured platform certificate and the WeChat Pay
/// public key, all at once (a switch-over from certificates to the public key signs with either).
#[derive(Clone, Debug, Default)]
pub struct PlatformKeys(Vec<PlatformKey>);

impl PlatformKeys {
    pub fn new(keys: Vec<PlatformKey>) -> Self {
        Self(keys)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key `Wechatpay-Serial` names (certificate serials compared without case and leading zeros).
    pub fn by_serial(&self, serial: &str) -> Option<&PlatformKey> {
        let serial = serial.trim();
        let wanted = serial.trim_start_matches('0');
        self.0.iter().find(|k| {
            k.serial == serial
                || (k.not_after.is_some() && k.serial.trim_start_matches('0').eq_ignore_ascii_case(wanted))
        })
    }

    /// Whether the key named `serial` signed `timestamp\nnonce\nbody\n` as `signature`. An unknown serial, a
    /// certificate past its end at `now_seconds`, or a bad signature: `Err` with why (no secret in it).
    pub fn verify(
        &self,
        serial: &str,
        timestamp: &str,
        nonce: &str,
        body: &[u8],
        signature: &str,
        now_seconds: i64,
    ) -> Result<(), String> {
        let key = self.by_serial(serial).ok_or_else(|| format!("unknown serial {serial:?}"))?;
        if key.not_after.is_some_and(|end| now_seconds > end) {
            return Err(format!("the platform certificate {serial} has expired"));
        }
        if key.verifies(&signed_message(&[timestamp.as_bytes(), nonce.as_bytes(), body]), signature) {
            Ok(())
        } else {
            Err("the signature does not verify".into())
        }
    }
}

/// Lines joined the way WeChat Pay signs them: each followed by `\n`.
pub fn signed_message(lines: &[&[u8]]) -> Vec<u8> {
    let mut message = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        message.extend_from_slice(line);
        message.push(b'\n');
    }
    message
}

/// The APIv3 key: 32 bytes, the AES-256-GCM key of notifications and certificates. `Debug` hides it.
#[derive(Clone)]
pub struct ApiV3Key([u8; 32]);

impl std::fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiV3Key(…)")
    }
}

impl ApiV3Key {
    /// The key as WeChat Pay's merchant platform shows it: 32 characters, used as their bytes.
    pub fn new(text: &str) -> Result<Self, String> {
        let bytes: [u8; 32] =
            text.as_bytes().try_into().map_err(|_| format!("must be 32 bytes, not {}", text.len()))?;
        Ok(Self(bytes))
    }

    /// AEAD_AES_256_GCM: `ciphertext` (base64, the tag at its end) opened with `nonce` (12 bytes) and
    /// `associated_data`. Any tampering, another key or another nonce: `Err`.
    pub fn decrypt(&self, associated_data: &str, nonce: &str, ciphertext: &str) -> Result<Vec<u8>, String> {
        aead_open(&self.0, associated_data, nonce, ciphertext)
    }

    /// The other way (the fake provider and the tests encrypt as WeChat Pay does): base64 of ciphertext + tag.
    pub fn encrypt(&self, associated_data: &str, nonce: &str, plaintext: &[u8]) -> Result<String, String> {
        aead_seal(&self.0, associated_data, nonce, plaintext)
    }
}

/// AES-GCM with a 32-byte key (AES-256, as WeChat Pay's APIv3 key) or a 16-byte one (AES-128, as Go's
/// `crypto/aes` runs the 16-character key of wechatpay-go's published notification vector).
fn aead_key(key: &[u8]) -> Result<ring::aead::LessSafeKey, String> {
    let algorithm = match key.len() {
        32 => &ring::aead::AES_256_GCM,
        16 => &ring::aead::AES_128_GCM,
        other => return Err(format!("an AES key is 16 or 32 bytes, not {other}")),
    };
    let key = ring::aead::UnboundKey::new(algorithm, key).map_err(|_| "not an AES key".to_owned())?;
    Ok(ring::aead::LessSafeKey::new(key))
}

pub(super) fn aead_open(key: &[u8], associated_data: &str, nonce: &str, ciphertext: &str) -> Result<Vec<u8>, String> {
    let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce.as_bytes())
        .map_err(|_| "the nonce is not 12 bytes".to_owned())?;
    let mut buffer = BASE64.decode(ciphertext).map_err(|_| "the ciphertext is not base64".to_owned())?;
    let plain = aead_key(key)?
        .open_in_place(nonce, ring::aead::Aad::from(associated_data.as_bytes()), &mut buffer)
        .map_err(|_| "the ciphertext does not decrypt (tampered, or another key)".to_owned())?;
    Ok(plain.to_vec())
}

fn aead_seal(key: &[u8], associated_data: &str, nonce: &str, plaintext: &[u8]) -> Result<String, String> {
    let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce.as_bytes())
        .map_err(|_| "the nonce is not 12 bytes".to_owned())?;
    let mut buffer = plaintext.to_vec();
    aead_key(key)?
        .seal_in_place_append_tag(nonce, ring::aead::Aad::from(associated_data.as_bytes()), &mut buffer)
        .map_err(|_| "cannot encrypt".to_owned())?;
    Ok(BASE64.encode(buffer))
}

/// A random nonce of `len` upper-case letters and digits.
pub fn nonce(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = vec![0_u8; len];
    SystemRandom::new().fill(&mut bytes).expect("the system's random source");
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// Who signs our requests: the merchant (`mchid`, the service provider's in partner mode), its API key and that
/// key's certificate serial.
#[derive(Debug)]
pub struct RequestSigner {
    pub mchid: String,
    pub serial: String,
    pub key: MerchantKey,
}

impl RequestSigner {
    /// The `Authorization` header of a request: `WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
    /// signature="…",timestamp="…",serial_no="…"` over `METHOD\nURL\ntimestamp\nnonce\nbody\n` (URL: the path
    /// and query).
    pub fn authorization(
        &self,
        method: &str,
        path_and_query: &str,
        timestamp: i64,
        nonce_str: &str,
        body: &[u8],
    ) -> String {
        let timestamp = timestamp.to_string();
        let message = signed_message(&[
            method.as_bytes(),
            path_and_query.as_bytes(),
            timestamp.as_bytes(),
            nonce_str.as_bytes(),
            body,
        ]);
        let signature = self.key.sign(&message);
        format!(
            "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{nonce_str}\",signature=\"{signature}\",\
             timestamp=\"{timestamp}\",serial_no=\"{}\"",
            self.mchid, self.serial
        )
    }
}
