//! Payouts and withdrawals (PAYMENTS.md "Payouts"): an owner asks for the merchant's available balance to be paid
//! out, a customer withdraws theirs; both with `Idempotency-Key`, both listed with their states.

use crate::api::groups::{idempotency_key, json_response};
use crate::api::merchants::merchant_id;
use crate::extract::Path;
use crate::extract::{Auth, Query, json_bytes, parse_json};
use crate::problem::{ApiResult, Problem, ProblemBody};
use crate::{AppState, times};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tuangou_app::payments::payouts::PayoutAnswer;
use tuangou_app::{AppResult, Caller, PayoutRow};
use tuangou_domain::ids::{MerchantId, PayoutId};
use tuangou_domain::time::Millis;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct PayoutRequestBody {
    /// Fen, from 1 to the available balance (at most 10,000,000,000).
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    amount: i64,
    /// A provider this instance offers (`sandbox`, `wechatpay`, `alipay`).
    #[schema(min_length = 1, max_length = 32)]
    provider: String,
}

/// A payout (a merchant's) or a withdrawal (a customer's).
#[derive(Serialize, ToSchema)]
pub struct PayoutBody {
    id: String,
    /// Fen.
    amount: i64,
    provider: String,
    /// `requested` (on its way: the money is set aside), `succeeded` or `failed` (the money is back).
    status: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    settled_at: Option<String>,
}

impl From<&PayoutRow> for PayoutBody {
    fn from(p: &PayoutRow) -> Self {
        Self {
            id: p.id.clone(),
            amount: p.amount,
            provider: p.provider.clone(),
            status: p.status.clone(),
            created_at: times::format(Millis(p.created_at)),
            settled_at: p.settled_at.map(|at| times::format(Millis(at))),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PayoutPage {
    items: Vec<PayoutBody>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct PayoutPageParams {
    /// Default 50, at most 200.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the page before (absent or empty: the first page).
    #[param(pattern = r"^[A-Za-z0-9_-]{0,64}$", max_length = 64)]
    cursor: Option<String>,
}

impl PayoutPageParams {
    fn parse(&self) -> Result<(Option<PayoutId>, usize), Problem> {
        let limit = match self.limit.unwrap_or(50) {
            l @ 1..=200 => l as usize,
            _ => return Err(Problem::invalid("limit", "invalid_field", "must be from 1 to 200")),
        };
        let cursor = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                PayoutId::parse(text)
                    .ok_or_else(|| Problem::invalid("cursor", "invalid_field", "is not a cursor this list gave"))?,
            ),
        };
        Ok((cursor, limit))
    }
}

fn page(rows: Vec<PayoutRow>, limit: usize) -> PayoutPage {
    let next_cursor = (rows.len() == limit).then(|| rows.last().map(|p| p.id.clone())).flatten();
    PayoutPage { items: rows.iter().map(Into::into).collect(), next_cursor }
}

/// Whose money a request pays out.
enum Payer {
    Merchant(MerchantId),
    Customer,
}

/// Runs a payout request and answers it; with an `Idempotency-Key`, stores the first answer and replays it.
async fn request(state: AppState, caller: Caller, payer: Payer, request: Request) -> ApiResult<Response> {
    let endpoint = format!("POST {}", request.uri().path());
    let key = idempotency_key(request.headers())?;
    let bytes = json_bytes(request).await?;
    let body: PayoutRequestBody = parse_json(&bytes)?;
    let claim = key.map(|k| tuangou_app::idempotency_claim(&caller, &endpoint, &k, &bytes));
    let answer: AppResult<PayoutAnswer> = match &payer {
        Payer::Merchant(merchant) => {
            state.app.request_merchant_payout(&caller, merchant, body.amount, &body.provider, claim.clone()).await
        }
        Payer::Customer => state.app.request_withdrawal(&caller, body.amount, &body.provider, claim.clone()).await,
    };
    let render = |row: &PayoutRow| serde_json::to_string(&PayoutBody::from(row)).unwrap_or_default();
    let (status, answer, fresh) = match answer {
        Ok(PayoutAnswer::Fresh(row)) => (StatusCode::CREATED, render(&row), true),
        Ok(PayoutAnswer::Again(row)) => (StatusCode::CREATED, render(&row), false),
        Ok(PayoutAnswer::Stored { status, body }) => {
            return Ok(json_response(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body));
        }
        Err(error) => {
            let problem = Problem::from(error);
            if problem.status().is_server_error() {
                // A 5xx (a fault, or 503 overloaded) is never stored: a retry runs again.
                return Err(problem);
            }
            (problem.status(), problem.body_json(), true)
        }
    };
    if let (Some(claim), true) = (&claim, fresh)
        && let Err(error) = state.app.remember_answer(claim, status.as_u16(), &answer).await
    {
        tracing::warn!(%error, "could not store a payout's answer; a retry re-renders it");
    }
    Ok(json_response(status, answer))
}

/// The owner asks for a payout of the merchant's available balance. One at a time: 409 `payout_in_progress`
/// while another is `requested`.
#[utoipa::path(post, path = "/api/v1/merchants/{id}/payouts", tag = "payouts", operation_id = "request_payout",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64),
        ("Idempotency-Key" = Option<String>, Header, description = "the same key answers the first answer again",
        pattern = r"^[!-~]{1,200}$", max_length = 200)),
    request_body = PayoutRequestBody,
    responses((status = 201, body = PayoutBody), (status = 400, body = ProblemBody), (status = 402, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody), (status = 409, body = ProblemBody),
        (status = 422, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let merchant = merchant_id(&id)?;
    request(state, caller, Payer::Merchant(merchant), req).await
}

/// The merchant's payouts, newest first (owner only).
#[utoipa::path(get, path = "/api/v1/merchants/{id}/payouts", tag = "payouts", operation_id = "list_payouts",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64),
        PayoutPageParams),
    responses((status = 200, body = PayoutPage), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(p): Query<PayoutPageParams>,
) -> ApiResult<axum::Json<PayoutPage>> {
    let merchant = merchant_id(&id)?;
    let (cursor, limit) = p.parse()?;
    let rows = state.app.merchant_payouts(&caller, &merchant, cursor.as_ref(), limit).await?;
    Ok(axum::Json(page(rows, limit)))
}

/// The caller withdraws from their available balance. Several may be on their way at once; the account cannot
/// be closed while one is (409 `withdrawal_pending`).
#[utoipa::path(post, path = "/api/v1/me/withdrawals", tag = "payouts", operation_id = "request_withdrawal",
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key answers the first answer again",
        pattern = r"^[!-~]{1,200}$", max_length = 200)),
    request_body = PayoutRequestBody,
    responses((status = 201, body = PayoutBody), (status = 400, body = ProblemBody), (status = 402, body = ProblemBody),
        (status = 409, body = ProblemBody), (status = 422, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn withdraw(State(state): State<AppState>, Auth(caller): Auth, req: Request) -> ApiResult<Response> {
    request(state, caller, Payer::Customer, req).await
}

/// The caller's withdrawals, newest first.
#[utoipa::path(get, path = "/api/v1/me/withdrawals", tag = "payouts", operation_id = "list_withdrawals",
    params(PayoutPageParams),
    responses((status = 200, body = PayoutPage)),
    security(("bearer" = [])))]
pub async fn withdrawals(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(p): Query<PayoutPageParams>,
) -> ApiResult<axum::Json<PayoutPage>> {
    let (cursor, limit) = p.parse()?;
    let rows = state.app.my_withdrawals(&caller, cursor.as_ref(), limit).await?;
    Ok(axum::Json(page(rows, limit)))
}
