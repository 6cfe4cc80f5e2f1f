//! Merchants, their owners and staff.

use crate::db::sql;
use crate::notify::{Stale, say_stale};
use crate::{Store, StoreError, StoreResult, new_id, unique_violation_as};
use tuangou_domain::ids::{MerchantId, UserId};
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MerchantRow {
    pub id: String,
    pub name: String,
    pub category: String,
    pub description: Option<String>,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    pub phone: String,
    pub opening_hours: Option<String>,
    pub status: String,
    pub created_at: i64,
    /// The photo's file name under the media directory, once the owner uploaded one (0010).
    pub photo: Option<String>,
}
crate::sqlite_sql::from_values!(MerchantRow {
    id,
    name,
    category,
    description,
    address,
    latitude,
    longitude,
    phone,
    opening_hours,
    status,
    created_at,
    photo
});

pub struct NewMerchant {
    pub name: String,
    pub category: String,
    pub description: Option<String>,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    pub phone: String,
    pub opening_hours: Option<String>,
    /// `active`, or `pending` when the operator approves merchants.
    pub status: &'static str,
}

/// What a user is to a merchant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerchantRole {
    Owner,
    Staff,
}

impl MerchantRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantRole::Owner => "owner",
            MerchantRole::Staff => "staff",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "owner" => Some(Self::Owner),
            "staff" => Some(Self::Staff),
            _ => None,
        }
    }
}

/// A store someone owns or works at, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopRole {
    pub merchant_id: String,
    pub name: String,
    pub role: MerchantRole,
}

pub(crate) const MERCHANT_COLUMNS: &str =
    "id, name, category, description, address, latitude, longitude, phone, opening_hours, status, created_at, photo";

impl Store {
    /// Creates a merchant and makes `owner` its owner, in one transaction.
    pub async fn create_merchant(
        &self,
        merchant: NewMerchant,
        owner: &UserId,
        now: Millis,
    ) -> StoreResult<MerchantRow> {
        self.write((merchant, owner.clone(), now), |mut conn, (merchant, owner, now)| {
            Box::pin(async move {
                let row: MerchantRow = conn
                    .fetch_one(
                        sql(format!(
                    "INSERT INTO merchants ({MERCHANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)
                     RETURNING {MERCHANT_COLUMNS}"
                ))
                        .bind(new_id())
                        .bind(&merchant.name)
                        .bind(&merchant.category)
                        .bind(merchant.description.clone())
                        .bind(&merchant.address)
                        .bind(merchant.latitude)
                        .bind(merchant.longitude)
                        .bind(&merchant.phone)
                        .bind(merchant.opening_hours.clone())
                        .bind(merchant.status)
                        .bind(now.0),
                    )
                    .await?;
                conn.execute(
            sql("INSERT INTO merchant_roles (merchant_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
                .bind(&row.id)
                .bind(owner.as_str())
                .bind(now.0),
        )
        .await?;
                say_stale(&mut conn, &Stale::User(owner.as_str().to_owned())).await?;
                Ok(row)
            })
        })
        .await
    }

    pub async fn merchant(&self, id: &MerchantId) -> StoreResult<Option<MerchantRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!("SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id = $1")).bind(id.as_str());
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// Sets a merchant `active` (whatever it was); `None` when there is no such merchant.
    pub async fn activate_merchant(&self, id: &MerchantId) -> StoreResult<Option<MerchantRow>> {
        self.write(id.clone(), |mut conn, id| {
            Box::pin(async move {
                let row = conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE merchants SET status = 'active' WHERE id = $1 RETURNING {MERCHANT_COLUMNS}"
                        ))
                        .bind(id.as_str()),
                    )
                    .await?;
                Ok(row)
            })
        })
        .await
    }

    /// The user's role at the merchant, if any.
    pub async fn merchant_role(&self, merchant: &MerchantId, user: &UserId) -> StoreResult<Option<MerchantRole>> {
        let mut pooled = self.pools.read().await?;
        let row: Option<(String,)> = pooled
            .conn()
            .fetch_optional(
                sql("SELECT role FROM merchant_roles WHERE merchant_id = $1 AND user_id = $2")
                    .bind(merchant.as_str())
                    .bind(user.as_str()),
            )
            .await?;
        Ok(row.and_then(|(role,)| MerchantRole::parse(&role)))
    }

    /// Every merchant the user owns or works for, oldest first.
    pub async fn roles_of(&self, user: &UserId) -> StoreResult<Vec<(MerchantId, MerchantRole)>> {
        let mut pooled = self.pools.read().await?;
        let rows: Vec<(String, String)> = pooled
            .conn()
            .fetch_all(
                sql("SELECT merchant_id, role FROM merchant_roles WHERE user_id = $1 ORDER BY created_at, merchant_id")
                    .bind(user.as_str()),
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(m, role)| Some((MerchantId::from_trusted(m), MerchantRole::parse(&role)?)))
            .collect())
    }

    /// Every store the user owns or works at, oldest role first, with its name (the pages' store switcher).
    pub async fn shops_of(&self, user: &UserId) -> StoreResult<Vec<ShopRole>> {
        let mut pooled = self.pools.read().await?;
        let rows: Vec<(String, String, String)> = pooled
            .conn()
            .fetch_all(
                sql("SELECT r.merchant_id, m.name, r.role FROM merchant_roles r JOIN merchants m ON m.id = r.merchant_id \
                     WHERE r.user_id = $1 ORDER BY r.created_at, r.merchant_id")
                .bind(user.as_str()),
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(merchant_id, name, role)| {
                Some(ShopRole { merchant_id, name, role: MerchantRole::parse(&role)? })
            })
            .collect())
    }

    /// Adds a staff member; [`StoreError::Conflict`]`("already_staff")` when they already have a role there.
    pub async fn add_staff(&self, merchant: &MerchantId, user: &UserId, now: Millis) -> StoreResult<()> {
        self.write((merchant.clone(), user.clone(), now), |mut conn, (merchant, user, now)| {
            Box::pin(async move {
                conn
            .execute(
                sql("INSERT INTO merchant_roles (merchant_id, user_id, role, created_at) VALUES ($1, $2, 'staff', $3)")
                    .bind(merchant.as_str())
                    .bind(user.as_str())
                    .bind(now.0),
            )
            .await
            .map_err(unique_violation_as("already_staff"))?;
                say_stale(&mut conn, &Stale::User(user.as_str().to_owned())).await
            })
        })
        .await
    }

    /// Sets the store's photo (a file name under the media directory); `None` when there is no such merchant.
    pub async fn set_merchant_photo(&self, id: &MerchantId, photo: &str) -> StoreResult<Option<MerchantRow>> {
        self.write((id.clone(), photo.to_owned()), |mut conn, (id, photo)| {
            Box::pin(async move {
                let q = sql(format!("UPDATE merchants SET photo = $2 WHERE id = $1 RETURNING {MERCHANT_COLUMNS}"))
                    .bind(id.as_str())
                    .bind(photo);
                Ok(conn.fetch_optional(q).await?)
            })
        })
        .await
    }

    pub async fn require_merchant(&self, id: &MerchantId) -> StoreResult<MerchantRow> {
        self.merchant(id).await?.ok_or(StoreError::NotFound)
    }
}
