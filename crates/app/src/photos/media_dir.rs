//! Where photos live: one directory of files named by the SHA-256 of their content (`{64 hex}.jpg`), so a name
//! never changes meaning (readers may cache it for ever) and the same photo uploaded twice is one file. A file is
//! written under a temporary name and renamed into place, so a reader never sees half a photo.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct MediaDir {
    root: PathBuf,
}

/// A stored photo's name: 64 lowercase hex characters and `.jpg`, nothing else (no path can be smuggled in).
pub fn is_photo_name(name: &str) -> bool {
    name.strip_suffix(".jpg")
        .is_some_and(|hash| hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

impl MediaDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores the JPEG and answers its name (the directory is made on first use). Blocking: call it where
    /// blocking is allowed.
    pub fn put(&self, jpeg: &[u8]) -> std::io::Result<String> {
        let name = format!("{}.jpg", hex::encode(Sha256::digest(jpeg)));
        let path = self.root.join(&name);
        if path.exists() {
            return Ok(name);
        }
        std::fs::create_dir_all(&self.root)?;
        // Two uploads of the same photo at once each write their own partial file; the second rename is harmless.
        let partial = self.root.join(format!(".{name}.{}.partial", hex::encode(&crate::random_secret()[..8])));
        std::fs::write(&partial, jpeg)?;
        std::fs::rename(&partial, &path)?;
        Ok(name)
    }

    /// The photo's bytes; `None` for a name that is not a photo's or a file that is not there. Blocking.
    pub fn get(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        if !is_photo_name(name) {
            return Ok(None);
        }
        match std::fs::read(self.root.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_hashes_are_names() {
        assert!(is_photo_name(&format!("{}.jpg", "a1".repeat(32))));
        assert!(!is_photo_name(&format!("{}.jpg", "A1".repeat(32))));
        assert!(!is_photo_name("../../etc/passwd"));
        assert!(!is_photo_name(&format!("{}.png", "a1".repeat(32))));
        assert!(!is_photo_name(&format!("../{}.jpg", "a".repeat(61))));
    }
}
