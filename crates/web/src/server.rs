//! The HTTP server: accepting connections, and what it grants each client before it gives up on it.
//!
//! A client may hold a connection, a task and a file descriptor for as long as it likes unless the server says
//! otherwise, so the accept loop is ours rather than `axum::serve`'s: HTTP/1.1 through hyper with its timer, so
//! that a request's headers must arrive within [`HttpSettings::header_timeout`] (hyper starts that clock whenever
//! a connection waits for a request, so it also closes idle kept-alive connections); a request body must arrive
//! whole within [`HttpSettings::body_timeout`] (else 408 and the connection closes); at most
//! [`HttpSettings::max_connections`] connections are served at once, further ones wait in the listen backlog
//! (logged once, and again at most every ten seconds while it lasts); and an accept error such as `EMFILE` is
//! logged and waited out for a second rather than retried at once. Event streams send a comment every
//! [`HttpSettings::event_keep_alive`], so a client that is gone is found by the next write and its stream ends.

use crate::problem::Problem;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// What the server grants each client. The binary reads it from configuration (README, "Configuration").
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// A request's headers must arrive within this, counted from when the connection waits for a request; a
    /// kept-alive connection that sends nothing for this long is closed too.
    pub header_timeout: Duration,
    /// A request's body must arrive whole within this, counted from its headers.
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog until one closes. Keep it well below the
    /// process's open-file limit (`ulimit -n`).
    pub max_connections: usize,
    /// How often an event stream sends a comment when it has nothing to say.
    pub event_keep_alive: Duration,
    /// Believe `X-Forwarded-Proto: https` from the proxy in front (only when every request comes through it):
    /// cookies are then `Secure`. They are anyway when the public URL is `https://`.
    pub trust_forwarded_proto: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
            event_keep_alive: Duration::from_secs(15),
            trust_forwarded_proto: false,
        }
    }
}

/// How often the connection limit is logged at most while it lasts.
const LIMIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves; then `closing` runs (it ends the event streams),
/// the listener closes and the connections finish the requests in flight.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    closing: impl FnOnce(),
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let limit = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(settings.header_timeout).keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut limit_logged: Option<Instant> = None;
    loop {
        let permit = match limit.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if limit_logged.is_none_or(|at| at.elapsed() >= LIMIT_LOG_EVERY) {
                    limit_logged = Some(Instant::now());
                    metrics::counter!("http_connection_limit_reached_total").increment(1);
                    tracing::warn!(
                        %address,
                        max_connections = settings.max_connections,
                        "connection limit reached: new connections wait until one closes"
                    );
                }
                tokio::select! {
                    permit = limit.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors (EMFILE, ENFILE) or memory: retrying at once would spin. Connections
                    // that close meanwhile give some back.
                    tracing::error!(%address, %error, "accept error: waiting a second before accepting again");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            metrics::gauge!("http_connections_open").increment(1.0);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            metrics::gauge!("http_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    closing();
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors of one connection that went away before it was accepted: nothing to wait for.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(error.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// Gives each request body until `timeout` after its headers to arrive whole; a request whose body ran out of
/// time is answered 408 `request_timeout`, and its connection closes.
pub(crate) async fn body_deadline(timeout: Duration, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = tokio::time::Instant::now() + timeout;
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            expired: expired.clone(),
        })
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    let mut response =
        Problem::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request body did not arrive in time")
            .into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
