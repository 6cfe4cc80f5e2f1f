//! How a voucher's code is kept secret from the database itself.
//!
//! The store keeps only a keyed hash of each code (`lookup_hash`), so a database dump holds no redeemable code.
//! The owner is shown their code again by deriving it from the voucher's id with the same server secret
//! (`code_for`), so the code itself is never stored either. Without the secret, neither can be computed; the
//! secret lives outside the database (a file made on first run, or the operator's configuration).

use crate::voucher_code::VoucherCode;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The server secret: 32 random bytes. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSecret([u8; 32]);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(…)")
    }
}

impl ServerSecret {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// 64 hex characters, as kept in the secret file or configuration.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, purpose: &str, data: &str) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"|");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The code of the voucher with this id.
    pub fn code_for(&self, voucher_id: &str) -> VoucherCode {
        let digest = self.mac("tuangou-voucher-code", voucher_id);
        let mut random = [0u8; 8];
        random.copy_from_slice(&digest[..8]);
        VoucherCode::generate_from(random)
    }

    /// What the store keeps to find a voucher by its code.
    pub fn lookup_hash(&self, code: &VoucherCode) -> String {
        hex::encode(self.mac("tuangou-voucher-lookup", &code.canonical()))
    }

    /// A stable stand-in for `data` that the store may keep where `data` itself should not be (a phone number
    /// or a client's address in a throttle's key): the same for the same `purpose` and `data`, and without the
    /// secret, neither computable nor reversible (phone numbers are few enough to try them all).
    pub fn pseudonym(&self, purpose: &str, data: &str) -> String {
        hex::encode(&self.mac(purpose, data)[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_derived_and_hashed_with_the_secret() {
        let secret = ServerSecret::from_bytes([7; 32]);
        let other = ServerSecret::from_bytes([8; 32]);
        let code = secret.code_for("voucher-1");
        assert_eq!(code, secret.code_for("voucher-1"), "the owner is shown the same code every time");
        assert_ne!(code, secret.code_for("voucher-2"));
        assert_ne!(code, other.code_for("voucher-1"));
        let typed = VoucherCode::parse(&code.display().to_lowercase()).unwrap();
        assert_eq!(secret.lookup_hash(&typed), secret.lookup_hash(&code));
        assert_ne!(secret.lookup_hash(&code), other.lookup_hash(&code));
        assert!(!secret.lookup_hash(&code).contains(&code.canonical()));
        assert_eq!(ServerSecret::from_hex(&secret.to_hex()), Some(secret.clone()));
        assert_eq!(format!("{secret:?}"), "ServerSecret(…)");
    }
}
