//! Refunds to where the money came from (PAYMENTS.md): every refund SPEC names, recorded in the unit of work that
//! owes it, beside the ledger entry that moves the money.
//!
//! A refund's id is derived from its cause (`{cause}-{membership, voucher or payment id}`), so it can never be
//! recorded twice, and it is the provider's `out_refund_no`. A wallet refund is done in the unit that records it
//! (`succeeded`). A provider refund is `requested`: the money waits in the customer's refund-pending account while
//! a worker asks the provider ([`Store::claim_due_refund`], then [`Store::settle_refund`]); it is `succeeded`
//! once the provider confirms, and the money leaves through the provider's clearing account. A refund the provider
//! keeps failing is `failed` after [`MAX_ATTEMPTS`] and waits for the operator, still owed (refund pending).

use crate::db::{Conn, Sql, sql};
use crate::leases::Queue;
use crate::ledger::post_all;
use crate::payments::Stored;
use crate::{Store, StoreError, StoreResult, new_id};
use tuangou_domain::ids::UserId;
use tuangou_domain::ledger::{PaidFrom, refund_settled_entry};
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;

/// After this many failed attempts a provider refund waits for a person (`failed`).
pub const MAX_ATTEMPTS: i64 = 6;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundRow {
    pub id: String,
    pub user_id: String,
    /// `not_drawn`, `group_expired`, `voucher_returned`, `voucher_expired`, `late_payment`.
    pub cause: String,
    pub membership_id: Option<String>,
    pub payment_id: Option<String>,
    pub amount: i64,
    /// `wallet` or `provider`.
    pub destination: String,
    pub provider: Option<String>,
    /// `requested`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub requested_at: i64,
    pub settled_at: Option<i64>,
}
crate::sqlite_sql::from_values!(RefundRow {
    id,
    user_id,
    cause,
    membership_id,
    payment_id,
    amount,
    destination,
    provider,
    status,
    attempts,
    next_attempt_at,
    last_error,
    requested_at,
    settled_at
});

const REFUND_COLUMNS: &str = "id, user_id, cause, membership_id, payment_id, amount, destination, provider, status, \
     attempts, next_attempt_at, last_error, requested_at, settled_at";

/// A refund owed, as the unit that owes it records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub cause: &'static str,
    /// What the id is derived from: the membership (`not_drawn`, `group_expired`), the voucher
    /// (`voucher_returned`, `voucher_expired`) or the payment (`late_payment`).
    pub of: String,
    pub user: UserId,
    pub membership: Option<String>,
    /// The payment to refund, when known; else the paid payment of `membership`.
    pub payment: Option<String>,
    pub amount: Fen,
    pub to: PaidFrom,
}

impl NewRefund {
    /// The refund of a membership's money for `cause`, the way it came.
    pub fn of_membership(cause: &'static str, membership: &str, user: &UserId, amount: Fen, to: PaidFrom) -> Self {
        NewRefund {
            cause,
            of: membership.to_owned(),
            user: user.clone(),
            membership: Some(membership.to_owned()),
            payment: None,
            amount,
            to,
        }
    }

    /// Our id for it, and the provider's `out_refund_no`.
    pub fn id(&self) -> String {
        refund_id(self.cause, &self.of)
    }
}

/// A refund's id: its cause and what it refunds, so one cause refunds a thing at most once.
pub fn refund_id(cause: &str, of: &str) -> String {
    format!("{cause}-{of}")
}

/// The statement that records `refund`: done at once to the wallet, requested from the provider otherwise. It
/// fails (unique id) when the same refund was recorded before.
pub(crate) fn record_sql(refund: &NewRefund, now: Millis) -> Sql {
    let (status, settled, next, provider) = match &refund.to {
        PaidFrom::Wallet => ("succeeded", Some(now.0), None, None),
        PaidFrom::Provider(name) => ("requested", None, Some(now.0), Some(name.clone())),
    };
    // A provider refund names the payment: the one given, else the membership's paid payment.
    let payment = match refund.to {
        PaidFrom::Wallet => "CAST($12 AS TEXT)",
        PaidFrom::Provider(_) => {
            "COALESCE($12, (SELECT p.id FROM payments p WHERE p.membership_id = $4 AND p.status IN ('paid', 'refunded')))"
        }
    };
    sql(format!(
        "INSERT INTO refunds (id, user_id, cause, membership_id, payment_id, amount, destination, provider, status,
             next_attempt_at, requested_at, settled_at)
         SELECT $1, $2, $3, $4, {payment}, $5, $6, $7, $8, $9, $10, $11"
    ))
    .bind(refund.id())
    .bind(refund.user.as_str())
    .bind(refund.cause)
    .bind(refund.membership.clone())
    .bind(refund.amount.get())
    .bind(if provider.is_some() { "provider" } else { "wallet" })
    .bind(provider)
    .bind(status)
    .bind(next)
    .bind(now.0)
    .bind(settled)
    .bind(refund.payment.clone())
    .must_change(1)
}

/// Records every refund in `refunds`, inside the caller's unit of work.
pub(crate) async fn record_all(conn: &mut Conn<'_>, refunds: &[NewRefund], now: Millis) -> StoreResult<()> {
    if refunds.is_empty() {
        return Ok(());
    }
    let mut ran = conn.run(refunds.iter().map(|r| record_sql(r, now)).collect()).await;
    for _ in refunds {
        ran.next_met()?.ok_or_else(|| StoreError::Inconsistent("a refund was not recorded".into()))?;
    }
    Ok(())
}

/// A refund notification as stored (`refund_events`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundEventRow {
    pub id: String,
    pub provider: String,
    pub event_id: String,
    pub refund_id: String,
    /// `succeeded` or `failed`.
    pub outcome: String,
    /// The provider's success time (`succeeded`).
    pub settled_at: Option<i64>,
    /// The body exactly as received (and verified).
    pub raw: String,
    /// `received` or `applied`.
    pub status: String,
    pub received_at: i64,
    pub applied_at: Option<i64>,
}
crate::sqlite_sql::from_values!(RefundEventRow {
    id,
    provider,
    event_id,
    refund_id,
    outcome,
    settled_at,
    raw,
    status,
    received_at,
    applied_at
});

const REFUND_EVENT_COLUMNS: &str =
    "id, provider, event_id, refund_id, outcome, settled_at, raw, status, received_at, applied_at";

const REFUND_EVENTS: Stored = Stored { table: "refund_events", columns: REFUND_EVENT_COLUMNS };

/// A verified refund notification to store.
#[derive(Debug, Clone)]
pub struct NewRefundEvent {
    pub provider: String,
    pub event_id: String,
    /// Our refund id (the provider's `out_refund_no`).
    pub refund_id: String,
    /// `succeeded` or `failed`.
    pub outcome: &'static str,
    pub settled_at: Option<Millis>,
    pub raw: String,
}

/// What the provider said about a refund we asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundProgress {
    Succeeded {
        at: Millis,
    },
    /// Accepted, not finished: ask again at `next`.
    Processing {
        next: Millis,
    },
    /// It failed, or the call did: try again at `next`, unless the attempts are used up.
    Failed {
        error: String,
        next: Millis,
    },
}

impl Store {
    /// A customer's refunds, newest first, after the cursor (a refund id) when given.
    pub async fn refunds_of(&self, user: &UserId, before: Option<&str>, limit: i64) -> StoreResult<Vec<RefundRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {REFUND_COLUMNS} FROM refunds r WHERE r.user_id = $1
                 AND ($2 = '' OR (r.requested_at, r.id) < (SELECT c.requested_at, c.id FROM refunds c WHERE c.id = $2))
             ORDER BY r.requested_at DESC, r.id DESC LIMIT $3"
        ))
        .bind(user.as_str())
        .bind(before.unwrap_or(""))
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Refunds in a state (`failed`: the operator's queue), oldest first, after the cursor when given.
    pub async fn refunds_with_status(
        &self,
        status: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RefundRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE status = $1 AND ($2 = '' OR id > $2) ORDER BY id LIMIT $3"
        ))
        .bind(status)
        .bind(after.unwrap_or(""))
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    pub async fn refund(&self, id: &str) -> StoreResult<Option<RefundRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1")).bind(id);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// Claims the next provider refund due for an attempt: it is not due again until `lease_until`, so instances
    /// (and the next ticks) leave it alone while this attempt calls the provider.
    pub async fn claim_due_refund(&self, now: Millis, lease_until: Millis) -> StoreResult<Option<RefundRow>> {
        let queue = Queue { table: "refunds", columns: REFUND_COLUMNS, status: "requested", due: "next_attempt_at" };
        self.claim_next(queue, now, lease_until).await
    }

    /// Keeps what the provider said about a requested refund. Succeeded: the money owed leaves through the
    /// provider's clearing account, and a payment refunded in full is `refunded` — once, whatever ran before (a
    /// `failed` refund the provider says succeeded after all is settled too). Failed: one more attempt counted;
    /// after [`MAX_ATTEMPTS`] it is `failed`, for a person. A refund already settled is left as it is.
    pub async fn settle_refund(
        &self,
        id: &str,
        progress: RefundProgress,
        now: Millis,
    ) -> StoreResult<Option<RefundRow>> {
        self.write((id.to_owned(), progress, now), |mut conn, (id, progress, now)| {
            Box::pin(async move { settle_in(&mut conn, id, progress, *now).await })
        })
        .await
    }

    /// Stores a verified refund notification once: `(row, true)` when it is new, `(the row stored first, false)`
    /// when the provider sent this event before (nothing changes then).
    pub async fn record_refund_event(
        &self,
        event: &NewRefundEvent,
        now: Millis,
    ) -> StoreResult<(RefundEventRow, bool)> {
        self.write((event.clone(), now), |mut conn, (event, now)| {
            Box::pin(async move {
                let insert = sql(format!(
                    "INSERT INTO refund_events
                         (id, provider, event_id, refund_id, outcome, settled_at, raw, status, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'received', $8)
                     ON CONFLICT (provider, event_id) DO NOTHING RETURNING {REFUND_EVENT_COLUMNS}"
                ))
                .bind(new_id())
                .bind(&event.provider)
                .bind(&event.event_id)
                .bind(&event.refund_id)
                .bind(event.outcome)
                .bind(event.settled_at.map(|at| at.0))
                .bind(&event.raw)
                .bind(now.0);
                REFUND_EVENTS.insert_once(&mut conn, insert, &event.provider, &event.event_id).await
            })
        })
        .await
    }

    /// Applies the oldest `received` refund notification, if any, in the unit that marks it `applied`: what
    /// `progress` makes of it (the app's rule) goes through the settle path of [`Store::settle_refund`], so a
    /// refund settles once and a notification about a refund already settled changes nothing. Exactly once,
    /// whichever instance gets there first. Answers the event and the refund as the unit left it (`None`: it was
    /// not waiting for this).
    pub async fn apply_next_refund_event<F>(
        &self,
        now: Millis,
        progress: F,
    ) -> StoreResult<Option<(RefundEventRow, Option<RefundRow>)>>
    where
        F: Fn(&RefundRow, &RefundEventRow) -> RefundProgress + Send + Sync + 'static,
    {
        self.write((now, progress), |mut conn, (now, progress)| {
            Box::pin(async move {
                let Some(event) = REFUND_EVENTS.claim_next::<RefundEventRow>(&mut conn, *now).await? else {
                    return Ok(None);
                };
                let refund: RefundRow = conn
                    .fetch_one(
                        sql(format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1")).bind(&event.refund_id),
                    )
                    .await?;
                let settled = settle_in(&mut conn, &refund.id, &progress(&refund, &event), *now).await?;
                Ok(Some((event, settled)))
            })
        })
        .await
    }

    /// The operator sends a failed refund back to the worker (the provider's problem was fixed): `requested`
    /// again, with its attempts counted afresh. `NotFound`, or `Conflict("not_failed")`.
    pub async fn retry_refund(&self, id: &str, now: Millis) -> StoreResult<RefundRow> {
        self.write((id.to_owned(), now), |mut conn, (id, now)| {
            Box::pin(async move {
                let retried: Option<RefundRow> = conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE refunds SET status = 'requested', attempts = 0, next_attempt_at = $2
                             WHERE id = $1 AND status = 'failed' RETURNING {REFUND_COLUMNS}"
                        ))
                        .bind(id.as_str())
                        .bind(now.0),
                    )
                    .await?;
                match retried {
                    Some(row) => Ok(row),
                    None => {
                        let exists: Option<(String,)> =
                            conn.fetch_optional(sql("SELECT id FROM refunds WHERE id = $1").bind(id.as_str())).await?;
                        Err(if exists.is_some() { StoreError::Conflict("not_failed") } else { StoreError::NotFound })
                    }
                }
            })
        })
        .await
    }
}

/// Keeps what the provider said about a refund (see [`Store::settle_refund`]), inside the caller's unit. A
/// success settles a refund that is `requested`, or `failed` and waiting for the operator (the money did reach the
/// customer: the provider says so); anything else only a `requested` one.
async fn settle_in(
    conn: &mut Conn<'_>,
    id: &str,
    progress: &RefundProgress,
    now: Millis,
) -> StoreResult<Option<RefundRow>> {
    let update = match progress {
        RefundProgress::Succeeded { at } => sql(format!(
            "UPDATE refunds SET status = 'succeeded', settled_at = $2, next_attempt_at = NULL, last_error = NULL
             WHERE id = $1 AND status IN ('requested', 'failed') RETURNING {REFUND_COLUMNS}"
        ))
        .bind(id)
        .bind(at.0),
        RefundProgress::Processing { next } => sql(format!(
            "UPDATE refunds SET next_attempt_at = $2 WHERE id = $1 AND status = 'requested'
             RETURNING {REFUND_COLUMNS}"
        ))
        .bind(id)
        .bind(next.0),
        RefundProgress::Failed { error, next } => sql(format!(
            "UPDATE refunds SET attempts = attempts + 1, last_error = $3,
                 status = CASE WHEN attempts + 1 >= $4 THEN 'failed' ELSE 'requested' END,
                 next_attempt_at = CASE WHEN attempts + 1 >= $4 THEN NULL ELSE $2 END
             WHERE id = $1 AND status = 'requested' RETURNING {REFUND_COLUMNS}"
        ))
        .bind(id)
        .bind(next.0)
        .bind(error.as_str())
        .bind(MAX_ATTEMPTS),
    };
    let Some(row) = conn.fetch_optional::<RefundRow>(update).await? else { return Ok(None) };
    if let RefundProgress::Succeeded { .. } = progress {
        settle_money(conn, &row, now).await?;
    }
    Ok(Some(row))
}

/// A provider refund succeeded: what was owed leaves through the provider, and its payment is `refunded` once
/// its succeeded refunds cover it.
async fn settle_money(conn: &mut Conn<'_>, row: &RefundRow, now: Millis) -> StoreResult<()> {
    let (Some(provider), Some(payment)) = (&row.provider, &row.payment_id) else {
        return Err(StoreError::Inconsistent(format!("refund {} has no provider", row.id)));
    };
    let amount = Fen::from_stored(row.amount).ok_or_else(|| StoreError::Inconsistent("negative refund".into()))?;
    let entry = refund_settled_entry(&row.id, provider, &UserId::from_trusted(&row.user_id), amount);
    post_all(conn, &[entry], now).await?;
    conn.execute(
        sql("UPDATE payments SET status = 'refunded'
             WHERE id = $1 AND status = 'paid'
               AND COALESCE(paid_amount, amount) <= (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r
                                                     WHERE r.payment_id = $1 AND r.status = 'succeeded')")
        .bind(payment.as_str()),
    )
    .await?;
    Ok(())
}
