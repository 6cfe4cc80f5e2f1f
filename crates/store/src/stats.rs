//! A merchant's figures (`GET /merchants/{id}/stats`), counted from the records themselves.

use crate::db::sql;
use crate::{Store, StoreResult};
use tuangou_domain::ids::MerchantId;

/// Counts and sums for one merchant, over all its campaigns.
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
    pub async fn merchant_stats(&self, merchant: &MerchantId) -> StoreResult<MerchantStats> {
        let mut pooled = self.pools.read().await?;
        let mut conn = pooled.conn();
        let m = merchant.as_str();
        let (participants, unique_customers, winners): (i64, i64, i64) = conn
            .fetch_one(
                sql("SELECT CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT ms.user_id) AS BIGINT),
                        CAST(COALESCE(SUM(CASE WHEN ms.status = 'won' THEN 1 ELSE 0 END), 0) AS BIGINT)
                     FROM memberships ms JOIN campaigns c ON c.id = ms.campaign_id WHERE c.merchant_id = $1")
                .bind(m),
            )
            .await?;
        let (new_customers,): (i64,) = conn
            .fetch_one(
                sql("SELECT CAST(COUNT(*) AS BIGINT) FROM (
                         SELECT first.user_id FROM memberships first JOIN campaigns c ON c.id = first.campaign_id
                         WHERE c.merchant_id = $1 AND NOT EXISTS (
                             SELECT 1 FROM memberships earlier
                             WHERE earlier.user_id = first.user_id AND earlier.id < first.id)
                     ) firsts")
                .bind(m),
            )
            .await?;
        let (groups_filled,): (i64,) = conn
            .fetch_one(
                sql("SELECT CAST(COUNT(*) AS BIGINT) FROM groups g JOIN campaigns c ON c.id = g.campaign_id
                     WHERE c.merchant_id = $1 AND g.status IN ('full', 'drawn')")
                .bind(m),
            )
            .await?;
        let (redeemed, commission_paid): (i64, i64) = conn
            .fetch_one(
                sql("SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(commission), 0) AS BIGINT) FROM vouchers
                     WHERE merchant_id = $1 AND kind = 'purchase' AND status = 'redeemed'")
                .bind(m),
            )
            .await?;
        let (rewards_paid,): (i64,) = conn
            .fetch_one(
                sql("SELECT CAST(COALESCE(-SUM(p.amount), 0) AS BIGINT) FROM ledger_postings p
                     JOIN ledger_entries e ON e.id = p.entry_id
                     WHERE e.cause = 'reward' AND p.unit = 'fen' AND p.account LIKE $1 ESCAPE '\\'")
                .bind(format!("merchant:{}:reserve:%", m.replace('_', "\\_").replace('%', "\\%"))),
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
