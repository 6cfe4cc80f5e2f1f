//! The customer's pages: nearby deals, a store's entrance, a campaign, a group (with its share link, live members
//! and the in-browser verification of its draw), the big-screen live draw, and a page that verifies any record.

use super::format;
use super::join::JoinBar;
use super::{Chrome, PageError, PagePath, filters, finish, path_id, query_params, respond};
use crate::AppState;
use crate::api::campaigns::campaign_id;
use crate::api::merchants::merchant_id;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::BTreeMap;
use tuangou_app::{CampaignView, GroupRow, GroupView, MemberRow, MerchantView, NearbyQuery, NearbyView};
use tuangou_domain::campaign::CampaignRules;
use tuangou_domain::ids::GroupId;
use tuangou_domain::rules_card::{Lang, MerchantContact, RulesCard};

/// Cities the home page offers when the device's location is not shared: (name zh, name en, lat, lng).
const CITIES: [(&str, &str, f64, f64); 6] = [
    ("成都", "Chengdu", 30.657, 104.066),
    ("北京", "Beijing", 39.904, 116.407),
    ("上海", "Shanghai", 31.230, 121.474),
    ("广州", "Guangzhou", 23.129, 113.264),
    ("深圳", "Shenzhen", 22.543, 114.058),
    ("杭州", "Hangzhou", 30.274, 120.155),
];

/// Categories offered as filters on the home page.
const CATEGORIES: [&str; 8] = ["火锅", "茶饮", "咖啡", "甜品", "烧烤", "串串", "烘焙", "面馆"];

/// The rules card of a campaign in the reader's language; `None` only for a draft whose rules no longer check.
pub(super) fn rules_card(view: &CampaignView, lang: Lang) -> Option<RulesCard> {
    let rules = CampaignRules::new(view.campaign.input()).ok()?;
    let contact = MerchantContact {
        name: view.merchant.name.clone(),
        phone: view.merchant.phone.clone(),
        address: view.merchant.address.clone(),
    };
    Some(RulesCard::new(&rules, contact, lang))
}

/// One group as a row with its progress.
pub struct GroupLine {
    pub id: String,
    pub joined: i64,
    pub size: i64,
    pub width: i64,
    pub expires_at: i64,
    pub status: String,
}

impl From<&GroupRow> for GroupLine {
    fn from(g: &GroupRow) -> Self {
        GroupLine {
            id: g.id.clone(),
            joined: g.member_count,
            size: g.group_size,
            width: format::width(g.member_count, g.group_size),
            expires_at: g.expires_at,
            status: g.status.clone(),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct HomeParams {
    lat: Option<f64>,
    lng: Option<f64>,
    category: Option<String>,
    q: Option<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    page: &'a Chrome,
    deals: Vec<NearbyView>,
    located: bool,
    category: String,
    q: String,
    cities: Vec<(String, f64, f64)>,
    /// (name, chosen)
    categories: Vec<(String, bool)>,
    lat: String,
    lng: String,
}

impl HomePage<'_> {
    fn km(&self, distance: &Option<f64>) -> String {
        distance
            .map(|d| if d < 1.0 { format!("{:.0} m", d * 1000.0) } else { format!("{d:.1} km") })
            .unwrap_or_default()
    }
}

pub async fn home(page: Chrome, State(state): State<AppState>, RawQuery(params): RawQuery) -> Response {
    let params: HomeParams = query_params(params);
    let result = async {
        let query = NearbyQuery::parse(
            params.lat,
            params.lng,
            Some(if params.lat.is_some() { 30.0 } else { 10.0 }),
            params.category.as_deref(),
            params.q.as_deref(),
            Some(50),
            None,
        )?;
        let (deals, _) = state.app.nearby_campaigns(&query).await?;
        let cities = CITIES
            .iter()
            .map(|(zh, en, lat, lng)| (if page.tr.lang() == Lang::En { *en } else { *zh }.to_owned(), *lat, *lng))
            .collect();
        let body = HomePage {
            page: &page,
            deals,
            located: params.lat.is_some(),
            category: params.category.clone().unwrap_or_default(),
            q: params.q.clone().unwrap_or_default(),
            cities,
            categories: CATEGORIES.iter().map(|c| (c.to_string(), params.category.as_deref() == Some(*c))).collect(),
            lat: params.lat.map(|v| v.to_string()).unwrap_or_default(),
            lng: params.lng.map(|v| v.to_string()).unwrap_or_default(),
        };
        Ok(respond(&page, &body))
    }
    .await;
    finish(&page, result)
}

#[derive(Template)]
#[template(path = "entrance.html")]
struct EntrancePage<'a> {
    page: &'a Chrome,
    shop: MerchantView,
    deals: Vec<tuangou_app::CampaignRow>,
}

/// A store's public entrance: where it is, how to get there, its live deals (the poster's QR leads here).
pub async fn entrance(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let id = merchant_id(&id).map_err(|_| PageError::NotFound)?;
        let (shop, deals) = state.app.live_campaigns_of(&id).await?;
        Ok(respond(&page, &EntrancePage { page: &page, shop, deals }))
    }
    .await;
    finish(&page, result)
}

#[derive(Template)]
#[template(path = "campaign.html")]
struct CampaignPage<'a> {
    page: &'a Chrome,
    view: CampaignView,
    shop: MerchantView,
    card: Option<RulesCard>,
    groups: Vec<GroupLine>,
    balance: Option<i64>,
    is_staff: bool,
    /// The provider the join button pays through when the wallet does not cover the price ("" when none).
    pay_with: &'static str,
    /// The sticky bar with the price and the join button, where the reader may join.
    bar: Option<JoinBar>,
}

pub async fn campaign(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let id = campaign_id(&id).map_err(|_| PageError::NotFound)?;
        let (view, groups) = state.app.open_groups(page.caller.as_ref(), &id).await?;
        let shop = state.app.merchant(&view.campaign.merchant()).await?;
        let balance = match &page.caller {
            Some(c) => Some(state.app.customer_wallet(c).await?.available),
            None => None,
        };
        let is_staff = page.role_at(&view.campaign.merchant_id).is_some();
        let pay_with = state.app.offered_provider().unwrap_or_default();
        let bar = (view.campaign.status == "live" && !is_staff).then(|| {
            let api = format!("/api/v1/campaigns/{}/join", view.campaign.id);
            JoinBar { pay_with, ..JoinBar::new(&view, api, page.tr.lang(), page.caller.is_some(), &page.path) }
        });
        let body = CampaignPage {
            page: &page,
            card: rules_card(&view, page.tr.lang()),
            groups: groups.iter().map(GroupLine::from).collect(),
            is_staff,
            view,
            shop,
            balance,
            pay_with,
            bar,
        };
        Ok(respond(&page, &body))
    }
    .await;
    finish(&page, result)
}

#[derive(Deserialize, Default)]
pub struct GroupParams {
    /// The ticket of the member whose share link brought the reader here.
    from: Option<String>,
}

/// A seat of the group as shown: a member's masked name, or a free seat.
pub struct Seat {
    pub seq: i64,
    /// The member's display name, masked (`App::names_on_screen`); none for a free seat.
    pub name: Option<String>,
    pub me: bool,
    pub winner: bool,
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage<'a> {
    page: &'a Chrome,
    group: GroupRow,
    campaign: CampaignView,
    card: Option<RulesCard>,
    seats: Vec<Seat>,
    /// The members' tickets by seat, for the "如何验证" fold: what the draw's record lists and the digest covers.
    tickets: Vec<(i64, String)>,
    width: i64,
    mine: Option<MemberRow>,
    share_url: String,
    qr_url: String,
    /// The sharer's masked name, when a share link brought a reader who is not in the group.
    inviter: Option<String>,
    /// Free seats ("还差 N 人").
    missing: i64,
    balance: Option<i64>,
    is_staff: bool,
    /// The sticky bar with the price and the join button, for a reader who may join this group.
    bar: Option<JoinBar>,
    /// The payment the reader's pending seat waits for.
    payment: Option<tuangou_app::PaymentRow>,
}

impl GroupPage<'_> {
    /// What the provider gave the reader's pending seat to pay with (`client`, PAYMENTS.md).
    fn pay_client(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.payment.as_ref()?.client.as_deref()?).ok()
    }

    /// Where the reader pays (the provider's page: the sandbox's, Alipay's, WeChat Pay's H5), when given one.
    fn pay_url(&self) -> Option<String> {
        self.pay_client()?["url"].as_str().map(str::to_owned)
    }

    /// A WeChat Pay Native order's QR code (SVG) for the reader to scan with WeChat.
    fn pay_qr(&self) -> Option<String> {
        let client = self.pay_client()?;
        crate::api::vouchers::qr_svg(client["code_url"].as_str()?).ok()
    }

    /// A WeChat Pay JSAPI order's parameters for `WeixinJSBridge.invoke('getBrandWCPayRequest', …)`, as JSON.
    fn pay_jsapi(&self) -> Option<String> {
        let client = self.pay_client()?;
        if client["type"] != "jsapi" {
            return None;
        }
        let fields = ["appId", "timeStamp", "nonceStr", "package", "signType", "paySign"];
        let params: serde_json::Map<String, serde_json::Value> =
            fields.iter().map(|f| ((*f).to_owned(), client[*f].clone())).collect();
        Some(serde_json::Value::Object(params).to_string())
    }
}

/// The seats of a group in order: members first (by seat and masked name), then free seats.
fn seats(view: &GroupView, names: &BTreeMap<i64, String>, me: Option<&str>) -> Vec<Seat> {
    let winners = view.group.winner_seqs();
    let mut seats: Vec<Seat> = view
        .members
        .iter()
        .map(|m| Seat {
            seq: m.seq,
            // A seat released between the two reads has no name: stars, as for a closed account.
            name: Some(names.get(&m.seq).cloned().unwrap_or_else(|| "***".to_owned())),
            me: me == Some(m.user_id.as_str()),
            winner: winners.contains(&m.seq),
        })
        .collect();
    let taken = seats.len() as i64;
    seats.extend((taken + 1..=view.group.group_size).map(|seq| Seat { seq, name: None, me: false, winner: false }));
    seats
}

/// A ticket as FAIRNESS.md shapes them (1–64 of `[A-Za-z0-9_-]`); anything else is not put into a link.
fn plausible_ticket(t: &str) -> bool {
    (1..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn group_id(id: &str) -> Result<GroupId, PageError> {
    GroupId::parse(id).ok_or(PageError::NotFound)
}

pub async fn group(page: Chrome, State(state): State<AppState>, id: PagePath, RawQuery(params): RawQuery) -> Response {
    let params: GroupParams = query_params(params);
    let result = async {
        let id = path_id(id)?;
        let view = state.app.group(&group_id(&id)?).await?;
        let campaign = state.app.campaign(page.caller.as_ref(), &view.group.campaign()).await?;
        let me = page.caller.as_ref().map(|c| c.user.as_str().to_owned());
        let mine = view.members.iter().find(|m| Some(m.user_id.as_str()) == me.as_deref()).cloned();
        let payment = match &mine {
            Some(m) if m.status == "pending" => state.app.seat_payment(m).await.ok().flatten(),
            _ => None,
        };
        let public = state.app.settings().public_url.trim_end_matches('/').to_owned();
        let share_path = match &mine {
            Some(m) => format!("/g/{}?from={}", view.group.id, m.ticket),
            None => format!("/g/{}", view.group.id),
        };
        let qr_url = match &mine {
            Some(m) => format!("/g/{}/qr.svg?from={}", view.group.id, m.ticket),
            None => format!("/g/{}/qr.svg", view.group.id),
        };
        let balance = match &page.caller {
            Some(c) => Some(state.app.customer_wallet(c).await?.available),
            None => None,
        };
        let is_staff = page.role_at(&campaign.campaign.merchant_id).is_some();
        let may_join = view.group.status == "open" && mine.is_none() && !is_staff && campaign.campaign.status == "live";
        let from = params.from.clone().filter(|t| plausible_ticket(t) && mine.is_none());
        let inviter = match &from {
            Some(ticket) => state.app.inviter_name(page.caller.as_ref(), &view.group.campaign(), ticket).await?,
            None => None,
        };
        let missing = (view.group.group_size - view.group.member_count).max(0);
        let bar = may_join.then(|| {
            let api = format!("/api/v1/groups/{}/members", view.group.id);
            JoinBar {
                invited_by: from.clone().unwrap_or_default(),
                pay_with: state.app.offered_provider().unwrap_or_default(),
                missing: Some(missing),
                ..JoinBar::new(&campaign, api, page.tr.lang(), page.caller.is_some(), &page.path)
            }
        });
        let names = state.app.names_on_screen(&view.group.group_id()).await?;
        let body = GroupPage {
            page: &page,
            card: rules_card(&campaign, page.tr.lang()),
            seats: seats(&view, &names, me.as_deref()),
            tickets: view.members.iter().map(|m| (m.seq, m.ticket.clone())).collect(),
            width: format::width(view.group.member_count, view.group.group_size),
            share_url: format!("{public}{share_path}"),
            qr_url,
            inviter: inviter.filter(|_| may_join),
            missing,
            is_staff,
            group: view.group,
            campaign,
            mine,
            balance,
            bar,
            payment,
        };
        Ok(respond(&page, &body))
    }
    .await;
    finish(&page, result)
}

/// The share link's QR code (SVG), pointing at the group page with the sharer's ticket.
pub async fn group_qr(State(state): State<AppState>, id: PagePath, RawQuery(params): RawQuery) -> Response {
    let params: GroupParams = query_params(params);
    let Some(id) = path_id(id).ok().and_then(|id| GroupId::parse(&id)) else {
        return PageError::NotFound.into_response();
    };
    let public = state.app.settings().public_url.trim_end_matches('/').to_owned();
    let from = params.from.filter(|t| plausible_ticket(t));
    let url = match from {
        Some(ticket) => format!("{public}/g/{id}?from={ticket}"),
        None => format!("{public}/g/{id}"),
    };
    match crate::api::vouchers::qr_svg(&url) {
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], svg)
            .into_response(),
        Err(problem) => problem.into_response(),
    }
}

#[derive(Template)]
#[template(path = "live.html")]
struct LivePage<'a> {
    page: &'a Chrome,
    group: GroupRow,
    campaign: CampaignView,
    seats: Vec<Seat>,
    deadline: i64,
    /// The winners by seat, with their masked names (`App::names_on_screen`).
    winners: Vec<(i64, String)>,
    /// Staff of the store may start a full scheduled group's draw from the screen.
    can_draw: bool,
    /// Drawn in the last minutes: the reveal plays (a screen opened later shows the result at once).
    reveal: bool,
    /// The QR code (SVG) of the deal's page, to join the next group, while the campaign is live.
    join_qr: Option<String>,
}

/// How long after a draw the big screen still plays its reveal when opened.
const REVEAL_FOR_MS: i64 = 10 * 60 * 1000;

/// The big-screen live draw of a group: members, the countdown to the draw, the draw button for the store's staff
/// (with a confirmation), the reveal (winners by seat and masked name) and its proof, and a QR code to join the
/// next group.
pub async fn live_draw(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let view = state.app.group(&group_id(&id)?).await?;
        let campaign = state.app.campaign(page.caller.as_ref(), &view.group.campaign()).await?;
        let deadline = view.group.draw_due_at.unwrap_or(view.group.expires_at);
        let names = state.app.names_on_screen(&view.group.group_id()).await?;
        let drawn = view.group.winner_seqs();
        let winners = names.iter().filter(|(seq, _)| drawn.contains(seq)).map(|(seq, n)| (*seq, n.clone())).collect();
        let can_draw = view.group.status == "full"
            && campaign.campaign.draw_mode == "scheduled"
            && page.role_at(&campaign.campaign.merchant_id).is_some();
        let now = state.app.clock().now().0;
        let reveal = view.group.drawn_at.is_some_and(|at| now - at < REVEAL_FOR_MS);
        let join_qr = match campaign.campaign.status.as_str() {
            "live" => {
                let public = state.app.settings().public_url.trim_end_matches('/');
                crate::api::vouchers::qr_svg(&format!("{public}/c/{}", campaign.campaign.id)).ok()
            }
            _ => None,
        };
        let body = LivePage {
            page: &page,
            seats: seats(&view, &names, None),
            group: view.group,
            campaign,
            deadline,
            winners,
            can_draw,
            reveal,
            join_qr,
        };
        Ok(respond(&page, &body))
    }
    .await;
    finish(&page, result)
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage<'a> {
    page: &'a Chrome,
}

/// Verifies any group record pasted in, in the browser.
pub async fn verify(page: Chrome) -> Response {
    respond(&page, &VerifyPage { page: &page })
}
