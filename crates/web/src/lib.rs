//! The web layer: the JSON API of API.md (with its OpenAPI document), health and metrics, sessions and CSRF, the
//! pages, and the server that bounds what each client may hold (`server.rs`) and the headers every answer carries
//! (`security.rs`).
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
pub mod security;
mod server;
pub mod times;

use axum::Router;
use axum::middleware;
use metrics_exporter_prometheus::PrometheusHandle;
pub use server::HttpSettings;
use std::future::Future;
use std::sync::Arc;
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
    /// What the server grants each client, and whether to believe the proxy in front.
    pub http: Arc<HttpSettings>,
}

/// The whole HTTP service; `closing` ends its event streams.
pub fn router(app: App, http: HttpSettings, closing: watch::Receiver<bool>) -> Router {
    let body_timeout = http.body_timeout;
    let state = AppState { app, metrics: observe::metrics_handle(), closing, http: Arc::new(http) };
    let routes = api::routes()
        .merge(pages::routes())
        .fallback(observe::not_found)
        .method_not_allowed_fallback(observe::method_not_allowed)
        .layer(middleware::from_fn(move |request: axum::extract::Request, next: middleware::Next| {
            server::body_deadline(body_timeout, request, next)
        }));
    observe::layers(routes).layer(middleware::from_fn_with_state(state.clone(), security::headers)).with_state(state)
}

/// Serves with the default [`HttpSettings`] until `shutdown` resolves (see [`serve_with`]).
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, HttpSettings::default(), shutdown).await
}

/// Serves until `shutdown` resolves, then ends the event streams and finishes the requests in flight. Clients
/// get what `http` grants them (timeouts, the connection limit: `server.rs`).
pub async fn serve_with(
    listener: TcpListener,
    app: App,
    http: HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (close, closing) = watch::channel(false);
    let router = router(app, http.clone(), closing);
    server::run(listener, router, &http, shutdown, move || {
        let _ = close.send(true);
    })
    .await
}
