//! Vouchers and redemption (S4): the customer's vouchers and memberships, staff preview and redemption, the
//! owner's undo.

use crate::api::groups::{idempotency_key, json_response};
use crate::api::merchants::merchant_id;
use crate::extract::Path;
use crate::extract::{Auth, Query, json_bytes, parse_json};
use crate::problem::{ApiResult, Problem, ProblemBody};
use crate::{AppState, times};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use tuangou_app::{MembershipView, RedemptionRow, VoucherView};
use tuangou_domain::ids::{MembershipId, RedemptionId, VoucherId};
use tuangou_domain::time::Millis;
use utoipa::ToSchema;

/// A voucher. `code` is shown to its owner (and to staff who typed or scanned it).
#[derive(Serialize, ToSchema)]
pub struct VoucherBody {
    id: String,
    /// `XXXX-XXXX-XXXX-C`.
    code: String,
    /// `purchase` or `coupon`.
    kind: String,
    merchant_id: String,
    campaign_id: String,
    /// The deal's title (its campaign's), so staff see what to serve and customers what they hold.
    campaign_title: String,
    /// `issued`, `redeemed`, `expired` or `refunded`.
    status: String,
    /// Fen: the price paid (purchase) or the amount off (coupon).
    amount: i64,
    expires_at: String,
    /// When a redeemed voucher was redeemed (at its store, `merchant_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    redeemed_at: Option<String>,
}

impl From<VoucherView> for VoucherBody {
    fn from(view: VoucherView) -> Self {
        let v = view.voucher;
        Self {
            id: v.id,
            code: view.code,
            kind: v.kind,
            merchant_id: v.merchant_id,
            campaign_id: v.campaign_id,
            campaign_title: view.deal,
            status: v.status,
            amount: v.amount,
            expires_at: times::format(Millis(v.expires_at)),
            redeemed_at: view.redeemed_at.map(|at| times::format(Millis(at))),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct VoucherPage {
    items: Vec<VoucherBody>,
    next_cursor: Option<String>,
}

/// What a member not drawn received.
#[derive(Serialize, ToSchema)]
#[schema(as = MembershipReward)]
pub struct RewardBody {
    /// `cash`, `points`, `coupon` or `commission_share`.
    kind: String,
    /// Fen (points for points). For `commission_share`: the fen the group's redemptions have shared with this
    /// member so far, net of undone redemptions.
    amount: i64,
}

#[derive(Serialize, ToSchema)]
pub struct MembershipItem {
    id: String,
    group_id: String,
    campaign_id: String,
    seq: i64,
    ticket: String,
    /// `waiting`, `won`, `lost` or `expired`.
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    voucher_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reward: Option<RewardBody>,
}

impl From<MembershipView> for MembershipItem {
    fn from(view: MembershipView) -> Self {
        let m = view.membership;
        Self {
            id: m.id,
            group_id: m.group_id,
            campaign_id: m.campaign_id,
            seq: m.seq,
            ticket: m.ticket,
            status: m.status,
            voucher_code: view.voucher_code,
            reward: view.reward.map(|(kind, amount)| RewardBody { kind, amount }),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MembershipPage {
    items: Vec<MembershipItem>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// Default 50, at most 200.
    #[param(minimum = 1, maximum = 200)]
    pub(crate) limit: Option<i64>,
    /// The `next_cursor` of the page before (absent or empty: the first page).
    #[param(pattern = r"^[A-Za-z0-9_-]{0,64}$", max_length = 64)]
    pub(crate) cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct RedeemBody {
    /// As typed or scanned: case, spaces and hyphens do not matter; I and L read as 1, O as 0.
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RedemptionBody {
    id: String,
    voucher: VoucherBody,
    redeemed_at: String,
    staff_id: String,
}

pub(crate) fn page_size(limit: Option<i64>) -> Result<usize, Problem> {
    match limit.unwrap_or(50) {
        l @ 1..=200 => Ok(l as usize),
        _ => Err(Problem::invalid("limit", "invalid_field", "must be from 1 to 200")),
    }
}

/// A list's `cursor`: the id of the last item of the page before (empty: the first page). Anything that cannot be
/// one of our ids is 400 naming `cursor`, and never reaches the database.
pub(crate) fn cursor<T>(cursor: Option<&str>, parse: fn(&str) -> Option<T>) -> Result<Option<T>, Problem> {
    match cursor {
        None | Some("") => Ok(None),
        Some(text) => parse(text)
            .map(Some)
            .ok_or_else(|| Problem::invalid("cursor", "invalid_field", "is not a cursor this list gave")),
    }
}

/// A voucher id from a path; anything that cannot be one is unknown, like an id that is well formed but not ours.
pub(crate) fn voucher_id(id: &str) -> Result<VoucherId, Problem> {
    VoucherId::parse(id).ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "unknown_voucher", "no such voucher"))
}

/// The caller's vouchers, newest first.
#[utoipa::path(get, path = "/api/v1/me/vouchers", tag = "vouchers", operation_id = "list_my_vouchers", params(PageParams),
    responses((status = 200, body = VoucherPage), (status = 401, body = ProblemBody)), security(("bearer" = [])))]
pub async fn mine(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(p): Query<PageParams>,
) -> ApiResult<axum::Json<VoucherPage>> {
    let limit = page_size(p.limit)?;
    let cursor = cursor(p.cursor.as_deref(), VoucherId::parse)?;
    let views = state.app.my_vouchers(&caller, cursor.as_ref(), limit).await?;
    let next_cursor = (views.len() == limit).then(|| views.last().map(|v| v.voucher.id.clone())).flatten();
    Ok(axum::Json(VoucherPage { items: views.into_iter().map(Into::into).collect(), next_cursor }))
}

/// The caller's memberships, newest first, with voucher codes and rewards.
#[utoipa::path(get, path = "/api/v1/me/memberships", tag = "vouchers", operation_id = "list_my_memberships", params(PageParams),
    responses((status = 200, body = MembershipPage), (status = 401, body = ProblemBody)), security(("bearer" = [])))]
pub async fn memberships(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(p): Query<PageParams>,
) -> ApiResult<axum::Json<MembershipPage>> {
    let limit = page_size(p.limit)?;
    let cursor = cursor(p.cursor.as_deref(), MembershipId::parse)?;
    let views = state.app.my_memberships(&caller, cursor.as_ref(), limit).await?;
    let next_cursor = (views.len() == limit).then(|| views.last().map(|v| v.membership.id.clone())).flatten();
    Ok(axum::Json(MembershipPage { items: views.into_iter().map(Into::into).collect(), next_cursor }))
}

/// A voucher's QR code (SVG) for staff to scan; the owner's only. It encodes the voucher's address,
/// `{public_url}/r/{merchant_id}/{code}`: staff of the store who scan it with any camera open their counter with
/// the code looked up; anyone else sees whose voucher it is.
#[utoipa::path(get, path = "/api/v1/me/vouchers/{id}/qr.svg", tag = "vouchers", operation_id = "get_voucher_qr",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, content_type = "image/svg+xml", description = "the voucher's address as a QR code"),
        (status = 404, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn qr(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let view = state.app.my_voucher(&caller, &voucher_id(&id)?).await?;
    let svg = qr_svg(&state.app.voucher_url(&view))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "image/svg+xml"), (axum::http::header::CACHE_CONTROL, "private, no-store")],
        svg,
    )
        .into_response())
}

/// An SVG QR code of `text`, with a quiet zone, scaled by the page.
pub fn qr_svg(text: &str) -> Result<String, crate::problem::Problem> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Problem::from(tuangou_app::AppError::Internal(format!("QR code: {e}"))))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

/// Return an unused purchase voucher for a full refund (随时退).
#[utoipa::path(post, path = "/api/v1/me/vouchers/{id}/refund", tag = "vouchers", operation_id = "refund_voucher",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = VoucherBody), (status = 404, body = ProblemBody), (status = 409, body = ProblemBody),
        (status = 410, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn refund(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<VoucherBody>> {
    let view = state.app.refund_voucher(&caller, &voucher_id(&id)?).await?;
    Ok(axum::Json(view.into()))
}

/// Staff preview a voucher by its code (never the customer's phone or name). A code of another store the caller
/// works at answers that store's voucher (its `merchant_id` says which, and only there can it be redeemed); a code
/// of a store they do not work at is 404 `unknown_code`, like any unknown code.
#[utoipa::path(get, path = "/api/v1/merchants/{id}/vouchers/{code}", tag = "vouchers", operation_id = "preview_voucher",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64), ("code" = String, Path, description = "as typed or scanned")),
    responses((status = 200, body = VoucherBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 429, body = ProblemBody),
        (status = 503, description = "`overloaded`: the preview logs the attempt, a write the service may be too busy for",
            body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    Auth(caller): Auth,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((id, code)): Path<(String, String)>,
) -> ApiResult<axum::Json<VoucherBody>> {
    let merchant = merchant_id(&id)?;
    let view = state.app.preview_voucher(&caller, &merchant, &code, Some(&client.ip().to_string())).await?;
    Ok(axum::Json(view.into()))
}

fn redemption_body(view: VoucherView, r: RedemptionRow) -> RedemptionBody {
    RedemptionBody {
        id: r.id,
        voucher: view.into(),
        redeemed_at: times::format(Millis(r.redeemed_at)),
        staff_id: r.staff_id,
    }
}

/// Staff redeem a voucher. With an `Idempotency-Key` (one per scan), a repeated scan answers the first answer.
#[utoipa::path(post, path = "/api/v1/merchants/{id}/redemptions", tag = "vouchers", operation_id = "redeem_voucher",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64), ("Idempotency-Key" = Option<String>, Header, description = "one per scan",
        pattern = r"^[!-~]{1,200}$", max_length = 200)),
    request_body = RedeemBody,
    responses((status = 201, body = RedemptionBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 409, body = ProblemBody), (status = 410, body = ProblemBody), (status = 422, body = ProblemBody),
        (status = 429, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn redeem(
    State(state): State<AppState>,
    Auth(caller): Auth,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let merchant = merchant_id(&id)?;
    let endpoint = format!("POST {}", request.uri().path());
    let key = idempotency_key(request.headers())?;
    let bytes = json_bytes(request).await?;
    let body: RedeemBody = parse_json(&bytes)?;
    let claim = key.map(|k| tuangou_app::idempotency_claim(&caller, &endpoint, &k, &bytes));
    if let Some(claim) = &claim
        && let Some((status, body)) = state.app.stored_answer(claim).await?
    {
        return Ok(json_response(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body));
    }
    let (status, answer) = match state.app.redeem(&caller, &merchant, &body.code, Some(&client.ip().to_string())).await
    {
        Ok((view, redemption)) => {
            (StatusCode::CREATED, serde_json::to_string(&redemption_body(view, redemption)).unwrap_or_default())
        }
        Err(error) => {
            let problem = Problem::from(error);
            if problem.status() == StatusCode::TOO_MANY_REQUESTS || problem.status().is_server_error() {
                return Err(problem); // a throttled scan or a fault of ours is not an answer to remember
            }
            (problem.status(), problem.body_json())
        }
    };
    if let Some(claim) = &claim
        && let Err(error) = state.app.remember_answer(claim, status.as_u16(), &answer).await
    {
        tracing::warn!(%error, "could not store a redemption's answer");
    }
    Ok(json_response(status, answer))
}

/// The owner undoes a redemption within one hour.
#[utoipa::path(delete, path = "/api/v1/merchants/{id}/redemptions/{redemption_id}", tag = "vouchers",
    operation_id = "undo_redemption",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64), ("redemption_id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = VoucherBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 409, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn undo(
    State(state): State<AppState>,
    Auth(caller): Auth,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((id, redemption)): Path<(String, String)>,
) -> ApiResult<axum::Json<VoucherBody>> {
    let merchant = merchant_id(&id)?;
    let redemption = RedemptionId::parse(&redemption)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "unknown_redemption", "no such redemption at this store"))?;
    let view = state.app.undo_redemption(&caller, &merchant, &redemption, Some(&client.ip().to_string())).await?;
    Ok(axum::Json(view.into()))
}
