//! Accounts and sessions.

use crate::db::sql;
use crate::notify::{Stale, say_stale};
use crate::throttles::{Claimed, release_in};
use crate::{Store, StoreError, StoreResult, new_id};
use tuangou_domain::ids::{GroupId, UserId};
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub phone: Option<String>,
    pub name: String,
    pub password_hash: String,
    pub is_operator: i64,
    pub created_at: i64,
}
crate::sqlite_sql::from_values!(UserRow { id, phone, name, password_hash, is_operator, created_at });

impl UserRow {
    pub fn user_id(&self) -> UserId {
        UserId::from_trusted(&self.id)
    }
}

pub struct NewUser {
    pub phone: String,
    pub name: String,
    pub password_hash: String,
    pub is_operator: bool,
}

const USER_COLUMNS: &str = "id, phone, name, password_hash, is_operator, created_at";

impl Store {
    /// Creates an account; [`StoreError::Conflict`]`("phone_taken")` when the phone is registered already.
    pub async fn create_user(&self, user: NewUser, now: Millis) -> StoreResult<UserRow> {
        self.write_returning(
            sql(format!(
                "INSERT INTO users (id, phone, name, password_hash, is_operator, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
            ))
            .bind(new_id())
            .bind(user.phone)
            .bind(user.name)
            .bind(user.password_hash)
            .bind(i64::from(user.is_operator))
            .bind(now.0),
        )
        .await
        .map_err(|error| error.unique_as("phone_taken"))?
        .ok_or(StoreError::NotFound)
    }

    /// Makes the account with this phone an operator, creating it when missing. Idempotent: an existing account
    /// keeps its password and name.
    pub async fn ensure_operator(&self, user: NewUser, now: Millis) -> StoreResult<UserRow> {
        self.write((user, now), |mut conn, (user, now)| {
            Box::pin(async move {
                let updated: Option<UserRow> = conn
                    .fetch_optional(
                        sql(format!("UPDATE users SET is_operator = 1 WHERE phone = $1 RETURNING {USER_COLUMNS}"))
                            .bind(&user.phone),
                    )
                    .await?;
                let row = match updated {
                    Some(row) => row,
                    None => {
                        conn.fetch_one(
                            sql(format!(
                                "INSERT INTO users (id, phone, name, password_hash, is_operator, created_at)
                         VALUES ($1, $2, $3, $4, 1, $5) RETURNING {USER_COLUMNS}"
                            ))
                            .bind(new_id())
                            .bind(&user.phone)
                            .bind(&user.name)
                            .bind(&user.password_hash)
                            .bind(now.0),
                        )
                        .await?
                    }
                };
                say_stale(&mut conn, &Stale::User(row.id.clone())).await?;
                Ok(row)
            })
        })
        .await
    }

    pub async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<UserRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!("SELECT {USER_COLUMNS} FROM users WHERE phone = $1 AND closed_at IS NULL")).bind(phone);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    pub async fn user(&self, id: &UserId) -> StoreResult<Option<UserRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND closed_at IS NULL")).bind(id.as_str());
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// The display names of a group's members by seat (none for a closed account), in one read: the pages show a
    /// whole group's members by seat and masked name, and a group may hold a thousand.
    pub async fn member_names(&self, group: &GroupId) -> StoreResult<Vec<(i64, Option<String>)>> {
        let mut pooled = self.pools.read().await?;
        let q = sql("SELECT m.seq, u.name FROM memberships m \
                     LEFT JOIN users u ON u.id = m.user_id AND u.closed_at IS NULL \
                     WHERE m.group_id = $1 AND m.status <> 'unpaid' ORDER BY m.seq")
        .bind(group.as_str());
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// Stores a session by the hash of its token.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user: &UserId,
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        self.write_statement(
            sql("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(token_hash)
                .bind(user.as_str())
                .bind(now.0)
                .bind(expires_at.0),
        )
        .await?;
        Ok(())
    }

    /// Stores a session, and gives back the throttle slots its sign-in claimed (it did not fail): one unit.
    pub async fn create_session_releasing(
        &self,
        token_hash: &str,
        user: &UserId,
        now: Millis,
        expires_at: Millis,
        claims: Vec<Claimed>,
    ) -> StoreResult<()> {
        let session = (token_hash.to_owned(), user.clone(), now, expires_at, claims);
        self.write(session, |mut conn, (token_hash, user, now, expires_at, claims)| {
            Box::pin(async move {
                conn.execute(
                    sql("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                        .bind(token_hash.as_str())
                        .bind(user.as_str())
                        .bind(now.0)
                        .bind(expires_at.0),
                )
                .await?;
                release_in(&mut conn, claims).await
            })
        })
        .await
    }

    /// The signed-in user of an unexpired session of an open account.
    pub async fn session_user(&self, token_hash: &str, now: Millis) -> StoreResult<Option<UserRow>> {
        Ok(self.session_of(token_hash, now).await?.map(|(user, _)| user))
    }

    /// [`Store::session_user`], with when the session ends.
    pub async fn session_of(&self, token_hash: &str, now: Millis) -> StoreResult<Option<(UserRow, Millis)>> {
        #[derive(sqlx::FromRow)]
        struct Session {
            #[sqlx(flatten)]
            user: UserRow,
            expires_at: i64,
        }
        crate::sqlite_sql::from_values!(Session { expires_at } flatten { user });
        let mut pooled = self.pools.read().await?;
        let q = sql("SELECT u.id, u.phone, u.name, u.password_hash, u.is_operator, u.created_at, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.closed_at IS NULL")
        .bind(token_hash)
        .bind(now.0);
        let session: Option<Session> = pooled.conn().fetch_optional(q).await?;
        Ok(session.map(|s| (s.user, Millis(s.expires_at))))
    }

    /// Ends a session, and says so to every instance ([`Stale::Session`]).
    pub async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.write(token_hash.to_owned(), |mut conn, token_hash| {
            Box::pin(async move {
                conn.execute(sql("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash.as_str())).await?;
                say_stale(&mut conn, &Stale::Session(token_hash.clone())).await
            })
        })
        .await
    }

    /// Fails with [`StoreError::NotFound`] when no open account has this id.
    pub async fn require_user(&self, id: &UserId) -> StoreResult<UserRow> {
        self.user(id).await?.ok_or(StoreError::NotFound)
    }
}
