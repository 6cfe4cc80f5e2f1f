//! Payments: providers' notifications, and the sandbox provider's own calls (its pay and cancel buttons, its
//! daily bill). The sandbox's routes answer 404 unless it is enabled.

use crate::api::vouchers::{PageParams, cursor, page_size};
use crate::extract::{Auth, Path, Query};
use crate::problem::{ApiResult, Problem, ProblemBody};
use crate::{AppState, times};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tuangou_app::payments::port::Headers;
use tuangou_app::payments::sandbox::Sandbox;
use tuangou_app::{PaymentRow, RefundRow};
use tuangou_domain::ids::{PaymentId, RefundId};
use tuangou_domain::time::{ChinaDay, Millis};
use utoipa::ToSchema;

/// What the service answers a notification it took in.
#[derive(Serialize, ToSchema)]
pub struct NotificationAnswer {
    /// The provider's id of the event.
    event_id: String,
    /// `received` (stored, not applied yet) or `applied`.
    status: String,
    /// The provider had sent this event before: nothing changed.
    duplicate: bool,
}

/// A provider's notification, verified on its raw bytes and stored once.
#[utoipa::path(post, path = "/api/v1/payments/{provider}/notify", tag = "payments",
    params(("provider" = String, Path, description = "sandbox, wechatpay or alipay")),
    request_body(content = String, description = "the provider's own signed body, exactly as it sent it"),
    responses((status = 200, description = "taken in: JSON, or the text `success` for alipay",
            content((NotificationAnswer = "application/json"), (String = "text/plain"))),
        (status = 400, body = ProblemBody), (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn notify(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let headers = Headers::new(
        headers.iter().filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))),
    );
    let receipt = state.app.receive_notification(&provider, &headers, &body).await?;
    // Alipay takes a notification as delivered only on the plain text `success` (else it sends it again).
    if provider == "alipay" {
        let mut answer = tuangou_app::payments::alipay::NOTIFICATION_ANSWER.into_response();
        answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        return Ok(answer);
    }
    Ok(axum::Json(NotificationAnswer {
        event_id: receipt.event_id,
        status: receipt.status,
        duplicate: receipt.duplicate,
    })
    .into_response())
}

/// The sandbox payment's state after a button.
#[derive(Serialize, ToSchema)]
pub struct SandboxAnswer {
    /// `paid` or `closed`.
    status: String,
}

/// The sandbox, or 404 when it is off.
pub(crate) fn sandbox(state: &AppState) -> Result<&Arc<Sandbox>, Problem> {
    state.app.sandbox().ok_or_else(Problem::not_found)
}

/// The sandbox provider pays (its pay page's button); its signed notification follows asynchronously.
#[utoipa::path(post, path = "/sandbox/payments/{payment_id}/pay", tag = "payments",
    params(("payment_id" = String, Path)),
    responses((status = 200, body = SandboxAnswer), (status = 404, body = ProblemBody), (status = 409, body = ProblemBody)))]
pub async fn sandbox_pay(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SandboxAnswer>> {
    let row = sandbox(&state)?.pay(&id).await?;
    Ok(axum::Json(SandboxAnswer { status: row.status }))
}

/// The payer gives up on the sandbox's page; the service is told.
#[utoipa::path(post, path = "/sandbox/payments/{payment_id}/cancel", tag = "payments",
    params(("payment_id" = String, Path)),
    responses((status = 200, body = SandboxAnswer), (status = 404, body = ProblemBody), (status = 409, body = ProblemBody)))]
pub async fn sandbox_cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SandboxAnswer>> {
    let row = sandbox(&state)?.cancel(&id).await?;
    Ok(axum::Json(SandboxAnswer { status: row.status }))
}

/// The sandbox's trade bill for a business day (China Standard Time), as CSV in the shape of WeChat Pay's.
#[utoipa::path(get, path = "/sandbox/bills/{date}", tag = "payments",
    params(("date" = String, Path, description = "YYYY-MM-DD", pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")),
    responses((status = 200, description = "the bill", body = String, content_type = "text/csv"),
        (status = 400, body = ProblemBody),
        (status = 404, body = ProblemBody)))]
pub async fn sandbox_bill(State(state): State<AppState>, Path(date): Path<String>) -> ApiResult<Response> {
    let sandbox = sandbox(&state)?;
    let day = ChinaDay::parse(&date).ok_or_else(|| Problem::invalid("date", "invalid_field", "must be YYYY-MM-DD"))?;
    let csv = sandbox.bill_csv(day).await?;
    let mut response = csv.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    Ok(response)
}

/// A payment through a provider (API.md "payment").
#[derive(Serialize, ToSchema)]
pub struct PaymentBody {
    /// Our id: the provider's `out_trade_no`.
    id: String,
    provider: String,
    amount: i64,
    /// `created`, `paid`, `closed` or `refunded`.
    status: String,
    membership_id: Option<String>,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_at: Option<String>,
    /// What the page pays with: `{url}` for the sandbox and H5, a QR text for Native, signed JSAPI parameters
    /// (an empty object until the provider answered).
    #[schema(value_type = Object)]
    client: serde_json::Value,
}

impl From<&PaymentRow> for PaymentBody {
    fn from(p: &PaymentRow) -> Self {
        Self {
            id: p.id.clone(),
            provider: p.provider.clone(),
            amount: p.amount,
            status: p.status.clone(),
            membership_id: p.membership_id.clone(),
            expires_at: times::format(Millis(p.expires_at)),
            paid_at: p.paid_at.map(|at| times::format(Millis(at))),
            client: p
                .client
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or_else(|| serde_json::json!({})),
        }
    }
}

/// A refund (API.md "refund").
#[derive(Serialize, ToSchema)]
pub struct RefundBody {
    /// Derived from its cause (`{cause}-{what}`); the provider's `out_refund_no`.
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_id: Option<String>,
    /// `not_drawn`, `group_expired`, `voucher_returned`, `voucher_expired` or `late_payment`.
    cause: String,
    amount: i64,
    /// `requested` (owed, the provider not done yet), `succeeded` or `failed` (waiting for the operator).
    status: String,
    /// `wallet` or `provider`.
    to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    membership_id: Option<String>,
    requested_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    settled_at: Option<String>,
    /// How often the provider was asked without success.
    attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

impl From<&RefundRow> for RefundBody {
    fn from(r: &RefundRow) -> Self {
        Self {
            id: r.id.clone(),
            payment_id: r.payment_id.clone(),
            cause: r.cause.clone(),
            amount: r.amount,
            status: r.status.clone(),
            to: r.destination.clone(),
            provider: r.provider.clone(),
            membership_id: r.membership_id.clone(),
            requested_at: times::format(Millis(r.requested_at)),
            settled_at: r.settled_at.map(|at| times::format(Millis(at))),
            attempts: r.attempts,
            last_error: r.last_error.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RefundPage {
    items: Vec<RefundBody>,
    next_cursor: Option<String>,
}

fn refund_page(rows: Vec<RefundRow>, limit: usize) -> RefundPage {
    let next_cursor = (rows.len() == limit).then(|| rows.last().map(|r| r.id.clone())).flatten();
    RefundPage { items: rows.iter().map(Into::into).collect(), next_cursor }
}

/// One of the caller's payments (404 for anyone else's).
#[utoipa::path(get, path = "/api/v1/me/payments/{id}", tag = "payments", operation_id = "get_my_payment",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = PaymentBody), (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn my_payment(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PaymentBody>> {
    let id = PaymentId::parse(&id)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "unknown_payment", "no such payment"))?;
    Ok(axum::Json((&state.app.my_payment(&caller, id.as_str()).await?).into()))
}

/// The caller's refunds, newest first, with their states.
#[utoipa::path(get, path = "/api/v1/me/refunds", tag = "payments", operation_id = "list_my_refunds", params(PageParams),
    responses((status = 200, body = RefundPage), (status = 401, body = ProblemBody)), security(("bearer" = [])))]
pub async fn my_refunds(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(p): Query<PageParams>,
) -> ApiResult<axum::Json<RefundPage>> {
    let limit = page_size(p.limit)?;
    let cursor = cursor(p.cursor.as_deref(), RefundId::parse)?;
    let rows = state.app.my_refunds(&caller, cursor.as_ref().map(RefundId::as_str), limit as i64).await?;
    Ok(axum::Json(refund_page(rows, limit)))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct RefundQuery {
    /// `failed` (the default: refunds waiting for a person), `requested` or `succeeded`.
    #[param(pattern = "^(requested|succeeded|failed)$")]
    status: Option<String>,
    /// Default 50, at most 200.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the page before.
    #[param(pattern = r"^[A-Za-z0-9_-]{0,64}$", max_length = 64)]
    cursor: Option<String>,
}

/// Refunds by state for the operator: `failed` ones wait for a person.
#[utoipa::path(get, path = "/api/v1/admin/refunds", tag = "admin", operation_id = "list_refunds", params(RefundQuery),
    responses((status = 200, body = RefundPage), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn admin_refunds(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<RefundQuery>,
) -> ApiResult<axum::Json<RefundPage>> {
    let status = q.status.as_deref().unwrap_or("failed");
    if !["requested", "succeeded", "failed"].contains(&status) {
        return Err(Problem::invalid("status", "invalid_field", "must be requested, succeeded or failed"));
    }
    let limit = page_size(q.limit)?;
    let cursor = cursor(q.cursor.as_deref(), RefundId::parse)?;
    let rows =
        state.app.refunds_with_status(&caller, status, cursor.as_ref().map(RefundId::as_str), limit as i64).await?;
    Ok(axum::Json(refund_page(rows, limit)))
}

/// The operator sends a failed refund back to the provider (after fixing what made it fail).
#[utoipa::path(post, path = "/api/v1/admin/refunds/{id}/retry", tag = "admin", operation_id = "retry_refund",
    params(("id" = String, Path, description = "a refund id", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = RefundBody), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn admin_retry_refund(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RefundBody>> {
    let id =
        RefundId::parse(&id).ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "unknown_refund", "no such refund"))?;
    Ok(axum::Json((&state.app.retry_refund(&caller, id.as_str()).await?).into()))
}
