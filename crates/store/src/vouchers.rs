//! Vouchers (S4): issued at the draw, redeemed by staff of their merchant with one conditional update, undone by
//! the owner within an hour, expired by the worker. Redemptions, undos and failed attempts at the counter are
//! logged; a failure is counted in the throttle's buckets in the same transaction that logs it.

use crate::db::{Conn, Sql, sql};
use crate::ledger::post_all;
use crate::refunds::{NewRefund, record_all};
use crate::shares::{reversals_on_undo, shares_on_redemption};
use crate::throttles::{Bucket, claim_in};
use crate::{Store, StoreError, StoreResult, new_id};
use tuangou_domain::ids::{MerchantId, UserId};
use tuangou_domain::ledger::{
    Entry, PaidFrom, settlement_entries, undo_entries, voucher_expiry_refund, voucher_refund,
};
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VoucherRow {
    pub id: String,
    pub kind: String,
    pub membership_id: String,
    pub user_id: String,
    pub merchant_id: String,
    pub campaign_id: String,
    pub amount: i64,
    pub commission: i64,
    pub status: String,
    pub issued_at: i64,
    pub expires_at: i64,
}
crate::sqlite_sql::from_values!(VoucherRow {
    id,
    kind,
    membership_id,
    user_id,
    merchant_id,
    campaign_id,
    amount,
    commission,
    status,
    issued_at,
    expires_at
});

/// A voucher the draw issues.
#[derive(Debug, Clone)]
pub struct NewVoucher {
    pub id: String,
    pub code_hash: String,
    pub kind: &'static str,
    pub membership_id: String,
    pub user: UserId,
    pub amount: Fen,
    pub commission: Fen,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RedemptionRow {
    pub id: String,
    pub voucher_id: String,
    pub merchant_id: String,
    pub staff_id: String,
    pub redeemed_at: i64,
    pub undone_at: Option<i64>,
}
crate::sqlite_sql::from_values!(RedemptionRow { id, voucher_id, merchant_id, staff_id, redeemed_at, undone_at });

/// An attempt as logged.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub staff_id: String,
    pub voucher_id: Option<String>,
    pub action: String,
    pub result: String,
    pub client_address: Option<String>,
    pub at: i64,
}
crate::sqlite_sql::from_values!(AttemptRow { staff_id, voucher_id, action, result, client_address, at });

/// One attempt at the counter, for the log.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub merchant: &'a MerchantId,
    pub staff: &'a UserId,
    pub voucher: Option<&'a str>,
    pub action: &'static str,
    pub result: &'a str,
    pub client_address: Option<&'a str>,
    pub at: Millis,
}

impl Attempt<'_> {
    /// The attempt with its values owned, to travel with a unit of work.
    fn to_record(&self) -> AttemptRecord {
        AttemptRecord {
            merchant: self.merchant.clone(),
            staff: self.staff.clone(),
            voucher: self.voucher.map(str::to_owned),
            action: self.action,
            result: self.result.to_owned(),
            client_address: self.client_address.map(str::to_owned),
            at: self.at,
        }
    }
}

/// An [`Attempt`] that owns its values.
struct AttemptRecord {
    merchant: MerchantId,
    staff: UserId,
    voucher: Option<String>,
    action: &'static str,
    result: String,
    client_address: Option<String>,
    at: Millis,
}

impl AttemptRecord {
    fn attempt(&self) -> Attempt<'_> {
        Attempt {
            merchant: &self.merchant,
            staff: &self.staff,
            voucher: self.voucher.as_deref(),
            action: self.action,
            result: &self.result,
            client_address: self.client_address.as_deref(),
            at: self.at,
        }
    }
}

const VOUCHER_COLUMNS: &str =
    "id, kind, membership_id, user_id, merchant_id, campaign_id, amount, commission, status, issued_at, expires_at";
const REDEMPTION_COLUMNS: &str = "id, voucher_id, merchant_id, staff_id, redeemed_at, undone_at";

/// The statements that issue `vouchers` (multi-row inserts; none for none).
pub(crate) fn issue_all(merchant: &str, campaign: &str, vouchers: &[NewVoucher], now: Millis) -> Vec<Sql> {
    // 11 parameters a row: 50 rows stay far below both engines' parameter limits.
    let mut statements = Vec::new();
    for chunk in vouchers.chunks(50) {
        let rows = (0..chunk.len()).map(|r| {
            let p: Vec<String> = (1..=11).map(|c| format!("${}", 11 * r + c)).collect();
            format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, {}, 'issued', {}, {})",
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10]
            )
        });
        let mut q = sql(format!(
            "INSERT INTO vouchers (id, code_hash, kind, membership_id, user_id, merchant_id, campaign_id, amount,
                 commission, status, issued_at, expires_at) VALUES {}",
            rows.collect::<Vec<_>>().join(", ")
        ));
        for v in chunk {
            q = q
                .bind(&v.id)
                .bind(&v.code_hash)
                .bind(v.kind)
                .bind(&v.membership_id)
                .bind(v.user.as_str())
                .bind(merchant)
                .bind(campaign)
                .bind(v.amount.get())
                .bind(v.commission.get())
                .bind(now.0)
                .bind(v.expires_at.0);
        }
        statements.push(q);
    }
    statements
}

async fn log_in(conn: &mut Conn<'_>, a: &Attempt<'_>) -> StoreResult<()> {
    conn.execute(
        sql("INSERT INTO redemption_attempts (id, merchant_id, staff_id, voucher_id, action, result, client_address, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(new_id())
        .bind(a.merchant.as_str())
        .bind(a.staff.as_str())
        .bind(a.voucher)
        .bind(a.action)
        .bind(a.result)
        .bind(a.client_address)
        .bind(a.at.0),
    )
    .await?;
    Ok(())
}

/// Where the money of the membership a voucher was won with came from (so its refund goes back that way).
async fn paid_from(conn: &mut Conn<'_>, membership: &str) -> StoreResult<PaidFrom> {
    let (paid_with,): (String,) =
        conn.fetch_one(sql("SELECT paid_with FROM memberships WHERE id = $1").bind(membership)).await?;
    Ok(PaidFrom::from_stored(&paid_with))
}

fn stored_fen(value: i64) -> StoreResult<Fen> {
    Fen::from_stored(value).ok_or_else(|| StoreError::Inconsistent(format!("negative amount {value}")))
}

impl Store {
    /// The voucher with this code hash at any store where `staff` owns or works (a voucher of a store they do not
    /// work at is simply not found): one look by the unique hash, whichever counter they typed it at.
    pub async fn voucher_by_code_for_staff(&self, staff: &UserId, code_hash: &str) -> StoreResult<Option<VoucherRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {VOUCHER_COLUMNS} FROM vouchers WHERE code_hash = $1 \
             AND merchant_id IN (SELECT merchant_id FROM merchant_roles WHERE user_id = $2)"
        ))
        .bind(code_hash)
        .bind(staff.as_str());
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    pub async fn voucher(&self, id: &str) -> StoreResult<Option<VoucherRow>> {
        let mut pooled = self.pools.read().await?;
        Ok(pooled
            .conn()
            .fetch_optional(sql(format!("SELECT {VOUCHER_COLUMNS} FROM vouchers WHERE id = $1")).bind(id))
            .await?)
    }

    /// A customer's vouchers, newest first, after the cursor (a voucher id) when given.
    pub async fn vouchers_of(&self, user: &UserId, before: Option<&str>, limit: i64) -> StoreResult<Vec<VoucherRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {VOUCHER_COLUMNS} FROM vouchers WHERE user_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(user.as_str())
        .bind(before.unwrap_or(""))
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Records a failed attempt at the counter (a preview or a redemption that found no voucher it could use):
    /// claims a slot in each of `failure` (the throttle's buckets) and logs the attempt, in one unit of work.
    /// [`StoreError::Throttled`] when a bucket is full: then nothing is claimed or logged.
    pub async fn record_failure(&self, attempt: &Attempt<'_>, failure: &[Bucket]) -> StoreResult<()> {
        self.write((attempt.to_record(), failure.to_vec()), |mut conn, (attempt, failure)| {
            Box::pin(async move {
                let attempt = attempt.attempt();
                claim_in(&mut conn, failure, attempt.at).await?;
                log_in(&mut conn, &attempt).await
            })
        })
        .await
    }

    /// Redeems a voucher: `issued` → `redeemed` by one conditional update (never read-then-write), the
    /// redemption recorded, the merchant paid (price less commission, from its receivable), the commission
    /// paid to the platform and, under a `commission_share` reward, its share paid on to the group's losers
    /// (`shares.rs`), and the attempt logged — one transaction. On refusal: `NotFound` (no such code at
    /// this merchant), `Conflict("already_redeemed" | "voucher_refunded")`, `Conflict("expired")`; a refusal is a
    /// failure, counted in `failure` (the throttle's buckets) and logged in the same transaction, or, when a bucket
    /// is full, [`StoreError::Throttled`] and nothing changes.
    pub async fn redeem(
        &self,
        code_hash: &str,
        attempt: &Attempt<'_>,
        failure: &[Bucket],
    ) -> StoreResult<(VoucherRow, RedemptionRow)> {
        let input = (code_hash.to_owned(), attempt.to_record(), failure.to_vec());
        self.write(input, |mut conn, (code_hash, attempt, failure)| {
            Box::pin(async move {
                let attempt = &attempt.attempt();
                let now = attempt.at;
                let redeemed: Option<VoucherRow> = conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE vouchers SET status = 'redeemed'
                     WHERE code_hash = $1 AND merchant_id = $2 AND status = 'issued' AND expires_at > $3
                     RETURNING {VOUCHER_COLUMNS}"
                        ))
                        .bind(code_hash)
                        .bind(attempt.merchant.as_str())
                        .bind(now.0),
                    )
                    .await?;
                let Some(voucher) = redeemed else {
                    let found: Option<VoucherRow> = conn
                        .fetch_optional(
                            sql(format!(
                                "SELECT {VOUCHER_COLUMNS} FROM vouchers WHERE code_hash = $1 AND merchant_id = $2"
                            ))
                            .bind(code_hash)
                            .bind(attempt.merchant.as_str()),
                        )
                        .await?;
                    let (refusal, code) = match found {
                        None => (StoreError::NotFound, "unknown_code"),
                        Some(v) if v.status == "redeemed" => {
                            (StoreError::Conflict("already_redeemed"), "already_redeemed")
                        }
                        Some(v) if v.status == "refunded" => {
                            (StoreError::Conflict("voucher_refunded"), "voucher_refunded")
                        }
                        Some(_) => (StoreError::Conflict("expired"), "expired"),
                    };
                    // Kept (the unit returns `Ok`), so that the failure counts; answered as the refusal after.
                    claim_in(&mut conn, failure, now).await?;
                    log_in(&mut conn, &Attempt { result: code, ..attempt.clone() }).await?;
                    return Ok(Err(refusal));
                };
                let redemption: RedemptionRow = conn
                    .fetch_one(
                        sql(format!(
                            "INSERT INTO redemptions (id, voucher_id, merchant_id, staff_id, redeemed_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {REDEMPTION_COLUMNS}"
                        ))
                        .bind(new_id())
                        .bind(&voucher.id)
                        .bind(attempt.merchant.as_str())
                        .bind(attempt.staff.as_str())
                        .bind(now.0),
                    )
                    .await?;
                if voucher.kind == "purchase" {
                    let mut entries = settlement_entries(
                        &redemption.id,
                        attempt.merchant,
                        stored_fen(voucher.amount)?,
                        stored_fen(voucher.commission)?,
                    );
                    // One post: the platform's commission comes in and its losers' share goes out together.
                    entries.extend(shares_on_redemption(&mut conn, &voucher, &redemption.id).await?);
                    post_all(&mut conn, &entries, now).await?;
                }
                log_in(&mut conn, &Attempt { voucher: Some(&voucher.id), ..attempt.clone() }).await?;
                Ok(Ok((voucher, redemption)))
            })
        })
        .await?
    }

    /// Undoes a redemption within `window` of it: the voucher is `issued` again and the settlement reversed by
    /// new entries, with the commission shares it paid (`shares.rs`: what each loser still holds of it); logged. `NotFound` for an unknown redemption (or another merchant's), `Conflict("already_undone")`,
    /// `Conflict("undo_window_passed")`.
    pub async fn undo_redemption(
        &self,
        redemption: &str,
        window_ms: i64,
        attempt: &Attempt<'_>,
    ) -> StoreResult<VoucherRow> {
        self.write((redemption.to_owned(), window_ms, attempt.to_record()), |mut conn, (redemption, window_ms, attempt)| Box::pin(async move {
        let attempt = &attempt.attempt();
        let now = attempt.at;
        let undone: Option<RedemptionRow> = conn
            .fetch_optional(
                sql(format!(
                    "UPDATE redemptions SET undone_at = $3, undone_by = $4
                     WHERE id = $1 AND merchant_id = $2 AND undone_at IS NULL AND redeemed_at > $5
                     RETURNING {REDEMPTION_COLUMNS}"
                ))
                .bind(redemption)
                .bind(attempt.merchant.as_str())
                .bind(now.0)
                .bind(attempt.staff.as_str())
                .bind(now.0 - window_ms),
            )
            .await?;
        let Some(row) = undone else {
            let found: Option<RedemptionRow> = conn
                .fetch_optional(
                    sql(format!("SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = $1 AND merchant_id = $2"))
                        .bind(redemption)
                        .bind(attempt.merchant.as_str()),
                )
                .await?;
            return Err(match found {
                None => StoreError::NotFound,
                Some(r) if r.undone_at.is_some() => StoreError::Conflict("already_undone"),
                Some(_) => StoreError::Conflict("undo_window_passed"),
            });
        };
        let voucher: VoucherRow = conn
            .fetch_optional(
                sql(format!(
                    "UPDATE vouchers SET status = 'issued' WHERE id = $1 AND status = 'redeemed' RETURNING {VOUCHER_COLUMNS}"
                ))
                .bind(&row.voucher_id),
            )
            .await?
            .ok_or(StoreError::Conflict("already_undone"))?;
        if voucher.kind == "purchase" {
            // The shares' reversals first: they lock the losers' wallets, whose keys sort before the others.
            let mut entries = reversals_on_undo(&mut conn, &voucher, &row.id).await?;
            entries.extend(undo_entries(
                &row.id,
                attempt.merchant,
                stored_fen(voucher.amount)?,
                stored_fen(voucher.commission)?,
            ));
            post_all(&mut conn, &entries, now).await?;
        }
        log_in(&mut conn, &Attempt { voucher: Some(&voucher.id), ..attempt.clone() }).await?;
        Ok(voucher)
        })).await
    }

    /// Expires one issued voucher past its date, if any: a purchase voucher's price goes back to its customer
    /// (from the merchant's receivable), a coupon just lapses — exactly once, whichever instance gets there first.
    pub async fn expire_voucher(&self, now: Millis) -> StoreResult<Option<VoucherRow>> {
        self.write(now, |mut conn, now| Box::pin(async move {
        let lock = if conn.backend() == crate::Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let due: Option<(String,)> = conn
            .fetch_optional(
                sql(format!(
                    "SELECT id FROM vouchers WHERE status = 'issued' AND expires_at <= $1 ORDER BY expires_at LIMIT 1{lock}"
                ))
                .bind(now.0),
            )
            .await?;
        let Some((id,)) = due else { return Ok(None) };
        let expired: Option<VoucherRow> = conn
            .fetch_optional(
                sql(format!(
                    "UPDATE vouchers SET status = 'expired' WHERE id = $1 AND status = 'issued' RETURNING {VOUCHER_COLUMNS}"
                ))
                .bind(&id),
            )
            .await?;
        let Some(voucher) = expired else { return Ok(None) };
        if voucher.kind == "purchase" {
            let (user, price) = (UserId::from_trusted(&voucher.user_id), stored_fen(voucher.amount)?);
            let from = paid_from(&mut conn, &voucher.membership_id).await?;
            let merchant = MerchantId::from_trusted(&voucher.merchant_id);
            let entry: Entry = voucher_expiry_refund(&voucher.id, &merchant, &user, price, &from);
            post_all(&mut conn, &[entry], *now).await?;
            let refund = NewRefund {
                membership: Some(voucher.membership_id.clone()),
                ..NewRefund::of_membership("voucher_expired", &voucher.id, &user, price, from)
            };
            record_all(&mut conn, &[refund], *now).await?;
        }
        Ok(Some(voucher))
        })).await
    }

    /// The vouchers issued for a membership (a purchase, or a coupon).
    pub async fn vouchers_of_membership(&self, membership: &str) -> StoreResult<Vec<VoucherRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!("SELECT {VOUCHER_COLUMNS} FROM vouchers WHERE membership_id = $1 ORDER BY kind"))
            .bind(membership);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// The attempts logged at a merchant's counter, newest first: (staff, voucher, action, result, client address).
    pub async fn attempts_at(&self, merchant: &MerchantId, limit: i64) -> StoreResult<Vec<AttemptRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql("SELECT staff_id, voucher_id, action, result, client_address, at FROM redemption_attempts
                     WHERE merchant_id = $1 ORDER BY at DESC, id DESC LIMIT $2")
        .bind(merchant.as_str())
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// A winner returns an unused purchase voucher for a full refund (随时退): `issued` → `refunded` by one
    /// conditional update, so against a redemption at the counter exactly one of the two wins. The price goes
    /// back from the merchant's receivable. `NotFound` (not the caller's), `Conflict("already_redeemed" |
    /// "already_refunded" | "not_refundable")`, `Conflict("expired")`.
    pub async fn refund_voucher(&self, voucher: &str, user: &UserId, now: Millis) -> StoreResult<VoucherRow> {
        self.write((voucher.to_owned(), user.clone(), now), |mut conn, (voucher, user, now)| {
            Box::pin(async move {
                let refunded: Option<VoucherRow> = conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE vouchers SET status = 'refunded'
                     WHERE id = $1 AND user_id = $2 AND kind = 'purchase' AND status = 'issued' AND expires_at > $3
                     RETURNING {VOUCHER_COLUMNS}"
                        ))
                        .bind(voucher)
                        .bind(user.as_str())
                        .bind(now.0),
                    )
                    .await?;
                let Some(row) = refunded else {
                    let found: Option<VoucherRow> = conn
                        .fetch_optional(
                            sql(format!("SELECT {VOUCHER_COLUMNS} FROM vouchers WHERE id = $1 AND user_id = $2"))
                                .bind(voucher)
                                .bind(user.as_str()),
                        )
                        .await?;
                    return Err(match found {
                        None => StoreError::NotFound,
                        Some(v) if v.kind != "purchase" => StoreError::Conflict("not_refundable"),
                        Some(v) if v.status == "redeemed" => StoreError::Conflict("already_redeemed"),
                        Some(v) if v.status == "refunded" => StoreError::Conflict("already_refunded"),
                        Some(_) => StoreError::Conflict("expired"),
                    });
                };
                let (price, from) = (stored_fen(row.amount)?, paid_from(&mut conn, &row.membership_id).await?);
                let entry = voucher_refund(&row.id, &MerchantId::from_trusted(&row.merchant_id), user, price, &from);
                post_all(&mut conn, &[entry], *now).await?;
                let refund = NewRefund {
                    membership: Some(row.membership_id.clone()),
                    ..NewRefund::of_membership("voucher_returned", &row.id, user, price, from)
                };
                record_all(&mut conn, &[refund], *now).await?;
                Ok(row)
            })
        })
        .await
    }

    /// The redemption that stands for a voucher (the latest not undone), if any.
    pub async fn standing_redemption(&self, voucher: &str) -> StoreResult<Option<RedemptionRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE voucher_id = $1 AND undone_at IS NULL \
             ORDER BY redeemed_at DESC LIMIT 1"
        ))
        .bind(voucher);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// A redemption by id.
    pub async fn redemption(&self, id: &str) -> StoreResult<Option<RedemptionRow>> {
        let mut pooled = self.pools.read().await?;
        Ok(pooled
            .conn()
            .fetch_optional(sql(format!("SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = $1")).bind(id))
            .await?)
    }
}
