//! Claiming the next due row of a worker's queue with a lease: one conditional update that pushes the row's due
//! time back to the lease's end, so that other instances (and the next ticks) leave it alone while this one talks
//! to a provider about it. On PostgreSQL the row is picked with `FOR UPDATE SKIP LOCKED`: instances share the
//! queue instead of waiting on each other.

use crate::db::{Backend, Row, sql};
use crate::{Store, StoreResult};
use tuangou_domain::time::Millis;

/// A worker's queue: the rows of `table` in state `status` whose `due` column is at or before now.
pub(crate) struct Queue {
    pub table: &'static str,
    pub columns: &'static str,
    pub status: &'static str,
    pub due: &'static str,
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
                let lock = match conn.backend() {
                    Backend::Postgres => " FOR UPDATE SKIP LOCKED",
                    Backend::Sqlite => "",
                };
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
}
