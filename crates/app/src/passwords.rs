//! Password hashing with argon2id (the crate's defaults), off the async runtime: a hash takes tens of
//! milliseconds of CPU.

use crate::AppError;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

/// How much work a new password hash costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasswordCost {
    /// argon2id with the crate's (OWASP's) defaults: 19 MiB, 2 passes. For every real deployment.
    #[default]
    Standard,
    /// argon2id at its minimum (8 KiB, 1 pass): for test suites that sign up hundreds of customers. Verifying
    /// reads the cost from the stored hash, so both kinds verify alike.
    Minimal,
}

fn hasher(cost: PasswordCost) -> Argon2<'static> {
    match cost {
        PasswordCost::Standard => Argon2::default(),
        PasswordCost::Minimal => Params::new(Params::MIN_M_COST, Params::MIN_T_COST, 1, None)
            .map(|params| Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
            .unwrap_or_default(),
    }
}

pub(crate) async fn hash(password: String, cost: PasswordCost) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let hashed: Result<PasswordHash, _> = hasher(cost).hash_password(password.as_bytes());
        hashed.map(|h| h.to_string()).map_err(|e| AppError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
}

/// Whether `password` matches `stored`. A malformed stored hash counts as no match.
pub(crate) async fn verify(password: String, stored: String) -> Result<bool, AppError> {
    tokio::task::spawn_blocking(move || Argon2::default().verify_password(password.as_bytes(), stored.as_str()).is_ok())
        .await
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// A hash that no password matches, verified against when the phone is unknown so that signing in takes as long
/// for an unknown phone as for a wrong password.
pub(crate) const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Yl3ReICDeBNFCE/TZK7gc6HEmKYyTtQqiZN8DqKKAc";
