//! What every answer tells the browser about itself: a Content-Security-Policy (scripts, styles and everything
//! else only from this site, never inline, never framed), `nosniff`, a Referrer-Policy that keeps addresses on
//! this site, and `Secure` cookies whenever the reader came over HTTPS.
//!
//! Pages hold no inline script, event handler or style attribute (`tests/api/pages.rs` checks every page), so the
//! policy needs no `'unsafe-inline'`. No page is meant to be framed, the big screen included (it runs full-screen
//! in a browser of its own), so `frame-ancestors 'none'` holds everywhere.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of HTML pages: only this site's scripts, styles, images and API; no plugins, no `<base>`, no
/// framing.
pub const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy of everything else (JSON, SVG, scripts, metrics): a document that loads nothing at all.
pub const OTHER_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the security headers to every answer (unless a handler set its own), and `Secure` to its cookies when the
/// request came over HTTPS.
pub(crate) async fn headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let https = came_over_https(&state, request.headers());
    let mut response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    let policy = if is_html { PAGE_POLICY } else { OTHER_POLICY };
    let set = [
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if https {
        secure_cookies(headers);
    }
    response
}

/// Whether the reader reached this service over HTTPS: the public URL says so, or a proxy we were told to trust
/// says so in `X-Forwarded-Proto` (its first value: the protocol the client used).
pub fn came_over_https(state: &AppState, request: &HeaderMap) -> bool {
    if state.app.settings().public_url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
        return true;
    }
    state.http.trust_forwarded_proto
        && request
            .get(HeaderName::from_static("x-forwarded-proto"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Marks every cookie of the answer `Secure` (sent back over HTTPS only).
fn secure_cookies(headers: &mut HeaderMap) {
    let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let secured = match cookie.to_str() {
            Ok(text) if !text.split(';').any(|a| a.trim().eq_ignore_ascii_case("secure")) => {
                HeaderValue::from_str(&format!("{text}; Secure")).ok()
            }
            _ => None,
        };
        headers.append(header::SET_COOKIE, secured.unwrap_or(cookie));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_gain_secure_once() {
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1; Path=/; HttpOnly"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("b=2; Path=/; Secure"));
        secure_cookies(&mut headers);
        let cookies: Vec<&str> = headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(cookies, ["a=1; Path=/; HttpOnly; Secure", "b=2; Path=/; Secure"]);
    }

    #[test]
    fn the_page_policy_allows_nothing_inline() {
        assert!(!PAGE_POLICY.contains("unsafe"));
        assert!(PAGE_POLICY.contains("script-src 'self';") && PAGE_POLICY.contains("frame-ancestors 'none'"));
    }
}
