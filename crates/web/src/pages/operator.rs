//! The operator's page: merchants waiting for approval, credits, the invariant check's status, and refunds that
//! failed at their provider (each can be sent back once the provider works again).

use super::{Chrome, PageError, filters, finish, respond};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use tuangou_app::{MerchantRow, Violation};

#[derive(Template)]
#[template(path = "operator.html")]
struct OperatorPage<'a> {
    page: &'a Chrome,
    pending: Vec<MerchantRow>,
    violations: Vec<Violation>,
    failed_refunds: Vec<tuangou_app::RefundRow>,
}

pub async fn operator(page: Chrome, State(state): State<AppState>) -> Response {
    let result = async {
        let caller = page.require_caller()?;
        let pending = state.app.pending_merchants(caller).await?;
        // `pending_merchants` has checked that the caller is an operator.
        let violations = state.app.check().await?;
        let failed_refunds = state.app.refunds_with_status(caller, "failed", None, 100).await?;
        Ok::<_, PageError>(respond(&page, &OperatorPage { page: &page, pending, violations, failed_refunds }))
    }
    .await;
    finish(&page, result)
}
