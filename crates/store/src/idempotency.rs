//! Idempotency keys: the first answer per caller, endpoint and key.
//!
//! A write that moves money claims its key inside its own transaction, so the claim and the effect commit or
//! roll back together: a retry either finds the finished answer or runs as if first. On PostgreSQL a duplicate
//! that arrives while the first is running blocks on the key's unique index until the first commits — it
//! waits for it, as API.md asks.

use crate::db::{Sql, sql};
use crate::{Store, StoreResult};
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub caller: String,
    pub endpoint: String,
    pub key: String,
    /// SHA-256 of the request body: the same key with another body is refused.
    pub request_hash: String,
}

/// A key as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    /// The answer's status and body, once stored.
    pub status: Option<i64>,
    pub body: Option<String>,
    /// What the first request made (a membership id), to answer again if its answer was never stored.
    pub resource: Option<String>,
}
crate::sqlite_sql::from_values!(IdempotencyRecord { request_hash, status, body, resource });

/// Claims a key for the caller's transaction; fails with a unique violation when it is taken.
pub(crate) fn claim_sql(claim: &IdempotencyClaim, now: Millis) -> Sql {
    claim_with_resource_sql(claim, now, None)
}

/// [`claim_sql`] with what the request creates, for a statement that commits only if it creates it (its key's
/// row is new to the statement, so a later clause of it could not update the row).
pub(crate) fn claim_with_resource_sql(claim: &IdempotencyClaim, now: Millis, resource: Option<&str>) -> Sql {
    sql("INSERT INTO idempotency_keys (caller, endpoint, key, request_hash, created_at, resource)
         VALUES ($1, $2, $3, $4, $5, $6)")
    .bind(&claim.caller)
    .bind(&claim.endpoint)
    .bind(&claim.key)
    .bind(&claim.request_hash)
    .bind(now.0)
    .bind(resource.map(str::to_owned))
}

/// Records what the claimed key's request created; with `only_if`, only when that condition holds (a clause of a
/// larger PostgreSQL statement).
pub(crate) fn attach_resource_sql(claim: &IdempotencyClaim, resource: &str, only_if: Option<&str>) -> Sql {
    let condition = only_if.map(|c| format!(" AND {c}")).unwrap_or_default();
    sql(format!(
        "UPDATE idempotency_keys SET resource = $4 WHERE caller = $1 AND endpoint = $2 AND key = $3{condition}"
    ))
    .bind(&claim.caller)
    .bind(&claim.endpoint)
    .bind(&claim.key)
    .bind(resource)
}

impl Store {
    pub async fn idempotency_record(&self, claim: &IdempotencyClaim) -> StoreResult<Option<IdempotencyRecord>> {
        let mut pooled = self.pools.read().await?;
        Ok(pooled.conn().fetch_optional(record_query(claim)).await?)
    }

    /// The record of a key that another request claimed first, once that request's writes are durable: read
    /// in a unit of work, which is answered only after every unit before it has committed (on SQLite the
    /// claimant may still be in the writer's open batch; on PostgreSQL it has committed already).
    pub async fn idempotency_record_settled(&self, claim: &IdempotencyClaim) -> StoreResult<Option<IdempotencyRecord>> {
        self.write_returning(record_query(claim)).await
    }

    /// Stores the first answer: fills in a key the request claimed, or records a refusal (whose transaction
    /// rolled its claim back). An answer stored already is never replaced.
    pub async fn store_idempotent_answer(
        &self,
        claim: &IdempotencyClaim,
        status: u16,
        body: &str,
        now: Millis,
    ) -> StoreResult<()> {
        self.write_statement(
            sql("INSERT INTO idempotency_keys (caller, endpoint, key, request_hash, status, body, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (caller, endpoint, key) DO UPDATE SET status = excluded.status, body = excluded.body
                     WHERE idempotency_keys.status IS NULL AND idempotency_keys.request_hash = excluded.request_hash")
            .bind(&claim.caller)
            .bind(&claim.endpoint)
            .bind(&claim.key)
            .bind(&claim.request_hash)
            .bind(i64::from(status))
            .bind(body)
            .bind(now.0),
        )
        .await?;
        Ok(())
    }
}

fn record_query(claim: &IdempotencyClaim) -> crate::db::Sql {
    sql("SELECT request_hash, status, body, resource FROM idempotency_keys WHERE caller = $1 AND endpoint = $2 AND key = $3")
        .bind(&claim.caller)
        .bind(&claim.endpoint)
        .bind(&claim.key)
}
