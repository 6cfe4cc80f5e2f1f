//! The JSON API of API.md, one module per area. Handlers parse, call one use case, and shape the answer.

pub mod accounts;
pub mod admin;
pub mod campaigns;
pub mod groups;
pub mod merchants;
mod payer;
pub mod payments;
pub mod payouts;
pub mod photos;
pub mod reconciliations;
pub mod service;
pub mod vouchers;

use crate::AppState;
use axum::Router;
use axum::routing::{delete, get, post, put};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", post(accounts::sign_up))
        .route("/api/v1/sessions", post(accounts::sign_in))
        .route("/api/v1/sessions/current", delete(accounts::sign_out))
        .route("/api/v1/me", get(accounts::me).delete(accounts::close))
        .route("/api/v1/me/history", get(accounts::history))
        .route("/api/v1/me/vouchers/{id}/refund", post(vouchers::refund))
        .route("/api/v1/me/wallet", get(accounts::wallet))
        .route("/api/v1/me/withdrawals", get(payouts::withdrawals).post(payouts::withdraw))
        .route("/api/v1/me/vouchers", get(vouchers::mine))
        .route("/api/v1/me/memberships", get(vouchers::memberships))
        .route("/api/v1/me/vouchers/{id}/qr.svg", get(vouchers::qr))
        .route("/api/v1/me/vouchers/{id}/events", get(groups::voucher_events))
        .route("/api/v1/merchants/{id}/vouchers/{code}", get(vouchers::preview))
        .route("/api/v1/merchants/{id}/redemptions", post(vouchers::redeem))
        .route("/api/v1/merchants/{id}/redemptions/{redemption_id}", delete(vouchers::undo))
        .route("/api/v1/admin/credits", post(admin::credit))
        .route("/api/v1/admin/merchants/{id}/approve", post(admin::approve))
        .route("/api/v1/admin/check", get(admin::check))
        .route("/api/v1/admin/reconciliations", get(reconciliations::list))
        .route("/api/v1/merchants", post(merchants::create))
        .route("/api/v1/merchants/{id}", get(merchants::get))
        .route("/api/v1/merchants/{id}/wallet", get(merchants::wallet))
        .route("/api/v1/merchants/{id}/staff", post(merchants::add_staff))
        .route("/api/v1/merchants/{id}/stats", get(merchants::stats))
        .route("/api/v1/merchants/{id}/photo", put(photos::put_merchant_photo))
        .route("/api/v1/campaigns/{id}/photo", put(photos::put_campaign_photo))
        .route("/media/{name}", get(photos::media))
        .route("/api/v1/merchants/{id}/payouts", get(payouts::list).post(payouts::create))
        .route("/api/v1/merchants/{id}/campaigns", post(campaigns::create))
        .route("/api/v1/campaigns", get(campaigns::list))
        .route("/api/v1/campaigns/{id}", get(campaigns::get).patch(campaigns::patch))
        .route("/api/v1/campaigns/{id}/publish", post(campaigns::publish))
        .route("/api/v1/campaigns/{id}/end", post(campaigns::end))
        .route("/api/v1/campaigns/{id}/groups", post(groups::open))
        .route("/api/v1/campaigns/{id}/join", post(groups::join_campaign))
        .route("/api/v1/campaigns/{id}/events", get(groups::campaign_events))
        .route("/api/v1/groups/{id}", get(groups::get))
        .route("/api/v1/groups/{id}/members", post(groups::join_group))
        .route("/api/v1/groups/{id}/events", get(groups::group_events))
        .route("/api/v1/groups/{id}/draw", post(groups::draw))
        .route("/api/v1/payments/{provider}/notify", post(payments::notify))
        .route("/api/v1/me/payments/{id}", get(payments::my_payment))
        .route("/api/v1/me/refunds", get(payments::my_refunds))
        .route("/api/v1/admin/refunds", get(payments::admin_refunds))
        .route("/api/v1/admin/refunds/{id}/retry", post(payments::admin_retry_refund))
        .route("/sandbox/payments/{id}/pay", post(payments::sandbox_pay))
        .route("/sandbox/payments/{id}/cancel", post(payments::sandbox_cancel))
        .route("/sandbox/bills/{date}", get(payments::sandbox_bill))
        .route("/api/v1/openapi.json", get(service::openapi))
        .route("/healthz", get(service::healthz))
        .route("/readyz", get(service::readyz))
        .route("/metrics", get(service::metrics))
}
