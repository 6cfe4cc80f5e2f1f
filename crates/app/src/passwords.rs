//! Password hashing with argon2id (the crate's defaults), off the async runtime: a hash takes tens of
//! milliseconds of CPU.

use crate::AppError;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

pub(crate) async fn hash(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let hashed: Result<PasswordHash, _> = Argon2::default().hash_password(password.as_bytes());
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
