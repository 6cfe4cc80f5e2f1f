//! Extractors that turn every malformed request into a 400 problem naming the field, and find the caller.
//!
//! Input is parsed here, at the edge, into values the rest of the service can trust: a JSON body only in
//! `application/json` (415 otherwise) and only as an object (400 `invalid_body` for an array or a scalar); no
//! NUL in any string, query parameter or path segment (PostgreSQL's `text` cannot hold one: a NUL must be a 400 or
//! a 404 like any other malformed input, never a 500 from the database, and the same on both backends).

use crate::AppState;
use crate::problem::Problem;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::de::DeserializeOwned;
use tuangou_app::{Caller, csrf_token_for};

/// The largest JSON body accepted. Every body of the API fits in a few kilobytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The session cookie of the pages (HttpOnly) and the CSRF cookie their scripts echo in `X-CSRF-Token`.
pub const SESSION_COOKIE: &str = "tuangou_session";
pub const CSRF_COOKIE: &str = "tuangou_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The media type of every JSON body (`; charset=utf-8` may follow).
pub const JSON: &str = "application/json";
/// The media type of a JSON merge patch (RFC 7386), which `PATCH /campaigns/{id}` also accepts.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// Reads a JSON object sent as `application/json`: 415 for any other `Content-Type`, 400 naming the field for
/// malformed JSON, wrong types, missing fields, numbers out of range and NULs in strings.
pub struct Json<T>(pub T);

/// The body's bytes, for handlers that must check state before they read the body (PATCH).
pub async fn body_bytes(request: Request) -> Result<axum::body::Bytes, Problem> {
    axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| Problem::invalid("", "body_too_large", format!("the body must be at most {BODY_LIMIT} bytes")))
}

/// 415 `unsupported_media_type` unless `Content-Type` is one of `accepted` (case aside), with no parameter but
/// `charset=utf-8`. A body in another type is refused before it is read: a cross-site `text/plain` form (which a
/// browser sends without asking) never reaches a handler.
pub fn require_media_type(headers: &HeaderMap, accepted: &[&str]) -> Result<(), Problem> {
    media_type_is(headers.get(header::CONTENT_TYPE), accepted)
}

fn media_type_is(content_type: Option<&HeaderValue>, accepted: &[&str]) -> Result<(), Problem> {
    let refuse = || {
        let types = accepted.join(" or ");
        Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", format!("send the body as {types}"))
    };
    let value = content_type.and_then(|v| v.to_str().ok()).ok_or_else(refuse)?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim();
    if !accepted.iter().any(|a| a.eq_ignore_ascii_case(essence)) {
        return Err(refuse());
    }
    for parameter in parts {
        let (name, value) = parameter.split_once('=').ok_or_else(refuse)?;
        let value = value.trim().trim_matches('"');
        if !(name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")) {
            return Err(refuse());
        }
    }
    Ok(())
}

/// A JSON body: `Content-Type` checked (415) before the bytes are read.
pub async fn json_bytes(request: Request) -> Result<axum::body::Bytes, Problem> {
    require_media_type(request.headers(), &[JSON])?;
    body_bytes(request).await
}

/// A body that may be absent (`{client_seed?, invited_by?}`): an empty one reads as nothing whatever its type;
/// any other must be `application/json`.
pub async fn optional_json_bytes(request: Request) -> Result<Option<axum::body::Bytes>, Problem> {
    let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = body_bytes(request).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    media_type_is(content_type.as_ref(), &[JSON])?;
    Ok(Some(bytes))
}

/// Parses a JSON object, naming the field at fault. Every body of the API is an object: an array or a scalar is
/// 400 `invalid_body` (serde would otherwise read an array into a struct, field by field), and a string holding
/// a NUL (`\u0000`) is 400 naming its field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => return Err(Problem::invalid("", "malformed_json", "the body must be a JSON object")),
        Some(b'{') => {}
        Some(_) => {
            return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => {
                    Problem::invalid("", "invalid_body", "the body must be a JSON object, not an array or a scalar")
                }
                Err(_) => Problem::invalid("", "malformed_json", "the body must be a JSON object"),
            });
        }
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
    refuse_nul_in_json(bytes)?;
    Ok(value)
}

/// 400 naming the first string (or member name) that holds a NUL. JSON text can carry one only as the escape
/// `\u0000`, so a body without that sequence is not looked at again.
fn refuse_nul_in_json(bytes: &[u8]) -> Result<(), Problem> {
    if !bytes.windows(6).any(|w| w == br"\u0000") {
        return Ok(());
    }
    fn find(value: &serde_json::Value, path: &str) -> Option<String> {
        let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
        match value {
            serde_json::Value::String(text) => text.contains('\0').then(|| path.to_owned()),
            serde_json::Value::Array(items) => {
                items.iter().enumerate().find_map(|(i, item)| find(item, &format!("{path}[{i}]")))
            }
            serde_json::Value::Object(members) => members.iter().find_map(|(key, member)| {
                if key.contains('\0') { Some(path.to_owned()) } else { find(member, &join(key)) }
            }),
            _ => None,
        }
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| Problem::invalid("", "malformed_json", "the body must be a JSON object"))?;
    match find(&value, "") {
        Some(field) => Err(Problem::invalid(field, "invalid_field", "must not contain NUL (\\u0000)")),
        None => Ok(()),
    }
}

/// `deserialize_with` for a member that must be a JSON object: serde reads an array into a struct too, field by
/// field, unless asked for a map. The path to a bad field inside it is kept (`reward.amount`).
pub fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct Object<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_map(Object(std::marker::PhantomData))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(request).await?;
        parse_json(&bytes).map(Json)
    }
}

/// Query parameters; a malformed one answers 400 naming it, and so does one holding a NUL.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        if let Some((name, _)) =
            form_urlencoded::parse(query.as_bytes()).find(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            return Err(Problem::invalid(name.replace('\0', ""), "invalid_field", "must not contain NUL (%00)"));
        }
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

/// Whether a request's path holds an escaped NUL (`%00`): no id, code or name of ours holds one.
pub fn path_has_nul(path: &str) -> bool {
    path.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// Path parameters. A segment that does not even decode (invalid UTF-8 in its percent-escapes) or that holds a
/// NUL names nothing we have: 404 problem+json, like any unknown id.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if path_has_nul(parts.uri.path()) {
            return Err(Problem::not_found());
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|_| Problem::not_found())
    }
}

/// Sign-in and sign-up from a browser must come from our own pages (login CSRF: a cross-site form must not sign a
/// victim in as the attacker). A browser says where a request comes from in `Sec-Fetch-Site` (every current one)
/// or at least in `Origin`: `same-origin` (or `none`, the reader's own doing) passes, `same-site` and
/// `cross-site` are 403 `csrf_failed`; without `Sec-Fetch-Site`, an `Origin` must name this server (its `Host`,
/// or the configured `public_url` behind a proxy). A request with neither is no browser's (an API client): it
/// passes, cookies or not.
pub struct SameOrigin;

impl FromRequestParts<AppState> for SameOrigin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        check_same_origin(&parts.headers, &state.app.settings().public_url).map(|()| SameOrigin)
    }
}

fn cross_site() -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "csrf_failed", "sign in and sign up only from this site's own pages")
}

/// `scheme://host[:port]` as `host:port`, lowercase, with the scheme's default port written out.
fn authority_of(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let has_port =
        authority.rsplit_once(':').is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && !authority.ends_with(']');
    Some(match (has_port, scheme.to_ascii_lowercase().as_str()) {
        (true, _) => authority,
        (false, "https") => format!("{authority}:443"),
        (false, _) => format!("{authority}:80"),
    })
}

/// See [`SameOrigin`].
pub fn check_same_origin(headers: &HeaderMap, public_url: &str) -> Result<(), Problem> {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    if let Some(site) = text("sec-fetch-site") {
        return match site.as_str() {
            "same-origin" | "none" => Ok(()),
            _ => Err(cross_site()),
        };
    }
    let Some(origin) = text("origin") else { return Ok(()) };
    let origin = authority_of(&origin).ok_or_else(cross_site)?; // `null`: a sandboxed or privacy-minded form
    let scheme = if origin.ends_with(":443") { "https" } else { "http" };
    let host =
        headers.get(header::HOST).and_then(|v| v.to_str().ok()).and_then(|h| authority_of(&format!("{scheme}://{h}")));
    if host.as_deref() == Some(origin.as_str()) || authority_of(public_url).as_deref() == Some(origin.as_str()) {
        Ok(())
    } else {
        Err(cross_site())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    /// Behind a proxy the `Host` is the proxy's upstream; the browser's `Origin` is the public address.
    #[test]
    fn an_origin_is_ours_by_host_or_by_public_url() {
        let public = "https://tuangou.example/";
        let ok = |pairs: &[(&'static str, &str)]| check_same_origin(&headers(pairs), public).is_ok();
        assert!(ok(&[("origin", "https://tuangou.example"), ("host", "127.0.0.1:8080")]));
        assert!(ok(&[("origin", "https://TUANGOU.example:443"), ("host", "127.0.0.1:8080")]));
        assert!(ok(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")]));
        assert!(ok(&[("origin", "http://localhost"), ("host", "localhost:80")]));
        assert!(!ok(&[("origin", "http://tuangou.example"), ("host", "127.0.0.1:8080")]), "another scheme");
        assert!(!ok(&[("origin", "https://tuangou.example.evil"), ("host", "127.0.0.1:8080")]));
        assert!(!ok(&[("origin", "https://user@tuangou.example"), ("host", "tuangou.example")]));
        assert!(!ok(&[("origin", "null"), ("host", "127.0.0.1:8080")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site"), ("origin", "https://tuangou.example")]));
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        assert!(ok(&[("host", "127.0.0.1:8080")]), "no browser");
    }

    #[test]
    fn media_types_are_json_with_utf8_at_most() {
        let ok = |value: &str| media_type_is(Some(&HeaderValue::from_str(value).unwrap()), &[JSON]).is_ok();
        assert!(
            ok("application/json")
                && ok("APPLICATION/Json ; Charset=UTF-8")
                && ok("application/json;charset=\"utf-8\"")
        );
        assert!(!ok("application/json; charset=iso-8859-1") && !ok("application/json; boundary=x"));
        assert!(!ok("text/plain") && !ok("application/json-seq") && !ok("") && !ok("application/json;"));
        assert!(media_type_is(None, &[JSON]).is_err());
    }
}
