//! Read models for the pages: lists and series that no single API call gives (a campaign's open groups, a
//! merchant's campaigns and staff, recent redemptions, daily figures, the invitation tree, merchants waiting for
//! approval). Reads only; every query is bounded.

use crate::campaigns::CAMPAIGN_COLUMNS;
use crate::db::sql;
use crate::groups::{GROUP_COLUMNS, MEMBER_COLUMNS};
use crate::merchants::MERCHANT_COLUMNS;
use crate::{CampaignRow, GroupRow, MemberRow, MerchantRow, Store, StoreResult};
use tuangou_domain::ids::{CampaignId, MerchantId};

/// One day's figures of a campaign, days counted in China Standard Time (UTC+8) as `day` = days since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyFigures {
    pub day: i64,
    pub joins: i64,
    pub redemptions: i64,
}

/// A staff member or owner as the owner sees them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffRow {
    pub name: String,
    pub phone: Option<String>,
    pub role: String,
}
crate::sqlite_sql::from_values!(StaffRow { name, phone, role });

/// A redemption as the counter sees it: the voucher, never the person.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecentRedemption {
    pub id: String,
    pub campaign_title: String,
    pub kind: String,
    pub amount: i64,
    pub redeemed_at: i64,
    pub undone_at: Option<i64>,
}
crate::sqlite_sql::from_values!(RecentRedemption { id, campaign_title, kind, amount, redeemed_at, undone_at });

/// China Standard Time, for day buckets.
const CST_OFFSET_MILLIS: i64 = 8 * 3_600_000;
const DAY_MILLIS: i64 = 86_400_000;

impl Store {
    /// A campaign's open groups, closest to full first (the order join-by-campaign fills them).
    pub async fn open_groups(&self, campaign: &CampaignId, limit: i64) -> StoreResult<Vec<GroupRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {GROUP_COLUMNS} FROM groups WHERE campaign_id = $1 AND status = 'open'
             ORDER BY group_size - member_count, created_at, id LIMIT $2"
        ))
        .bind(campaign.as_str())
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// A campaign's groups in any state, newest first.
    pub async fn recent_groups(&self, campaign: &CampaignId, limit: i64) -> StoreResult<Vec<GroupRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {GROUP_COLUMNS} FROM groups WHERE campaign_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(campaign.as_str())
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Every campaign of a merchant, in any state, newest first.
    pub async fn merchant_campaigns(&self, merchant: &MerchantId, limit: i64) -> StoreResult<Vec<CampaignRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE merchant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(merchant.as_str())
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Merchants waiting for the operator's approval, oldest first.
    pub async fn pending_merchants(&self, limit: i64) -> StoreResult<Vec<MerchantRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {MERCHANT_COLUMNS} FROM merchants WHERE status = 'pending' ORDER BY created_at, id LIMIT $1"
        ))
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// The owner and staff of a merchant, owner first.
    pub async fn staff_of(&self, merchant: &MerchantId) -> StoreResult<Vec<StaffRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql("SELECT u.name, u.phone, r.role FROM merchant_roles r JOIN users u ON u.id = r.user_id
                     WHERE r.merchant_id = $1 ORDER BY CASE r.role WHEN 'owner' THEN 0 ELSE 1 END, r.created_at, u.id")
        .bind(merchant.as_str());
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// A merchant's latest redemptions (undone ones too, marked), newest first.
    pub async fn recent_redemptions(&self, merchant: &MerchantId, limit: i64) -> StoreResult<Vec<RecentRedemption>> {
        let mut pooled = self.pools.read().await?;
        let q = sql("SELECT r.id, c.title AS campaign_title, v.kind, v.amount, r.redeemed_at, r.undone_at
                     FROM redemptions r JOIN vouchers v ON v.id = r.voucher_id JOIN campaigns c ON c.id = v.campaign_id
                     WHERE r.merchant_id = $1 ORDER BY r.redeemed_at DESC, r.id DESC LIMIT $2")
        .bind(merchant.as_str())
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// A campaign's joins and (standing) redemptions per day, oldest day first; days without either are left out.
    pub async fn campaign_daily(&self, campaign: &CampaignId) -> StoreResult<Vec<DailyFigures>> {
        let mut pooled = self.pools.read().await?;
        let mut conn = pooled.conn();
        let joins: Vec<(i64, i64)> = conn
            .fetch_all(
                sql("SELECT (created_at + $2) / $3, CAST(COUNT(*) AS BIGINT) FROM memberships
                     WHERE campaign_id = $1 GROUP BY 1")
                .bind(campaign.as_str())
                .bind(CST_OFFSET_MILLIS)
                .bind(DAY_MILLIS),
            )
            .await?;
        let redemptions: Vec<(i64, i64)> = conn
            .fetch_all(
                sql("SELECT (r.redeemed_at + $2) / $3, CAST(COUNT(*) AS BIGINT) FROM redemptions r
                     JOIN vouchers v ON v.id = r.voucher_id
                     WHERE v.campaign_id = $1 AND r.undone_at IS NULL GROUP BY 1")
                .bind(campaign.as_str())
                .bind(CST_OFFSET_MILLIS)
                .bind(DAY_MILLIS),
            )
            .await?;
        let mut days = std::collections::BTreeMap::<i64, DailyFigures>::new();
        for (day, n) in joins {
            days.entry(day).or_insert(DailyFigures { day, joins: 0, redemptions: 0 }).joins = n;
        }
        for (day, n) in redemptions {
            days.entry(day).or_insert(DailyFigures { day, joins: 0, redemptions: 0 }).redemptions = n;
        }
        Ok(days.into_values().collect())
    }

    /// A campaign's memberships in join order (tickets and who invited whom; at most `limit`).
    pub async fn campaign_members(&self, campaign: &CampaignId, limit: i64) -> StoreResult<Vec<MemberRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {MEMBER_COLUMNS} FROM memberships WHERE campaign_id = $1 ORDER BY created_at, id LIMIT $2"
        ))
        .bind(campaign.as_str())
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }
}
