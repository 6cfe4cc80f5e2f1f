//! Our payments (PAYMENTS.md): what we asked a provider for, and every verified notification about it.
//!
//! A payment's id is our `out_trade_no`. A notification is stored once, by the provider's event id, as
//! `received`; a worker applies it later and it becomes `applied`, exactly once: the worker claims the next one
//! inside the unit of work that applies it ([`Store::apply_next_payment_event`]), with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL so that instances share the work instead of queueing, and its state leaves `received` by a
//! conditional update.

use crate::db::{Conn, Sql, sql};
use crate::leases::Queue;
use crate::seats::{PaymentApplied, Released, confirm_in, release_in};
use crate::{Backend, CampaignRow, Store, StoreError, StoreResult, new_id};
use tuangou_domain::ids::UserId;
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: String,
    pub provider: String,
    pub user_id: String,
    pub membership_id: Option<String>,
    pub amount: i64,
    pub description: String,
    /// `created`, `paid`, `closed` or `refunded`.
    pub status: String,
    /// JSON for the client (a URL, a QR text, signed parameters), once the provider answered.
    pub client: Option<String>,
    pub provider_trade_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    pub closed_at: Option<i64>,
}
crate::sqlite_sql::from_values!(PaymentRow {
    id,
    provider,
    user_id,
    membership_id,
    amount,
    description,
    status,
    client,
    provider_trade_id,
    created_at,
    expires_at,
    paid_at,
    closed_at
});

pub(crate) const PAYMENT_COLUMNS: &str = "id, provider, user_id, membership_id, amount, description, status, client, \
     provider_trade_id, created_at, expires_at, paid_at, closed_at";

/// A payment to ask a provider for.
#[derive(Debug, Clone)]
pub struct NewPayment {
    /// Our `out_trade_no`: [`crate::new_id`], or one derived from what it pays for.
    pub id: String,
    pub provider: String,
    pub user: UserId,
    pub membership: Option<String>,
    pub amount: Fen,
    pub description: String,
    pub expires_at: Millis,
}

/// A notification as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentEventRow {
    pub id: String,
    pub provider: String,
    pub event_id: String,
    pub payment_id: String,
    /// `paid` or `closed`.
    pub kind: String,
    pub amount: Option<i64>,
    pub paid_at: Option<i64>,
    /// The body exactly as received (and verified).
    pub raw: String,
    /// `received` or `applied`.
    pub status: String,
    pub received_at: i64,
    pub applied_at: Option<i64>,
}
crate::sqlite_sql::from_values!(PaymentEventRow {
    id,
    provider,
    event_id,
    payment_id,
    kind,
    amount,
    paid_at,
    raw,
    status,
    received_at,
    applied_at
});

const EVENT_COLUMNS: &str =
    "id, provider, event_id, payment_id, kind, amount, paid_at, raw, status, received_at, applied_at";

/// A verified notification to store.
#[derive(Debug, Clone)]
pub struct NewPaymentEvent {
    pub provider: String,
    pub event_id: String,
    pub payment_id: String,
    /// `paid` or `closed`.
    pub kind: &'static str,
    pub amount: Option<Fen>,
    pub paid_at: Option<Millis>,
    pub raw: String,
}

/// What applying a notification did.
#[derive(Debug, Clone)]
pub enum EventApplied {
    /// A `paid` event: what the money did.
    Paid(PaymentApplied),
    /// A `closed` event: the seat released (`None` when the payment was no longer waiting).
    Closed(Option<Released>),
}

/// The statement that creates a payment (`created`, no client yet), for a unit of work that makes it with what it
/// pays for.
pub(crate) fn insert_payment_sql(payment: &NewPayment, now: Millis) -> Sql {
    sql(format!(
        "INSERT INTO payments (id, provider, user_id, membership_id, amount, description, status, created_at, expires_at,
             next_check_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'created', $7, $8, $9) RETURNING {PAYMENT_COLUMNS}"
    ))
    .bind(&payment.id)
    .bind(&payment.provider)
    .bind(payment.user.as_str())
    .bind(payment.membership.clone())
    .bind(payment.amount.get())
    .bind(&payment.description)
    .bind(now.0)
    .bind(payment.expires_at.0)
    // Asked about after a minute unpaid (a notification may be lost), and at the end of its window at the latest.
    .bind(now.plus_millis(CHECK_UNPAID_AFTER_MS).min(payment.expires_at).0)
}

/// How long a payment may stay unpaid before a worker asks the provider about it (PAYMENTS.md: past a minute).
pub const CHECK_UNPAID_AFTER_MS: i64 = 60_000;

impl Store {
    /// Creates a payment, `created` and without client parameters until the provider answered
    /// ([`Store::set_payment_client`]). `Conflict("payment_exists")` when the id is taken.
    pub async fn create_payment(&self, payment: &NewPayment, now: Millis) -> StoreResult<PaymentRow> {
        self.write_returning(insert_payment_sql(payment, now))
            .await
            .map_err(|error| error.unique_as("payment_exists"))?
            .ok_or(StoreError::NotFound)
    }

    /// Keeps what the provider answered to a created payment: the client's parameters (JSON) and its own id.
    pub async fn set_payment_client(
        &self,
        id: &str,
        provider_trade_id: Option<&str>,
        client: &str,
    ) -> StoreResult<PaymentRow> {
        self.write_returning(
            sql(format!(
                "UPDATE payments SET client = $2, provider_trade_id = COALESCE($3, provider_trade_id)
                     WHERE id = $1 RETURNING {PAYMENT_COLUMNS}"
            ))
            .bind(id)
            .bind(client)
            .bind(provider_trade_id),
        )
        .await?
        .ok_or(StoreError::NotFound)
    }

    pub async fn payment(&self, id: &str) -> StoreResult<Option<PaymentRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1")).bind(id);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// Stores a verified notification once: `(row, true)` when it is new, `(the row stored first, false)` when the
    /// provider sent this event before (nothing changes then).
    pub async fn record_payment_event(
        &self,
        event: &NewPaymentEvent,
        now: Millis,
    ) -> StoreResult<(PaymentEventRow, bool)> {
        self.write((event.clone(), now), |mut conn, (event, now)| {
            Box::pin(async move {
                let insert = sql(format!(
                    "INSERT INTO payment_events
                         (id, provider, event_id, payment_id, kind, amount, paid_at, raw, status, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'received', $9)
                     ON CONFLICT (provider, event_id) DO NOTHING RETURNING {EVENT_COLUMNS}"
                ))
                .bind(new_id())
                .bind(&event.provider)
                .bind(&event.event_id)
                .bind(&event.payment_id)
                .bind(event.kind)
                .bind(event.amount.map(Fen::get))
                .bind(event.paid_at.map(|at| at.0))
                .bind(&event.raw)
                .bind(now.0);
                let stored = Stored { table: "payment_events", columns: EVENT_COLUMNS };
                stored.insert_once(&mut conn, insert, &event.provider, &event.event_id).await
            })
        })
        .await
    }

    /// The notifications stored for a payment, in the order they arrived.
    pub async fn payment_events_of(&self, payment: &str) -> StoreResult<Vec<PaymentEventRow>> {
        let mut pooled = self.pools.read().await?;
        let q =
            sql(format!("SELECT {EVENT_COLUMNS} FROM payment_events WHERE payment_id = $1 ORDER BY id")).bind(payment);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Applies the oldest `received` notification, if any, in the unit that marks it `applied`: a `paid` one
    /// confirms its seat or refunds late money ([`Store::confirm_payment`]), a `closed` one releases the seat
    /// ([`Store::release_seat`]). Exactly once, whichever instance gets there first (see the module's docs).
    /// Answers the event, what it did and the payment as it left it.
    pub async fn apply_next_payment_event<F>(
        &self,
        now: Millis,
        draw_due: F,
    ) -> StoreResult<Option<(PaymentEventRow, EventApplied, PaymentRow)>>
    where
        F: Fn(&CampaignRow) -> StoreResult<Millis> + Send + Sync + 'static,
    {
        self.write((now, draw_due), |mut conn, (now, draw_due)| {
            Box::pin(async move {
                let stored = Stored { table: "payment_events", columns: EVENT_COLUMNS };
                let Some(event) = stored.claim_next::<PaymentEventRow>(&mut conn, *now).await? else {
                    return Ok(None);
                };
                let outcome = if event.kind == "paid" {
                    let payment = conn
                        .fetch_one::<PaymentRow>(
                            sql(format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"))
                                .bind(&event.payment_id),
                        )
                        .await?;
                    let amount = Fen::from_stored(event.amount.unwrap_or(payment.amount))
                        .ok_or_else(|| StoreError::Inconsistent("negative amount".into()))?;
                    let paid_at = Millis(event.paid_at.unwrap_or(now.0));
                    EventApplied::Paid(confirm_in(&mut conn, &event.payment_id, amount, paid_at, *now, draw_due).await?)
                } else {
                    EventApplied::Closed(release_in(&mut conn, &event.payment_id, *now).await?)
                };
                let payment = conn
                    .fetch_one::<PaymentRow>(
                        sql(format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1")).bind(&event.payment_id),
                    )
                    .await?;
                Ok(Some((event, outcome, payment)))
            })
        })
        .await
    }

    /// Claims the next payment not paid yet that is due to be asked about (unpaid past a minute, or its window
    /// over): it is not due again until `lease_until`, so instances and later ticks leave it alone meanwhile.
    pub async fn claim_payment_to_check(&self, now: Millis, lease_until: Millis) -> StoreResult<Option<PaymentRow>> {
        let queue = Queue { table: "payments", columns: PAYMENT_COLUMNS, status: "created", due: "next_check_at" };
        self.claim_next(queue, now, lease_until).await
    }

    /// A customer's payments through providers, newest first.
    pub async fn payments_of(&self, user: &UserId, limit: i64) -> StoreResult<Vec<PaymentRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(user.as_str())
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// The payment a membership's seat waits for (or waited for).
    pub async fn payment_of_membership(&self, membership: &str) -> StoreResult<Option<PaymentRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE membership_id = $1 ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(membership);
        Ok(pooled.conn().fetch_optional(q).await?)
    }
}

/// A table of stored notifications (`payment_events`, `refund_events`): unique by `(provider, event_id)`, each
/// `received` until a worker applies it.
pub(crate) struct Stored {
    pub table: &'static str,
    pub columns: &'static str,
}

impl Stored {
    /// Runs `insert` (`… ON CONFLICT (provider, event_id) DO NOTHING RETURNING …`): `(row, true)` when it is new,
    /// `(the row stored first, false)` when the provider sent this event before.
    pub(crate) async fn insert_once<T: crate::db::Row>(
        &self,
        conn: &mut Conn<'_>,
        insert: Sql,
        provider: &str,
        event_id: &str,
    ) -> StoreResult<(T, bool)> {
        if let Some(row) = conn.fetch_optional::<T>(insert).await? {
            return Ok((row, true));
        }
        let (table, columns) = (self.table, self.columns);
        let first = sql(format!("SELECT {columns} FROM {table} WHERE provider = $1 AND event_id = $2"))
            .bind(provider)
            .bind(event_id);
        Ok((conn.fetch_one::<T>(first).await?, false))
    }

    /// The oldest notification not applied yet, marked `applied` in this unit (locked for it on PostgreSQL, so
    /// other instances skip it; SQLite has one writer). `None` when there is none.
    pub(crate) async fn claim_next<T: crate::db::Row>(
        &self,
        conn: &mut Conn<'_>,
        now: Millis,
    ) -> StoreResult<Option<T>> {
        let lock = match conn.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let (table, columns) = (self.table, self.columns);
        let oldest: Option<(String,)> = conn
            .fetch_optional(sql(format!(
                "SELECT id FROM {table} WHERE status = 'received' ORDER BY received_at, id LIMIT 1{lock}"
            )))
            .await?;
        let Some((id,)) = oldest else { return Ok(None) };
        // The state leaves `received` by a conditional update: applied once, whoever looked at it too.
        Ok(conn
            .fetch_optional(
                sql(format!(
                    "UPDATE {table} SET status = 'applied', applied_at = $2
                         WHERE id = $1 AND status = 'received' RETURNING {columns}"
                ))
                .bind(id)
                .bind(now.0),
            )
            .await?)
    }
}
