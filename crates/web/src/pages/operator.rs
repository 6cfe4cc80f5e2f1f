//! The operator's page: merchants waiting for approval, credits, and the invariant check's status.

use super::{Chrome, PageError, finish, respond};
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
}

pub async fn operator(page: Chrome, State(state): State<AppState>) -> Response {
    let result = async {
        let caller = page.require_caller()?;
        let pending = state.app.pending_merchants(caller).await?;
        // `pending_merchants` has checked that the caller is an operator.
        let violations = state.app.check().await?;
        Ok::<_, PageError>(respond(&page, &OperatorPage { page: &page, pending, violations }))
    }
    .await;
    finish(&page, result)
}
