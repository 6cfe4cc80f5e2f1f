//! The store: everything tuangou keeps, behind one type named after what the app needs.
//!
//! [`Store`] is the interface; SQLite and PostgreSQL are its two backends, chosen once from the database URL
//! (`sqlite://…` or `postgres://…`; anything else is refused). Each use case that writes runs as one unit of
//! work here ([`unit_of_work`]): whole or not at all, whatever happens to the request that asked for it. The store holds no business rules beyond what constraints and
//! conditional updates enforce (a debit that would go below zero, a unique phone, a campaign that is no longer a
//! draft); the rules themselves live in `tuangou-domain`, the decisions in `tuangou-app`.
#![forbid(unsafe_code)]

mod campaigns;
mod check;
mod db;
mod groups;
mod idempotency;
mod join_queue;
mod leases;
mod ledger;
mod merchants;
mod notify;
mod payments;
mod payouts;
mod privacy;
mod reconciliations;
mod refunds;
mod sandbox;
mod seats;
mod shares;
mod sqlite_sql;
mod sqlite_writer;
mod stats;
mod throttles;
mod unit_of_work;
mod users;
mod views;
mod vouchers;

pub use campaigns::{CampaignFilter, CampaignRow, NearbyCampaignRow};
pub use check::Violation;
pub use db::{Backend, ConnectError, PoolSettings, postgres_statements_sent};
pub use groups::{Admission, DrawPlan, GroupRow, Inviters, MemberRow, NewGroup, PlanDraw, SeatPayment, Seated};
pub use idempotency::{IdempotencyClaim, IdempotencyRecord};
pub use ledger::{EntryRecord, PostingRecord};
pub use merchants::{MerchantRole, MerchantRow, NewMerchant, ShopRole};
pub use notify::{EventListener, Heard, Stale};
pub use payments::{CHECK_UNPAID_AFTER_MS, EventApplied, NewPayment, NewPaymentEvent, PaymentEventRow, PaymentRow};
pub use payouts::{NewPayout, PayoutRow, Settled, SplitCandidate, SplitRow};
pub use privacy::History;
pub use reconciliations::{BookedPayment, BookedRefund, DayClaim, NewReconciliation, ReconciliationRow};
pub use refunds::{MAX_ATTEMPTS, NewRefund, NewRefundEvent, RefundEventRow, RefundProgress, RefundRow, refund_id};
pub use sandbox::{
    NewSandboxNotification, NewSandboxPayment, SandboxChange, SandboxDay, SandboxNotificationRow, SandboxPaymentRow,
    SandboxRefundRow, SandboxTransferRow,
};
pub use seats::{PaymentApplied, Released};
pub use stats::{MerchantStats, StatsScope};
pub use throttles::{Bucket, Claimed, Level};
pub use users::{NewUser, UserRow};
pub use views::{DailyFigures, RecentRedemption, StaffRow};
pub use vouchers::{Attempt, AttemptRow, NewVoucher, RedemptionRow, VoucherRow};

use db::Pools;
use std::sync::Arc;

/// What can go wrong in the store, as the app needs to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or state rule refused the write; the text is a stable snake_case code.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A debit would take this account below zero.
    #[error("insufficient funds in {0}")]
    InsufficientFunds(String),
    /// Stored data breaks a rule it was checked against on the way in (a hand-edited database).
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
    /// A throttle's bucket is full: nothing was claimed; its window closes in this many seconds (429 `throttled`).
    #[error("throttled: retry in {retry_after_seconds} s")]
    Throttled { retry_after_seconds: u64 },
    /// Too many writes are waiting for SQLite's writer: try again shortly (503 `overloaded`).
    #[error("too many writes are waiting: try again shortly")]
    Overloaded,
    /// A fault of the store itself (its writer stopped, a unit of work panicked); nothing was written.
    #[error("internal store error: {0}")]
    Internal(String),
    /// Inside a unit of work on PostgreSQL: the unit met another transaction's write that its snapshot could not
    /// see, and must run again from the start to see it; if it still does after a few runs, the conflict `code`.
    #[error("run again ({0})")]
    RunAgain(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Whether a unit of work that failed with this should run again from the start (on PostgreSQL). It should
    /// when PostgreSQL broke a cycle of transactions waiting for each other's locks by rolling it back, whole
    /// (SQLSTATE 40P01): transactions take their locks in one global order, but a conditional update that waited
    /// for a row and then found it changed keeps that row locked to the end of its transaction (READ COMMITTED),
    /// so a joiner that went on to open a group can still meet an opener in a cycle. The victim changed nothing,
    /// so running it again is safe; its answer is as if it had come a moment later. And when it asked to.
    pub(crate) fn runs_again(&self) -> bool {
        match self {
            StoreError::RunAgain(_) => true,
            StoreError::Database(sqlx::Error::Database(db)) => db.code().as_deref() == Some("40P01"),
            _ => false,
        }
    }

    /// A unique-constraint violation as [`StoreError::Conflict`] with `code`; anything else as it is.
    pub(crate) fn unique_as(self, code: &'static str) -> Self {
        match self {
            StoreError::Database(error) => unique_violation_as(code)(error),
            other => other,
        }
    }

    /// The error to answer with once a unit will not run again.
    fn settled(self) -> Self {
        match self {
            StoreError::RunAgain(code) => StoreError::Conflict(code),
            other => other,
        }
    }
}

/// Turns a unique-constraint violation into a [`StoreError::Conflict`] with `code`; other errors pass through.
pub(crate) fn unique_violation_as(code: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(code),
        _ => StoreError::Database(error),
    }
}

/// A new id: a UUIDv7, whose text sorts by creation time (list cursors rely on it).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The handle the app holds. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pools: Pools,
    join_queues: Arc<join_queue::JoinQueues>,
    in_flight: Arc<unit_of_work::InFlight>,
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date (every command migrates first).
    pub async fn open(url: &str, settings: &PoolSettings) -> Result<Self, ConnectError> {
        let pools = Pools::connect(url, settings).await?;
        Ok(Self { pools, join_queues: Arc::new(join_queue::JoinQueues::new()), in_flight: Arc::default() })
    }

    pub fn backend(&self) -> Backend {
        self.pools.backend()
    }

    /// Whether the database answers and, on SQLite, its writer runs (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        if let Pools::Sqlite { writer, .. } = &self.pools
            && !writer.is_alive()
        {
            return Err(StoreError::Internal("the SQLite writer has stopped".into()));
        }
        let mut pooled = self.pools.read().await?;
        pooled.conn().execute(db::sql("SELECT 1")).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pools.close().await;
    }
}
