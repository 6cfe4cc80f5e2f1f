//! Campaigns: drafts, publishing (with the reward reserve), ending, and the nearby listing.

use crate::db::{Conn, sql};
use crate::ledger::{balance_in, post};
use crate::{Store, StoreError, StoreResult, new_id};
use tuangou_domain::campaign::{CampaignInput, CampaignRules, RewardInput};
use tuangou_domain::geo::BoundingBox;
use tuangou_domain::ids::{CampaignId, MerchantId};
use tuangou_domain::ledger::{Account, Cause, Entry};
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub merchant_id: String,
    pub status: String,
    pub title: String,
    pub product_type: String,
    pub description: Option<String>,
    pub quantity: i64,
    pub price: i64,
    pub original_price: i64,
    pub group_size: i64,
    pub winners_per_group: i64,
    pub reward_kind: String,
    pub reward_amount: i64,
    pub reward_valid_days: Option<i64>,
    /// `commission_share` only (0009).
    pub reward_share_bps: Option<i64>,
    pub referral_bonus_points: i64,
    pub commission_bps: i64,
    pub group_ttl_seconds: i64,
    pub draw_mode: String,
    pub draw_at: Option<i64>,
    pub draw_window_hours: Option<i64>,
    pub voucher_valid_days: i64,
    pub per_customer_limit: i64,
    pub payment_window_minutes: i64,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub reserved_units: i64,
    pub won_units: i64,
    pub created_at: i64,
    pub published_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// The deal's photo, a file name under the media directory (0010). Presentation, not a rule: it may change
    /// while the campaign is live.
    pub photo: Option<String>,
}
crate::sqlite_sql::from_values!(CampaignRow {
    id,
    merchant_id,
    status,
    title,
    product_type,
    description,
    quantity,
    price,
    original_price,
    group_size,
    winners_per_group,
    reward_kind,
    reward_amount,
    reward_valid_days,
    reward_share_bps,
    referral_bonus_points,
    commission_bps,
    group_ttl_seconds,
    draw_mode,
    draw_at,
    draw_window_hours,
    voucher_valid_days,
    per_customer_limit,
    payment_window_minutes,
    starts_at,
    ends_at,
    reserved_units,
    won_units,
    created_at,
    published_at,
    ended_at,
    photo
});

impl CampaignRow {
    pub fn campaign_id(&self) -> CampaignId {
        CampaignId::from_trusted(&self.id)
    }

    pub fn merchant(&self) -> MerchantId {
        MerchantId::from_trusted(&self.merchant_id)
    }

    /// The reward's amount as it was given: none for a `commission_share`, whose column holds 0 only because it
    /// is NOT NULL (see 0009).
    pub fn reward_amount(&self) -> Option<i64> {
        (self.reward_kind != "commission_share").then_some(self.reward_amount)
    }

    /// The stored fields as the input they were checked from (to re-check them, or to merge a patch into).
    pub fn input(&self) -> CampaignInput {
        CampaignInput {
            title: self.title.clone(),
            product_type: self.product_type.clone(),
            description: self.description.clone(),
            quantity: self.quantity,
            price: self.price,
            original_price: self.original_price,
            group_size: self.group_size,
            winners_per_group: self.winners_per_group,
            reward: RewardInput {
                kind: self.reward_kind.clone(),
                amount: self.reward_amount(),
                share_bps: self.reward_share_bps,
                valid_days: self.reward_valid_days,
            },
            referral_bonus_points: Some(self.referral_bonus_points),
            commission_bps: self.commission_bps,
            group_ttl_seconds: self.group_ttl_seconds,
            draw_mode: self.draw_mode.clone(),
            draw_at: self.draw_at.map(Millis),
            draw_window_hours: self.draw_window_hours,
            voucher_valid_days: self.voucher_valid_days,
            per_customer_limit: Some(self.per_customer_limit),
            payment_window_minutes: Some(self.payment_window_minutes),
            starts_at: self.starts_at.map(Millis),
            ends_at: self.ends_at.map(Millis),
        }
    }
}

/// A live campaign with where its store is.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NearbyCampaignRow {
    #[sqlx(flatten)]
    pub campaign: CampaignRow,
    pub merchant_name: String,
    /// The store's photo, shown on a deal's card when the deal has none of its own.
    pub merchant_photo: Option<String>,
    pub merchant_category: String,
    pub latitude: f64,
    pub longitude: f64,
    /// Free seats in the campaign's open groups whose deadline has not passed.
    pub free_seats: i64,
}
crate::sqlite_sql::from_values!(NearbyCampaignRow { merchant_name, merchant_photo, merchant_category, latitude, longitude, free_seats } flatten { campaign });

/// Filters for the listing. Every value is bound as a parameter, never spliced into the SQL.
#[derive(Debug, Clone, Default)]
pub struct CampaignFilter {
    pub within: Option<BoundingBox>,
    /// Matches the campaign's product type or the merchant's category, ignoring case.
    pub category: Option<String>,
    /// Matches the title, description or the merchant's name, ignoring case.
    pub text: Option<String>,
    /// The most rows to return.
    pub limit: i64,
    /// Now, to count only open groups whose deadline has not passed.
    pub now: Millis,
}

pub(crate) const CAMPAIGN_COLUMNS: &str = "id, merchant_id, status, title, product_type, description, quantity, price, \
     original_price, group_size, winners_per_group, reward_kind, reward_amount, reward_valid_days, \
     reward_share_bps, referral_bonus_points, commission_bps, group_ttl_seconds, draw_mode, draw_at, \
     draw_window_hours, voucher_valid_days, per_customer_limit, payment_window_minutes, starts_at, ends_at, \
     reserved_units, won_units, created_at, \
     published_at, ended_at, photo";

fn escape_like(text: &str) -> String {
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// Binds a campaign's fields in the one order the INSERT and the UPDATE both list them.
trait BindRules {
    fn bind_rules(self, rules: &CampaignRules) -> Self;
}

impl BindRules for crate::db::Sql {
    fn bind_rules(self, rules: &CampaignRules) -> Self {
        let i = rules.input();
        self.bind(&i.title)
            .bind(&i.product_type)
            .bind(i.description.clone())
            .bind(i.quantity)
            .bind(i.price)
            .bind(i.original_price)
            .bind(i.group_size)
            .bind(i.winners_per_group)
            .bind(&i.reward.kind)
            .bind(i.reward.amount.unwrap_or(0))
            .bind(i.reward.valid_days)
            .bind(i.reward.share_bps)
            .bind(i.referral_bonus_points.unwrap_or(0))
            .bind(i.commission_bps)
            .bind(i.group_ttl_seconds)
            .bind(&i.draw_mode)
            .bind(i.draw_at.map(|t| t.0))
            .bind(i.draw_window_hours)
            .bind(i.voucher_valid_days)
            .bind(rules.per_customer_limit())
            .bind(i.starts_at.map(|t| t.0))
            .bind(i.ends_at.map(|t| t.0))
    }
}

pub(crate) async fn campaign_in(conn: &mut Conn<'_>, id: &CampaignId) -> StoreResult<Option<CampaignRow>> {
    let q = sql(format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1")).bind(id.as_str());
    Ok(conn.fetch_optional(q).await?)
}

/// The row a conditional update returned, or why there was none: `code` when the campaign exists (its state
/// refused the change), `NotFound` when it does not.
async fn changed_or(
    conn: &mut Conn<'_>,
    id: &CampaignId,
    changed: Option<CampaignRow>,
    code: &'static str,
) -> StoreResult<CampaignRow> {
    match changed {
        Some(row) => Ok(row),
        None if campaign_in(conn, id).await?.is_some() => Err(StoreError::Conflict(code)),
        None => Err(StoreError::NotFound),
    }
}

/// The reward reserve account of a campaign.
fn reserve_account(row: &CampaignRow) -> Account {
    Account::MerchantRewardReserve(row.merchant(), row.campaign_id())
}

impl Store {
    pub async fn create_campaign(
        &self,
        merchant: &MerchantId,
        rules: &CampaignRules,
        now: Millis,
    ) -> StoreResult<CampaignRow> {
        self.write((merchant.clone(), rules.clone(), now), |mut conn, (merchant, rules, now)| {
            Box::pin(async move {
                let row = conn
                    .fetch_one(
                        sql(format!(
                    "INSERT INTO campaigns (id, merchant_id, status, title, product_type, description, quantity, price,
                         original_price, group_size, winners_per_group, reward_kind, reward_amount, reward_valid_days,
                         reward_share_bps, referral_bonus_points, commission_bps, group_ttl_seconds, draw_mode,
                         draw_at, draw_window_hours, voucher_valid_days, per_customer_limit, starts_at, ends_at,
                         created_at, payment_window_minutes)
                     VALUES ($1, $2, 'draft', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                         $19, $20, $21, $22, $23, $24, $25, $26)
                     RETURNING {CAMPAIGN_COLUMNS}"
                ))
                        .bind(new_id())
                        .bind(merchant.as_str())
                        .bind_rules(rules)
                        .bind(now.0)
                        .bind(rules.payment_window_minutes()),
                    )
                    .await?;
                Ok(row)
            })
        })
        .await
    }

    pub async fn campaign(&self, id: &CampaignId) -> StoreResult<Option<CampaignRow>> {
        let mut pooled = self.pools.read().await?;
        campaign_in(&mut pooled.conn(), id).await
    }

    pub async fn require_campaign(&self, id: &CampaignId) -> StoreResult<CampaignRow> {
        self.campaign(id).await?.ok_or(StoreError::NotFound)
    }

    /// Sets a campaign's photo (a file name under the media directory), whatever its status: a photo is
    /// presentation, not a rule. `None` when there is no such campaign.
    pub async fn set_campaign_photo(&self, id: &CampaignId, photo: &str) -> StoreResult<Option<CampaignRow>> {
        self.write((id.clone(), photo.to_owned()), |mut conn, (id, photo)| {
            Box::pin(async move {
                let q = sql(format!("UPDATE campaigns SET photo = $2 WHERE id = $1 RETURNING {CAMPAIGN_COLUMNS}"))
                    .bind(id.as_str())
                    .bind(photo);
                Ok(conn.fetch_optional(q).await?)
            })
        })
        .await
    }

    /// Replaces a draft's rules; [`StoreError::Conflict`]`("campaign_live")` once it is no longer a draft.
    pub async fn update_draft(&self, id: &CampaignId, rules: &CampaignRules) -> StoreResult<CampaignRow> {
        self.write((id.clone(), rules.clone()), |mut conn, (id, rules)| {
            Box::pin(async move {
                let updated: Option<CampaignRow> = conn
                    .fetch_optional(
                        sql(format!(
                    "UPDATE campaigns SET title = $2, product_type = $3, description = $4, quantity = $5, price = $6,
                         original_price = $7, group_size = $8, winners_per_group = $9, reward_kind = $10,
                         reward_amount = $11, reward_valid_days = $12, reward_share_bps = $13,
                         referral_bonus_points = $14, commission_bps = $15, group_ttl_seconds = $16, draw_mode = $17,
                         draw_at = $18, draw_window_hours = $19, voucher_valid_days = $20, per_customer_limit = $21,
                         starts_at = $22, ends_at = $23, payment_window_minutes = $24
                     WHERE id = $1 AND status = 'draft'
                     RETURNING {CAMPAIGN_COLUMNS}"
                ))
                        .bind(id.as_str())
                        .bind_rules(rules)
                        .bind(rules.payment_window_minutes()),
                    )
                    .await?;
                let row = changed_or(&mut conn, id, updated, "campaign_live").await?;
                Ok(row)
            })
        })
        .await
    }

    /// Draft → live, reserving the most the cash rewards can cost from the merchant's available balance in the
    /// same transaction. [`StoreError::InsufficientFunds`] when the wallet cannot cover it (nothing changes);
    /// [`StoreError::Conflict`]`("campaign_not_draft")` when it was published or ended already.
    pub async fn publish_campaign(&self, id: &CampaignId, reserve: Fen, now: Millis) -> StoreResult<CampaignRow> {
        self.write((id.clone(), reserve, now), |mut conn, (id, reserve, now)| {
            Box::pin(async move {
                let published: Option<CampaignRow> = conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE campaigns SET status = 'live', published_at = $2 WHERE id = $1 AND status = 'draft'
                     RETURNING {CAMPAIGN_COLUMNS}"
                        ))
                        .bind(id.as_str())
                        .bind(now.0),
                    )
                    .await?;
                let row = changed_or(&mut conn, id, published, "campaign_not_draft").await?;
                if *reserve > Fen::ZERO {
                    let entry = Entry::transfer(
                        Cause::Reserve,
                        Account::MerchantAvailable(row.merchant()),
                        reserve_account(&row),
                        *reserve,
                    );
                    post(&mut conn, &entry, *now).await?;
                }
                Ok(row)
            })
        })
        .await
    }

    /// Live → ended. From then on no join lands: every seat and unit update re-checks that the campaign is live.
    /// Its open groups expire and its full groups are drawn by the steps that follow; [`Store::settle_campaign`]
    /// then returns what is left of the reward reserve. [`StoreError::Conflict`]`("campaign_not_live")` unless
    /// it is live.
    pub async fn end_campaign(&self, id: &CampaignId, now: Millis) -> StoreResult<CampaignRow> {
        self.write((id.clone(), now), |mut conn, (id, now)| {
            Box::pin(async move {
                let ended: Option<CampaignRow> = conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE campaigns SET status = 'ended', ended_at = $2 WHERE id = $1 AND status = 'live'
                     RETURNING {CAMPAIGN_COLUMNS}"
                        ))
                        .bind(id.as_str())
                        .bind(now.0),
                    )
                    .await?;
                let row = changed_or(&mut conn, id, ended, "campaign_not_live").await?;
                crate::notify::say_stale(&mut conn, &crate::notify::Stale::Campaign(row.id.clone())).await?;
                Ok(row)
            })
        })
        .await
    }

    /// Settles an ended campaign once none of its groups is open or full any more: what is left of its reward
    /// reserve returns to the merchant's wallet, once. Returns whether it is settled now.
    pub async fn settle_campaign(&self, id: &CampaignId, now: Millis) -> StoreResult<bool> {
        self.write((id.clone(), now), |mut conn, (id, now)| {
            Box::pin(async move {
                let pending: (i64,) = conn
                    .fetch_one(
                        sql("SELECT COUNT(*) FROM groups WHERE campaign_id = $1 AND status IN ('open', 'full')")
                            .bind(id.as_str()),
                    )
                    .await?;
                if pending.0 > 0 {
                    return Ok(false);
                }
                let settled: Option<CampaignRow> = conn
                    .fetch_optional(
                        sql(format!(
                    "UPDATE campaigns SET settled_at = $2 WHERE id = $1 AND status = 'ended' AND settled_at IS NULL
                     RETURNING {CAMPAIGN_COLUMNS}"
                ))
                        .bind(id.as_str())
                        .bind(now.0),
                    )
                    .await?;
                let Some(row) = settled else { return Ok(false) };
                let reserve = reserve_account(&row);
                let left = balance_in(&mut conn, &reserve.key(), "fen").await?;
                if let Some(left) = Fen::from_stored(left).filter(|f| *f > Fen::ZERO) {
                    let entry =
                        Entry::transfer(Cause::Release, reserve, Account::MerchantAvailable(row.merchant()), left);
                    post(&mut conn, &entry, *now).await?;
                }
                Ok(true)
            })
        })
        .await
    }

    /// Ended campaigns not settled yet, for the worker.
    pub async fn campaigns_to_settle(&self, limit: i64) -> StoreResult<Vec<CampaignId>> {
        let mut pooled = self.pools.read().await?;
        let rows: Vec<(String,)> = pooled
            .conn()
            .fetch_all(
                sql(
                    "SELECT id FROM campaigns WHERE status = 'ended' AND settled_at IS NULL ORDER BY ended_at LIMIT $1",
                )
                .bind(limit),
            )
            .await?;
        Ok(rows.into_iter().map(|(id,)| CampaignId::from_trusted(id)).collect())
    }

    /// Live campaigns whose ends_at has passed, for the worker that ends them.
    pub async fn campaigns_due_to_end(&self, now: Millis, limit: i64) -> StoreResult<Vec<CampaignId>> {
        let mut pooled = self.pools.read().await?;
        let rows: Vec<(String,)> = pooled
            .conn()
            .fetch_all(
                sql("SELECT id FROM campaigns WHERE status = 'live' AND ends_at IS NOT NULL AND ends_at <= $1
                     ORDER BY ends_at LIMIT $2")
                .bind(now.0)
                .bind(limit),
            )
            .await?;
        Ok(rows.into_iter().map(|(id,)| CampaignId::from_trusted(id)).collect())
    }

    /// Live campaigns of active merchants that match the filter, newest first.
    pub async fn live_campaigns(&self, filter: &CampaignFilter) -> StoreResult<Vec<NearbyCampaignRow>> {
        let columns = CAMPAIGN_COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ");
        let mut text = format!(
            "SELECT {columns}, m.name AS merchant_name, m.photo AS merchant_photo, m.category AS merchant_category, m.latitude, m.longitude,
                 (SELECT CAST(COALESCE(SUM(g.group_size - g.member_count), 0) AS BIGINT) FROM groups g
                  WHERE g.campaign_id = c.id AND g.status = 'open' AND g.expires_at > $1) AS free_seats
             FROM campaigns c JOIN merchants m ON m.id = c.merchant_id
             WHERE c.status = 'live' AND m.status = 'active'"
        );
        let mut args = vec![crate::db::Arg::from(filter.now.0)];
        let next = |value: crate::db::Arg, args: &mut Vec<crate::db::Arg>| {
            args.push(value);
            format!("${}", args.len())
        };
        if let Some(bbox) = filter.within {
            let (lo, hi) = (next(bbox.min_latitude.into(), &mut args), next(bbox.max_latitude.into(), &mut args));
            text.push_str(&format!(" AND m.latitude BETWEEN {lo} AND {hi}"));
            if !bbox.wraps {
                let (lo, hi) = (next(bbox.min_longitude.into(), &mut args), next(bbox.max_longitude.into(), &mut args));
                text.push_str(&format!(" AND m.longitude BETWEEN {lo} AND {hi}"));
            }
        }
        if let Some(category) = &filter.category {
            let p = next(category.to_lowercase().into(), &mut args);
            text.push_str(&format!(" AND (LOWER(c.product_type) = {p} OR LOWER(m.category) = {p})"));
        }
        if let Some(words) = &filter.text {
            let p = next(escape_like(words).into(), &mut args);
            text.push_str(&format!(
                " AND (LOWER(c.title) LIKE {p} ESCAPE '\\' OR LOWER(COALESCE(c.description, '')) LIKE {p} ESCAPE '\\'
                      OR LOWER(m.name) LIKE {p} ESCAPE '\\')"
            ));
        }
        let p = next(filter.limit.into(), &mut args);
        text.push_str(&format!(" ORDER BY c.published_at DESC, c.id DESC LIMIT {p}"));
        let mut q = sql(text);
        for arg in args {
            q = q.bind(arg);
        }
        let mut pooled = self.pools.read().await?;
        Ok(pooled.conn().fetch_all(q).await?)
    }
}
