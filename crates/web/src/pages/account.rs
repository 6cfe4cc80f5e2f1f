//! Signing up and in, and the customer's own page: groups, vouchers (with a big QR and code), wallet, points,
//! rewards and the record of everything that happened.

use super::format::yuan;
use super::{Chrome, PageError, PagePath, filters, finish, path_id, query_params, respond};
use crate::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use std::collections::HashMap;
use tuangou_app::{CustomerWallet, History, MembershipView, VoucherView};

#[derive(Deserialize, Default)]
pub struct NextParams {
    next: Option<String>,
}

/// Where to go after signing in: only a path on this site (never another host).
fn safe_next(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\')).unwrap_or_else(|| "/".into())
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    page: &'a Chrome,
    next: String,
    sign_up: bool,
}

pub async fn sign_in(page: Chrome, RawQuery(params): RawQuery) -> Response {
    let next = safe_next(query_params::<NextParams>(params).next);
    respond(&page, &SignInPage { page: &page, next, sign_up: false })
}

pub async fn sign_up(page: Chrome, RawQuery(params): RawQuery) -> Response {
    let next = safe_next(query_params::<NextParams>(params).next);
    respond(&page, &SignInPage { page: &page, next, sign_up: true })
}

/// A membership line: the campaign's title beside what came of it.
struct MembershipLine {
    view: MembershipView,
    title: String,
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage<'a> {
    page: &'a Chrome,
    wallet: CustomerWallet,
    history: History,
    memberships: Vec<MembershipLine>,
    vouchers: Vec<VoucherView>,
}

impl MePage<'_> {
    fn reward_text(&self, reward: &Option<(String, i64)>) -> String {
        match reward {
            Some((kind, amount)) if kind == "points" => self.page.ta1("reward-points", "n", amount),
            Some((kind, amount)) if kind == "cash" => self.page.ta1("reward-cash", "amount", yuan(*amount)),
            Some((_, amount)) => self.page.ta1("reward-coupon", "amount", yuan(*amount)),
            None => String::new(),
        }
    }
}

pub async fn me(page: Chrome, State(state): State<AppState>) -> Response {
    let result = async {
        let caller = page.require_caller()?;
        let wallet = state.app.customer_wallet(caller).await?;
        let history = state.app.history(caller).await?;
        let views = state.app.my_memberships(caller, None, 30).await?;
        let mut titles: HashMap<String, String> = HashMap::new();
        let mut memberships = Vec::with_capacity(views.len());
        for view in views {
            let campaign_id = view.membership.campaign_id.clone();
            if !titles.contains_key(&campaign_id) {
                let title = match state
                    .app
                    .campaign(Some(caller), &tuangou_domain::ids::CampaignId::from_trusted(&campaign_id))
                    .await
                {
                    Ok(c) => c.campaign.title,
                    Err(_) => String::new(),
                };
                titles.insert(campaign_id.clone(), title);
            }
            memberships.push(MembershipLine { title: titles[&campaign_id].clone(), view });
        }
        let vouchers = state.app.my_vouchers(caller, None, 30).await?;
        Ok(respond(&page, &MePage { page: &page, wallet, history, memberships, vouchers }))
    }
    .await;
    finish(&page, result)
}

#[derive(Template)]
#[template(path = "voucher.html")]
struct VoucherPage<'a> {
    page: &'a Chrome,
    voucher: VoucherView,
    qr: String,
    title: String,
}

/// One voucher, big enough to scan at the counter: its QR code and its typed code.
pub async fn voucher(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let caller = page.require_caller()?;
        let voucher = state.app.my_voucher(caller, &id).await?;
        let qr = crate::api::vouchers::qr_svg(&voucher.code).map_err(|_| PageError::NotFound)?;
        let campaign = tuangou_domain::ids::CampaignId::from_trusted(&voucher.voucher.campaign_id);
        let title = state.app.campaign(Some(caller), &campaign).await.map(|c| c.campaign.title).unwrap_or_default();
        Ok(respond(&page, &VoucherPage { page: &page, voucher, qr, title }))
    }
    .await;
    finish(&page, result)
}
