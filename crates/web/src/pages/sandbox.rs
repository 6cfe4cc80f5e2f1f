//! The sandbox provider's pay page (模拟支付): what a payer sees at the provider, with a button to pay and one to
//! give up. It is the provider's page, not ours: it shows the provider's record of the payment, and its buttons
//! call the provider's own endpoints (`/sandbox/payments/{id}/pay` and `/cancel`). 404 unless the sandbox is on.

use super::{Chrome, PageError, PagePath, filters, finish, path_id, respond};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use tuangou_app::SandboxPaymentRow;

#[derive(Template)]
#[template(path = "sandbox_pay.html")]
struct PayPage<'a> {
    page: &'a Chrome,
    payment: SandboxPaymentRow,
    /// `created`, `paid`, `closed`, or `expired` (created, and its time is up).
    status: &'static str,
    status_key: String,
}

impl PayPage<'_> {
    /// Where the payer goes back to: a path on this site or a web address, never another scheme.
    fn back(&self) -> Option<&str> {
        let url = self.payment.return_url.as_deref()?;
        let on_site = url.starts_with('/') && !url.starts_with("//");
        (on_site || url.starts_with("https://") || url.starts_with("http://")).then_some(url)
    }
}

pub async fn pay(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let sandbox = state.app.sandbox().ok_or(PageError::NotFound)?;
        let payment = sandbox.payment(&id).await?;
        let status = match payment.status.as_str() {
            "paid" => "paid",
            "created" if state.app.clock().now().0 < payment.expires_at => "created",
            "created" => "expired",
            _ => "closed",
        };
        let status_key = format!("sandbox-status-{status}");
        Ok(respond(&page, &PayPage { page: &page, payment, status, status_key }))
    }
    .await;
    finish(&page, result)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_status_has_words() {
        let zh = include_str!("../../locales/zh-CN/main.ftl");
        for status in ["created", "paid", "closed", "expired"] {
            assert!(zh.contains(&format!("sandbox-status-{status} =")), "{status}");
        }
    }
}
