//! Extractors that turn every malformed request into a 400 problem naming the field, and find the caller.

use crate::AppState;
use crate::problem::Problem;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use serde::de::DeserializeOwned;
use tuangou_app::{Caller, csrf_token_for};

/// The largest JSON body accepted. Every body of the API fits in a few kilobytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The session cookie of the pages (HttpOnly) and the CSRF cookie their scripts echo in `X-CSRF-Token`.
pub const SESSION_COOKIE: &str = "tuangou_session";
pub const CSRF_COOKIE: &str = "tuangou_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Reads a JSON body whatever its `Content-Type` (API.md: never 415), and answers 400 with the offending field
/// for malformed JSON, wrong types, missing fields and numbers out of range.
pub struct Json<T>(pub T);

/// The body's bytes, for handlers that must check state before they read the body (PATCH).
pub async fn body_bytes(request: Request) -> Result<axum::body::Bytes, Problem> {
    axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| Problem::invalid("", "body_too_large", format!("the body must be at most {BODY_LIMIT} bytes")))
}

/// Parses JSON, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::invalid("", "malformed_json", "the body must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        // serde reports a missing field at its parent, naming it in backticks: point at the field itself.
        let field = match message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
            Some(missing) if path == "." || path.is_empty() => missing.to_owned(),
            Some(missing) => format!("{path}.{missing}"),
            None if path == "." => String::new(),
            None => path,
        };
        let code = if inner.is_syntax() || inner.is_eof() { "malformed_json" } else { "invalid_field" };
        let detail = message.split(" at line ").next().unwrap_or(&message).to_owned();
        Problem::invalid(field, code, detail)
    })?;
    deserializer
        .end()
        .map_err(|_| Problem::invalid("", "malformed_json", "trailing characters after the JSON value"))?;
    Ok(value)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(request).await?;
        parse_json(&bytes).map(Json)
    }
}

/// A JSON body that may be absent or empty (`{client_seed?, invited_by?}` bodies): absent reads as `{}`.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(request).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return parse_json(b"{}").map(OptionalJson);
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// Query parameters; a malformed one answers 400 naming it.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(Query).map_err(|error| {
            let field = error.path().to_string();
            let message = error.into_inner().to_string();
            let field = match message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
                Some(missing) => missing.to_owned(),
                None if field == "." => String::new(),
                None => field,
            };
            Problem::invalid(field, "invalid_field", message)
        })
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// Where the caller's session token came from: CSRF protection applies only to cookies.
enum TokenSource<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
}

fn token_of(headers: &HeaderMap) -> Result<Option<TokenSource<'_>>, Problem> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Problem::new(StatusCode::UNAUTHORIZED, "not_signed_in", "use Authorization: Bearer <token>")
            })?;
        return Ok(Some(TokenSource::Bearer(token)));
    }
    Ok(cookie(headers, SESSION_COOKIE).filter(|t| !t.is_empty()).map(TokenSource::Cookie))
}

/// The session token the request carries (for signing out).
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    match token_of(headers).ok().flatten()? {
        TokenSource::Bearer(t) | TokenSource::Cookie(t) => Some(t.to_owned()),
    }
}

async fn caller_of(parts: &Parts, state: &AppState) -> Result<Option<Caller>, Problem> {
    let Some(source) = token_of(&parts.headers)? else { return Ok(None) };
    let token = match source {
        TokenSource::Bearer(token) => token,
        TokenSource::Cookie(token) => {
            // Cookie-authenticated writes must prove they come from our pages (double-submit token).
            let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
            let echoed = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if !safe && echoed != Some(csrf_token_for(token).as_str()) {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "a write signed in by cookie must carry the X-CSRF-Token header",
                ));
            }
            token
        }
    };
    let caller = state.app.authenticate(token).await.map_err(Problem::from)?;
    caller
        .map(Some)
        .ok_or_else(|| Problem::new(StatusCode::UNAUTHORIZED, "not_signed_in", "the session has ended: sign in again"))
}

/// A signed-in caller; 401 otherwise.
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        caller_of(parts, state)
            .await?
            .map(Auth)
            .ok_or_else(|| Problem::new(StatusCode::UNAUTHORIZED, "not_signed_in", "sign in first"))
    }
}

/// The caller when signed in; anonymous otherwise (a bad token still answers 401).
pub struct MaybeAuth(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        caller_of(parts, state).await.map(MaybeAuth)
    }
}

/// Path parameters. A segment that does not even decode (invalid UTF-8 in its percent-escapes) names nothing we
/// have: 404 problem+json, like any unknown id.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|_| Problem::not_found())
    }
}
