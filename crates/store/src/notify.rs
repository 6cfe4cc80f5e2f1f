//! Events between instances: PostgreSQL `NOTIFY` out, one `LISTEN` connection in (DESIGN.md, pitfall 4).
//!
//! Payloads are small (ids and counts, far below the 8,000-byte limit). Notifications are delivered at commit and
//! never replayed, so a listener that lost its connection says so ([`Heard::Reconnected`]) and its watchers refetch.
//! SQLite runs as one instance: there events stay in the process and nothing here is used.

use crate::db::{Pools, sql};
use crate::{Store, StoreResult};
use sqlx::postgres::PgListener;

/// The channel every instance listens on.
pub const CHANNEL: &str = "tuangou_events";

/// What a listener heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Payload(String),
    /// The connection dropped and was made again: notifications may have been missed meanwhile.
    Reconnected,
}

/// A `LISTEN` connection (PostgreSQL only).
pub struct EventListener {
    listener: PgListener,
}

impl EventListener {
    /// Waits for the next notification. After a lost connection it answers [`Heard::Reconnected`] once, then
    /// resumes listening (sqlx reconnects on the next call).
    pub async fn next(&mut self) -> StoreResult<Heard> {
        match self.listener.try_recv().await? {
            Some(notification) => Ok(Heard::Payload(notification.payload().to_owned())),
            None => Ok(Heard::Reconnected),
        }
    }
}

impl Store {
    /// Whether events must cross instances through the database.
    pub fn shares_events(&self) -> bool {
        matches!(self.pools, Pools::Postgres(_))
    }

    /// Sends each payload, in order, to every instance's listener (PostgreSQL) in one round trip; a no-op on
    /// SQLite or for none.
    pub async fn notify(&self, payloads: &[String]) -> StoreResult<()> {
        if payloads.is_empty() {
            return Ok(());
        }
        if let Pools::Postgres(_) = &self.pools {
            // One statement, one notification per payload: `SELECT pg_notify($1, $2), pg_notify($1, $3), …`.
            let calls = (0..payloads.len()).map(|i| format!("pg_notify($1, ${})", i + 2)).collect::<Vec<_>>();
            let mut q = sql(format!("SELECT {}", calls.join(", "))).bind(CHANNEL);
            for payload in payloads {
                q = q.bind(payload.as_str());
            }
            let mut pooled = self.pools.read().await?;
            pooled.conn().execute(q).await?;
        }
        Ok(())
    }

    /// A listener on the events channel; `None` on SQLite.
    pub async fn listen(&self) -> StoreResult<Option<EventListener>> {
        let Pools::Postgres(pool) = &self.pools else { return Ok(None) };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(EventListener { listener }))
    }
}
