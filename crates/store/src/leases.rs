//! Claiming the next due row of a worker's queue: its due time is pushed back, so that other instances (and the
//! next ticks) leave it alone while this one talks to a provider about it. Either by a fixed lease
//! ([`Store::claim_next`]: payments to check, refunds to attempt) or by the claim counting an attempt and backing
//! off by it ([`Store::claim_next_attempt`]: payouts, splits). On PostgreSQL the row is picked with
//! `FOR UPDATE SKIP LOCKED`: instances share the queue instead of waiting on each other.

use crate::db::{Backend, Conn, Row, sql};
use crate::{Store, StoreResult};
use tuangou_domain::time::Millis;

/// A worker's queue: the rows of `table` in state `status` whose `due` column is at or before now.
pub(crate) struct Queue {
    pub table: &'static str,
    pub columns: &'static str,
    pub status: &'static str,
    pub due: &'static str,
}

fn skip_locked(conn: &Conn<'_>) -> &'static str {
    match conn.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    }
}

/// A queue row as [`Store::claim_next_attempt`] needs it: its id and the attempts made so far.
pub(crate) trait Attempted {
    fn id(&self) -> &str;
    fn attempts(&self) -> i64;
}

impl Store {
    /// The next row of `queue` that is due at `now`, now due again only at `lease_until`.
    pub(crate) async fn claim_next<T: Row + 'static>(
        &self,
        queue: Queue,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Option<T>> {
        self.write((queue, now, lease_until), |mut conn, (queue, now, lease_until)| {
            Box::pin(async move {
                let lock = skip_locked(&conn);
                let Queue { table, columns, status, due } = queue;
                Ok(conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE {table} SET {due} = $2
                             WHERE id = (SELECT id FROM {table} WHERE status = '{status}' AND {due} <= $1
                                         ORDER BY {due}, id LIMIT 1{lock})
                             RETURNING {columns}"
                        ))
                        .bind(now.0)
                        .bind(lease_until.0),
                    )
                    .await?)
            })
        })
        .await
    }

    /// The next row of `queue` that is due at `now`, its attempt counted and made due again after
    /// `backoff(attempts)` milliseconds: it is asked again then unless it settles first.
    pub(crate) async fn claim_next_attempt<T: Row + Attempted + 'static>(
        &self,
        queue: Queue,
        now: Millis,
        backoff: fn(i64) -> i64,
    ) -> StoreResult<Option<T>> {
        self.write((queue, now, backoff), |mut conn, (queue, now, backoff)| {
            Box::pin(async move {
                let lock = skip_locked(&conn);
                let Queue { table, columns, status, due } = queue;
                let found: Option<T> = conn
                    .fetch_optional(
                        sql(format!(
                            "SELECT {columns} FROM {table} WHERE status = '{status}' AND {due} <= $1
                                 ORDER BY {due}, id LIMIT 1{lock}"
                        ))
                        .bind(now.0),
                    )
                    .await?;
                let Some(found) = found else { return Ok(None) };
                let attempts = found.attempts() + 1;
                Ok(conn
                    .fetch_optional(
                        sql(format!(
                            "UPDATE {table} SET attempts = $2, {due} = $3
                                 WHERE id = $1 AND status = '{status}' RETURNING {columns}"
                        ))
                        .bind(found.id())
                        .bind(attempts)
                        .bind(now.0 + backoff(attempts)),
                    )
                    .await?)
            })
        })
        .await
    }

    /// Notes what the provider said of a row of `table` still `requested`: its id there (in `provider_column`;
    /// `None`: it has none of ours) and the last error.
    pub(crate) async fn note_attempt(
        &self,
        table: &'static str,
        provider_column: &'static str,
        id: &str,
        provider_id: Option<&str>,
        error: Option<&str>,
    ) -> StoreResult<()> {
        self.write_statement(
            sql(format!(
                "UPDATE {table} SET {provider_column} = $2, last_error = $3 WHERE id = $1 AND status = 'requested'"
            ))
            .bind(id)
            .bind(provider_id.map(str::to_owned))
            .bind(error.map(str::to_owned)),
        )
        .await?;
        Ok(())
    }
}
