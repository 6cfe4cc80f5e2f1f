//! Photos of stores and deals: the owner uploads one as the raw body of a `PUT` (its `Content-Type` one of
//! `image/jpeg`, `image/png`, `image/webp`; no multipart: one file, one request), and everyone reads it from
//! `/media/{sha256}.jpg`. The name is the hash of the stored bytes, so a photo's address never changes meaning:
//! it is served `immutable` for a year with its hash as `ETag`, and a new photo gets a new address.

use crate::AppState;
use crate::api::campaigns::{CampaignBody, campaign_id};
use crate::api::merchants::{MerchantBody, merchant_id};
use crate::extract::{Auth, Path};
use crate::problem::{ApiResult, Problem, ProblemBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tuangou_app::photos::{MAX_BYTES, PhotoUpload, Refusal, UploadType, is_photo_name};

/// The upload's type from `Content-Type` (415 for any other) and its bytes (413 past [`MAX_BYTES`]).
async fn upload_of(request: Request) -> Result<PhotoUpload, Problem> {
    let headers = request.headers();
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| UploadType::from_media_type(v.split(';').next().unwrap_or("")))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send the photo as {}", UploadType::MEDIA_TYPES.join(", ")),
            )
        })?;
    if declared_length(headers).is_some_and(|length| length > DRAINED as u64) {
        return Err(too_large());
    }
    let bytes = bounded_body(request.into_body()).await?;
    Ok(PhotoUpload { kind, bytes })
}

/// How much of a too-large body is still read (and dropped) so that its sender gets the 413 instead of a reset
/// connection; a body declared larger is refused before reading, and the connection closed.
const DRAINED: usize = 2 * MAX_BYTES;

fn too_large() -> Problem {
    Problem::from(tuangou_app::AppError::from(Refusal::TooManyBytes))
}

/// The body's bytes when it has at most [`MAX_BYTES`]; 413 otherwise, once it ended (or passed [`DRAINED`]).
async fn bounded_body(body: axum::body::Body) -> Result<Vec<u8>, Problem> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let (mut kept, mut seen) = (Vec::new(), 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Problem::invalid("", "unreadable_body", "the body could not be read whole"))?;
        seen += chunk.len();
        if seen <= MAX_BYTES {
            kept.extend_from_slice(&chunk);
        } else if seen > DRAINED {
            return Err(too_large());
        }
    }
    if seen > MAX_BYTES { Err(too_large()) } else { Ok(kept) }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Set the store's photo (owner only). The body is the image itself.
#[utoipa::path(put, path = "/api/v1/merchants/{id}/photo", tag = "merchants", operation_id = "put_merchant_photo",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    request_body(description = "The photo: JPEG, PNG or WebP, at most 10 MB and 8000 × 8000 pixels. Stored re-encoded as a JPEG of at most 1200 pixels a side, upright, without its metadata (EXIF, GPS).",
        content((Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "image/webp"))),
    responses((status = 200, body = MerchantBody),
        (status = 400, description = "`invalid_photo`: not an image of the type it was sent as", body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 413, description = "`photo_too_large` (bytes) or `photo_too_many_pixels`", body = ProblemBody),
        (status = 415, description = "not `image/jpeg`, `image/png` or `image/webp`", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn put_merchant_photo(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<axum::Json<MerchantBody>> {
    let id = merchant_id(&id)?;
    let upload = upload_of(request).await?;
    let view = state.app.set_merchant_photo(&caller, &id, upload).await?;
    Ok(axum::Json(view.into()))
}

/// Set a deal's photo (owner only), whatever its status: a photo is presentation, not one of the rules that
/// publishing fixes. The body is the image itself.
#[utoipa::path(put, path = "/api/v1/campaigns/{id}/photo", tag = "campaigns", operation_id = "put_campaign_photo",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    request_body(description = "The photo: JPEG, PNG or WebP, at most 10 MB and 8000 × 8000 pixels. Stored re-encoded as a JPEG of at most 1200 pixels a side, upright, without its metadata (EXIF, GPS).",
        content((Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "image/webp"))),
    responses((status = 200, body = CampaignBody),
        (status = 400, description = "`invalid_photo`: not an image of the type it was sent as", body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 413, description = "`photo_too_large` (bytes) or `photo_too_many_pixels`", body = ProblemBody),
        (status = 415, description = "not `image/jpeg`, `image/png` or `image/webp`", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn put_campaign_photo(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<axum::Json<CampaignBody>> {
    let id = campaign_id(&id)?;
    let upload = upload_of(request).await?;
    let row = state.app.set_campaign_photo(&caller, &id, upload).await?;
    Ok(axum::Json(row.into()))
}

/// A stored photo: `immutable` for a year, its hash as `ETag` (a revalidation with `If-None-Match` is 304).
pub async fn media(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    if !is_photo_name(&name) {
        return Problem::not_found().into_response();
    }
    let etag = format!("\"{}\"", name.trim_end_matches(".jpg"));
    let cache = [
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
        (header::ETAG, HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""))),
    ];
    let revalidating = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    match state.app.photo(&name).await {
        Ok(Some(_)) if revalidating.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) => {
            (StatusCode::NOT_MODIFIED, cache).into_response()
        }
        Ok(Some(bytes)) => {
            (cache, [(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"))], bytes).into_response()
        }
        Ok(None) => Problem::not_found().into_response(),
        Err(error) => Problem::from(error).into_response(),
    }
}
