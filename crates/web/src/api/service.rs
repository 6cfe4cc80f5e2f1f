//! Liveness, readiness, metrics and the OpenAPI document.

use crate::AppState;
use crate::problem::{Problem, ProblemBody};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "alive")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, description = "ready"), (status = 503, body = ProblemBody)))]
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
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// This document.
pub async fn openapi() -> impl IntoResponse {
    axum::Json(crate::openapi::document())
}
