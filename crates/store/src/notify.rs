//! Events between instances: PostgreSQL `NOTIFY` out, one `LISTEN` connection in (DESIGN.md, pitfall 4).
//!
//! Payloads are small (ids and counts, far below the 8,000-byte limit). Notifications are delivered at commit and
//! never replayed, so a listener that lost its connection says so ([`Heard::Reconnected`]) and its watchers refetch.
//! SQLite runs as one instance: there events stay in the process and nothing here is used.
//!
//! Two channels: group events ([`CHANNEL`]), sent by the app after their units commit, and stale keys
//! ([`STALE_CHANNEL`]): a unit of work that changes a row instances keep a copy of (a session, a user's roles, a
//! live campaign) says so inside the unit ([`say_stale`]), so every instance hears it exactly when the change
//! commits, and never when it rolls back.

use crate::db::{Backend, Conn, Pools, sql};
use crate::{Store, StoreResult};
use sqlx::postgres::PgListener;

/// The channel every instance listens on for group events.
pub const CHANNEL: &str = "tuangou_events";

/// The channel every instance listens on for rows that changed under its caches.
pub const STALE_CHANNEL: &str = "tuangou_stale";

/// What a listener heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Payload(String),
    /// A row instances may keep a copy of changed.
    Stale(Stale),
    /// The connection dropped and was made again: notifications may have been missed meanwhile.
    Reconnected,
}

/// A row that instances may keep a copy of, changed by a committed unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// A session ended (signed out), by the SHA-256 of its token.
    Session(String),
    /// A user's account changed: closed (every session ended), made an operator, or given a role at a merchant.
    User(String),
    /// A campaign left `live`.
    Campaign(String),
}

impl Stale {
    fn payload(&self) -> String {
        match self {
            Stale::Session(token_hash) => format!("session:{token_hash}"),
            Stale::User(user) => format!("user:{user}"),
            Stale::Campaign(campaign) => format!("campaign:{campaign}"),
        }
    }

    fn parse(payload: &str) -> Option<Self> {
        let (kind, key) = payload.split_once(':')?;
        match kind {
            "session" => Some(Stale::Session(key.to_owned())),
            "user" => Some(Stale::User(key.to_owned())),
            "campaign" => Some(Stale::Campaign(key.to_owned())),
            _ => None,
        }
    }
}

/// Inside a unit of work: tells every instance, when the unit commits, that `stale` changed (PostgreSQL; SQLite
/// is one instance, whose app forgets its own copy).
pub(crate) async fn say_stale(conn: &mut Conn<'_>, stale: &Stale) -> StoreResult<()> {
    if conn.backend() == Backend::Postgres {
        conn.execute(sql("SELECT pg_notify($1, $2)").bind(STALE_CHANNEL).bind(stale.payload())).await?;
    }
    Ok(())
}

/// A `LISTEN` connection (PostgreSQL only).
pub struct EventListener {
    listener: PgListener,
}

impl EventListener {
    /// Waits for the next notification. After a lost connection it answers [`Heard::Reconnected`] once, then
    /// resumes listening (sqlx reconnects on the next call).
    pub async fn next(&mut self) -> StoreResult<Heard> {
        loop {
            let Some(notification) = self.listener.try_recv().await? else { return Ok(Heard::Reconnected) };
            if notification.channel() != STALE_CHANNEL {
                return Ok(Heard::Payload(notification.payload().to_owned()));
            }
            match Stale::parse(notification.payload()) {
                Some(stale) => return Ok(Heard::Stale(stale)),
                None => tracing::warn!(payload = notification.payload(), "ignoring a malformed stale key"),
            }
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

    /// A listener on both channels, listening when it is returned; `None` on SQLite.
    pub async fn listen(&self) -> StoreResult<Option<EventListener>> {
        let Pools::Postgres(pool) = &self.pools else { return Ok(None) };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen_all([CHANNEL, STALE_CHANNEL]).await?;
        Ok(Some(EventListener { listener }))
    }
}

#[cfg(test)]
mod tests {
    use super::Stale;

    #[test]
    fn a_stale_key_reads_back_as_it_was_sent() {
        for stale in [Stale::Session("ab12".into()), Stale::User("u1".into()), Stale::Campaign("c:1".into())] {
            assert_eq!(Stale::parse(&stale.payload()), Some(stale));
        }
        assert_eq!(Stale::parse("group:1"), None);
        assert_eq!(Stale::parse("user"), None);
    }
}
