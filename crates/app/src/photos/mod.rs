//! Photos of stores and deals (issue 18): the owner uploads one, we re-encode it (`reencode`: limits, upright,
//! shrunk, metadata gone) and keep it under its content's hash in the media directory (`media_dir`); the row
//! names the file. A deal's photo is presentation, not one of its rules, so it may change after publishing
//! (SPEC.md's immutability covers what customers agreed to: price, odds, reward, dates).
//!
//! Order of work: the caller's right is checked first, then the upload is decoded and stored, then the row is
//! pointed at it. A refused upload stores nothing; a file whose row update then fails is only an unused file.

mod media_dir;
mod reencode;

pub use media_dir::{MediaDir, is_photo_name};
pub use reencode::{MAX_BYTES, MAX_SIDE, Refusal, STORED_SIDE, UploadType, reencode};

use crate::{App, AppError, AppResult, Caller, MerchantView};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tuangou_domain::Invalid;
use tuangou_domain::ids::{CampaignId, MerchantId};
use tuangou_store::CampaignRow;

/// The media directory and the decoders' gate: one decode per core at a time, so memory stays bounded by
/// cores × the decoder's allowance however many uploads arrive together.
#[derive(Clone)]
pub(crate) struct Photos {
    dir: MediaDir,
    decoding: Arc<Semaphore>,
}

impl Photos {
    pub(crate) fn new(dir: MediaDir) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { dir, decoding: Arc::new(Semaphore::new(cores)) }
    }
}

/// An upload as received: its declared type and its bytes.
pub struct PhotoUpload {
    pub kind: UploadType,
    pub bytes: Vec<u8>,
}

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::TooManyBytes => AppError::PayloadTooLarge(
                "photo_too_large",
                format!("a photo may have at most {} MB", MAX_BYTES / (1024 * 1024)),
            ),
            Refusal::TooManyPixels { width, height } => AppError::PayloadTooLarge(
                "photo_too_many_pixels",
                format!("a photo may be at most {MAX_SIDE} × {MAX_SIDE} pixels (this one declares {width} × {height})"),
            ),
            Refusal::NotAnImage => AppError::Invalid(Invalid::with_code(
                "photo",
                "invalid_photo",
                "not a JPEG, PNG or WebP image of the type it was sent as",
            )),
        }
    }
}

impl App {
    /// Decodes, re-encodes and stores an upload; answers the stored file's name.
    async fn store_photo(&self, upload: PhotoUpload) -> AppResult<String> {
        if upload.bytes.len() > MAX_BYTES {
            return Err(Refusal::TooManyBytes.into());
        }
        let _turn = self.photos.decoding.acquire().await.map_err(|e| AppError::Internal(e.to_string()))?;
        let dir = self.photos.dir.clone();
        tokio::task::spawn_blocking(move || -> AppResult<String> {
            let photo = reencode(&upload.bytes, upload.kind)?;
            dir.put(&photo.jpeg).map_err(|e| AppError::Internal(format!("storing a photo: {e}")))
        })
        .await
        .map_err(|e| AppError::Internal(format!("a photo's re-encoding stopped: {e}")))?
    }

    /// The owner sets the store's photo.
    pub async fn set_merchant_photo(
        &self,
        caller: &Caller,
        merchant: &MerchantId,
        upload: PhotoUpload,
    ) -> AppResult<MerchantView> {
        self.require_owner(caller, merchant).await?;
        let name = self.store_photo(upload).await?;
        let row = self
            .store
            .set_merchant_photo(merchant, &name)
            .await?
            .ok_or(AppError::NotFound("unknown_merchant", "no such merchant"))?;
        Ok(self.merchant_view(row))
    }

    /// The owner sets a deal's photo, in any status: presentation, not a rule.
    pub async fn set_campaign_photo(
        &self,
        caller: &Caller,
        campaign: &CampaignId,
        upload: PhotoUpload,
    ) -> AppResult<CampaignRow> {
        self.owned_campaign(caller, campaign).await?;
        let name = self.store_photo(upload).await?;
        self.store.set_campaign_photo(campaign, &name).await?.ok_or_else(AppError::not_found)
    }

    /// A stored photo's bytes (JPEG); `None` for an unknown name.
    pub async fn photo(&self, name: &str) -> AppResult<Option<Vec<u8>>> {
        let (dir, name) = (self.photos.dir.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || dir.get(&name))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| AppError::Internal(format!("reading a photo: {e}")))
    }

    /// Where a stored photo is served, on this site: `/media/{name}`.
    pub fn photo_path(name: &str) -> String {
        format!("/media/{name}")
    }
}
