//! A customer's own record, and closing an account (SPEC.md, "Personal data").

use crate::db::sql;
use crate::{Store, StoreError, StoreResult};
use tuangou_domain::ids::UserId;
use tuangou_domain::ledger::Account;
use tuangou_domain::time::Millis;

/// Counts and sums of a customer's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct History {
    pub joined: i64,
    pub won: i64,
    pub lost: i64,
    pub expired: i64,
    /// Vouchers returned for a refund, and purchase vouchers refunded when they expired.
    pub refunded: i64,
    /// Fen of cash rewards received: cash rewards, and commission shares net of those taken back by an undo
    /// (the only `undo` entries that touch a customer's wallet).
    pub rewards_cash: i64,
    /// Points received in all (rewards and referral bonuses).
    pub points: i64,
}
crate::sqlite_sql::from_values!(History { joined, won, lost, expired, refunded, rewards_cash, points });

impl Store {
    pub async fn history(&self, user: &UserId) -> StoreResult<History> {
        let mut pooled = self.pools.read().await?;
        let mut conn = pooled.conn();
        let (joined, won, lost, expired): (i64, i64, i64, i64) = conn
            .fetch_one(
                sql("SELECT CAST(COUNT(*) AS BIGINT),
                        CAST(COALESCE(SUM(CASE WHEN status = 'won' THEN 1 ELSE 0 END), 0) AS BIGINT),
                        CAST(COALESCE(SUM(CASE WHEN status = 'lost' THEN 1 ELSE 0 END), 0) AS BIGINT),
                        CAST(COALESCE(SUM(CASE WHEN status = 'expired' THEN 1 ELSE 0 END), 0) AS BIGINT)
                     FROM memberships WHERE user_id = $1")
                .bind(user.as_str()),
            )
            .await?;
        let (refunded,): (i64,) = conn
            .fetch_one(
                sql("SELECT CAST(COUNT(*) AS BIGINT) FROM vouchers
                     WHERE user_id = $1 AND kind = 'purchase' AND status IN ('refunded', 'expired')")
                .bind(user.as_str()),
            )
            .await?;
        let (rewards_cash, points): (i64, i64) = conn
            .fetch_one(
                sql("SELECT
                       CAST(COALESCE(SUM(CASE WHEN p.unit = 'fen' THEN p.amount ELSE 0 END), 0) AS BIGINT),
                       CAST(COALESCE(SUM(CASE WHEN p.unit = 'points' THEN p.amount ELSE 0 END), 0) AS BIGINT)
                     FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id
                     WHERE p.account IN ($1, $2)
                       AND ((e.cause = 'reward' AND p.amount > 0) OR (e.cause = 'undo' AND p.unit = 'fen'))")
                .bind(Account::CustomerAvailable(user.clone()).key())
                .bind(Account::CustomerPoints(user.clone()).key()),
            )
            .await?;
        Ok(History { joined, won, lost, expired, refunded, rewards_cash, points })
    }

    /// Closes an account: phone and name erased, password unusable, sessions ended. Memberships, vouchers and the
    /// ledger stay, under the account's pseudonymous id. Refused (`money_held`, `withdrawal_pending`,
    /// `voucher_pending`, `balance_remaining`) while the customer has money in a group, a refund owed through a
    /// provider, a payment still open, a withdrawal on its way out, an unused purchase voucher, or money available
    /// — checked inside the transaction that closes it, so a join cannot slip in between.
    pub async fn close_account(&self, user: &UserId, now: Millis) -> StoreResult<()> {
        self.write((user.clone(), now), |mut conn, (user, now)| Box::pin(async move {
        // Lock the account row first: joins and refunds for this customer queue behind the closing.
        let open: Option<(String,)> = conn
            .fetch_optional(
                sql("UPDATE users SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL RETURNING id")
                    .bind(user.as_str())
                    .bind(now.0),
            )
            .await?;
        if open.is_none() {
            return Err(StoreError::NotFound);
        }
        let balance = |account: Account| {
            sql("SELECT COALESCE(MAX(balance), 0) FROM balances WHERE account = $1 AND unit = 'fen'")
                .bind(account.key())
        };
        let (held,): (i64,) = conn.fetch_one(balance(Account::CustomerHeld(user.clone()))).await?;
        // Money owed back through a provider, or a seat whose payment may still arrive, is money held too.
        let (owed,): (i64,) = conn.fetch_one(balance(Account::CustomerRefundPending(user.clone()))).await?;
        let (paying,): (i64,) = conn
            .fetch_one(
                sql("SELECT CAST(COUNT(*) AS BIGINT) FROM payments WHERE user_id = $1 AND status = 'created'")
                    .bind(user.as_str()),
            )
            .await?;
        if held > 0 || owed > 0 || paying > 0 {
            return Err(StoreError::Conflict("money_held"));
        }
        let (withdrawing,): (i64,) = conn.fetch_one(balance(Account::CustomerWithdrawalPending(user.clone()))).await?;
        if withdrawing > 0 {
            return Err(StoreError::Conflict("withdrawal_pending"));
        }
        let (pending,): (i64,) = conn
            .fetch_one(
                sql("SELECT CAST(COUNT(*) AS BIGINT) FROM vouchers WHERE user_id = $1 AND kind = 'purchase' AND status = 'issued'")
                    .bind(user.as_str()),
            )
            .await?;
        if pending > 0 {
            return Err(StoreError::Conflict("voucher_pending"));
        }
        let (available,): (i64,) = conn.fetch_one(balance(Account::CustomerAvailable(user.clone()))).await?;
        if available > 0 {
            return Err(StoreError::Conflict("balance_remaining"));
        }
        conn.execute(
            sql("UPDATE users SET phone = NULL, name = '', password_hash = '!' WHERE id = $1").bind(user.as_str()),
        )
        .await?;
        conn.execute(sql("DELETE FROM sessions WHERE user_id = $1").bind(user.as_str())).await?;
        crate::notify::say_stale(&mut conn, &crate::notify::Stale::User(user.as_str().to_owned())).await
        })).await
    }
}
