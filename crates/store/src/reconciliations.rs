//! Reconciliation's books (PAYMENTS.md): what our side counts on a business day for a provider (payments paid,
//! provider refunds that succeeded), the results kept per run, and the daily job's claims.
//!
//! A result is one row per run; the latest per provider and day (by `checked_at`, then id) is the day's. The
//! daily job claims `(provider, day)` with a unique key before it fetches the bill, so that of several instances
//! stepping at the same moment one reconciles the day, once; a claim not done within its lease (the instance
//! died between claim and result) can be taken over.

use crate::db::sql;
use crate::{Store, StoreResult, new_id};
use tuangou_domain::time::Millis;

/// One of our payments as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BookedPayment {
    /// Our `out_trade_no`.
    pub id: String,
    pub provider: String,
    /// What the provider took once it was paid (`paid_amount`, which may differ from what we asked), else what
    /// we asked: the bill lists what was paid.
    pub amount: i64,
    /// `created`, `paid`, `closed` or `refunded`.
    pub status: String,
    pub paid_at: Option<i64>,
}
crate::sqlite_sql::from_values!(BookedPayment { id, provider, amount, status, paid_at });

/// One of our refunds through a provider as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BookedRefund {
    /// Our `out_refund_no`.
    pub id: String,
    pub provider: String,
    pub amount: i64,
    /// `requested`, `succeeded` or `failed`.
    pub status: String,
    pub settled_at: Option<i64>,
}
crate::sqlite_sql::from_values!(BookedRefund { id, provider, amount, status, settled_at });

/// A reconciliation's result as kept.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReconciliationRow {
    pub id: String,
    pub provider: String,
    /// `YYYY-MM-DD`, China Standard Time.
    pub day: String,
    /// `matched` or `mismatched`.
    pub status: String,
    pub bill_lines: i64,
    pub our_lines: i64,
    pub matched: i64,
    pub missing_ours: i64,
    pub missing_theirs: i64,
    pub amount_differs: i64,
    /// JSON: `{missing_ours, missing_theirs, amount_differs}`, each a list of mismatches.
    pub mismatches: String,
    pub checked_at: i64,
}
crate::sqlite_sql::from_values!(ReconciliationRow {
    id,
    provider,
    day,
    status,
    bill_lines,
    our_lines,
    matched,
    missing_ours,
    missing_theirs,
    amount_differs,
    mismatches,
    checked_at
});

const RESULT_COLUMNS: &str = "id, provider, day, status, bill_lines, our_lines, matched, missing_ours, \
     missing_theirs, amount_differs, mismatches, checked_at";

/// A result to keep (its id is made here).
#[derive(Debug, Clone)]
pub struct NewReconciliation {
    pub provider: String,
    pub day: String,
    pub bill_lines: i64,
    pub our_lines: i64,
    pub matched: i64,
    pub missing_ours: i64,
    pub missing_theirs: i64,
    pub amount_differs: i64,
    pub mismatches: String,
    pub checked_at: Millis,
}

/// What claiming a day for the daily job found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayClaim {
    /// This caller holds the day now: reconcile it, then record the result.
    Claimed,
    /// The day was reconciled by the job already.
    Done,
    /// Another instance holds it (within its lease).
    Held,
}

impl Store {
    /// Our payments at `provider` paid within `[from, to)` (status `paid` or `refunded`: a refunded payment was
    /// paid all the same).
    pub async fn booked_payments(&self, provider: &str, from: Millis, to: Millis) -> StoreResult<Vec<BookedPayment>> {
        let mut pooled = self.pools.read().await?;
        let q = sql("SELECT id, provider, COALESCE(paid_amount, amount) AS amount, status, paid_at FROM payments
                 WHERE provider = $1 AND status IN ('paid', 'refunded') AND paid_at >= $2 AND paid_at < $3
                 ORDER BY paid_at, id")
        .bind(provider)
        .bind(from.0)
        .bind(to.0);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Our refunds through `provider` that succeeded within `[from, to)` (by `settled_at`).
    pub async fn booked_refunds(&self, provider: &str, from: Millis, to: Millis) -> StoreResult<Vec<BookedRefund>> {
        let mut pooled = self.pools.read().await?;
        let q = sql("SELECT id, provider, amount, status, settled_at FROM refunds
                 WHERE destination = 'provider' AND provider = $1 AND status = 'succeeded'
                   AND settled_at >= $2 AND settled_at < $3
                 ORDER BY settled_at, id")
        .bind(provider)
        .bind(from.0)
        .bind(to.0);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// One of our payments by id, whatever its state or day.
    pub async fn booked_payment(&self, id: &str) -> StoreResult<Option<BookedPayment>> {
        let mut pooled = self.pools.read().await?;
        let q = sql("SELECT id, provider, COALESCE(paid_amount, amount) AS amount, status, paid_at FROM payments
                 WHERE id = $1")
        .bind(id);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// One of our refunds through a provider by id, whatever its state or day.
    pub async fn booked_refund(&self, id: &str) -> StoreResult<Option<BookedRefund>> {
        let mut pooled = self.pools.read().await?;
        let q = sql("SELECT id, provider, amount, status, settled_at FROM refunds
                 WHERE id = $1 AND destination = 'provider'")
        .bind(id);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// Keeps a result; when the daily job claimed the day, the claim is done in the same unit of work.
    pub async fn record_reconciliation(&self, result: &NewReconciliation) -> StoreResult<ReconciliationRow> {
        self.write(result.clone(), |mut conn, result| {
            Box::pin(async move {
                let mismatched = result.missing_ours + result.missing_theirs + result.amount_differs > 0;
                let row: ReconciliationRow = conn
                    .fetch_one(
                        sql(format!(
                            "INSERT INTO reconciliations ({RESULT_COLUMNS})
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {RESULT_COLUMNS}"
                        ))
                        .bind(new_id())
                        .bind(&result.provider)
                        .bind(&result.day)
                        .bind(if mismatched { "mismatched" } else { "matched" })
                        .bind(result.bill_lines)
                        .bind(result.our_lines)
                        .bind(result.matched)
                        .bind(result.missing_ours)
                        .bind(result.missing_theirs)
                        .bind(result.amount_differs)
                        .bind(&result.mismatches)
                        .bind(result.checked_at.0),
                    )
                    .await?;
                conn.execute(
                    sql("UPDATE reconciliation_claims SET done_at = $3
                             WHERE provider = $1 AND day = $2 AND done_at IS NULL")
                    .bind(&result.provider)
                    .bind(&result.day)
                    .bind(result.checked_at.0),
                )
                .await?;
                Ok(row)
            })
        })
        .await
    }

    /// Claims `(provider, day)` for the daily job: [`DayClaim::Claimed`] when this caller inserted the claim, or
    /// took over one not done and claimed at or before `stale_before`; otherwise whether it is done or held.
    pub async fn claim_reconciliation_day(
        &self,
        provider: &str,
        day: &str,
        now: Millis,
        stale_before: Millis,
    ) -> StoreResult<DayClaim> {
        let input = (provider.to_owned(), day.to_owned(), now, stale_before);
        self.write(input, |mut conn, (provider, day, now, stale_before)| {
            Box::pin(async move {
                let inserted = conn
                    .execute(
                        sql("INSERT INTO reconciliation_claims (provider, day, claimed_at) VALUES ($1, $2, $3)
                                 ON CONFLICT (provider, day) DO NOTHING")
                        .bind(provider)
                        .bind(day)
                        .bind(now.0),
                    )
                    .await?;
                if inserted == 1 {
                    return Ok(DayClaim::Claimed);
                }
                let taken_over = conn
                    .execute(
                        sql("UPDATE reconciliation_claims SET claimed_at = $3
                                 WHERE provider = $1 AND day = $2 AND done_at IS NULL AND claimed_at <= $4")
                        .bind(provider)
                        .bind(day)
                        .bind(now.0)
                        .bind(stale_before.0),
                    )
                    .await?;
                if taken_over == 1 {
                    return Ok(DayClaim::Claimed);
                }
                let done: Option<(Option<i64>,)> = conn
                    .fetch_optional(
                        sql("SELECT done_at FROM reconciliation_claims WHERE provider = $1 AND day = $2")
                            .bind(provider)
                            .bind(day),
                    )
                    .await?;
                Ok(match done {
                    Some((Some(_),)) => DayClaim::Done,
                    _ => DayClaim::Held,
                })
            })
        })
        .await
    }

    /// Gives a claim back without a result (the bill could not be fetched): the next step may try again.
    pub async fn release_reconciliation_day(&self, provider: &str, day: &str) -> StoreResult<()> {
        self.write_statement(
            sql("DELETE FROM reconciliation_claims WHERE provider = $1 AND day = $2 AND done_at IS NULL")
                .bind(provider)
                .bind(day),
        )
        .await?;
        Ok(())
    }

    /// The latest result per provider and day, newest day first (then by provider), after the cursor
    /// `(day, provider)` of the page before, at most `limit`.
    pub async fn latest_reconciliations(
        &self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<ReconciliationRow>> {
        let (day, provider) = after.unwrap_or(("", ""));
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {RESULT_COLUMNS} FROM reconciliations r
                 WHERE r.id = (SELECT l.id FROM reconciliations l WHERE l.day = r.day AND l.provider = r.provider
                               ORDER BY l.checked_at DESC, l.id DESC LIMIT 1)
                   AND ($1 = '' OR r.day < $1 OR (r.day = $1 AND r.provider > $2))
                 ORDER BY r.day DESC, r.provider LIMIT $3"
        ))
        .bind(day)
        .bind(provider)
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Every result kept for a provider and day, newest first.
    pub async fn reconciliations_of_day(&self, provider: &str, day: &str) -> StoreResult<Vec<ReconciliationRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {RESULT_COLUMNS} FROM reconciliations WHERE provider = $1 AND day = $2
                 ORDER BY checked_at DESC, id DESC"
        ))
        .bind(provider)
        .bind(day);
        Ok(pooled.conn().fetch_all(q).await?)
    }
}
