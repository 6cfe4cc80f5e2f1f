//! Reconciliation results for the operator (`GET /api/v1/admin/reconciliations`, PAYMENTS.md "Reconciliation").

use crate::extract::{Auth, Query};
use crate::problem::{ApiResult, Problem, ProblemBody};
use crate::{AppState, times};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tuangou_app::payments::reconcile::Reconciliation;
use tuangou_domain::reconciliation::{Mismatch, Side};
use tuangou_domain::time::ChinaDay;
use utoipa::ToSchema;

/// One side's record of a mismatched id.
#[derive(Serialize, ToSchema)]
pub struct SideBody {
    /// Fen.
    amount: i64,
    /// When it was paid or refunded (RFC 3339); absent when our record of it never was.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<String>,
    /// Ours only: our state of it (`paid`, `refunded`, `created`, `closed`; `requested`, `succeeded`, `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

impl From<&Side> for SideBody {
    fn from(side: &Side) -> Self {
        Self { amount: side.amount, at: side.at.map(times::format), status: side.status.clone() }
    }
}

/// An id the bill and our books do not agree on. `ours` is what we have under that id (for a line missing on our
/// side: what we have instead, whatever its day or state; absent when we have nothing); `theirs` is the bill's
/// line (absent when the bill does not list it).
#[derive(Serialize, ToSchema)]
pub struct MismatchBody {
    /// Our `out_trade_no` (a payment) or `out_refund_no` (a refund).
    id: String,
    /// `payment` or `refund`.
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ours: Option<SideBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    theirs: Option<SideBody>,
}

impl From<&Mismatch> for MismatchBody {
    fn from(m: &Mismatch) -> Self {
        Self {
            id: m.id.clone(),
            kind: m.kind.as_str().to_owned(),
            ours: m.ours.as_ref().map(Into::into),
            theirs: m.theirs.as_ref().map(Into::into),
        }
    }
}

/// The latest result for one provider and business day.
#[derive(Serialize, ToSchema)]
pub struct ReconciliationBody {
    provider: String,
    /// The business day in China Standard Time, `YYYY-MM-DD`.
    date: String,
    /// `matched` or `mismatched`.
    status: String,
    /// Lines on the provider's bill that we do not count that day.
    missing_ours: Vec<MismatchBody>,
    /// Payments and refunds we count that day that the bill does not list.
    missing_theirs: Vec<MismatchBody>,
    /// Listed by both, for different amounts.
    amount_differs: Vec<MismatchBody>,
    /// Lines on the bill.
    bill_lines: i64,
    /// Our payments and refunds counted that day.
    our_lines: i64,
    /// Ids both list for the same amount.
    matched: i64,
    /// When this result was made (RFC 3339); a day reconciled again shows its newest result.
    checked_at: String,
}

impl From<Reconciliation> for ReconciliationBody {
    fn from(r: Reconciliation) -> Self {
        let list = |items: &[Mismatch]| items.iter().map(Into::into).collect();
        Self {
            status: if r.matched { "matched" } else { "mismatched" }.to_owned(),
            missing_ours: list(&r.mismatches.missing_ours),
            missing_theirs: list(&r.mismatches.missing_theirs),
            amount_differs: list(&r.mismatches.amount_differs),
            bill_lines: r.bill_lines,
            our_lines: r.our_lines,
            matched: r.matched_lines,
            checked_at: times::format(r.checked_at),
            date: r.day.to_string(),
            provider: r.provider,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ReconciliationPage {
    items: Vec<ReconciliationBody>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ReconciliationParams {
    /// Default 50, at most 200.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the page before (absent or empty: the first page): `{date}_{provider}`.
    #[param(pattern = r"^([0-9]{4}-[0-9]{2}-[0-9]{2}_[a-z0-9]{1,32})?$", max_length = 43)]
    cursor: Option<String>,
}

/// A page's cursor: the last item's day and provider.
fn cursor_of(r: &ReconciliationBody) -> String {
    format!("{}_{}", r.date, r.provider)
}

fn parse_cursor(text: Option<&str>) -> Result<Option<(ChinaDay, String)>, Problem> {
    let bad = || Problem::invalid("cursor", "invalid_field", "is not a cursor this list gave");
    match text {
        None | Some("") => Ok(None),
        Some(text) => {
            let (day, provider) = text.split_once('_').ok_or_else(bad)?;
            let plausible = !provider.is_empty()
                && provider.len() <= 32
                && provider.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            let day = ChinaDay::parse(day).filter(|_| plausible).ok_or_else(bad)?;
            Ok(Some((day, provider.to_owned())))
        }
    }
}

/// The latest reconciliation result per provider and business day, newest day first, with every mismatch.
#[utoipa::path(get, path = "/api/v1/admin/reconciliations", tag = "operator", operation_id = "list_reconciliations",
    params(ReconciliationParams),
    responses((status = 200, body = ReconciliationPage), (status = 401, body = ProblemBody),
        (status = 403, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(p): Query<ReconciliationParams>,
) -> ApiResult<axum::Json<ReconciliationPage>> {
    let limit = match p.limit.unwrap_or(50) {
        l @ 1..=200 => l as usize,
        _ => return Err(Problem::invalid("limit", "invalid_field", "must be from 1 to 200")),
    };
    let after = parse_cursor(p.cursor.as_deref())?;
    let results = state
        .app
        .reconciliations(&caller, after.as_ref().map(|(day, provider)| (*day, provider.as_str())), limit)
        .await?;
    let items: Vec<ReconciliationBody> = results.into_iter().map(Into::into).collect();
    let next_cursor = (items.len() == limit).then(|| items.last().map(cursor_of)).flatten();
    Ok(axum::Json(ReconciliationPage { items, next_cursor }))
}
