//! The two backends behind one small query surface.
//!
//! Each backend has its own typed sqlx pool (sqlx's `Any` driver is avoided on purpose: DESIGN.md, pitfall 1).
//! Store code builds a [`Sql`] once, with `$1`-style placeholders that both engines read, and runs it on a
//! [`Conn`]; rows decode into structs that derive `sqlx::FromRow` for both row types. The few statements that
//! differ between the engines branch on [`Conn::backend`] where they are written.

use crate::group_commit::{GroupCommit, Lent};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{
    AssertSqlSafe, Database, Encode, FromRow, PgConnection, PgPool, Postgres, SqliteConnection, SqlitePool,
    Transaction, Type,
};
use std::str::FromStr;
use std::time::Duration;

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A bound value. Only the types both engines store the same way.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I64(Option<i64>),
    F64(f64),
    Text(Option<String>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::I64(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::F64(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}

/// A statement and its arguments, in placeholder order.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

pub(crate) fn sql(text: impl Into<String>) -> Sql {
    Sql { text: text.into(), args: Vec::new() }
}

impl Sql {
    pub(crate) fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }
}

fn bind_all<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as Database>::Arguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    f64: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
{
    for arg in args {
        query = match arg {
            Arg::I64(v) => query.bind(v),
            Arg::F64(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
        };
    }
    query
}

/// Rows that decode from both engines.
pub(crate) trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

/// One connection of either engine, inside or outside a transaction.
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl Conn<'_> {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) async fn execute(&mut self, q: Sql) -> Result<u64, sqlx::Error> {
        let text = AssertSqlSafe(q.text);
        Ok(match self {
            Conn::Sqlite(c) => bind_all(sqlx::query(text), q.args).execute(&mut **c).await?.rows_affected(),
            Conn::Postgres(c) => bind_all(sqlx::query(text), q.args).execute(&mut **c).await?.rows_affected(),
        })
    }

    pub(crate) async fn fetch_all<T: Row>(&mut self, q: Sql) -> Result<Vec<T>, sqlx::Error> {
        let text = AssertSqlSafe(q.text);
        match self {
            Conn::Sqlite(c) => {
                let rows = bind_all(sqlx::query(text), q.args).fetch_all(&mut **c).await?;
                rows.iter().map(|r| T::from_row(r)).collect()
            }
            Conn::Postgres(c) => {
                let rows = bind_all(sqlx::query(text), q.args).fetch_all(&mut **c).await?;
                rows.iter().map(|r| T::from_row(r)).collect()
            }
        }
    }

    pub(crate) async fn fetch_optional<T: Row>(&mut self, q: Sql) -> Result<Option<T>, sqlx::Error> {
        let text = AssertSqlSafe(q.text);
        match self {
            Conn::Sqlite(c) => match bind_all(sqlx::query(text), q.args).fetch_optional(&mut **c).await? {
                Some(row) => T::from_row(&row).map(Some),
                None => Ok(None),
            },
            Conn::Postgres(c) => match bind_all(sqlx::query(text), q.args).fetch_optional(&mut **c).await? {
                Some(row) => T::from_row(&row).map(Some),
                None => Ok(None),
            },
        }
    }

    pub(crate) async fn fetch_one<T: Row>(&mut self, q: Sql) -> Result<T, sqlx::Error> {
        self.fetch_optional(q).await?.ok_or(sqlx::Error::RowNotFound)
    }
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls it back. On SQLite it is this request's part of
/// the writer's current batch ([`crate::group_commit`]): the same all-or-nothing, and `commit` returns once the
/// batch is on disk.
pub(crate) enum Tx {
    Sqlite(Lent),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(lent) => Conn::Sqlite(lent.connection()),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(lent) => lent.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// A pooled connection for reads outside a transaction.
pub(crate) enum Pooled {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<Postgres>),
}

impl Pooled {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(c) => Conn::Sqlite(c),
            Pooled::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// The pools. SQLite gets one writer connection, driven by the group-commit task (every batch is one
/// `BEGIN IMMEDIATE` transaction on it, so writers queue instead of failing with SQLITE_BUSY), and a few reader
/// connections (WAL lets them read while the writer writes). PostgreSQL gets one pool for both.
#[derive(Clone)]
pub(crate) enum Pools {
    Sqlite { writer: SqlitePool, commits: GroupCommit, readers: SqlitePool },
    Postgres(PgPool),
}

/// Errors from opening a database.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "unsupported database URL scheme {0:?}: use sqlite://PATH (the default is sqlite://tuangou.db) or postgres://…"
    )]
    UnsupportedScheme(String),
    #[error("cannot open the database: {0}")]
    Open(#[from] sqlx::Error),
    #[error("cannot bring the schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Tuning that differs by deployment.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// PostgreSQL connections per instance.
    pub postgres_connections: u32,
    /// SQLite reader connections (there is always exactly one writer).
    pub sqlite_readers: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { postgres_connections: 16, sqlite_readers: 4 }
    }
}

impl Pools {
    pub(crate) async fn connect(url: &str, settings: &PoolSettings) -> Result<Self, ConnectError> {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme {
            "sqlite" => {
                // Durability first: money moves here, so a commit survives a power cut (synchronous = FULL).
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
                let readers = SqlitePoolOptions::new()
                    .max_connections(settings.sqlite_readers.max(1))
                    .connect_with(options)
                    .await?;
                let commits = GroupCommit::start(writer.clone());
                Ok(Pools::Sqlite { writer, commits, readers })
            }
            "postgres" | "postgresql" => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(settings.postgres_connections.max(1))
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Ok(Pools::Postgres(pool))
            }
            other => Err(ConnectError::UnsupportedScheme(other.to_owned())),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn migrate(&self) -> Result<(), ConnectError> {
        match self {
            Pools::Sqlite { writer, .. } => sqlx::migrate!("migrations/sqlite").run(writer).await?,
            Pools::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Starts a write transaction: on SQLite a savepoint in the writer's batch, itself `BEGIN IMMEDIATE`, so the
    /// write lock is taken up front and a read-then-write never fails half way with SQLITE_BUSY (DESIGN.md,
    /// pitfall 2).
    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self {
            Pools::Sqlite { commits, .. } => Ok(Tx::Sqlite(commits.begin().await?)),
            Pools::Postgres(pool) => Ok(Tx::Postgres(pool.begin().await?)),
        }
    }

    pub(crate) async fn read(&self) -> Result<Pooled, sqlx::Error> {
        match self {
            Pools::Sqlite { readers, .. } => Ok(Pooled::Sqlite(readers.acquire().await?)),
            Pools::Postgres(pool) => Ok(Pooled::Postgres(pool.acquire().await?)),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Pools::Sqlite { writer, readers, .. } => {
                writer.close().await;
                readers.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }
}
