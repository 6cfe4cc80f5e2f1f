//! A merchant's or one campaign's figures (`GET /merchants/{id}/stats`, the dashboards), counted from the
//! records themselves.

use crate::db::sql;
use crate::{Store, StoreResult};
use tuangou_domain::ids::{CampaignId, MerchantId};

/// What the figures count over: all of a merchant's campaigns, or one campaign (of that merchant).
#[derive(Debug, Clone, Copy)]
pub enum StatsScope<'a> {
    Merchant(&'a MerchantId),
    Campaign(&'a MerchantId, &'a CampaignId),
}

impl StatsScope<'_> {
    /// The condition on `campaigns c` and its one argument.
    fn campaigns(&self) -> (&'static str, String) {
        match self {
            Self::Merchant(m) => ("c.merchant_id = $1", m.as_str().to_owned()),
            Self::Campaign(_, c) => ("c.id = $1", c.as_str().to_owned()),
        }
    }

    /// The condition on `vouchers` and its one argument.
    fn vouchers(&self) -> (&'static str, String) {
        match self {
            Self::Merchant(m) => ("merchant_id = $1", m.as_str().to_owned()),
            Self::Campaign(_, c) => ("campaign_id = $1", c.as_str().to_owned()),
        }
    }

    /// A LIKE pattern for the reserve accounts the rewards are paid from.
    fn reserves(&self) -> String {
        let escape = |s: &str| s.replace('\\', "\\\\").replace('_', "\\_").replace('%', "\\%");
        match self {
            Self::Merchant(m) => format!("merchant:{}:reserve:%", escape(m.as_str())),
            Self::Campaign(m, c) => format!("merchant:{}:reserve:{}", escape(m.as_str()), escape(c.as_str())),
        }
    }
}

/// Counts and sums for one merchant over all its campaigns, or for one campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MerchantStats {
    /// Memberships in its campaigns.
    pub participants: i64,
    pub unique_customers: i64,
    /// Customers whose first membership on tuangou was at this merchant: the traffic it brought to the platform.
    pub new_customers: i64,
    /// Groups that filled (drawn or waiting for their draw).
    pub groups_filled: i64,
    pub winners: i64,
    /// Purchase vouchers redeemed (net of undos).
    pub redeemed: i64,
    /// Fen of cash rewards paid from its reserves.
    pub rewards_paid: i64,
    /// Fen of commission on its standing redemptions.
    pub commission_paid: i64,
}

impl Store {
    pub async fn merchant_stats(&self, scope: StatsScope<'_>) -> StoreResult<MerchantStats> {
        let mut pooled = self.pools.read().await?;
        let mut conn = pooled.conn();
        let (in_campaigns, c_arg) = scope.campaigns();
        let (in_vouchers, v_arg) = scope.vouchers();
        let (participants, unique_customers, winners): (i64, i64, i64) = conn
            .fetch_one(
                sql(format!(
                    "SELECT CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT ms.user_id) AS BIGINT),
                        CAST(COALESCE(SUM(CASE WHEN ms.status = 'won' THEN 1 ELSE 0 END), 0) AS BIGINT)
                     FROM memberships ms JOIN campaigns c ON c.id = ms.campaign_id WHERE {in_campaigns}"
                ))
                .bind(c_arg.clone()),
            )
            .await?;
        let (new_customers,): (i64,) = conn
            .fetch_one(
                sql(format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM (
                         SELECT first.user_id FROM memberships first JOIN campaigns c ON c.id = first.campaign_id
                         WHERE {in_campaigns} AND NOT EXISTS (
                             SELECT 1 FROM memberships earlier
                             WHERE earlier.user_id = first.user_id AND earlier.id < first.id)
                     ) firsts"
                ))
                .bind(c_arg.clone()),
            )
            .await?;
        let (groups_filled,): (i64,) = conn
            .fetch_one(
                sql(format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM groups g JOIN campaigns c ON c.id = g.campaign_id
                     WHERE {in_campaigns} AND g.status IN ('full', 'drawn')"
                ))
                .bind(c_arg),
            )
            .await?;
        let (redeemed, commission_paid): (i64, i64) = conn
            .fetch_one(
                sql(format!(
                    "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(commission), 0) AS BIGINT) FROM vouchers
                     WHERE {in_vouchers} AND kind = 'purchase' AND status = 'redeemed'"
                ))
                .bind(v_arg),
            )
            .await?;
        let (rewards_paid,): (i64,) = conn
            .fetch_one(
                sql("SELECT CAST(COALESCE(-SUM(p.amount), 0) AS BIGINT) FROM ledger_postings p
                     JOIN ledger_entries e ON e.id = p.entry_id
                     WHERE e.cause = 'reward' AND p.unit = 'fen' AND p.account LIKE $1 ESCAPE '\\'")
                .bind(scope.reserves()),
            )
            .await?;
        Ok(MerchantStats {
            participants,
            unique_customers,
            new_customers,
            groups_filled,
            winners,
            redeemed,
            rewards_paid,
            commission_paid,
        })
    }
}
