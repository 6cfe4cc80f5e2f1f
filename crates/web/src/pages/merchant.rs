//! The merchant's pages: onboarding, the shop's dashboard (campaigns, figures, staff), the campaign editor with
//! its plain-words preview, a campaign's dashboard (groups forming live, figures, charts, the invitation tree) and
//! the printable entrance poster.

use super::charts;
use super::customer::GroupLine;
use super::format::{self, yuan};
use super::{Chrome, PageError, PagePath, filters, finish, path_id, respond};
use crate::AppState;
use crate::api::campaigns::{CampaignFields, campaign_id};
use crate::api::merchants::merchant_id;
use crate::extract::{json_bytes, parse_json};
use askama::Template;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use tuangou_app::{CampaignDashboard, CampaignView, MerchantDashboard, MerchantView, MerchantWallet};
use tuangou_domain::campaign::{CampaignInput, CampaignRules};
use tuangou_domain::rules_card::{MerchantContact, RulesCard};

#[derive(Template)]
#[template(path = "shop_new.html")]
struct OnboardingPage<'a> {
    page: &'a Chrome,
}

pub async fn onboarding(page: Chrome) -> Response {
    let result = page.require_caller().map(|_| respond(&page, &OnboardingPage { page: &page }));
    finish(&page, result)
}

#[derive(Template)]
#[template(path = "shop.html")]
struct DashboardPage<'a> {
    page: &'a Chrome,
    board: MerchantDashboard,
    wallet: MerchantWallet,
    /// The latest payouts, and the providers to pay out through.
    payouts: Vec<tuangou_app::PayoutRow>,
    providers: Vec<&'static str>,
}

impl DashboardPage<'_> {
    fn photo_field(&self) -> super::looks::PhotoField {
        let store = &self.board.merchant.merchant;
        super::looks::PhotoField::store(&store.id, store.photo.as_deref())
    }
}

pub async fn dashboard(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let caller = page.require_caller()?;
        let id = merchant_id(&id).map_err(|_| PageError::NotFound)?;
        let board = state.app.merchant_dashboard(caller, &id).await?;
        let wallet = state.app.merchant_wallet(caller, &id).await?;
        let payouts = state.app.merchant_payouts(caller, &id, None, 10).await?;
        let providers = state.app.provider_names();
        Ok(respond(&page, &DashboardPage { page: &page, board, wallet, payouts, providers }))
    }
    .await;
    finish(&page, result)
}

/// The editor's fields as the form shows them (money in yuan, durations in hours, rates in percent).
pub struct EditorFields {
    pub title: String,
    pub product_type: String,
    pub description: String,
    pub quantity: String,
    pub price: String,
    pub original_price: String,
    pub group_size: String,
    pub winners_per_group: String,
    pub reward_kind: String,
    pub reward_amount: String,
    pub reward_valid_days: String,
    /// `commission_share` only: the share of the commission, in percent.
    pub reward_share_percent: String,
    pub referral_bonus_points: String,
    pub commission_percent: String,
    pub group_ttl_hours: String,
    pub draw_mode: String,
    pub draw_window_hours: String,
    pub voucher_valid_days: String,
    pub per_customer_limit: String,
}

fn yuan_field(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

impl EditorFields {
    /// A new campaign's starting point: a small instant deal that a merchant edits.
    fn fresh() -> Self {
        EditorFields {
            title: String::new(),
            product_type: "voucher".into(),
            description: String::new(),
            quantity: "20".into(),
            price: "9.90".into(),
            original_price: "39.00".into(),
            group_size: "5".into(),
            winners_per_group: "1".into(),
            reward_kind: "cash".into(),
            reward_amount: "2.00".into(),
            reward_valid_days: "30".into(),
            reward_share_percent: "50".into(),
            referral_bonus_points: "0".into(),
            commission_percent: "5".into(),
            group_ttl_hours: "24".into(),
            draw_mode: "instant".into(),
            draw_window_hours: "24".into(),
            voucher_valid_days: "30".into(),
            per_customer_limit: "1".into(),
        }
    }

    fn of(input: &CampaignInput) -> Self {
        let is_money = input.reward.kind != "points";
        EditorFields {
            title: input.title.clone(),
            product_type: input.product_type.clone(),
            description: input.description.clone().unwrap_or_default(),
            quantity: input.quantity.to_string(),
            price: yuan_field(input.price),
            original_price: yuan_field(input.original_price),
            group_size: input.group_size.to_string(),
            winners_per_group: input.winners_per_group.to_string(),
            reward_kind: input.reward.kind.clone(),
            reward_amount: match input.reward.amount {
                Some(amount) if is_money => yuan_field(amount),
                Some(points) => points.to_string(),
                None => String::new(),
            },
            reward_valid_days: input.reward.valid_days.unwrap_or(30).to_string(),
            reward_share_percent: format!("{}", input.reward.share_bps.unwrap_or(5_000) as f64 / 100.0),
            referral_bonus_points: input.referral_bonus_points.unwrap_or(0).to_string(),
            commission_percent: format!("{}", input.commission_bps as f64 / 100.0),
            group_ttl_hours: format!("{}", input.group_ttl_seconds as f64 / 3600.0),
            draw_mode: input.draw_mode.clone(),
            draw_window_hours: input.draw_window_hours.unwrap_or(24).to_string(),
            voucher_valid_days: input.voucher_valid_days.to_string(),
            per_customer_limit: input.per_customer_limit.unwrap_or(1).to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "editor.html")]
struct EditorPage<'a> {
    page: &'a Chrome,
    shop: MerchantView,
    /// `None` for a new campaign; the draft's id when editing.
    draft: Option<String>,
    fields: EditorFields,
    /// The draft's photo, when it has one.
    photo: Option<String>,
}

impl EditorPage<'_> {
    fn photo_field(&self) -> super::looks::PhotoField {
        super::looks::PhotoField::campaign(self.draft.as_deref(), self.photo.as_deref())
    }
}

pub async fn new_campaign(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let caller = page.require_caller()?;
        let id = merchant_id(&id).map_err(|_| PageError::NotFound)?;
        // The dashboard's check: only the owner edits campaigns.
        let board = state.app.merchant_dashboard(caller, &id).await?;
        let body =
            EditorPage { page: &page, shop: board.merchant, draft: None, fields: EditorFields::fresh(), photo: None };
        Ok(respond(&page, &body))
    }
    .await;
    finish(&page, result)
}

pub async fn edit_campaign(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let caller = page.require_caller()?;
        let id = campaign_id(&id).map_err(|_| PageError::NotFound)?;
        let input = state.app.draft_for_edit(caller, &id).await?;
        let view = state.app.campaign(Some(caller), &id).await?;
        let shop = state.app.merchant(&view.campaign.merchant()).await?;
        let body = EditorPage {
            page: &page,
            shop,
            draft: Some(id.as_str().to_owned()),
            fields: EditorFields::of(&input),
            photo: view.campaign.photo.clone(),
        };
        Ok(respond(&page, &body))
    }
    .await;
    finish(&page, result)
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesFragment<'a> {
    page: &'a Chrome,
    card: Option<RulesCard>,
}

/// The editor's preview: the campaign body the editor would send, checked as the API checks it, answered with
/// the rules card as customers will read it, or with the API's problem (and its `field`) so the editor can mark
/// the field. It writes nothing.
pub async fn preview(page: Chrome, State(state): State<AppState>, id: PagePath, request: Request) -> Response {
    let result = async {
        let id = path_id(id)?;
        let id = merchant_id(&id).map_err(|_| PageError::NotFound)?;
        let shop = state.app.merchant(&id).await?;
        let checked = json_bytes(request)
            .await
            .and_then(|bytes| parse_json::<CampaignFields>(&bytes))
            .and_then(CampaignFields::into_input)
            .and_then(|input| CampaignRules::new(input).map_err(|e| tuangou_app::AppError::from(e).into()));
        let rules = match checked {
            Ok(rules) => rules,
            Err(problem) => return Ok(problem.into_response()),
        };
        let contact = MerchantContact {
            name: shop.merchant.name.clone(),
            phone: shop.merchant.phone.clone(),
            address: shop.merchant.address.clone(),
        };
        let card = RulesCard::new(&rules, contact, page.tr.lang());
        Ok(respond(&page, &RulesFragment { page: &page, card: Some(card) }))
    }
    .await;
    finish(&page, result)
}

/// One node of the invitation tree: a member's ticket and those who joined through their link.
pub struct TreeNode {
    pub ticket: String,
    pub status: String,
    pub children: Vec<TreeNode>,
}

/// Builds the invitation forest from memberships in join order: a member whose inviter is unknown (or who
/// joined on their own) is a root. Tickets are pseudonyms: the tree shows no person.
fn invitation_tree(members: &[tuangou_app::MemberRow]) -> Vec<TreeNode> {
    use std::collections::HashMap;
    let tickets: std::collections::HashSet<&str> = members.iter().map(|m| m.ticket.as_str()).collect();
    let mut children: HashMap<&str, Vec<&tuangou_app::MemberRow>> = HashMap::new();
    let mut roots = Vec::new();
    for m in members {
        match m.invited_by.as_deref().filter(|t| tickets.contains(t) && *t != m.ticket) {
            Some(inviter) => children.entry(inviter).or_default().push(m),
            None => roots.push(m),
        }
    }
    fn build<'a>(
        m: &'a tuangou_app::MemberRow,
        children: &HashMap<&str, Vec<&'a tuangou_app::MemberRow>>,
        depth: usize,
    ) -> TreeNode {
        // Tickets are unique per campaign, so the links form a forest; the depth bound is a guard all the same.
        let kids =
            if depth < 32 { children.get(m.ticket.as_str()).map(Vec::as_slice).unwrap_or_default() } else { &[] };
        TreeNode {
            ticket: m.ticket.clone(),
            status: m.status.clone(),
            children: kids.iter().map(|k| build(k, children, depth + 1)).collect(),
        }
    }
    // Only roots that invited someone are worth a line; the others are counted.
    roots.into_iter().map(|m| build(m, &children, 0)).filter(|n| !n.children.is_empty()).collect()
}

#[derive(Template)]
#[template(path = "campaign_board.html")]
struct CampaignBoardPage<'a> {
    page: &'a Chrome,
    board: CampaignDashboard,
    groups: Vec<GroupLine>,
    chart: String,
    tree: Vec<TreeNode>,
    tree_html: String,
}

impl CampaignBoardPage<'_> {
    fn view(&self) -> &CampaignView {
        &self.board.campaign
    }

    fn photo_field(&self) -> super::looks::PhotoField {
        let campaign = &self.view().campaign;
        super::looks::PhotoField::campaign(Some(&campaign.id), campaign.photo.as_deref())
    }

    fn rate(&self) -> String {
        self.board.redemption_rate_bps().map(format::percent).unwrap_or_else(|| "–".into())
    }

    fn cost_per_visit(&self) -> String {
        self.board.cost_per_visit().map(yuan).unwrap_or_else(|| "–".into())
    }
}

/// The tree as nested lists (askama has no recursion over our own types).
fn tree_html(nodes: &[TreeNode]) -> String {
    fn escape(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    }
    if nodes.is_empty() {
        return String::new();
    }
    let mut out = String::from("<ul>");
    for n in nodes {
        out.push_str(&format!("<li><span class=\"member {}\">{}</span>", escape(&n.status), escape(&n.ticket)));
        out.push_str(&tree_html(&n.children));
        out.push_str("</li>");
    }
    out.push_str("</ul>");
    out
}

pub async fn campaign_dashboard(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let caller = page.require_caller()?;
        let id = campaign_id(&id).map_err(|_| PageError::NotFound)?;
        let board = state.app.campaign_dashboard(caller, &id).await?;
        let chart = charts::daily_chart(&board.daily, &page.tr);
        let tree = invitation_tree(&board.members);
        let body = CampaignBoardPage {
            page: &page,
            groups: board.groups.iter().map(GroupLine::from).collect(),
            tree_html: tree_html(&tree),
            tree,
            chart,
            board,
        };
        Ok(respond(&page, &body))
    }
    .await;
    finish(&page, result)
}

#[derive(Template)]
#[template(path = "poster.html")]
struct PosterPage<'a> {
    page: &'a Chrome,
    shop: MerchantView,
    qr: String,
    deals: Vec<tuangou_app::CampaignRow>,
}

/// The printable entrance poster: the store's name, a big QR code to its entrance page, its live deals.
pub async fn poster(page: Chrome, State(state): State<AppState>, id: PagePath) -> Response {
    let result = async {
        let id = path_id(id)?;
        let id = merchant_id(&id).map_err(|_| PageError::NotFound)?;
        let (shop, deals) = state.app.live_campaigns_of(&id).await?;
        let qr = crate::api::vouchers::qr_svg(&shop.entrance_url)
            .map_err(|_| PageError::App(tuangou_app::AppError::Internal("QR code".into())))?;
        Ok(respond(&page, &PosterPage { page: &page, shop, qr, deals }))
    }
    .await;
    finish(&page, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(ticket: &str, invited_by: Option<&str>) -> tuangou_app::MemberRow {
        tuangou_app::MemberRow {
            id: ticket.into(),
            group_id: "g".into(),
            campaign_id: "c".into(),
            user_id: format!("u-{ticket}"),
            seq: 1,
            ticket: ticket.into(),
            client_seed: "s".into(),
            invited_by: invited_by.map(Into::into),
            price: 100,
            status: "waiting".into(),
            created_at: 0,
            paid_with: "wallet".into(),
            pay_by: None,
        }
    }

    #[test]
    fn the_tree_follows_invitations_and_ignores_unknown_or_self_links() {
        let members = [
            member("a", None),
            member("b", Some("a")),
            member("c", Some("b")),
            member("d", Some("a")),
            member("e", Some("zz")),
            member("f", Some("f")),
        ];
        let tree = invitation_tree(&members);
        assert_eq!(tree.len(), 1, "only a invited anyone among the roots");
        assert_eq!(tree[0].ticket, "a");
        let kids: Vec<_> = tree[0].children.iter().map(|n| n.ticket.as_str()).collect();
        assert_eq!(kids, ["b", "d"]);
        assert_eq!(tree[0].children[0].children[0].ticket, "c");
        let html = tree_html(&tree);
        assert!(html.starts_with("<ul><li><span class=\"member waiting\">a</span><ul>"));
    }
}
