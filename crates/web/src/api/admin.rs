//! The operator's calls: credits, merchant approval, the invariant check.

use crate::api::merchants::MerchantBody;
use crate::extract::Path;
use crate::extract::{Auth, Json};
use crate::problem::{ApiResult, Problem, ProblemBody};
use crate::{AppState, times};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tuangou_app::{CreditTarget, EntryRecord};
use tuangou_domain::ids::{MerchantId, UserId};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct CreditBody {
    /// Exactly one of `user_id` and `merchant_id`.
    user_id: Option<String>,
    merchant_id: Option<String>,
    /// Fen, 1 … 10,000,000,000.
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    amount: i64,
    /// The outside reference (a bank transfer, a payment): the same reference credits once. 1–100 printable
    /// characters.
    #[schema(min_length = 1, max_length = 100)]
    reference: String,
}

#[derive(Serialize, ToSchema)]
pub struct PostingBody {
    account: String,
    /// `fen` or `points`.
    unit: String,
    amount: i64,
}

/// A balanced ledger entry.
#[derive(Serialize, ToSchema)]
pub struct EntryBody {
    id: String,
    cause: String,
    reference: Option<String>,
    created_at: String,
    postings: Vec<PostingBody>,
}

impl From<EntryRecord> for EntryBody {
    fn from(e: EntryRecord) -> Self {
        Self {
            id: e.id.to_string(),
            cause: e.cause,
            reference: e.reference,
            created_at: times::format(e.created_at),
            postings: e
                .postings
                .into_iter()
                .map(|p| PostingBody { account: p.account, unit: p.unit, amount: p.amount })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ViolationBody {
    /// Which invariant of SPEC.md (1–7).
    invariant: u8,
    detail: String,
}

#[derive(Serialize, ToSchema)]
pub struct CheckBody {
    ok: bool,
    violations: Vec<ViolationBody>,
}

/// Credit a customer's or a merchant's wallet (idempotent by `reference`).
#[utoipa::path(post, path = "/api/v1/admin/credits", tag = "operator", operation_id = "credit", request_body = CreditBody,
    responses((status = 201, body = EntryBody), (status = 400, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, body = ProblemBody)), security(("bearer" = [])))]
pub async fn credit(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Json(body): Json<CreditBody>,
) -> ApiResult<(StatusCode, axum::Json<EntryBody>)> {
    let unknown = |code: &str| Problem::new(StatusCode::NOT_FOUND, code, "no such account holder");
    let target = match (body.user_id.as_deref(), body.merchant_id.as_deref()) {
        (Some(user), None) => CreditTarget::User(UserId::parse(user).ok_or_else(|| unknown("unknown_user"))?),
        (None, Some(merchant)) => {
            CreditTarget::Merchant(MerchantId::parse(merchant).ok_or_else(|| unknown("unknown_merchant"))?)
        }
        _ => return Err(Problem::invalid("user_id", "invalid_field", "give exactly one of user_id and merchant_id")),
    };
    let (entry, _created) = state.app.credit(&caller, target, body.amount, &body.reference).await?;
    Ok((StatusCode::CREATED, axum::Json(entry.into())))
}

/// Approve a merchant (also when it is active already).
#[utoipa::path(post, path = "/api/v1/admin/merchants/{id}/approve", tag = "operator", operation_id = "approve_merchant",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = MerchantBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<MerchantBody>> {
    // The operator check comes first, so a non-operator learns nothing about which ids exist.
    if !caller.is_operator {
        return Err(Problem::new(StatusCode::FORBIDDEN, "operator_only", "only an operator may do this"));
    }
    let id = MerchantId::parse(&id)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "unknown_merchant", "no such merchant"))?;
    let view = state.app.approve_merchant(&caller, &id).await?;
    Ok(axum::Json(view.into()))
}

/// The invariants of SPEC.md on the live data.
#[utoipa::path(get, path = "/api/v1/admin/check", tag = "operator", operation_id = "check_invariants",
    responses((status = 200, body = CheckBody), (status = 403, body = ProblemBody)), security(("bearer" = [])))]
pub async fn check(State(state): State<AppState>, Auth(caller): Auth) -> ApiResult<axum::Json<CheckBody>> {
    if !caller.is_operator {
        return Err(Problem::new(StatusCode::FORBIDDEN, "operator_only", "only an operator may do this"));
    }
    let violations = state.app.check().await?;
    Ok(axum::Json(CheckBody {
        ok: violations.is_empty(),
        violations: violations
            .into_iter()
            .map(|v| ViolationBody { invariant: v.invariant, detail: v.detail })
            .collect(),
    }))
}
