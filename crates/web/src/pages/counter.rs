//! The counter's redeem screen: scan with the camera (the browser's `BarcodeDetector`, else the vendored jsQR
//! decoding the camera's frames), read a photo of the QR, or type a code; see what it is (the deal, its price, the
//! store); redeem with one tap, undo within the hour; the latest redemptions below. The work is done by
//! `assets/scan.js` and `assets/redeem.js` against the API; this page only lays it out. A code typed here that
//! belongs to another store the reader works at is found by the preview, and the page moves to that store's
//! counter with it, as for a scanned one.
//!
//! A voucher's QR code holds its address, `/r/{merchant}/{code}` ([`scanned`]): any phone's camera opens it.
//! Staff of that store land on its counter with the code looked up, so redeeming is one more tap; staff of other
//! stores land on their own counter with the code, and get the same refusal as for a typed code; anyone else gets
//! a page that says whose voucher it is and to show it at the counter. That page looks nothing up by the code (it
//! only checks its shape), so it tells a guesser nothing.

use super::{Chrome, PageError, PagePath, filters, finish, path_id, query_params, respond};
use crate::AppState;
use crate::api::merchants::merchant_id;
use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tuangou_app::{MerchantView, RecentRedemption};
use tuangou_domain::voucher_code::VoucherCode;

#[derive(Deserialize, Default)]
pub struct RedeemParams {
    /// A code to look up as the page opens (from a scanned voucher address).
    code: Option<String>,
}

#[derive(Template)]
#[template(path = "redeem.html")]
struct RedeemPage<'a> {
    page: &'a Chrome,
    shop: MerchantView,
    recent: Vec<RecentRedemption>,
    /// The code to look up at once, in its display form ("" when none, or when it is not shaped like a code).
    code: String,
    /// The stores the reader works the counter of, space-separated: a scanned voucher of another of them opens
    /// that store's counter.
    counters: String,
}

/// A code from an address, in its display form, when it is shaped like one (never looked up here).
fn code_shape(text: &str) -> Option<String> {
    VoucherCode::parse(text).ok().map(|c| c.display())
}

pub async fn redeem(page: Chrome, State(state): State<AppState>, id: PagePath, RawQuery(raw): RawQuery) -> Response {
    let params: RedeemParams = query_params(raw);
    let result = async {
        let id = path_id(id)?;
        let caller = page.require_caller()?;
        let id = merchant_id(&id).map_err(|_| PageError::NotFound)?;
        let recent = state.app.recent_redemptions(caller, &id).await?;
        let shop = state.app.merchant(&id).await?;
        let code = params.code.as_deref().and_then(code_shape).unwrap_or_default();
        let counters = page.shops.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(" ");
        Ok(respond(&page, &RedeemPage { page: &page, shop, recent, code, counters }))
    }
    .await;
    finish(&page, result)
}

#[derive(Template)]
#[template(path = "scanned.html")]
struct ScannedPage<'a> {
    page: &'a Chrome,
    shop: MerchantView,
}

/// A voucher's address, as its QR code holds it: the counter for the store's staff (and for staff of other
/// stores, whose counter refuses the code as it would a typed one), a page saying "show this to the staff" for
/// anyone else. A code not even shaped like one names nothing: 404.
pub async fn scanned(
    page: Chrome,
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let result = async {
        let Path((merchant, code)) = path.map_err(|_| PageError::NotFound)?;
        let merchant = merchant_id(&merchant).map_err(|_| PageError::NotFound)?;
        let code = code_shape(&code).ok_or(PageError::NotFound)?;
        let shop = state.app.merchant(&merchant).await?;
        let counter = match page.role_at(merchant.as_str()) {
            Some(_) => Some(merchant.as_str()),
            None => page.counter_shop(),
        };
        if let Some(counter) = counter {
            let query = form_urlencoded::Serializer::new(String::new()).append_pair("code", &code).finish();
            return Ok(Redirect::to(&format!("/shop/{counter}/redeem?{query}")).into_response());
        }
        Ok(respond(&page, &ScannedPage { page: &page, shop }))
    }
    .await;
    finish(&page, result)
}
