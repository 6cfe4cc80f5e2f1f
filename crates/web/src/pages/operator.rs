//! The operator's page: merchants waiting for approval, credits, the invariant check's status, refunds that
//! failed at their provider (each can be sent back once the provider works again), and the latest reconciliation
//! results with their mismatches.

use super::{Chrome, PageError, filters, finish, format, respond};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use tuangou_app::payments::reconcile::Reconciliation;
use tuangou_app::{MerchantRow, Violation};
use tuangou_domain::reconciliation::{Kind, Mismatch, Side};
use tuangou_domain::time::china_time_seconds;

/// How many of the latest reconciliation results the page shows (one per provider and day).
const RECONCILIATIONS_SHOWN: usize = 14;

/// A mismatch as the page lists it: what kind of mismatch, the id, and each side in words.
struct MismatchItem {
    /// The Fluent key of the mismatch's kind.
    what: &'static str,
    kind: &'static str,
    id: String,
    ours: Option<String>,
    theirs: Option<String>,
}

/// A reconciliation result as the page shows it.
struct ReconciliationItem {
    result: Reconciliation,
    mismatches: Vec<MismatchItem>,
}

fn side(page: &Chrome, side: &Side) -> String {
    let mut text = format::yuan(side.amount);
    if let Some(at) = side.at {
        text.push_str(&format!(" · {}", china_time_seconds(at)));
    }
    if let Some(status) = &side.status {
        text.push_str(&format!(" · {}", page.t(&format!("reconciliation-state-{status}"))));
    }
    text
}

fn items(page: &Chrome, results: Vec<Reconciliation>) -> Vec<ReconciliationItem> {
    results
        .into_iter()
        .map(|result| {
            let m = &result.mismatches;
            let lists: [(&'static str, &Vec<Mismatch>); 3] = [
                ("reconciliation-missing-ours", &m.missing_ours),
                ("reconciliation-missing-theirs", &m.missing_theirs),
                ("reconciliation-amount-differs", &m.amount_differs),
            ];
            let mismatches = lists
                .into_iter()
                .flat_map(|(what, list)| {
                    list.iter().map(move |x| MismatchItem {
                        what,
                        kind: match x.kind {
                            Kind::Payment => "reconciliation-payment",
                            Kind::Refund => "reconciliation-refund",
                        },
                        id: x.id.clone(),
                        ours: x.ours.as_ref().map(|s| side(page, s)),
                        theirs: x.theirs.as_ref().map(|s| side(page, s)),
                    })
                })
                .collect();
            ReconciliationItem { result, mismatches }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "operator.html")]
struct OperatorPage<'a> {
    page: &'a Chrome,
    pending: Vec<MerchantRow>,
    violations: Vec<Violation>,
    failed_refunds: Vec<tuangou_app::RefundRow>,
    reconciliations: Vec<ReconciliationItem>,
}

pub async fn operator(page: Chrome, State(state): State<AppState>) -> Response {
    let result = async {
        let caller = page.require_caller()?;
        let pending = state.app.pending_merchants(caller).await?;
        // `pending_merchants` has checked that the caller is an operator.
        let violations = state.app.check().await?;
        let failed_refunds = state.app.refunds_with_status(caller, "failed", None, 100).await?;
        let reconciliations = items(&page, state.app.reconciliations(caller, None, RECONCILIATIONS_SHOWN).await?);
        let body = OperatorPage { page: &page, pending, violations, failed_refunds, reconciliations };
        Ok::<_, PageError>(respond(&page, &body))
    }
    .await;
    finish(&page, result)
}
