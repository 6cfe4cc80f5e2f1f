//! Payments: providers' notifications, and the sandbox provider's own calls (its pay and cancel buttons, its
//! daily bill). The sandbox's routes answer 404 unless it is enabled.

use crate::AppState;
use crate::extract::Path;
use crate::problem::{ApiResult, Problem, ProblemBody};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use tuangou_app::payments::port::Headers;
use tuangou_app::payments::sandbox::Sandbox;
use tuangou_domain::time::ChinaDay;
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
    responses((status = 200, body = NotificationAnswer), (status = 400, body = ProblemBody),
        (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn notify(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<NotificationAnswer>> {
    let headers = Headers::new(
        headers.iter().filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))),
    );
    let receipt = state.app.receive_notification(&provider, &headers, &body).await?;
    Ok(axum::Json(NotificationAnswer {
        event_id: receipt.event.event_id,
        status: receipt.event.status,
        duplicate: receipt.duplicate,
    }))
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
