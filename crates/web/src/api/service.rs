//! Liveness, readiness, metrics and the OpenAPI document.

use crate::AppState;
use crate::problem::{Problem, ProblemBody};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service", operation_id = "healthz",
    responses((status = 200, description = "alive", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "service", operation_id = "readyz",
    responses((status = 200, description = "ready", body = String, content_type = "text/plain"),
        (status = 503, description = "`not_ready`", body = ProblemBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, Problem> {
    if state.app.ready().await {
        Ok("ready")
    } else {
        Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database does not answer, or its writer has stopped",
        ))
    }
}

/// Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "service", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service", operation_id = "openapi",
    responses((status = 200, description = "this document", body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    axum::Json(crate::openapi::document())
}
