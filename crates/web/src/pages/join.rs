//! Joining from a deal or group page: the sticky bar with the price and the join button, and the join a signed-out
//! reader starts there and finishes by signing up.
//!
//! Signed out, the bar's button leads to the sign-up page with `join=1` beside `next` (the page they were on). That
//! page reads the join again from `next` on the server — so a link can only name a group or deal page of ours, and
//! the form says what will be joined and for how much — and its script, once the account and session exist, joins
//! (and pays: through the offered provider when the wallet does not cover the price) before going on. Signing in
//! instead of up does the same.

use super::customer::rules_card;
use crate::AppState;
use crate::api::campaigns::campaign_id;
use tuangou_app::CampaignView;
use tuangou_domain::ids::{CampaignId, GroupId};
use tuangou_domain::rules_card::Lang;

/// The sticky bar of a page where the reader may join.
pub struct JoinBar {
    /// The join call (`/api/v1/groups/{id}/members` or `/api/v1/campaigns/{id}/join`).
    pub api: String,
    /// The sharer's ticket, when a share link brought the reader ("" when none).
    pub invited_by: String,
    /// The provider that pays when the wallet does not cover the price ("" when none is offered).
    pub pay_with: &'static str,
    pub price: i64,
    /// The rules in one sentence, with a link to the whole card above: the rules come before paying.
    pub headline: String,
    /// Free seats of the group ("还差 N 人"), on a group's page.
    pub missing: Option<i64>,
    /// Signed out: where the button leads instead (the short sign-up, then back here and joined).
    pub sign_up: Option<String>,
}

impl JoinBar {
    /// The bar of a deal or group page; `page_path` is the page's own address (kept with its `?from=`).
    pub fn new(view: &CampaignView, api: String, lang: Lang, signed_in: bool, page_path: &str) -> Self {
        JoinBar {
            api,
            invited_by: String::new(),
            pay_with: "",
            price: view.campaign.price,
            headline: rules_card(view, lang).map(|card| card.headline).unwrap_or_default(),
            missing: None,
            sign_up: (!signed_in).then(|| sign_up_url(page_path)),
        }
    }
}

/// The short sign-up that returns to `back` joined.
pub fn sign_up_url(back: &str) -> String {
    let query =
        form_urlencoded::Serializer::new(String::new()).append_pair("next", back).append_pair("join", "1").finish();
    format!("/signup?{query}")
}

/// What a signed-out reader is joining, as the sign-up (or sign-in) page shows it and its script completes it.
pub struct JoinIntent {
    pub bar: JoinBar,
    pub title: String,
    /// The sharer's masked name, when a share link brought the reader.
    pub inviter: Option<String>,
}

/// The join `next` names (a path and query already kept to this site): a group page (`/g/{id}`, with the sharer's
/// `from`) whose group is open, or a live deal's page (`/c/{id}`). Anything else, or anything that cannot be read
/// now, is no join: the reader signs up and goes back as usual.
pub async fn intent(state: &AppState, next: &str, lang: Lang) -> Option<JoinIntent> {
    let (path, query) = next.split_once('?').unwrap_or((next, ""));
    let from = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "from")
        .map(|(_, v)| v.into_owned())
        .filter(|t| tuangou_domain::draw::check_ticket(t).is_ok());
    let (view, api, missing) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["", "g", id] => {
            let group = state.app.group(&GroupId::parse(id)?).await.ok()?.group;
            if group.status != "open" {
                return None;
            }
            let view = state.app.campaign(None, &group.campaign()).await.ok()?;
            (view, format!("/api/v1/groups/{}/members", group.id), Some(group.group_size - group.member_count))
        }
        ["", "c", id] => {
            let view = state.app.campaign(None, &campaign_id(id).ok()?).await.ok()?;
            let api = format!("/api/v1/campaigns/{}/join", view.campaign.id);
            (view, api, None)
        }
        _ => return None,
    };
    if view.campaign.status != "live" {
        return None;
    }
    let inviter = match &from {
        Some(ticket) => {
            state.app.inviter_name(&CampaignId::from_trusted(&view.campaign.id), ticket).await.ok().flatten()
        }
        None => None,
    };
    let mut bar = JoinBar::new(&view, api, lang, true, next);
    bar.invited_by = from.unwrap_or_default();
    bar.pay_with = state.app.offered_provider().unwrap_or_default();
    bar.missing = missing;
    Some(JoinIntent { bar, title: view.campaign.title, inviter })
}
