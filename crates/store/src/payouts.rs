//! Payouts, withdrawals and partner-mode splits (PAYMENTS.md "Payouts"): our rows, and the units that move their
//! money ([`tuangou_domain::payouts`] says which entries each step makes).
//!
//! No unit here calls a provider: a payout is written `requested` with its money set aside in one unit
//! ([`Store::request_payout`]); the worker claims it when due ([`Store::claim_due_payout`], which also pushes
//! its next attempt back, so instances do not ask the provider for it at once), asks the provider outside any
//! unit, notes what it said ([`Store::note_payout`]) and settles it in another unit ([`Store::settle_payout`]): a
//! conditional update out of `requested` with its entry, whose reference is unique, so nothing is written twice.
//! Splits go the same way. A merchant has one payout `requested` at a time: the partial unique index
//! `payouts_one_in_flight` refuses the second (`payout_in_progress`), whatever runs concurrently.

use crate::db::{Conn, Row, sql};
use crate::idempotency::{IdempotencyClaim, attach_resource_sql, claim_sql};
use crate::leases::{Attempted, Queue};
use crate::ledger::post_all;
use crate::{Backend, Store, StoreError, StoreResult, unique_violation_as};
use tuangou_domain::ids::{MerchantId, UserId};
use tuangou_domain::ledger::Entry;
use tuangou_domain::money::Fen;
use tuangou_domain::payouts::{
    PayoutOwner, payout_failed, payout_requested, payout_succeeded, retry_delay_ms, split_failed, split_id,
    split_requested, split_succeeded,
};
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayoutRow {
    /// Our `out_payout_no`.
    pub id: String,
    /// `merchant` or `customer`.
    pub kind: String,
    pub merchant_id: Option<String>,
    /// Who asked: the merchant's owner, or the withdrawing customer.
    pub user_id: String,
    pub provider: String,
    pub payee: String,
    pub amount: i64,
    /// `requested`, `succeeded` or `failed`.
    pub status: String,
    pub provider_payout_id: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub settled_at: Option<i64>,
}
crate::sqlite_sql::from_values!(PayoutRow {
    id,
    kind,
    merchant_id,
    user_id,
    provider,
    payee,
    amount,
    status,
    provider_payout_id,
    attempts,
    next_attempt_at,
    last_error,
    created_at,
    settled_at
});

const PAYOUT_COLUMNS: &str = "id, kind, merchant_id, user_id, provider, payee, amount, status, provider_payout_id, \
     attempts, next_attempt_at, last_error, created_at, settled_at";

impl PayoutRow {
    /// Whose balance it empties.
    pub fn owner(&self) -> PayoutOwner {
        match &self.merchant_id {
            Some(m) if self.kind == "merchant" => PayoutOwner::Merchant(MerchantId::from_trusted(m)),
            _ => PayoutOwner::Customer(UserId::from_trusted(&self.user_id)),
        }
    }
}

/// A payout to request.
#[derive(Debug, Clone)]
pub struct NewPayout {
    /// Our `out_payout_no` ([`crate::new_id`]).
    pub id: String,
    pub owner: PayoutOwner,
    pub requested_by: UserId,
    pub provider: String,
    pub amount: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SplitRow {
    /// Our `out_order_no`: `split-{redemption}`.
    pub id: String,
    pub redemption_id: String,
    pub payment_id: String,
    pub merchant_id: String,
    pub provider: String,
    /// Net + commission.
    pub amount: i64,
    pub commission: i64,
    /// `requested`, `succeeded`, `failed` or `skipped`.
    pub status: String,
    pub provider_split_id: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub settled_at: Option<i64>,
}
crate::sqlite_sql::from_values!(SplitRow {
    id,
    redemption_id,
    payment_id,
    merchant_id,
    provider,
    amount,
    commission,
    status,
    provider_split_id,
    attempts,
    next_attempt_at,
    last_error,
    created_at,
    settled_at
});

const SPLIT_COLUMNS: &str = "id, redemption_id, payment_id, merchant_id, provider, amount, commission, status, \
     provider_split_id, attempts, next_attempt_at, last_error, created_at, settled_at";

impl SplitRow {
    pub fn net(&self) -> Fen {
        Fen::from_stored(self.amount - self.commission).unwrap_or(Fen::ZERO)
    }
}

/// A redemption whose payment should be split: a purchase voucher, paid through a provider, redeemed and no
/// longer undoable, not split yet.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SplitCandidate {
    pub redemption_id: String,
    pub payment_id: String,
    pub merchant_id: String,
    pub provider: String,
    pub price: i64,
    pub commission: i64,
}
crate::sqlite_sql::from_values!(SplitCandidate { redemption_id, payment_id, merchant_id, provider, price, commission });

/// [`Store::split_candidates`]'s query. It walks `redemptions_standing` (migration 0013) from the oldest and
/// stops at its limit: the `CROSS JOIN` is SQLite's way of keeping `redemptions` the outer loop (its planner
/// would otherwise start from every paid payment and sort them), and means an inner join to PostgreSQL.
const SPLIT_CANDIDATES: &str = "SELECT r.id AS redemption_id, p.id AS payment_id, v.merchant_id, p.provider,
        v.amount AS price, v.commission
     FROM redemptions r
     CROSS JOIN vouchers v
     JOIN memberships m ON m.id = v.membership_id AND m.paid_with <> 'wallet'
     JOIN payments p ON p.membership_id = m.id AND p.status = 'paid' AND p.provider = m.paid_with
     WHERE v.id = r.voucher_id AND v.kind = 'purchase' AND v.status = 'redeemed'
       AND r.undone_at IS NULL AND r.redeemed_at <= $1
       AND NOT EXISTS (SELECT 1 FROM splits s WHERE s.redemption_id = r.id)
     ORDER BY r.redeemed_at, r.id LIMIT $2";

/// What the provider finally said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Succeeded,
    Failed,
}

fn stored(value: i64) -> StoreResult<Fen> {
    Fen::from_stored(value).ok_or_else(|| StoreError::Inconsistent(format!("negative amount {value}")))
}

impl Attempted for PayoutRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn attempts(&self) -> i64 {
        self.attempts
    }
}

impl Attempted for SplitRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn attempts(&self) -> i64 {
        self.attempts
    }
}

impl Store {
    /// Requests a payout: the row (`requested`, due now) and its money moved from available to in flight, in one
    /// unit, with the idempotency key claimed in it when given. Refusals: `Conflict("payout_in_progress")` (the
    /// merchant has one requested already), [`StoreError::InsufficientFunds`], `Conflict("idempotency_key_exists")`.
    pub async fn request_payout(
        &self,
        payout: &NewPayout,
        claim: Option<IdempotencyClaim>,
        now: Millis,
    ) -> StoreResult<PayoutRow> {
        self.write((payout.clone(), claim, now), |mut conn, (payout, claim, now)| {
            Box::pin(async move {
                if let Some(claim) = claim {
                    conn.execute(claim_sql(claim, *now))
                        .await
                        .map_err(unique_violation_as("idempotency_key_exists"))?;
                }
                let merchant = match &payout.owner {
                    PayoutOwner::Merchant(m) => Some(m.as_str().to_owned()),
                    PayoutOwner::Customer(_) => None,
                };
                let row: PayoutRow = conn
                    .fetch_one(
                        sql(format!(
                            "INSERT INTO payouts (id, kind, merchant_id, user_id, provider, payee, amount, status,
                                                  next_attempt_at, created_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, 'requested', $8, $8) RETURNING {PAYOUT_COLUMNS}"
                        ))
                        .bind(&payout.id)
                        .bind(payout.owner.kind())
                        .bind(merchant)
                        .bind(payout.requested_by.as_str())
                        .bind(&payout.provider)
                        .bind(payout.owner.payee())
                        .bind(payout.amount.get())
                        .bind(now.0),
                    )
                    .await
                    .map_err(unique_violation_as("payout_in_progress"))?;
                post_all(&mut conn, &[payout_requested(&row.id, &payout.owner, payout.amount)], *now).await?;
                if let Some(claim) = claim {
                    conn.execute(attach_resource_sql(claim, &row.id, None)).await?;
                }
                Ok(row)
            })
        })
        .await
    }

    pub async fn payout(&self, id: &str) -> StoreResult<Option<PayoutRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!("SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = $1")).bind(id);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// A merchant's payouts, newest first, before the cursor `before` (an id), at most `limit`.
    pub async fn payouts_of_merchant(
        &self,
        merchant: &MerchantId,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<PayoutRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE merchant_id = $1 AND kind = 'merchant'
                 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(merchant.as_str())
        .bind(before.unwrap_or(""))
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// A customer's withdrawals, newest first, before the cursor `before` (an id), at most `limit`.
    pub async fn withdrawals_of(&self, user: &UserId, before: Option<&str>, limit: i64) -> StoreResult<Vec<PayoutRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE user_id = $1 AND kind = 'customer'
                 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(user.as_str())
        .bind(before.unwrap_or(""))
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Claims the next payout due for the provider, if any: counts the attempt and sets the next one after
    /// [`retry_delay_ms`], so that it is asked again then unless it settles first (and no other instance asks
    /// meanwhile).
    pub async fn claim_due_payout(&self, now: Millis) -> StoreResult<Option<PayoutRow>> {
        let queue = Queue { table: "payouts", columns: PAYOUT_COLUMNS, status: "requested", due: "next_attempt_at" };
        self.claim_next_attempt(queue, now, retry_delay_ms).await
    }

    /// Notes what the provider said of a payout still requested: its id there (`None`: it has none of ours, ask
    /// it to pay out again) and the last error.
    pub async fn note_payout(&self, id: &str, provider_id: Option<&str>, error: Option<&str>) -> StoreResult<()> {
        self.note_attempt("payouts", "provider_payout_id", id, provider_id, error).await
    }

    /// Settles a payout as the provider said, once: `requested` → `succeeded` (in flight → the provider's
    /// clearing) or `failed` (in flight → back to available). A payout settled already is answered as it is,
    /// with `false`.
    pub async fn settle_payout(
        &self,
        id: &str,
        outcome: Settled,
        provider_id: Option<&str>,
        now: Millis,
    ) -> StoreResult<(PayoutRow, bool)> {
        let settling = Settling { table: "payouts", columns: PAYOUT_COLUMNS, provider_column: "provider_payout_id" };
        self.settle_transfer(settling, id, outcome, provider_id, now, |row: &PayoutRow, outcome| {
            let (owner, amount) = (row.owner(), stored(row.amount)?);
            Ok(vec![match outcome {
                Settled::Succeeded => payout_succeeded(&row.id, &owner, &row.provider, amount),
                Settled::Failed => payout_failed(&row.id, &owner, amount),
            }])
        })
        .await
    }

    /// Redemptions whose payment is due to be split (partner mode): purchase vouchers paid through a provider,
    /// redeemed at or before `redeemed_before` and standing, with no split yet; oldest first, at most `limit`.
    pub async fn split_candidates(&self, redeemed_before: Millis, limit: i64) -> StoreResult<Vec<SplitCandidate>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(SPLIT_CANDIDATES).bind(redeemed_before.0).bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Requests a split of a candidate: its row (`requested`, due now) and the merchant's net and the platform's
    /// commission set aside, in one unit that holds the redemption (it must still stand). Refusals:
    /// `Conflict("split_exists")`, `Conflict("redemption_undone")`, [`StoreError::InsufficientFunds`] (the money
    /// is no longer there: record it [`Store::skip_split`]).
    pub async fn request_split(&self, candidate: &SplitCandidate, now: Millis) -> StoreResult<SplitRow> {
        self.write((candidate.clone(), now), |mut conn, (c, now)| {
            Box::pin(async move {
                let lock = if conn.backend() == Backend::Postgres { " FOR UPDATE" } else { "" };
                let standing: Option<(String,)> = conn
                    .fetch_optional(
                        sql(format!("SELECT id FROM redemptions WHERE id = $1 AND undone_at IS NULL{lock}"))
                            .bind(&c.redemption_id),
                    )
                    .await?;
                if standing.is_none() {
                    return Err(StoreError::Conflict("redemption_undone"));
                }
                let row = insert_split(&mut conn, c, "requested", None, *now).await?;
                let merchant = MerchantId::from_trusted(&c.merchant_id);
                post_all(&mut conn, &split_requested(&row.id, &merchant, row.net(), stored(row.commission)?), *now)
                    .await?;
                Ok(row)
            })
        })
        .await
    }

    /// Records a candidate's split as `skipped` (its money had left otherwise): it is never asked for.
    pub async fn skip_split(&self, candidate: &SplitCandidate, why: &str, now: Millis) -> StoreResult<SplitRow> {
        self.write((candidate.clone(), why.to_owned(), now), |mut conn, (c, why, now)| {
            Box::pin(async move { insert_split(&mut conn, c, "skipped", Some(why), *now).await })
        })
        .await
    }

    pub async fn split(&self, id: &str) -> StoreResult<Option<SplitRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!("SELECT {SPLIT_COLUMNS} FROM splits WHERE id = $1")).bind(id);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// Claims the next split due for the provider, as [`Store::claim_due_payout`].
    pub async fn claim_due_split(&self, now: Millis) -> StoreResult<Option<SplitRow>> {
        let queue = Queue { table: "splits", columns: SPLIT_COLUMNS, status: "requested", due: "next_attempt_at" };
        self.claim_next_attempt(queue, now, retry_delay_ms).await
    }

    /// Notes what the provider said of a split still requested, as [`Store::note_payout`].
    pub async fn note_split(&self, id: &str, provider_id: Option<&str>, error: Option<&str>) -> StoreResult<()> {
        self.note_attempt("splits", "provider_split_id", id, provider_id, error).await
    }

    /// Settles a split as the provider said, once: `succeeded` (set aside → the provider's clearing) or `failed`
    /// (set aside → back to the merchant and the platform).
    pub async fn settle_split(
        &self,
        id: &str,
        outcome: Settled,
        provider_id: Option<&str>,
        now: Millis,
    ) -> StoreResult<(SplitRow, bool)> {
        let settling = Settling { table: "splits", columns: SPLIT_COLUMNS, provider_column: "provider_split_id" };
        self.settle_transfer(settling, id, outcome, provider_id, now, |row: &SplitRow, outcome| {
            let merchant = MerchantId::from_trusted(&row.merchant_id);
            Ok(match outcome {
                Settled::Succeeded => split_succeeded(&row.id, &row.provider, stored(row.amount)?),
                Settled::Failed => split_failed(&row.id, &merchant, row.net(), stored(row.commission)?),
            })
        })
        .await
    }

    /// Settles a row of `settling.table` still `requested` as the provider said, with the entries `entries`
    /// makes of it, in one unit: a conditional update, so a row settled already is answered as it is, with
    /// `false`, and nothing is posted twice.
    async fn settle_transfer<T: Row + Sync + 'static>(
        &self,
        settling: Settling,
        id: &str,
        outcome: Settled,
        provider_id: Option<&str>,
        now: Millis,
        entries: fn(&T, Settled) -> StoreResult<Vec<Entry>>,
    ) -> StoreResult<(T, bool)> {
        let input = (settling, id.to_owned(), outcome, provider_id.map(str::to_owned), now, entries);
        self.write(input, |mut conn, (settling, id, outcome, provider_id, now, entries)| {
            Box::pin(async move {
                let Settling { table, columns, provider_column } = settling;
                let status = match outcome {
                    Settled::Succeeded => "succeeded",
                    Settled::Failed => "failed",
                };
                let settled: Option<T> = conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE {table} SET status = $2, settled_at = $3, next_attempt_at = NULL,
                                     {provider_column} = COALESCE($4, {provider_column})
                                 WHERE id = $1 AND status = 'requested' RETURNING {columns}"
                        ))
                        .bind(id)
                        .bind(status)
                        .bind(now.0)
                        .bind(provider_id.clone()),
                    )
                    .await?;
                let Some(row) = settled else {
                    let row: Option<T> = conn
                        .fetch_optional(sql(format!("SELECT {columns} FROM {table} WHERE id = $1")).bind(id))
                        .await?;
                    return row.map(|row| (row, false)).ok_or(StoreError::NotFound);
                };
                post_all(&mut conn, &entries(&row, *outcome)?, *now).await?;
                Ok((row, true))
            })
        })
        .await
    }
}

/// Where a payout or a split is settled: its table, its columns, and the column of the provider's id for it.
struct Settling {
    table: &'static str,
    columns: &'static str,
    provider_column: &'static str,
}

async fn insert_split(
    conn: &mut Conn<'_>,
    c: &SplitCandidate,
    status: &str,
    error: Option<&str>,
    now: Millis,
) -> StoreResult<SplitRow> {
    let settled_at = (status != "requested").then_some(now.0);
    let next_attempt_at = (status == "requested").then_some(now.0);
    conn.fetch_one(
        sql(format!(
            "INSERT INTO splits (id, redemption_id, payment_id, merchant_id, provider, amount, commission, status,
                                     next_attempt_at, last_error, created_at, settled_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {SPLIT_COLUMNS}"
        ))
        .bind(split_id(&c.redemption_id))
        .bind(&c.redemption_id)
        .bind(&c.payment_id)
        .bind(&c.merchant_id)
        .bind(&c.provider)
        .bind(c.price)
        .bind(c.commission)
        .bind(status.to_owned())
        .bind(next_attempt_at)
        .bind(error.map(str::to_owned))
        .bind(now.0)
        .bind(settled_at),
    )
    .await
    .map_err(unique_violation_as("split_exists"))
}

#[cfg(test)]
mod tests {
    use super::SPLIT_CANDIDATES;
    use sqlx::{Connection, PgConnection, Row, SqliteConnection};
    use std::str::FromStr;
    use tuangou_testkit::{Backend, TestDb};

    /// The split worker's lookup reads redemptions through `redemptions_standing`, never by a scan, and needs
    /// no sort: on SQLite by its query plan; on PostgreSQL by its plan with sequential scans and sorts priced
    /// out (an empty table is cheapest to scan, so the plan as chosen says nothing).
    async fn split_candidates_walk_the_standing_redemptions_index(backend: Backend) {
        let db = TestDb::new(backend).await;
        db.open().await.close().await;
        let query = SPLIT_CANDIDATES.replace("$1", "1764174600000").replace("$2", "100");
        let plan: Vec<String> = match backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url).unwrap();
                let mut c = SqliteConnection::connect_with(&options).await.unwrap();
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {query}")))
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
                rows.iter().map(|r| r.get::<String, _>("detail")).collect()
            }
            Backend::Postgres => {
                let mut c = PgConnection::connect(&db.url).await.unwrap();
                sqlx::query("SET enable_seqscan = off").execute(&mut c).await.unwrap();
                sqlx::query("SET enable_sort = off").execute(&mut c).await.unwrap();
                let rows =
                    sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {query}"))).fetch_all(&mut c).await.unwrap();
                rows.iter().map(|r| r.get::<String, _>(0)).collect()
            }
        };
        let plan = plan.join("\n");
        let on_redemptions = match backend {
            Backend::Sqlite => "SEARCH r USING INDEX redemptions_standing",
            Backend::Postgres => "Index Scan using redemptions_standing on redemptions r",
        };
        assert!(plan.contains(on_redemptions), "{plan}");
        for scan_or_sort in ["SCAN r", "Seq Scan", "TEMP B-TREE", "Sort"] {
            assert!(!plan.contains(scan_or_sort), "{scan_or_sort}: {plan}");
        }
    }

    tuangou_testkit::on_both_backends!(split_candidates_walk_the_standing_redemptions_index);
}
