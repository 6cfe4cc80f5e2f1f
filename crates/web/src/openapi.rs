//! The OpenAPI document, generated from the handlers' annotations.

use crate::api::{accounts, admin, campaigns, groups, merchants, payments, service, vouchers};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "tuangou", description = "Lottery group buying that brings customers into stores. See API.md."),
    paths(
        accounts::sign_up, accounts::sign_in, accounts::sign_out, accounts::me, accounts::wallet, accounts::history, accounts::close,
        admin::credit, admin::approve, admin::check,
        merchants::create, merchants::get, merchants::wallet, merchants::add_staff, merchants::stats,
        campaigns::create, campaigns::patch, campaigns::publish, campaigns::end, campaigns::list, campaigns::get,
        groups::open, groups::join_campaign, groups::join_group, groups::get, groups::draw, groups::group_events,
        groups::campaign_events,
        vouchers::mine, vouchers::memberships, vouchers::qr, vouchers::refund, vouchers::preview, vouchers::redeem, vouchers::undo,
        payments::notify, payments::sandbox_pay, payments::sandbox_cancel, payments::sandbox_bill,
        service::healthz, service::readyz, service::metrics,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
