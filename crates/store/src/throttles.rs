//! Throttle counters ("buckets"), shared by every instance on one database.
//!
//! A bucket counts claims in a window that opens at its first claim and closes `window_ms` later; it has room
//! while fewer than `limit` claims were made in the open window. Counting and claiming are one conditional upsert
//! ([`claim_in`]): requests in flight together, on one instance or many, cannot all see room and all pass, as
//! they could when a count was read first and a claim written after. PostgreSQL serialises the upserts of one key
//! on its row (a concurrent insert of the same key waits and then takes the update path); SQLite's one writer runs
//! them one after another. Claims of several buckets go in key order, so two units never wait for each other.
//!
//! Reading a bucket ([`Store::bucket_levels`]) writes nothing: a throttled client is refused on a read, so a flood
//! of refused requests costs no writes, and an answer that must not write (a preview that found its voucher) can
//! still be refused while its caller is throttled. Which buckets a request claims, and their limits, are the app's
//! decision; the store only keeps the counts.

use crate::db::{Conn, sql};
use crate::{Store, StoreError, StoreResult};
use tuangou_domain::time::Millis;

/// A counter of one throttle, as a claim names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// What is counted: a staff member at a merchant, a client address... (never a phone number in clear).
    pub key: String,
    /// Claims a window holds.
    pub limit: i64,
    /// How long a window stays open after its first claim.
    pub window_ms: i64,
}

/// A bucket as read: the claims in its open window (0 when none is open) and when that window closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub used: i64,
    pub closes_at: Millis,
}

/// A slot taken in a bucket's window, to give back with [`Store::release`] (a sign-in that succeeded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    key: String,
    closes_at: i64,
}

/// Whole seconds from `now` until `closes_at`, at least one: what `Retry-After` says.
fn seconds_until(closes_at: i64, now: Millis) -> u64 {
    let millis = (closes_at - now.0).max(1) as u64;
    millis.div_ceil(1_000)
}

/// Claims one slot in each of `buckets` at `now`, all or none: when one is full the unit must end (it answers
/// [`StoreError::Throttled`], which rolls the claims made so far back with the rest of the unit).
pub(crate) async fn claim_in(conn: &mut Conn<'_>, buckets: &[Bucket], now: Millis) -> StoreResult<Vec<Claimed>> {
    let mut in_order: Vec<&Bucket> = buckets.iter().collect();
    in_order.sort_by(|a, b| a.key.cmp(&b.key));
    let mut claimed = Vec::with_capacity(in_order.len());
    for bucket in in_order {
        let row: Option<(i64, i64)> = conn
            .fetch_optional(
                sql("INSERT INTO throttle_buckets (key, closes_at, used) VALUES ($1, $2, 1)
                     ON CONFLICT (key) DO UPDATE SET
                         used = CASE WHEN throttle_buckets.closes_at <= $3 THEN 1
                                     ELSE throttle_buckets.used + 1 END,
                         closes_at = CASE WHEN throttle_buckets.closes_at <= $3 THEN excluded.closes_at
                                          ELSE throttle_buckets.closes_at END
                     WHERE throttle_buckets.closes_at <= $3 OR throttle_buckets.used < $4
                     RETURNING closes_at, used")
                .bind(bucket.key.as_str())
                .bind(now.0.saturating_add(bucket.window_ms))
                .bind(now.0)
                .bind(bucket.limit),
            )
            .await?;
        match row {
            Some((closes_at, _)) => claimed.push(Claimed { key: bucket.key.clone(), closes_at }),
            None => {
                let (closes_at,): (i64,) = conn
                    .fetch_one(sql("SELECT closes_at FROM throttle_buckets WHERE key = $1").bind(bucket.key.as_str()))
                    .await?;
                return Err(StoreError::Throttled { retry_after_seconds: seconds_until(closes_at, now) });
            }
        }
    }
    Ok(claimed)
}

/// Gives `claims` back, each only to the window it was taken in (a window that closed meanwhile is left alone).
pub(crate) async fn release_in(conn: &mut Conn<'_>, claims: &[Claimed]) -> StoreResult<()> {
    let mut in_order: Vec<&Claimed> = claims.iter().collect();
    in_order.sort_by(|a, b| a.key.cmp(&b.key));
    for claim in in_order {
        conn.execute(
            sql("UPDATE throttle_buckets SET used = used - 1 WHERE key = $1 AND closes_at = $2 AND used > 0")
                .bind(claim.key.as_str())
                .bind(claim.closes_at),
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// The levels of `buckets` at `now`, in their order; one read. A bucket whose window has closed (or that was
    /// never claimed) is empty.
    pub async fn bucket_levels(&self, buckets: &[Bucket], now: Millis) -> StoreResult<Vec<Level>> {
        if buckets.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = (2..buckets.len() + 2).map(|n| format!("${n}")).collect();
        let mut q = sql(format!(
            "SELECT key, closes_at, used FROM throttle_buckets WHERE closes_at > $1 AND key IN ({})",
            keys.join(", ")
        ))
        .bind(now.0);
        for bucket in buckets {
            q = q.bind(bucket.key.as_str());
        }
        let mut pooled = self.pools.read().await?;
        let rows: Vec<(String, i64, i64)> = pooled.conn().fetch_all(q).await?;
        Ok(buckets
            .iter()
            .map(|bucket| {
                rows.iter().find(|(key, _, _)| *key == bucket.key).map_or(
                    Level { used: 0, closes_at: now },
                    |(_, closes_at, used)| Level { used: *used, closes_at: Millis(*closes_at) },
                )
            })
            .collect())
    }

    /// Claims a slot in each of `buckets`, all or none, as a unit of work of its own; [`StoreError::Throttled`]
    /// when one is full.
    pub async fn claim(&self, buckets: Vec<Bucket>, now: Millis) -> StoreResult<Vec<Claimed>> {
        self.write((buckets, now), |mut conn, (buckets, now)| {
            Box::pin(async move { claim_in(&mut conn, buckets, *now).await })
        })
        .await
    }

    /// Gives claims back, as a unit of work of its own.
    pub async fn release(&self, claims: Vec<Claimed>) -> StoreResult<()> {
        if claims.is_empty() {
            return Ok(());
        }
        self.write(claims, |mut conn, claims| Box::pin(async move { release_in(&mut conn, claims).await })).await
    }

    /// Forgets buckets whose window closed before `now`: they hold nothing any more. Returns how many.
    pub async fn prune_buckets(&self, now: Millis) -> StoreResult<u64> {
        self.write_statement(sql("DELETE FROM throttle_buckets WHERE closes_at <= $1").bind(now.0)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuangou_testkit::{Backend, TestDb};

    fn bucket(key: &str, limit: i64) -> Bucket {
        Bucket { key: key.into(), limit, window_ms: 60_000 }
    }

    /// 100 claims at once on a bucket of 10 (and a roomy second bucket): exactly 10 pass, and the second bucket
    /// counts only those (the refused ones rolled back whole). A release gives a slot back; the window's end
    /// empties the bucket.
    async fn claims_in_parallel_never_pass_the_limit(backend: Backend) {
        let db = TestDb::new(backend).await;
        let store = Store::open(&db.url, &crate::PoolSettings::default()).await.unwrap();
        let now = Millis(1_000_000);
        let claims = (0..100).map(|_| store.claim(vec![bucket("b:one", 10), bucket("a:roomy", 1_000)], now));
        let answers = futures::future::join_all(claims).await;
        let passed: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
        assert_eq!(passed.len(), 10);
        for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
            assert!(matches!(refused, StoreError::Throttled { retry_after_seconds: 60 }), "{refused:?}");
        }
        let levels = store.bucket_levels(&[bucket("b:one", 10), bucket("a:roomy", 1_000)], now).await.unwrap();
        assert_eq!(levels.iter().map(|l| l.used).collect::<Vec<_>>(), [10, 10]);
        let read = store.bucket_levels(&[bucket("b:one", 10)], Millis(now.0 + 30_500)).await.unwrap();
        assert_eq!(read, [Level { used: 10, closes_at: Millis(now.0 + 60_000) }]);

        store.release(passed[0].clone()).await.unwrap();
        store.claim(vec![bucket("b:one", 10)], now).await.unwrap();
        assert!(store.claim(vec![bucket("b:one", 10)], now).await.is_err(), "one slot came back, once");

        let later = Millis(now.0 + 60_000);
        assert_eq!(store.bucket_levels(&[bucket("b:one", 10)], later).await.unwrap()[0].used, 0);
        store.claim(vec![bucket("b:one", 10)], later).await.unwrap();
        // A release of the old window's claim leaves the new window alone.
        store.release(passed[1].clone()).await.unwrap();
        assert_eq!(store.bucket_levels(&[bucket("b:one", 10)], later).await.unwrap()[0].used, 1);
        assert_eq!(store.prune_buckets(later).await.unwrap(), 1, "the roomy bucket's window closed");
        store.close().await;
    }

    tuangou_testkit::on_both_backends!(claims_in_parallel_never_pass_the_limit);
}
