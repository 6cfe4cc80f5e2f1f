//! Campaigns (S1): drafts, publishing, ending, the nearby listing and the public record.

use crate::api::merchants::merchant_id;
use crate::extract::Path;
use crate::extract::{Auth, JSON, Json, MERGE_PATCH, MaybeAuth, Query, body_bytes, parse_json, require_media_type};
use crate::problem::{ApiResult, Problem, ProblemBody};
use crate::{AppState, times};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tuangou_app::{CampaignRow, CampaignView, NearbyQuery, NearbyView};
use tuangou_domain::campaign::{CampaignInput, CampaignRules, RewardInput};
use tuangou_domain::ids::CampaignId;
use tuangou_domain::rules_card::{Lang, MerchantContact, RulesCard};
use tuangou_domain::time::Millis;
use utoipa::ToSchema;

#[derive(Deserialize, Serialize, ToSchema)]
pub struct RewardBody {
    /// `cash`, `points`, `coupon` or `commission_share`.
    #[schema(value_type = RewardKind)]
    kind: String,
    /// Fen for cash and coupons (at most 10,000,000,000), points for points (at most 1,000,000). Required for
    /// those kinds; refused for `commission_share`, whose losers share the platform's commission instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    amount: Option<i64>,
    /// `commission_share` only, and required there: the share (basis points, 1–10000) of the platform's
    /// commission on each redeemed winner's voucher that the group's losers split equally, floored to the fen
    /// (SPEC.md S4, claim 4). Publishing reserves nothing for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10_000)]
    share_bps: Option<i64>,
    /// Coupons only: days the coupon stays valid (1–365, default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 365)]
    valid_days: Option<i64>,
}

/// What a customer not drawn receives (documentation only: the body carries it as text).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RewardKind {
    /// Fen into the wallet, from the campaign's reward reserve.
    Cash,
    /// Platform loyalty points.
    Points,
    /// An amount off the next visit to the store.
    Coupon,
    /// A share of the platform's commission on each winner's redeemed voucher (`share_bps`).
    CommissionShare,
}

/// When a full group is drawn (documentation only: the body carries it as text).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum DrawMode {
    Instant,
    Scheduled,
}

/// The fields a merchant sets (also the document a draft's JSON merge patch applies to).
#[derive(Deserialize, Serialize, ToSchema)]
pub struct CampaignFields {
    /// 1–80 characters.
    #[schema(min_length = 1, max_length = 80)]
    title: String,
    /// Free text, 1–40 characters.
    #[schema(min_length = 1, max_length = 40)]
    product_type: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// Units that can be won in all: a positive multiple of `winners_per_group`, at most 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: i64,
    /// Fen.
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    price: i64,
    /// Fen, at least `price`; the discount is at most 5,000,000 fen.
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    original_price: i64,
    /// N, 2–1000.
    #[schema(minimum = 2, maximum = 1000)]
    group_size: i64,
    /// K, 1–N.
    #[schema(minimum = 1, maximum = 1000)]
    winners_per_group: i64,
    #[serde(deserialize_with = "crate::extract::object")]
    reward: RewardBody,
    /// 0–1,000,000 (default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000)]
    referral_bonus_points: Option<i64>,
    /// 0–10000.
    #[schema(minimum = 0, maximum = 10_000)]
    commission_bps: i64,
    /// 1–2,592,000.
    #[schema(minimum = 1, maximum = 2_592_000)]
    group_ttl_seconds: i64,
    /// `instant` or `scheduled`.
    #[schema(value_type = DrawMode)]
    draw_mode: String,
    /// RFC 3339; scheduled draws only.
    #[serde(default)]
    #[schema(format = DateTime)]
    draw_at: Option<String>,
    /// Scheduled draws only: 1–168 (default 24).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 168)]
    draw_window_hours: Option<i64>,
    /// 1–365.
    #[schema(minimum = 1, maximum = 365)]
    voucher_valid_days: i64,
    /// 1–1000 (default 1).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    per_customer_limit: Option<i64>,
    /// 1–15 minutes (default 5): how long a seat waits for a payment through a provider.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 15)]
    payment_window_minutes: Option<i64>,
    /// RFC 3339.
    #[serde(default)]
    #[schema(format = DateTime)]
    starts_at: Option<String>,
    /// RFC 3339, after `starts_at`.
    #[serde(default)]
    #[schema(format = DateTime)]
    ends_at: Option<String>,
}

impl CampaignFields {
    pub(crate) fn into_input(self) -> Result<CampaignInput, Problem> {
        Ok(CampaignInput {
            title: self.title,
            product_type: self.product_type,
            description: self.description,
            quantity: self.quantity,
            price: self.price,
            original_price: self.original_price,
            group_size: self.group_size,
            winners_per_group: self.winners_per_group,
            reward: RewardInput {
                kind: self.reward.kind,
                amount: self.reward.amount,
                share_bps: self.reward.share_bps,
                valid_days: self.reward.valid_days,
            },
            referral_bonus_points: self.referral_bonus_points,
            commission_bps: self.commission_bps,
            group_ttl_seconds: self.group_ttl_seconds,
            draw_mode: self.draw_mode,
            draw_at: times::parse_opt("draw_at", self.draw_at.as_deref())?,
            draw_window_hours: self.draw_window_hours,
            voucher_valid_days: self.voucher_valid_days,
            per_customer_limit: self.per_customer_limit,
            payment_window_minutes: self.payment_window_minutes,
            starts_at: times::parse_opt("starts_at", self.starts_at.as_deref())?,
            ends_at: times::parse_opt("ends_at", self.ends_at.as_deref())?,
        })
    }

    fn from_input(i: CampaignInput) -> Self {
        let format = |t: Option<Millis>| t.map(times::format);
        Self {
            title: i.title,
            product_type: i.product_type,
            description: i.description,
            quantity: i.quantity,
            price: i.price,
            original_price: i.original_price,
            group_size: i.group_size,
            winners_per_group: i.winners_per_group,
            reward: RewardBody {
                kind: i.reward.kind,
                amount: i.reward.amount,
                share_bps: i.reward.share_bps,
                valid_days: i.reward.valid_days,
            },
            referral_bonus_points: i.referral_bonus_points,
            commission_bps: i.commission_bps,
            group_ttl_seconds: i.group_ttl_seconds,
            draw_mode: i.draw_mode,
            draw_at: format(i.draw_at),
            draw_window_hours: i.draw_window_hours,
            voucher_valid_days: i.voucher_valid_days,
            per_customer_limit: i.per_customer_limit,
            payment_window_minutes: i.payment_window_minutes,
            starts_at: format(i.starts_at),
            ends_at: format(i.ends_at),
        }
    }
}

/// A campaign as stored, with its status and the most its cash rewards can cost.
#[derive(Serialize, ToSchema)]
pub struct CampaignBody {
    id: String,
    merchant_id: String,
    /// `draft`, `live` or `ended`.
    status: String,
    #[serde(flatten)]
    fields: CampaignFields,
    /// What publishing reserves from the merchant's wallet: `(Q / K) × (N − K) × reward cash` (0 for the other
    /// kinds: a `commission_share` is paid from the platform's commission).
    max_reward_cost: i64,
    created_at: String,
    published_at: Option<String>,
    ended_at: Option<String>,
    /// The deal's photo on this service (`/media/{sha256}.jpg`, resolved against the API's address; never
    /// changes meaning, cacheable for ever); null until the owner uploads one. It may change while the campaign
    /// is live: a photo is not one of its rules.
    #[schema(format = "uri-reference")]
    photo_url: Option<String>,
}

impl From<CampaignRow> for CampaignBody {
    fn from(row: CampaignRow) -> Self {
        let max_reward_cost = CampaignRules::new(row.input()).map_or(0, |r| r.max_reward_cost().get());
        Self {
            fields: CampaignFields::from_input(row.input()),
            id: row.id,
            merchant_id: row.merchant_id,
            status: row.status,
            max_reward_cost,
            created_at: times::format(Millis(row.created_at)),
            published_at: times::format_opt(row.published_at),
            ended_at: times::format_opt(row.ended_at),
            photo_url: row.photo.as_deref().map(tuangou_app::App::photo_path),
        }
    }
}

/// `GET /campaigns/{id}`: the campaign, its rules card and its groups at a glance.
#[derive(Serialize, ToSchema)]
pub struct CampaignDetail {
    #[serde(flatten)]
    campaign: CampaignBody,
    /// Everything a customer must know before paying (SPEC.md, "Trust and the law").
    #[schema(value_type = Object)]
    rules_card: Option<serde_json::Value>,
    groups_open: i64,
    groups_full: i64,
    /// How many more people can join: free seats in open groups plus N per group the stock can still open.
    slots_left: i64,
}

impl CampaignDetail {
    /// The campaign with its rules card in the reader's language.
    fn new(view: CampaignView, lang: Lang) -> Self {
        let contact = MerchantContact {
            name: view.merchant.name.clone(),
            phone: view.merchant.phone.clone(),
            address: view.merchant.address.clone(),
        };
        let rules_card =
            CampaignRules::new(view.campaign.input()).ok().map(|rules| rules_card_json(&rules, contact, lang));
        Self {
            campaign: view.campaign.into(),
            rules_card,
            groups_open: view.groups_open,
            groups_full: view.groups_full,
            slots_left: view.slots_left,
        }
    }
}

/// The domain's rules card with its times in RFC 3339, as every time of the API.
fn rules_card_json(rules: &CampaignRules, contact: MerchantContact, lang: Lang) -> serde_json::Value {
    let card = RulesCard::new(rules, contact, lang);
    let draw_at = card.draw.draw_at.map(times::format);
    let mut value = serde_json::to_value(card).unwrap_or_default();
    if let (Some(at), Some(draw)) = (draw_at, value.get_mut("draw").and_then(|d| d.as_object_mut())) {
        draw.insert("draw_at".into(), serde_json::Value::String(at));
    }
    value
}

#[derive(Serialize, ToSchema)]
pub struct NearbyItem {
    #[serde(flatten)]
    campaign: CampaignBody,
    merchant_name: String,
    /// Present when `lat` and `lng` were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    distance_km: Option<f64>,
    slots_left: i64,
}

impl From<NearbyView> for NearbyItem {
    fn from(view: NearbyView) -> Self {
        Self {
            campaign: view.campaign.into(),
            merchant_name: view.merchant_name,
            distance_km: view.distance_km.map(|d| (d * 1000.0).round() / 1000.0),
            slots_left: view.slots_left,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NearbyPage {
    items: Vec<NearbyItem>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct NearbyParams {
    /// WGS-84 degrees; with `lng`.
    #[param(minimum = -90, maximum = 90)]
    lat: Option<f64>,
    /// WGS-84 degrees; with `lat`.
    #[param(minimum = -180, maximum = 180)]
    lng: Option<f64>,
    /// Default 10, at most 500.
    #[param(exclusive_minimum = 0, maximum = 500)]
    radius_km: Option<f64>,
    #[param(max_length = 40)]
    category: Option<String>,
    /// Text in the title, the description or the store's name.
    #[param(max_length = 40)]
    q: Option<String>,
    /// Default 50, at most 200.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the page before (absent or empty: the first page).
    #[param(pattern = "^[0-9]{0,4}$", max_length = 4)]
    cursor: Option<String>,
}

pub(crate) fn campaign_id(id: &str) -> Result<CampaignId, Problem> {
    CampaignId::parse(id).ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "unknown_campaign", "no such campaign"))
}

/// Create a draft campaign (owner).
#[utoipa::path(post, path = "/api/v1/merchants/{id}/campaigns", tag = "campaigns", operation_id = "create_campaign",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    request_body = CampaignFields,
    responses((status = 201, body = CampaignBody), (status = 400, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Json(body): Json<CampaignFields>,
) -> ApiResult<(StatusCode, axum::Json<CampaignBody>)> {
    let merchant = merchant_id(&id)?;
    let row = state.app.create_campaign(&caller, &merchant, body.into_input()?).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// Edit a draft with a JSON merge patch (RFC 7386) of its fields. 409 `campaign_live` once published, checked
/// before the body is read.
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", tag = "campaigns", operation_id = "patch_campaign",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses((status = 200, body = CampaignBody), (status = 400, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<axum::Json<CampaignBody>> {
    let id = campaign_id(&id)?;
    let current = state.app.draft_for_edit(&caller, &id).await?;
    require_media_type(request.headers(), &[MERGE_PATCH, JSON])?;
    // parse_json takes objects only: a merge patch that is not one would replace the whole document.
    let patch: serde_json::Value = parse_json(&body_bytes(request).await?)?;
    let mut document = serde_json::to_value(CampaignFields::from_input(current))
        .map_err(|e| Problem::from(tuangou_app::AppError::Internal(e.to_string())))?;
    merge_patch(&mut document, &patch);
    let fields: CampaignFields = parse_json(document.to_string().as_bytes())?;
    let row = state.app.update_draft(&caller, &id, fields.into_input()?).await?;
    Ok(axum::Json(row.into()))
}

/// RFC 7386: objects merge member by member, `null` removes, anything else replaces.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(serde_json::Value::Null), value);
            }
        }
    }
}

/// Publish a draft: reserves the worst-case cash reward cost from the merchant's wallet.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/publish", tag = "campaigns", operation_id = "publish_campaign",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = CampaignBody), (status = 402, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn publish(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CampaignBody>> {
    let row = state.app.publish_campaign(&caller, &campaign_id(&id)?).await?;
    Ok(axum::Json(row.into()))
}

/// End a live campaign; what is left of its reward reserve returns to the wallet.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/end", tag = "campaigns", operation_id = "end_campaign",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = CampaignBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 409, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn end(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CampaignBody>> {
    let row = state.app.end_campaign(&caller, &campaign_id(&id)?).await?;
    Ok(axum::Json(row.into()))
}

/// Live campaigns, nearest first when `lat` and `lng` are given.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", operation_id = "list_campaigns", params(NearbyParams),
    responses((status = 200, body = NearbyPage), (status = 400, body = ProblemBody)))]
pub async fn list(State(state): State<AppState>, Query(p): Query<NearbyParams>) -> ApiResult<axum::Json<NearbyPage>> {
    let query = NearbyQuery::parse(
        p.lat,
        p.lng,
        p.radius_km,
        p.category.as_deref(),
        p.q.as_deref(),
        p.limit,
        p.cursor.as_deref(),
    )?;
    let (items, next_cursor) = state.app.nearby_campaigns(&query).await?;
    Ok(axum::Json(NearbyPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}

/// A campaign with its rules card, whose sentences follow `Accept-Language` (Simplified Chinese by default,
/// English when preferred). Drafts are visible to the merchant's owner and staff only.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns", operation_id = "get_campaign",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64), ("Accept-Language" = Option<String>, Header, description = "zh-CN (default) or en")),
    responses((status = 200, body = CampaignDetail), (status = 404, body = ProblemBody)),
    security((), ("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    MaybeAuth(caller): MaybeAuth,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<axum::Json<CampaignDetail>> {
    let view = state.app.campaign(caller.as_ref(), &campaign_id(&id)?).await?;
    let lang =
        Lang::from_accept_language(headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    Ok(axum::Json(CampaignDetail::new(view, lang)))
}
