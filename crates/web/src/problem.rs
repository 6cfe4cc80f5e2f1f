//! Errors as `application/problem+json` (RFC 9457) with the stable `code` API.md promises, mapped in one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tuangou_app::AppError;

/// An error answer. Every failing handler returns one of these. Boxed: errors are rare, and a small `Result`
/// keeps the happy path cheap.
#[derive(Debug, Clone)]
pub struct Problem(Box<ProblemBody>);

/// The body of every error answer (`application/problem+json`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody {
    /// A URI naming the problem: `urn:tuangou:problem:{code}`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, snake_case: what clients branch on.
    pub code: String,
    /// The offending field of the request, as the API spells it (`reward.amount`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemBody {
            type_: format!("urn:tuangou:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            field: None,
            retry_after: None,
        }))
    }

    /// 400 for a request that is malformed or out of range, naming the field.
    pub fn invalid(field: impl Into<String>, code: &str, detail: impl Into<String>) -> Self {
        let mut problem = Self::new(StatusCode::BAD_REQUEST, code, detail);
        let field = field.into();
        problem.0.field = (!field.is_empty()).then_some(field);
        problem
    }

    /// 429 with a `Retry-After` header.
    pub fn throttled(retry_after_seconds: u64) -> Self {
        let mut problem = Self::new(StatusCode::TOO_MANY_REQUESTS, "throttled", "too many attempts: wait and retry");
        problem.0.retry_after = Some(retry_after_seconds.max(1));
        problem
    }

    /// 503 `overloaded` with a `Retry-After` header: the service is busy, the request changed nothing.
    pub fn overloaded() -> Self {
        let mut problem =
            Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "the service is busy: retry in a moment");
        problem.0.retry_after = Some(1);
        problem
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The body as JSON text (to store it as an idempotent answer).
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    /// The human-readable explanation.
    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    /// The stable code (`group_full`).
    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// The offending field, when the problem names one.
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
}

impl From<AppError> for Problem {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid(invalid) => Problem::invalid(invalid.field, invalid.code, invalid.message),
            AppError::NotSignedIn => Problem::new(StatusCode::UNAUTHORIZED, "not_signed_in", error.to_string()),
            AppError::BadCredentials => Problem::new(StatusCode::UNAUTHORIZED, "bad_credentials", error.to_string()),
            AppError::Unauthenticated(code, message) => Problem::new(StatusCode::UNAUTHORIZED, code, message),
            AppError::ProviderUnavailable(cause) => {
                tracing::warn!(%cause, "a payment provider is unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider_unavailable",
                    "the payment provider did not answer: try again shortly",
                )
            }
            AppError::Forbidden(code, message) => Problem::new(StatusCode::FORBIDDEN, code, message),
            AppError::NotFound(code, message) => Problem::new(StatusCode::NOT_FOUND, code, message),
            AppError::Conflict(code, message) => Problem::new(StatusCode::CONFLICT, code, message),
            AppError::Throttled(seconds) => Problem::throttled(seconds),
            AppError::Overloaded => Problem::overloaded(),
            AppError::Gone(message) => Problem::new(StatusCode::GONE, "expired", message),
            AppError::IdempotencyKeyReused => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", error.to_string())
            }
            AppError::PayloadTooLarge(code, message) => Problem::new(StatusCode::PAYLOAD_TOO_LARGE, code, message),
            AppError::InsufficientFunds => {
                Problem::new(StatusCode::PAYMENT_REQUIRED, "insufficient_funds", error.to_string())
            }
            AppError::Internal(cause) => {
                // The cause is logged once, here; the client learns nothing about our internals.
                tracing::error!(%cause, "internal error");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side")
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.0.retry_after;
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, Problem>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy writer is the service's state, not the request's fault: 503 `overloaded` as problem+json, with
    /// `Retry-After`, so clients back off and retry.
    #[test]
    fn overloaded_answers_503_with_retry_after() {
        let response = Problem::from(AppError::Overloaded).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let headers = response.headers();
        assert_eq!(headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("1"));
        assert_eq!(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("application/problem+json"));
        assert!(Problem::from(AppError::Overloaded).body_json().contains("\"code\":\"overloaded\""));
    }
}
