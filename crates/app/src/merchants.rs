//! Merchants coming on board (S0): profile, approval, staff.

use crate::{App, AppError, AppResult, Caller};
use tuangou_domain::geo::{Coordinates, NavigationLinks};
use tuangou_domain::ids::MerchantId;
use tuangou_domain::phone::{ContactPhone, UserPhone};
use tuangou_domain::text;
use tuangou_store::{MerchantRow, NewMerchant};

/// A merchant's profile, parsed. Name 1–60 characters, category 1–40, description ≤ 2,000, address 1–200,
/// opening hours ≤ 200 (free text such as "10:00–22:00, 周一休息").
pub struct MerchantInput {
    name: String,
    category: String,
    description: Option<String>,
    address: String,
    at: Coordinates,
    phone: ContactPhone,
    opening_hours: Option<String>,
}

fn optional(field: &str, text: Option<&str>, max: usize) -> AppResult<Option<String>> {
    match text {
        Some(t) => Ok(Some(text::bounded(field, t, 0, max)?).filter(|t| !t.is_empty())),
        None => Ok(None),
    }
}

impl MerchantInput {
    #[allow(clippy::too_many_arguments)] // one argument per field of the API's body
    pub fn parse(
        name: &str,
        category: &str,
        description: Option<&str>,
        address: &str,
        latitude: f64,
        longitude: f64,
        phone: &str,
        opening_hours: Option<&str>,
    ) -> AppResult<Self> {
        Ok(Self {
            name: text::bounded("name", name, 1, 60)?,
            category: text::bounded("category", category, 1, 40)?,
            description: optional("description", description, 2_000)?,
            address: text::bounded("address", address, 1, 200)?,
            at: Coordinates::parse(latitude, longitude)?,
            phone: ContactPhone::parse("phone", phone)?,
            opening_hours: optional("opening_hours", opening_hours, 200)?,
        })
    }
}

/// A merchant's public profile with its navigation links and entrance address.
#[derive(Debug, Clone)]
pub struct MerchantView {
    pub merchant: MerchantRow,
    pub navigation: NavigationLinks,
    pub entrance_url: String,
}

impl App {
    pub(crate) fn merchant_view(&self, merchant: MerchantRow) -> MerchantView {
        let at = Coordinates::from_stored(merchant.latitude, merchant.longitude);
        let navigation = NavigationLinks::new(at, &merchant.name, &merchant.address);
        let entrance_url = format!("{}/m/{}", self.settings.public_url.trim_end_matches('/'), merchant.id);
        MerchantView { merchant, navigation, entrance_url }
    }

    /// Creates a merchant; the caller becomes its owner. It starts `active`, or `pending` when the operator
    /// approves merchants.
    pub async fn create_merchant(&self, caller: &Caller, input: MerchantInput) -> AppResult<MerchantView> {
        let status = if self.settings.require_merchant_approval { "pending" } else { "active" };
        let merchant = NewMerchant {
            name: input.name,
            category: input.category,
            description: input.description,
            address: input.address,
            latitude: input.at.latitude(),
            longitude: input.at.longitude(),
            phone: input.phone.as_str().to_owned(),
            opening_hours: input.opening_hours,
            status,
        };
        let row = self.store.create_merchant(merchant, &caller.user, self.clock.now()).await?;
        self.caches.forget(&tuangou_store::Stale::User(caller.user.to_string()));
        Ok(self.merchant_view(row))
    }

    /// The public profile.
    pub async fn merchant(&self, id: &MerchantId) -> AppResult<MerchantView> {
        let row = self.store.merchant(id).await?.ok_or(AppError::NotFound("unknown_merchant", "no such merchant"))?;
        Ok(self.merchant_view(row))
    }

    /// The operator approves a merchant (also answers when it is active already).
    pub async fn approve_merchant(&self, caller: &Caller, id: &MerchantId) -> AppResult<MerchantView> {
        caller.require_operator()?;
        let row = self
            .store
            .activate_merchant(id)
            .await?
            .ok_or(AppError::NotFound("unknown_merchant", "no such merchant"))?;
        Ok(self.merchant_view(row))
    }

    /// The merchant's figures; for its owner.
    pub async fn merchant_stats(
        &self,
        caller: &Caller,
        merchant: &MerchantId,
    ) -> AppResult<tuangou_store::MerchantStats> {
        self.require_owner(caller, merchant).await?;
        Ok(self.store.merchant_stats(tuangou_store::StatsScope::Merchant(merchant)).await?)
    }

    /// The owner adds a staff member by phone; the person must have an account.
    pub async fn add_staff(&self, caller: &Caller, merchant: &MerchantId, phone: &str) -> AppResult<()> {
        self.require_owner(caller, merchant).await?;
        let phone = UserPhone::parse("phone", phone)?;
        let user = self
            .store
            .user_by_phone(phone.as_str())
            .await?
            .ok_or(AppError::NotFound("unknown_user", "no account has this phone number; they must sign up first"))?;
        self.store.add_staff(merchant, &user.user_id(), self.clock.now()).await?;
        self.caches.forget(&tuangou_store::Stale::User(user.id.clone()));
        Ok(())
    }
}
