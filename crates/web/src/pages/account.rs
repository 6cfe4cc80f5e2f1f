//! Signing up and in, and the customer's own page: groups, vouchers (with a big QR and code), wallet, points,
//! rewards and the record of everything that happened.

use super::format::yuan;
use super::join::{self, JoinIntent};
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
    /// `1`: the reader tapped join on the page `next` names; join it once signed up or in (`pages::join`).
    join: Option<String>,
}

/// Where to go after signing in: a path (and query) on this site, else the home page.
///
/// `next` is read the way a browser reads it: as a URL relative to this site (WHATWG parsing, which drops tabs
/// and line breaks anywhere and takes `\` for `/`), so `/\t/evil.com` is `//evil.com`, another host. Only an
/// answer on this site's origin is kept, and of it only the path and the query, serialized again (so nothing
/// the browser could read differently is left). A path that would start with `//` (from `/.//evil.com`) would be
/// another host when followed: it is refused too.
fn next_path(next: Option<&str>) -> String {
    const SITE: &str = "http://tuangou.invalid/";
    let home = || "/".to_owned();
    let (Some(next), Ok(site)) = (next, url::Url::parse(SITE)) else { return home() };
    let Ok(target) = site.join(next) else { return home() };
    if target.origin() != site.origin() || target.path().starts_with("//") {
        return home();
    }
    match target.query() {
        Some(query) => format!("{}?{query}", target.path()),
        None => target.path().to_owned(),
    }
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    page: &'a Chrome,
    next: String,
    sign_up: bool,
    /// The join to complete once signed up or in.
    intent: Option<JoinIntent>,
}

impl SignInPage<'_> {
    /// The other form (sign in ↔ sign up), keeping where to go and what to join.
    fn switch_url(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("next", &self.next);
        if self.intent.is_some() {
            query.append_pair("join", "1");
        }
        format!("{}?{}", if self.sign_up { "/signin" } else { "/signup" }, query.finish())
    }
}

/// The sign-in or sign-up page, with the join the reader started when `join=1` names one.
async fn account_page(page: Chrome, state: AppState, params: Option<String>, sign_up: bool) -> Response {
    let params = query_params::<NextParams>(params);
    let next = next_path(params.next.as_deref());
    let intent = match params.join.as_deref() {
        Some("1") => join::intent(&state, &next, page.tr.lang()).await,
        _ => None,
    };
    respond(&page, &SignInPage { page: &page, next, sign_up, intent })
}

pub async fn sign_in(page: Chrome, State(state): State<AppState>, RawQuery(params): RawQuery) -> Response {
    account_page(page, state, params, false).await
}

pub async fn sign_up(page: Chrome, State(state): State<AppState>, RawQuery(params): RawQuery) -> Response {
    account_page(page, state, params, true).await
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
    /// The vouchers, each with the name of the store that serves it.
    vouchers: Vec<(VoucherView, String)>,
    refunds: Vec<tuangou_app::RefundRow>,
    payments: Vec<tuangou_app::PaymentRow>,
    /// The latest withdrawals, and the providers to withdraw through.
    withdrawals: Vec<tuangou_app::PayoutRow>,
    providers: Vec<&'static str>,
}

impl MePage<'_> {
    fn reward_text(&self, reward: &Option<(String, i64)>) -> String {
        match reward {
            Some((kind, amount)) if kind == "points" => self.page.ta1("reward-points", "n", amount),
            Some((kind, amount)) if kind == "cash" => self.page.ta1("reward-cash", "amount", yuan(*amount)),
            Some((kind, amount)) if kind == "commission_share" => {
                self.page.ta1("reward-commission-share", "amount", yuan(*amount))
            }
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
        let mut stores: HashMap<String, String> = HashMap::new();
        let mut vouchers = Vec::new();
        for voucher in state.app.my_vouchers(caller, None, 30).await? {
            let merchant = voucher.voucher.merchant_id.clone();
            if !stores.contains_key(&merchant) {
                let id = tuangou_domain::ids::MerchantId::from_trusted(&merchant);
                stores.insert(merchant.clone(), state.app.merchant(&id).await?.merchant.name);
            }
            vouchers.push((voucher, stores[&merchant].clone()));
        }
        let refunds = state.app.my_refunds(caller, None, 30).await?;
        let payments = state.app.my_payments(caller, 30).await?;
        let withdrawals = state.app.my_withdrawals(caller, None, 10).await?;
        let providers = state.app.provider_names();
        let body =
            MePage { page: &page, wallet, history, memberships, vouchers, refunds, payments, withdrawals, providers };
        Ok(respond(&page, &body))
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
    /// The store that serves it: where, how to get there, when it is open.
    shop: tuangou_app::MerchantView,
}

/// One voucher, big enough to scan at the counter: the deal and the store that serves it (address, directions,
/// hours), its QR code (the voucher's address: `App::voucher_url`) and its typed code; once redeemed, when and
/// where. The page follows the voucher's events, so a redemption at the counter shows here as it happens.
pub async fn voucher(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let caller = page.require_caller()?;
        let id = tuangou_domain::ids::VoucherId::parse(&id).ok_or(PageError::NotFound)?;
        let voucher = state.app.my_voucher(caller, &id).await?;
        let qr = crate::api::vouchers::qr_svg(&state.app.voucher_url(&voucher)).map_err(|_| PageError::NotFound)?;
        let merchant = tuangou_domain::ids::MerchantId::from_trusted(&voucher.voucher.merchant_id);
        let shop = state.app.merchant(&merchant).await?;
        Ok(respond(&page, &VoucherPage { page: &page, voucher, qr, shop }))
    }
    .await;
    finish(&page, result)
}

#[cfg(test)]
mod tests {
    use super::next_path;

    #[test]
    fn next_stays_on_this_site() {
        let cases: &[(&str, &str)] = &[
            ("/me", "/me"),
            ("/g/abc?from=t1&lang=en", "/g/abc?from=t1&lang=en"),
            ("/c/1#rules", "/c/1"),
            ("/a b/<x>", "/a%20b/%3Cx%3E"),
            ("/%2F%2Fevil.com", "/%2F%2Fevil.com"),
            ("me", "/me"),
            ("http://tuangou.invalid/me", "/me"),
            // Other hosts, however spelled.
            ("//evil.com", "/"),
            ("///evil.com", "/"),
            ("/\\evil.com", "/"),
            ("\\\\evil.com", "/"),
            ("/\t/evil.com", "/"),
            ("/\n/evil.com", "/"),
            ("/\r/evil.com", "/"),
            ("\t//evil.com", "/"),
            (" //evil.com", "/"),
            ("/.//evil.com", "/"),
            ("/./\\evil.com", "/"),
            ("/x/..//evil.com", "/"),
            ("https://evil.com/", "/"),
            ("http:evil.com", "/evil.com"),
            ("/%09/evil.com", "/%09/evil.com"),
            ("HTTPS://EVIL.COM", "/"),
            ("http://tuangou.invalid@evil.com/", "/"),
            ("javascript:alert(1)", "/"),
            ("JaVaScRiPt:alert(1)", "/"),
            ("java\tscript:alert(1)", "/"),
            ("data:text/html,<script>alert(1)</script>", "/"),
            ("", "/"),
        ];
        for (next, expected) in cases {
            assert_eq!(next_path(Some(next)), *expected, "next = {next:?}");
        }
        assert_eq!(next_path(None), "/");
    }
}
