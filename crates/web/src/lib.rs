//! The web layer: the JSON API of API.md (with its OpenAPI document), health and metrics, sessions and CSRF.
//!
//! Handlers turn HTTP into parsed input, call one use case of `tuangou-app`, and turn the answer or the
//! [`problem::Problem`] into HTTP. This crate holds no SQL and no business rules.
#![forbid(unsafe_code)]

pub mod api;
pub mod extract;
mod observe;
pub mod openapi;
pub mod pages;
pub mod problem;
pub mod times;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tuangou_app::App;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub metrics: PrometheusHandle,
    /// Turns true when the server shuts down: long-lived responses (event streams) end then, so that the
    /// graceful shutdown does not wait for watchers that never leave.
    pub closing: watch::Receiver<bool>,
}

/// The whole HTTP service; `closing` ends its event streams.
pub fn router(app: App, closing: watch::Receiver<bool>) -> Router {
    let state = AppState { app, metrics: observe::metrics_handle(), closing };
    observe::layers(
        api::routes()
            .merge(pages::routes())
            .fallback(observe::not_found)
            .method_not_allowed_fallback(observe::method_not_allowed),
    )
    .with_state(state)
}

/// Serves until `shutdown` resolves, then ends the event streams and finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (close, closing) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = close.send(true);
    };
    axum::serve(listener, router(app, closing).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(signal)
        .await
}
