//! Accounts: sign up, sessions, the caller's profile, wallet and history, closing an account.

use crate::AppState;
use crate::extract::{Auth, CSRF_COOKIE, Json, SESSION_COOKIE, SameOrigin, session_token};
use crate::problem::{ApiResult, Problem, ProblemBody};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use tuangou_app::{MerchantRole, NewAccount, UserRow, csrf_token_for};
use tuangou_domain::ids::MerchantId;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct SignUp {
    /// A mainland mobile number (`1[3-9]` and 9 digits, `+86` or `86` before it allowed) or E.164; spaces,
    /// hyphens and parentheses between the digits are also accepted.
    #[schema(pattern = r"^(?:(?:\+86|86)?1[3-9][0-9]{9}|\+(?:[1-79][0-9]|8[0-57-9])[0-9]{6,13})$", max_length = 32)]
    phone: String,
    /// 8–128 characters.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    /// 1–40 characters (without the spaces at either end).
    #[schema(min_length = 1, max_length = 40)]
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct NewUserBody {
    id: String,
    phone: String,
    name: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SignIn {
    phone: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct MerchantRoleBody {
    id: String,
    /// `owner` or `staff`.
    role: String,
}

/// The signed-in user, as `GET /me` answers.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    id: String,
    phone: String,
    name: String,
    /// `["operator"]` for operators, else empty.
    roles: Vec<String>,
    merchants: Vec<MerchantRoleBody>,
}

impl UserBody {
    fn new(user: &UserRow, roles: &[(MerchantId, MerchantRole)]) -> Self {
        Self {
            id: user.id.clone(),
            phone: user.phone.clone().unwrap_or_default(),
            name: user.name.clone(),
            roles: if user.is_operator != 0 { vec!["operator".into()] } else { vec![] },
            merchants: roles
                .iter()
                .map(|(id, role)| MerchantRoleBody { id: id.to_string(), role: role.as_str().into() })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// For pages signed in by cookie: echo in `X-CSRF-Token` on writes.
    csrf_token: String,
    user: UserBody,
}

#[derive(Serialize, ToSchema)]
pub struct WalletBody {
    /// Fen the customer can spend.
    available: i64,
    /// Fen paid into groups not yet drawn or expired.
    held: i64,
    points: i64,
    /// Fen owed back through the payment provider that took them, until it confirms the refund (absent when none).
    #[serde(skip_serializing_if = "is_zero")]
    refund_pending: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Sign up. Limited per client address (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", operation_id = "sign_up", request_body = SignUp,
    responses((status = 201, body = NewUserBody), (status = 400, body = ProblemBody),
        (status = 403, description = "`csrf_failed`: sent by a browser from another site", body = ProblemBody),
        (status = 409, description = "`phone_taken`", body = ProblemBody),
        (status = 429, description = "`throttled`: too many sign-ups from this address", body = ProblemBody)))]
pub async fn sign_up(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    _: SameOrigin,
    Json(body): Json<SignUp>,
) -> ApiResult<(StatusCode, axum::Json<NewUserBody>)> {
    let account = NewAccount::parse(&body.phone, &body.password, &body.name)?;
    let user = state.app.sign_up(account, client.ip()).await?;
    let body = NewUserBody { id: user.id, phone: user.phone.unwrap_or_default(), name: user.name };
    Ok((StatusCode::CREATED, axum::Json(body)))
}

/// A cookie; `Secure` is added to every cookie of an answer by `security::headers` when the reader came over
/// HTTPS, so it is not decided here.
fn cookie(name: &str, value: &str, http_only: bool, max_age_seconds: i64) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; SameSite=Lax; Max-Age={max_age_seconds}");
    if http_only {
        text.push_str("; HttpOnly");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Sign in: a bearer token for API clients, and the same session as an HttpOnly cookie for the pages. Failures
/// are limited per client address and per phone and address (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/sessions", tag = "accounts", operation_id = "sign_in", request_body = SignIn,
    responses((status = 201, body = SessionBody), (status = 400, body = ProblemBody),
        (status = 401, description = "`bad_credentials`", body = ProblemBody),
        (status = 403, description = "`csrf_failed`: sent by a browser from another site", body = ProblemBody),
        (status = 429, description = "`throttled`: too many failed attempts", body = ProblemBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    _: SameOrigin,
    Json(body): Json<SignIn>,
) -> ApiResult<Response> {
    if body.phone.len() > 64 || body.password.len() > 512 {
        return Err(Problem::new(StatusCode::UNAUTHORIZED, "bad_credentials", "phone or password is wrong"));
    }
    let signed_in = state.app.sign_in(&body.phone, &body.password, client.ip()).await?;
    let csrf = csrf_token_for(&signed_in.token);
    let max_age = (signed_in.expires_at.0 - state.app.clock().now().0) / 1_000;
    let mut headers = HeaderMap::new();
    headers.append(header::SET_COOKIE, cookie(SESSION_COOKIE, &signed_in.token, true, max_age));
    headers.append(header::SET_COOKIE, cookie(CSRF_COOKIE, &csrf, false, max_age));
    let body = SessionBody {
        token: signed_in.token,
        csrf_token: csrf,
        user: UserBody::new(&signed_in.user, &signed_in.roles),
    };
    Ok((StatusCode::CREATED, headers, axum::Json(body)).into_response())
}

/// Sign out: ends the session this request used and clears the cookies.
#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "accounts", operation_id = "sign_out",
    responses((status = 204), (status = 401, body = ProblemBody)), security(("bearer" = [])))]
pub async fn sign_out(State(state): State<AppState>, Auth(_caller): Auth, request: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = session_token(&request) {
        state.app.sign_out(&token).await?;
    }
    let mut headers = HeaderMap::new();
    headers.append(header::SET_COOKIE, cookie(SESSION_COOKIE, "", true, 0));
    headers.append(header::SET_COOKIE, cookie(CSRF_COOKIE, "", false, 0));
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// The signed-in user with their roles.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", operation_id = "get_me",
    responses((status = 200, body = UserBody), (status = 401, body = ProblemBody)), security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, Auth(caller): Auth) -> ApiResult<axum::Json<UserBody>> {
    let (user, roles) = state.app.me(&caller).await?;
    Ok(axum::Json(UserBody::new(&user, &roles)))
}

/// The caller's money and points.
#[utoipa::path(get, path = "/api/v1/me/wallet", tag = "accounts", operation_id = "get_my_wallet",
    responses((status = 200, body = WalletBody), (status = 401, body = ProblemBody)), security(("bearer" = [])))]
pub async fn wallet(State(state): State<AppState>, Auth(caller): Auth) -> ApiResult<axum::Json<WalletBody>> {
    let w = state.app.customer_wallet(&caller).await?;
    Ok(axum::Json(WalletBody {
        available: w.available,
        held: w.held,
        points: w.points,
        refund_pending: w.refund_pending,
    }))
}

/// Counts and sums of the caller's own record.
#[derive(Serialize, ToSchema)]
pub struct HistoryBody {
    joined: i64,
    won: i64,
    lost: i64,
    expired: i64,
    refunded: i64,
    /// Fen of cash rewards, commission shares (net of undone redemptions) included.
    rewards_cash: i64,
    points: i64,
}

/// The caller's history: joined, won, lost, expired, refunded, rewards.
#[utoipa::path(get, path = "/api/v1/me/history", tag = "accounts", operation_id = "get_my_history",
    responses((status = 200, body = HistoryBody), (status = 401, body = ProblemBody)), security(("bearer" = [])))]
pub async fn history(State(state): State<AppState>, Auth(caller): Auth) -> ApiResult<axum::Json<HistoryBody>> {
    let h = state.app.history(&caller).await?;
    Ok(axum::Json(HistoryBody {
        joined: h.joined,
        won: h.won,
        lost: h.lost,
        expired: h.expired,
        refunded: h.refunded,
        rewards_cash: h.rewards_cash,
        points: h.points,
    }))
}

/// Close the caller's account: personal data erased, sessions ended; the ledger and memberships stay under the
/// account's pseudonym.
#[utoipa::path(delete, path = "/api/v1/me", tag = "accounts", operation_id = "close_my_account",
    responses((status = 204), (status = 401, body = ProblemBody), (status = 409, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn close(State(state): State<AppState>, Auth(caller): Auth) -> ApiResult<StatusCode> {
    state.app.close_account(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}
