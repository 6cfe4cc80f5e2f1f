//! The web layer: the JSON API of API.md (with its OpenAPI document), health and metrics, sessions and CSRF.
//!
//! Handlers turn HTTP into parsed input, call one use case of `tuangou-app`, and turn the answer or the
//! [`problem::Problem`] into HTTP. This crate holds no SQL and no business rules.
#![forbid(unsafe_code)]

pub mod api;
pub mod extract;
mod observe;
pub mod openapi;
pub mod problem;
pub mod times;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;
use tokio::net::TcpListener;
use tuangou_app::App;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub metrics: PrometheusHandle,
}

/// The whole HTTP service.
pub fn router(app: App) -> Router {
    let state = AppState { app, metrics: observe::metrics_handle() };
    observe::layers(api::routes().fallback(observe::not_found).method_not_allowed_fallback(observe::method_not_allowed))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
