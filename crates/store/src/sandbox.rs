//! The sandbox provider's own books: what "the provider" keeps on its side of the line, separate from our
//! payments. Only the sandbox adapter (`tuangou_app::payments::sandbox`) calls these; they are here because all SQL
//! is. Kept in the database, so a restart (or `kill -9`) keeps the provider's state as a real provider would.
//!
//! Every change is a conditional update in a unit of work: a payment leaves `created` once, a refund or a transfer
//! is made once per our id (`out_refund_no`, `out_no`), and a payment's refunds and splits never exceed it (a
//! conditional update of its running totals, and a `CHECK`).

use crate::db::sql;
use crate::{Store, StoreError, StoreResult, new_id};
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SandboxPaymentRow {
    pub id: String,
    pub out_trade_no: String,
    pub amount: i64,
    pub description: String,
    pub return_url: Option<String>,
    /// `created`, `paid` or `closed`.
    pub status: String,
    pub refunded: i64,
    pub split: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    pub closed_at: Option<i64>,
}
crate::sqlite_sql::from_values!(SandboxPaymentRow {
    id,
    out_trade_no,
    amount,
    description,
    return_url,
    status,
    refunded,
    split,
    created_at,
    expires_at,
    paid_at,
    closed_at
});

const PAYMENT_COLUMNS: &str = "id, out_trade_no, amount, description, return_url, status, refunded, split, \
     created_at, expires_at, paid_at, closed_at";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SandboxRefundRow {
    pub id: String,
    pub out_refund_no: String,
    pub payment_id: String,
    pub amount: i64,
    pub reason: String,
    /// `processing`, `succeeded` or `failed`.
    pub status: String,
    pub requested_at: i64,
    pub settled_at: Option<i64>,
}
crate::sqlite_sql::from_values!(SandboxRefundRow {
    id,
    out_refund_no,
    payment_id,
    amount,
    reason,
    status,
    requested_at,
    settled_at
});

const REFUND_COLUMNS: &str = "id, out_refund_no, payment_id, amount, reason, status, requested_at, settled_at";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SandboxTransferRow {
    pub id: String,
    /// `payout` or `split`.
    pub kind: String,
    pub out_no: String,
    pub payment_id: Option<String>,
    pub payee: String,
    pub amount: i64,
    /// `processing`, `succeeded` or `failed`.
    pub status: String,
    pub requested_at: i64,
    pub settled_at: Option<i64>,
}
crate::sqlite_sql::from_values!(SandboxTransferRow {
    id,
    kind,
    out_no,
    payment_id,
    payee,
    amount,
    status,
    requested_at,
    settled_at
});

const TRANSFER_COLUMNS: &str = "id, kind, out_no, payment_id, payee, amount, status, requested_at, settled_at";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SandboxNotificationRow {
    pub id: String,
    pub payment_id: String,
    pub body: String,
    /// `pending`, `delivered`, `dropped` or `gave_up`.
    pub status: String,
    pub created_at: i64,
    pub due_at: i64,
    pub attempts: i64,
    pub sends: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
}
crate::sqlite_sql::from_values!(SandboxNotificationRow {
    id,
    payment_id,
    body,
    status,
    created_at,
    due_at,
    attempts,
    sends,
    delivered_at,
    last_error
});

const NOTIFICATION_COLUMNS: &str =
    "id, payment_id, body, status, created_at, due_at, attempts, sends, delivered_at, last_error";

/// A payment the sandbox is asked to create.
#[derive(Debug, Clone)]
pub struct NewSandboxPayment {
    pub out_trade_no: String,
    pub amount: Fen,
    pub description: String,
    pub return_url: Option<String>,
    pub expires_at: Millis,
}

/// A notification the sandbox owes the service, made in the same unit as the change it reports.
#[derive(Debug, Clone)]
pub struct NewSandboxNotification {
    /// The event id, which the body carries too.
    pub id: String,
    pub body: String,
    /// `pending` (delivered once `due_at` passes) or `dropped` (never sent: a fault switch).
    pub status: &'static str,
    pub due_at: Millis,
}

/// What paying, or closing, asks of the sandbox besides the change itself.
#[derive(Debug, Clone)]
pub struct SandboxChange {
    pub out_trade_no: String,
    pub now: Millis,
    /// Pay a closed or expired payment all the same (the `late_pay` switch).
    pub late: bool,
    /// The notification to owe when the change happens; its body is made by the caller, who knows the change.
    pub notification: Option<NewSandboxNotification>,
}

/// Where a day's bill lines come from: the payments paid and the refunds that succeeded in it.
#[derive(Debug, Clone, Default)]
pub struct SandboxDay {
    pub payments: Vec<SandboxPaymentRow>,
    /// Each refund with its payment.
    pub refunds: Vec<(SandboxRefundRow, SandboxPaymentRow)>,
}

impl Store {
    /// Creates a payment at the sandbox, or answers the one made for this `out_trade_no` before (a retry);
    /// `Conflict("out_trade_no_reused")` when that one was for another amount.
    pub async fn sandbox_create_payment(
        &self,
        payment: &NewSandboxPayment,
        now: Millis,
    ) -> StoreResult<SandboxPaymentRow> {
        self.write((payment.clone(), now), |mut conn, (payment, now)| {
            Box::pin(async move {
                conn.execute(
                    sql("INSERT INTO sandbox_payments
                             (id, out_trade_no, amount, description, return_url, status, created_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5, 'created', $6, $7) ON CONFLICT (out_trade_no) DO NOTHING")
                    .bind(format!("sbx_{}", new_id().replace('-', "")))
                    .bind(&payment.out_trade_no)
                    .bind(payment.amount.get())
                    .bind(&payment.description)
                    .bind(payment.return_url.clone())
                    .bind(now.0)
                    .bind(payment.expires_at.0),
                )
                .await?;
                let row: SandboxPaymentRow = conn
                    .fetch_one(
                        sql(format!("SELECT {PAYMENT_COLUMNS} FROM sandbox_payments WHERE out_trade_no = $1"))
                            .bind(&payment.out_trade_no),
                    )
                    .await?;
                if row.amount != payment.amount.get() {
                    return Err(StoreError::Conflict("out_trade_no_reused"));
                }
                Ok(row)
            })
        })
        .await
    }

    /// A sandbox payment by our `out_trade_no` or by its own id.
    pub async fn sandbox_payment(&self, id: &str) -> StoreResult<Option<SandboxPaymentRow>> {
        let mut pooled = self.pools.read().await?;
        let q =
            sql(format!("SELECT {PAYMENT_COLUMNS} FROM sandbox_payments WHERE out_trade_no = $1 OR id = $1")).bind(id);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// The payer pays: `created` (and not expired) → `paid`, owing `notification`; `(row, true)` then. A payment
    /// paid already answers `(row, false)`, unchanged. A closed or expired one is refused with
    /// `Conflict("payment_closed")`, unless `late` (then it is paid all the same: late money).
    pub async fn sandbox_pay(&self, change: &SandboxChange) -> StoreResult<(SandboxPaymentRow, bool)> {
        self.write(change.clone(), |mut conn, change| {
            Box::pin(async move {
                let paid: Option<SandboxPaymentRow> = conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE sandbox_payments SET status = 'paid', paid_at = $2
                                 WHERE (out_trade_no = $1 OR id = $1)
                                   AND ((status = 'created' AND expires_at > $2) OR ($3 = 1 AND status <> 'paid'))
                                 RETURNING {PAYMENT_COLUMNS}"
                        ))
                        .bind(&change.out_trade_no)
                        .bind(change.now.0)
                        .bind(i64::from(change.late)),
                    )
                    .await?;
                match paid {
                    Some(row) => {
                        owe(&mut conn, &row, change.notification.as_ref(), change.now).await?;
                        Ok((row, true))
                    }
                    None => match find(&mut conn, &change.out_trade_no).await? {
                        None => Err(StoreError::NotFound),
                        Some(row) if row.status == "paid" => Ok((row, false)),
                        Some(_) => Err(StoreError::Conflict("payment_closed")),
                    },
                }
            })
        })
        .await
    }

    /// Closes a payment: `created` → `closed`, owing `notification` when given; `(row, true)` then. Otherwise the
    /// payment as it is, `(row, false)`: closed already, or paid (the caller learns it was paid after all).
    pub async fn sandbox_close(&self, change: &SandboxChange) -> StoreResult<(SandboxPaymentRow, bool)> {
        self.write(change.clone(), |mut conn, change| {
            Box::pin(async move {
                let closed: Option<SandboxPaymentRow> = conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE sandbox_payments SET status = 'closed', closed_at = $2
                                 WHERE (out_trade_no = $1 OR id = $1) AND status = 'created' RETURNING {PAYMENT_COLUMNS}"
                        ))
                        .bind(&change.out_trade_no)
                        .bind(change.now.0),
                    )
                    .await?;
                match closed {
                    Some(row) => {
                        owe(&mut conn, &row, change.notification.as_ref(), change.now).await?;
                        Ok((row, true))
                    }
                    None => find(&mut conn, &change.out_trade_no).await?.map(|row| (row, false)).ok_or(StoreError::NotFound),
                }
            })
        })
        .await
    }

    /// Asks for a refund, once per `out_refund_no`: `processing` (its amount counted against the payment at
    /// once), or `failed` when `fail` (the `fail_refunds` switch). The same id again answers the refund as it
    /// is, except a failed one, which is tried again. Refusals: `NotFound` (no such payment),
    /// `Conflict("not_paid")`, `Conflict("refund_exceeds_payment")`, `Conflict("out_refund_no_reused")` (the same
    /// id for another payment or amount).
    pub async fn sandbox_refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
        amount: Fen,
        reason: &str,
        fail: bool,
        now: Millis,
    ) -> StoreResult<SandboxRefundRow> {
        let input = (out_trade_no.to_owned(), out_refund_no.to_owned(), amount, reason.to_owned(), fail, now);
        self.write(input, |mut conn, (out_trade_no, out_refund_no, amount, reason, fail, now)| {
            Box::pin(async move {
                let payment = find(&mut conn, out_trade_no).await?.ok_or(StoreError::NotFound)?;
                let existing: Option<SandboxRefundRow> = conn
                    .fetch_optional(
                        sql(format!("SELECT {REFUND_COLUMNS} FROM sandbox_refunds WHERE out_refund_no = $1"))
                            .bind(out_refund_no),
                    )
                    .await?;
                if let Some(refund) = &existing {
                    if refund.payment_id != payment.id || refund.amount != amount.get() {
                        return Err(StoreError::Conflict("out_refund_no_reused"));
                    }
                    if refund.status != "failed" || *fail {
                        return Ok(refund.clone());
                    }
                }
                if *fail {
                    return Ok(conn
                        .fetch_one(
                            sql(format!(
                                "INSERT INTO sandbox_refunds
                                     (id, out_refund_no, payment_id, amount, reason, status, requested_at, settled_at)
                                 VALUES ($1, $2, $3, $4, $5, 'failed', $6, $6) RETURNING {REFUND_COLUMNS}"
                            ))
                            .bind(format!("sbr_{}", new_id().replace('-', "")))
                            .bind(out_refund_no)
                            .bind(&payment.id)
                            .bind(amount.get())
                            .bind(reason)
                            .bind(now.0),
                        )
                        .await?);
                }
                take_from_payment(&mut conn, &payment, Taken::Refunded, *amount).await?;
                let statement = match existing {
                    // A failed refund tried again.
                    Some(refund) => sql(format!(
                        "UPDATE sandbox_refunds SET status = 'processing', requested_at = $2, settled_at = NULL
                             WHERE id = $1 RETURNING {REFUND_COLUMNS}"
                    ))
                    .bind(refund.id)
                    .bind(now.0),
                    None => sql(format!(
                        "INSERT INTO sandbox_refunds (id, out_refund_no, payment_id, amount, reason, status, requested_at)
                             VALUES ($1, $2, $3, $4, $5, 'processing', $6) RETURNING {REFUND_COLUMNS}"
                    ))
                    .bind(format!("sbr_{}", new_id().replace('-', "")))
                    .bind(out_refund_no)
                    .bind(&payment.id)
                    .bind(amount.get())
                    .bind(reason)
                    .bind(now.0),
                };
                Ok(conn.fetch_one(statement).await?)
            })
        })
        .await
    }

    /// A sandbox refund by our `out_refund_no`, with its payment.
    pub async fn sandbox_refund_by(&self, out_refund_no: &str) -> StoreResult<Option<SandboxRefundRow>> {
        let mut pooled = self.pools.read().await?;
        let q =
            sql(format!("SELECT {REFUND_COLUMNS} FROM sandbox_refunds WHERE out_refund_no = $1")).bind(out_refund_no);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// Asks for a payout (`payee` is an account) or a split (`payment` is the paid payment it shares; `payee` its
    /// receivers), once per `(kind, out_no)`: `processing`, or `failed` when `fail` (the `fail_payouts` switch).
    /// The same id again answers the transfer as it is.
    /// Refusals for a split: `NotFound`, `Conflict("not_paid")`, `Conflict("split_exceeds_payment")`; for either,
    /// `Conflict("out_no_reused")` (the same id for another amount).
    #[allow(clippy::too_many_arguments)] // the transfer's fields, as the provider is asked for them
    pub async fn sandbox_transfer(
        &self,
        kind: &'static str,
        out_no: &str,
        payment: Option<&str>,
        payee: &str,
        amount: Fen,
        fail: bool,
        now: Millis,
    ) -> StoreResult<SandboxTransferRow> {
        let input = (kind, out_no.to_owned(), payment.map(str::to_owned), payee.to_owned(), amount, fail, now);
        self.write(input, |mut conn, (kind, out_no, payment, payee, amount, fail, now)| {
            Box::pin(async move {
                let existing: Option<SandboxTransferRow> = conn
                    .fetch_optional(
                        sql(format!(
                            "SELECT {TRANSFER_COLUMNS} FROM sandbox_transfers WHERE kind = $1 AND out_no = $2"
                        ))
                        .bind(*kind)
                        .bind(out_no),
                    )
                    .await?;
                if let Some(transfer) = existing {
                    if transfer.amount != amount.get() {
                        return Err(StoreError::Conflict("out_no_reused"));
                    }
                    return Ok(transfer);
                }
                let payment_id = match payment {
                    None => None,
                    Some(payment) => {
                        let row = find(&mut conn, payment).await?.ok_or(StoreError::NotFound)?;
                        if !*fail {
                            take_from_payment(&mut conn, &row, Taken::Split, *amount).await?;
                        }
                        Some(row.id)
                    }
                };
                // A failed transfer (the `fail_payouts` switch) is failed at once, as a refund under `fail_refunds`.
                let (status, settled_at) = if *fail { ("failed", Some(now.0)) } else { ("processing", None) };
                Ok(conn
                    .fetch_one(
                        sql(format!(
                            "INSERT INTO sandbox_transfers
                                 (id, kind, out_no, payment_id, payee, amount, status, requested_at, settled_at)
                                 VALUES ($1, $2, $3, $4, $5, $6, $8, $7, $9) RETURNING {TRANSFER_COLUMNS}"
                        ))
                        .bind(format!("sbt_{}", new_id().replace('-', "")))
                        .bind(*kind)
                        .bind(out_no)
                        .bind(payment_id)
                        .bind(payee)
                        .bind(amount.get())
                        .bind(now.0)
                        .bind(status)
                        .bind(settled_at),
                    )
                    .await?)
            })
        })
        .await
    }

    pub async fn sandbox_transfer_by(&self, kind: &str, out_no: &str) -> StoreResult<Option<SandboxTransferRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!("SELECT {TRANSFER_COLUMNS} FROM sandbox_transfers WHERE kind = $1 AND out_no = $2"))
            .bind(kind)
            .bind(out_no);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// The sandbox finishes what is processing: refunds and transfers requested at or before `before` succeed.
    /// Returns how many.
    pub async fn sandbox_settle(&self, before: Millis, now: Millis) -> StoreResult<u64> {
        self.write((before, now), |mut conn, (before, now)| {
            Box::pin(async move {
                let refunds = conn
                    .execute(
                        sql("UPDATE sandbox_refunds SET status = 'succeeded', settled_at = $2
                                 WHERE status = 'processing' AND requested_at <= $1")
                        .bind(before.0)
                        .bind(now.0),
                    )
                    .await?;
                let transfers = conn
                    .execute(
                        sql("UPDATE sandbox_transfers SET status = 'succeeded', settled_at = $2
                                 WHERE status = 'processing' AND requested_at <= $1")
                        .bind(before.0)
                        .bind(now.0),
                    )
                    .await?;
                Ok(refunds + transfers)
            })
        })
        .await
    }

    /// Notifications due for delivery (oldest first), at most `limit`.
    pub async fn sandbox_due_notifications(&self, now: Millis, limit: i64) -> StoreResult<Vec<SandboxNotificationRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM sandbox_notifications
                 WHERE status = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT $2"
        ))
        .bind(now.0)
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Every notification made for a payment (by our `out_trade_no` or its id), oldest first.
    pub async fn sandbox_notifications_of(&self, payment: &str) -> StoreResult<Vec<SandboxNotificationRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM sandbox_notifications
                 WHERE payment_id = (SELECT id FROM sandbox_payments WHERE out_trade_no = $1 OR id = $1)
                 ORDER BY created_at, id"
        ))
        .bind(payment);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// A delivery happened: `sends` requests went out. When `delivered`, the notification is done; otherwise it
    /// is due again at `retry_at` (or given up on, when `None`) with `error`.
    pub async fn sandbox_notification_tried(
        &self,
        id: &str,
        sends: i64,
        delivered: bool,
        retry_at: Option<Millis>,
        error: Option<&str>,
        now: Millis,
    ) -> StoreResult<()> {
        let status = match (delivered, retry_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "gave_up",
        };
        self.write_statement(
            sql("UPDATE sandbox_notifications
                     SET status = $2, attempts = attempts + 1, sends = sends + $3, due_at = COALESCE($4, due_at),
                         delivered_at = CASE WHEN $2 = 'delivered' THEN $5 ELSE delivered_at END, last_error = $6
                     WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .bind(status)
            .bind(sends)
            .bind(retry_at.map(|at| at.0))
            .bind(now.0)
            .bind(error),
        )
        .await?;
        Ok(())
    }

    /// What a day's bill lists: payments paid, and refunds that succeeded, within `[from, to)`.
    pub async fn sandbox_day(&self, from: Millis, to: Millis) -> StoreResult<SandboxDay> {
        let mut pooled = self.pools.read().await?;
        let mut conn = pooled.conn();
        let payments: Vec<SandboxPaymentRow> = conn
            .fetch_all(
                sql(format!(
                    "SELECT {PAYMENT_COLUMNS} FROM sandbox_payments
                         WHERE status = 'paid' AND paid_at >= $1 AND paid_at < $2 ORDER BY paid_at, id"
                ))
                .bind(from.0)
                .bind(to.0),
            )
            .await?;
        let refunds: Vec<SandboxRefundRow> = conn
            .fetch_all(
                sql(format!(
                    "SELECT {REFUND_COLUMNS} FROM sandbox_refunds
                         WHERE status = 'succeeded' AND settled_at >= $1 AND settled_at < $2 ORDER BY settled_at, id"
                ))
                .bind(from.0)
                .bind(to.0),
            )
            .await?;
        let mut day = SandboxDay { payments, refunds: Vec::with_capacity(refunds.len()) };
        for refund in refunds {
            let payment: SandboxPaymentRow = conn
                .fetch_one(
                    sql(format!("SELECT {PAYMENT_COLUMNS} FROM sandbox_payments WHERE id = $1"))
                        .bind(&refund.payment_id),
                )
                .await?;
            day.refunds.push((refund, payment));
        }
        Ok(day)
    }
}

/// What part of a paid payment some money is taken as.
#[derive(Clone, Copy)]
enum Taken {
    Refunded,
    Split,
}

/// Takes `amount` out of a paid payment as a refund or a split, in one conditional update: refunds and splits
/// together never pass what was paid. Refused with `{refund|split}_exceeds_payment`, or `not_paid`.
async fn take_from_payment(
    conn: &mut crate::db::Conn<'_>,
    payment: &SandboxPaymentRow,
    taken: Taken,
    amount: Fen,
) -> StoreResult<()> {
    let (column, exceeds) = match taken {
        Taken::Refunded => ("refunded", "refund_exceeds_payment"),
        Taken::Split => ("split", "split_exceeds_payment"),
    };
    let counted = conn
        .execute(
            sql(format!(
                "UPDATE sandbox_payments SET {column} = {column} + $2
                 WHERE id = $1 AND status = 'paid' AND refunded + split + $2 <= amount"
            ))
            .bind(&payment.id)
            .bind(amount.get()),
        )
        .await?;
    if counted != 1 {
        return Err(StoreError::Conflict(if payment.status == "paid" { exceeds } else { "not_paid" }));
    }
    Ok(())
}

async fn find(conn: &mut crate::db::Conn<'_>, id: &str) -> StoreResult<Option<SandboxPaymentRow>> {
    Ok(conn
        .fetch_optional(
            sql(format!("SELECT {PAYMENT_COLUMNS} FROM sandbox_payments WHERE out_trade_no = $1 OR id = $1")).bind(id),
        )
        .await?)
}

/// Records a notification the sandbox owes about `payment`.
async fn owe(
    conn: &mut crate::db::Conn<'_>,
    payment: &SandboxPaymentRow,
    notification: Option<&NewSandboxNotification>,
    now: Millis,
) -> StoreResult<()> {
    let Some(notification) = notification else { return Ok(()) };
    conn.execute(
        sql("INSERT INTO sandbox_notifications (id, payment_id, body, status, created_at, due_at)
                 VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&notification.id)
        .bind(&payment.id)
        .bind(&notification.body)
        .bind(notification.status)
        .bind(now.0)
        .bind(notification.due_at.0),
    )
    .await?;
    Ok(())
}
