//! Merchants (S0): onboarding, the public profile, the wallet, staff.

use crate::extract::Path;
use crate::extract::{Auth, Json};
use crate::problem::{ApiResult, Problem, ProblemBody};
use crate::{AppState, times};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tuangou_app::{MerchantInput, MerchantView};
use tuangou_domain::ids::MerchantId;
use tuangou_domain::time::Millis;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct NewMerchantBody {
    /// 1–60 characters.
    #[schema(min_length = 1, max_length = 60)]
    name: String,
    /// Free text, 1–40 characters.
    #[schema(min_length = 1, max_length = 40)]
    category: String,
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// 1–200 characters.
    #[schema(min_length = 1, max_length = 200)]
    address: String,
    /// WGS-84 degrees.
    #[schema(minimum = -90, maximum = 90)]
    latitude: f64,
    #[schema(minimum = -180, maximum = 180)]
    longitude: f64,
    /// Mobile, E.164 or landline (`0` and 9–11 digits); spaces, hyphens and parentheses between the digits are
    /// also accepted.
    #[schema(
        pattern = r"^(?:(?:\+86|86)?1[3-9][0-9]{9}|\+(?:[1-79][0-9]|8[0-57-9])[0-9]{6,13}|0[0-9]{9,11})$",
        max_length = 32
    )]
    phone: String,
    /// Free text, e.g. "10:00–22:00".
    #[schema(max_length = 200)]
    opening_hours: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NavigationBody {
    amap: String,
    baidu: String,
    apple: String,
    google: String,
    geo: String,
}

/// A merchant's public profile.
#[derive(Serialize, ToSchema)]
pub struct MerchantBody {
    id: String,
    name: String,
    category: String,
    description: Option<String>,
    address: String,
    latitude: f64,
    longitude: f64,
    phone: String,
    opening_hours: Option<String>,
    /// `pending`, `active` or `suspended`.
    status: String,
    created_at: String,
    navigation: NavigationBody,
    /// The store's public page, for the poster in the shop window.
    entrance_url: String,
    /// The store's photo on this service (`/media/{sha256}.jpg`, resolved against the API's address; never
    /// changes meaning, cacheable for ever); null until the owner uploads one.
    #[schema(format = "uri-reference")]
    photo_url: Option<String>,
}

impl From<MerchantView> for MerchantBody {
    fn from(view: MerchantView) -> Self {
        let m = view.merchant;
        let n = view.navigation;
        Self {
            id: m.id,
            name: m.name,
            category: m.category,
            description: m.description,
            address: m.address,
            latitude: m.latitude,
            longitude: m.longitude,
            phone: m.phone,
            opening_hours: m.opening_hours,
            status: m.status,
            created_at: times::format(Millis(m.created_at)),
            navigation: NavigationBody { amap: n.amap, baidu: n.baidu, apple: n.apple, google: n.google, geo: n.geo },
            entrance_url: view.entrance_url,
            photo_url: m.photo.as_deref().map(tuangou_app::App::photo_path),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MerchantWalletBody {
    available: i64,
    /// Set aside for the cash rewards of live campaigns.
    reward_reserve: i64,
    /// Winners' payments awaiting redemption.
    receivable: i64,
}

/// A merchant's figures over all its campaigns.
#[derive(Serialize, ToSchema)]
pub struct StatsBody {
    /// Memberships in its campaigns.
    participants: i64,
    unique_customers: i64,
    /// Customers whose first membership on tuangou was at this merchant.
    new_customers: i64,
    groups_filled: i64,
    winners: i64,
    /// Purchase vouchers redeemed (store visits), net of undos.
    redeemed: i64,
    /// redeemed ÷ winners (0 before any winner).
    redemption_rate: f64,
    /// Fen of cash rewards paid from its reserves.
    rewards_paid: i64,
    /// Fen of commission on its redemptions.
    commission_paid: i64,
    /// (rewards_paid + commission_paid) ÷ redeemed, in fen, rounded down; null before any redemption.
    cost_per_visit: Option<i64>,
}

/// The merchant's figures (owner only).
#[utoipa::path(get, path = "/api/v1/merchants/{id}/stats", tag = "merchants", operation_id = "get_merchant_stats", params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = StatsBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<StatsBody>> {
    let s = state.app.merchant_stats(&caller, &merchant_id(&id)?).await?;
    let redemption_rate = if s.winners > 0 { s.redeemed as f64 / s.winners as f64 } else { 0.0 };
    let cost_per_visit = (s.redeemed > 0).then(|| (s.rewards_paid + s.commission_paid) / s.redeemed);
    Ok(axum::Json(StatsBody {
        participants: s.participants,
        unique_customers: s.unique_customers,
        new_customers: s.new_customers,
        groups_filled: s.groups_filled,
        winners: s.winners,
        redeemed: s.redeemed,
        redemption_rate,
        rewards_paid: s.rewards_paid,
        commission_paid: s.commission_paid,
        cost_per_visit,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct StaffBody {
    /// The phone of an existing account, as at sign-up.
    #[schema(pattern = r"^(?:(?:\+86|86)?1[3-9][0-9]{9}|\+(?:[1-79][0-9]|8[0-57-9])[0-9]{6,13})$", max_length = 32)]
    phone: String,
}

#[derive(Serialize, ToSchema)]
pub struct StaffAdded {
    merchant_id: String,
    phone: String,
    role: String,
}

pub(crate) fn merchant_id(id: &str) -> Result<MerchantId, Problem> {
    MerchantId::parse(id).ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "unknown_merchant", "no such merchant"))
}

/// Create a merchant; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/merchants", tag = "merchants", operation_id = "create_merchant", request_body = NewMerchantBody,
    responses((status = 201, body = MerchantBody), (status = 400, body = ProblemBody), (status = 401, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Json(body): Json<NewMerchantBody>,
) -> ApiResult<(StatusCode, axum::Json<MerchantBody>)> {
    let input = MerchantInput::parse(
        &body.name,
        &body.category,
        body.description.as_deref(),
        &body.address,
        body.latitude,
        body.longitude,
        &body.phone,
        body.opening_hours.as_deref(),
    )?;
    let view = state.app.create_merchant(&caller, input).await?;
    Ok((StatusCode::CREATED, axum::Json(view.into())))
}

/// A merchant's public profile with navigation links.
#[utoipa::path(get, path = "/api/v1/merchants/{id}", tag = "merchants", operation_id = "get_merchant", params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = MerchantBody), (status = 404, body = ProblemBody)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<MerchantBody>> {
    let view = state.app.merchant(&merchant_id(&id)?).await?;
    Ok(axum::Json(view.into()))
}

/// The merchant's wallet (owner only).
#[utoipa::path(get, path = "/api/v1/merchants/{id}/wallet", tag = "merchants", operation_id = "get_merchant_wallet", params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = MerchantWalletBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn wallet(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<MerchantWalletBody>> {
    let w = state.app.merchant_wallet(&caller, &merchant_id(&id)?).await?;
    Ok(axum::Json(MerchantWalletBody {
        available: w.available,
        reward_reserve: w.reward_reserve,
        receivable: w.receivable,
    }))
}

/// Add a staff member by phone (owner only).
#[utoipa::path(post, path = "/api/v1/merchants/{id}/staff", tag = "merchants", operation_id = "add_staff", params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    request_body = StaffBody,
    responses((status = 201, body = StaffAdded), (status = 400, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, body = ProblemBody), (status = 409, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn add_staff(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Json(body): Json<StaffBody>,
) -> ApiResult<(StatusCode, axum::Json<StaffAdded>)> {
    let id = merchant_id(&id)?;
    state.app.add_staff(&caller, &id, &body.phone).await?;
    let phone = tuangou_domain::phone::UserPhone::parse("phone", &body.phone).map_err(tuangou_app::AppError::from)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(StaffAdded { merchant_id: id.to_string(), phone: phone.as_str().into(), role: "staff".into() }),
    ))
}
