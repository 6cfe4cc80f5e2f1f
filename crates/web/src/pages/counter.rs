//! The counter's redeem screen: scan (where the browser has `BarcodeDetector`) or type a code, see what it is,
//! redeem with one tap, undo within the hour; the latest redemptions below. The work is done by
//! `assets/redeem.js` against the API; this page only lays it out.

use super::{Chrome, PageError, PagePath, filters, finish, path_id, respond};
use crate::AppState;
use crate::api::merchants::merchant_id;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use tuangou_app::{MerchantView, RecentRedemption};

#[derive(Template)]
#[template(path = "redeem.html")]
struct RedeemPage<'a> {
    page: &'a Chrome,
    shop: MerchantView,
    recent: Vec<RecentRedemption>,
}

pub async fn redeem(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let caller = page.require_caller()?;
        let id = merchant_id(&id).map_err(|_| PageError::NotFound)?;
        let recent = state.app.recent_redemptions(caller, &id).await?;
        let shop = state.app.merchant(&id).await?;
        Ok(respond(&page, &RedeemPage { page: &page, shop, recent }))
    }
    .await;
    finish(&page, result)
}
