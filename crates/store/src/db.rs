//! The two backends behind one small query surface.
//!
//! Each backend has its own typed sqlx pool (sqlx's `Any` driver is avoided on purpose: DESIGN.md, pitfall 1).
//! Store code builds a [`Sql`] once, with `$1`-style placeholders that both engines read, and runs it on a
//! [`Conn`]; rows decode into structs that derive `sqlx::FromRow` for both row types. The few statements that
//! differ between the engines branch on [`Conn::backend`] where they are written.

use crate::group_commit::{GroupCommit, Lent};
use futures::StreamExt;
use sqlx::Either;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{
    AssertSqlSafe, Database, Encode, FromRow, PgConnection, PgPool, Postgres, SqliteConnection, SqlitePool,
    Transaction, Type,
};
use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

/// A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

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
    /// In a batch: how many rows this statement must change for the batch to go on ([`Conn::run`]).
    must_change: Option<u64>,
}

pub(crate) fn sql(text: impl Into<String>) -> Sql {
    Sql { text: text.into(), args: Vec::new(), must_change: None }
}

impl Sql {
    pub(crate) fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The statement with `text` appended (a `RETURNING` clause, say).
    pub(crate) fn followed_by(mut self, text: &str) -> Self {
        self.text.push_str(text);
        self
    }

    /// In a batch, the statement must change exactly `rows` rows, or the rest of the batch is pointless: on
    /// PostgreSQL it stops there; [`Ran::next_met`] reports it on both engines.
    pub(crate) fn must_change(mut self, rows: u64) -> Self {
        self.must_change = Some(rows);
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
    /// The second field is set on the SQLite writer's lent transaction: whether the request's savepoint is still
    /// owed ([`crate::group_commit`]). The first statement the request sends takes it, in the same call.
    Sqlite(&'a mut SqliteConnection, Option<&'a mut bool>),
    Postgres(&'a mut PgConnection),
}

impl Conn<'_> {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(..) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Whether the next statement must first take the request's savepoint.
    fn savepoint_owed(&self) -> bool {
        matches!(self, Conn::Sqlite(_, Some(owed)) if **owed)
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) async fn execute(&mut self, q: Sql) -> Result<u64, sqlx::Error> {
        if self.savepoint_owed() {
            return Ok(self.run(vec![q]).await.next()?.changed);
        }
        let text = AssertSqlSafe(q.text);
        Ok(match self {
            Conn::Sqlite(c, _) => bind_all(sqlx::query(text), q.args).execute(&mut **c).await?.rows_affected(),
            Conn::Postgres(c) => bind_all(sqlx::query(text), q.args).execute(&mut **c).await?.rows_affected(),
        })
    }

    pub(crate) async fn fetch_all<T: Row>(&mut self, q: Sql) -> Result<Vec<T>, sqlx::Error> {
        if self.savepoint_owed() {
            return self.run(vec![q]).await.next()?.rows();
        }
        let text = AssertSqlSafe(q.text);
        match self {
            Conn::Sqlite(c, _) => {
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
        if self.savepoint_owed() {
            return self.run(vec![q]).await.next()?.row();
        }
        let text = AssertSqlSafe(q.text);
        match self {
            Conn::Sqlite(c, _) => match bind_all(sqlx::query(text), q.args).fetch_optional(&mut **c).await? {
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

    /// Runs `statements` in order, as one batch (see [`Ran`]): on SQLite in one call to the connection's thread
    /// (one round trip where one a statement would cost each: the writer's time is mostly those round trips), on
    /// PostgreSQL one after another. The batch stops at the first statement that fails; on PostgreSQL also after
    /// the first whose [`Sql::must_change`] is not met (SQLite has run the rest by then; the caller's transaction
    /// undoes them when it refuses).
    ///
    /// sqlx's SQLite driver runs every statement of a text it is given, binding `$n` to the n-th argument of the
    /// whole text; sqlx calls that behaviour deprecated, so `db::tests` pins it (a change would fail them).
    pub(crate) async fn run(&mut self, statements: Vec<Sql>) -> Ran {
        let mut ran = Ran { done: VecDeque::new(), error: None };
        match self {
            Conn::Sqlite(c, savepoint) => {
                let mut expected = statements.iter().map(|s| s.must_change).collect::<Vec<_>>().into_iter();
                // The owed savepoint goes first, in the same call; it is taken once its own result arrives.
                let mut owed = savepoint.as_deref_mut().filter(|owed| **owed);
                let (text, args) = match owed {
                    Some(_) => one_text(
                        &[sql(crate::group_commit::SAVEPOINT)].into_iter().chain(statements).collect::<Vec<_>>(),
                    ),
                    None => one_text(&statements),
                };
                let query = bind_all(sqlx::query(AssertSqlSafe(text)), args);
                let mut results = sqlx::Executor::fetch_many(&mut **c, query);
                let mut rows = Vec::new();
                while let Some(result) = results.next().await {
                    match result {
                        Ok(Either::Right(row)) => rows.push(row),
                        Ok(Either::Left(_)) if owed.is_some() => {
                            if let Some(owed) = owed.take() {
                                *owed = false;
                            }
                        }
                        Ok(Either::Left(done)) => {
                            let rows = Rows::Sqlite(std::mem::take(&mut rows));
                            let must_change = expected.next().flatten();
                            ran.done.push_back((must_change, Done { rows, changed: done.rows_affected() }));
                        }
                        Err(error) => {
                            ran.error = Some(error);
                            break;
                        }
                    }
                }
            }
            Conn::Postgres(c) => {
                for statement in statements {
                    let query = bind_all(sqlx::query(AssertSqlSafe(statement.text)), statement.args);
                    let mut results = sqlx::Executor::fetch_many(&mut **c, query);
                    let (mut rows, mut changed) = (Vec::new(), 0);
                    let mut failed = None;
                    while let Some(result) = results.next().await {
                        match result {
                            Ok(Either::Right(row)) => rows.push(row),
                            Ok(Either::Left(done)) => changed += done.rows_affected(),
                            Err(error) => {
                                failed = Some(error);
                                break;
                            }
                        }
                    }
                    drop(results);
                    if let Some(error) = failed {
                        ran.error = Some(error);
                        break;
                    }
                    ran.done.push_back((statement.must_change, Done { rows: Rows::Postgres(rows), changed }));
                    if statement.must_change.is_some_and(|n| n != changed) {
                        break;
                    }
                }
            }
        }
        ran
    }
}

/// The statements of a batch as one SQLite text: each statement's `$n` becomes `$(n + the arguments before it)`,
/// since SQLite binds `$n` to the n-th argument of the whole text.
fn one_text(statements: &[Sql]) -> (String, Vec<Arg>) {
    let mut text = String::new();
    let mut args = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        if i > 0 {
            text.push_str(";\n");
        }
        push_shifted(&mut text, &statement.text, args.len());
        args.extend(statement.args.iter().cloned());
    }
    (text, args)
}

/// Appends `statement` to `text` with every `$n` made `$(n + offset)`.
fn push_shifted(text: &mut String, statement: &str, offset: usize) {
    let mut chars = statement.chars().peekable();
    while let Some(c) = chars.next() {
        text.push(c);
        if c != '$' || offset == 0 {
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            digits.push(d);
        }
        match digits.parse::<usize>() {
            Ok(n) => text.push_str(&(n + offset).to_string()),
            Err(_) => text.push_str(&digits),
        }
    }
}

impl Sql {
    /// PostgreSQL: every statement but the last as a data-modifying `WITH` clause of the last, so all run in one
    /// statement (one round trip); the last one's rows and `must_change` are the chain's. Only for statements that
    /// do not read each other's rows (they all see the same snapshot).
    pub(crate) fn chain(mut statements: Vec<Sql>) -> Option<Sql> {
        let last = statements.pop()?;
        let named = statements.into_iter().enumerate().map(|(i, s)| (format!("s{i}"), s)).collect();
        Some(Sql::with(named, last))
    }

    /// PostgreSQL: `ctes` as the named `WITH` clauses of `main`, in one statement. A clause reads another's
    /// `RETURNING` rows by its name (never its table's new rows: all see the statement's snapshot); a
    /// data-modifying clause runs to completion whether or not anything reads it, and runs once something does.
    pub(crate) fn with(ctes: Vec<(String, Sql)>, main: Sql) -> Sql {
        if ctes.is_empty() {
            return main;
        }
        let (mut text, mut args) = (String::from("WITH "), Vec::new());
        for (i, (name, statement)) in ctes.into_iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            text.push_str(&format!("{name} AS ("));
            push_shifted(&mut text, &statement.text, args.len());
            text.push(')');
            args.extend(statement.args);
        }
        text.push(' ');
        push_shifted(&mut text, &main.text, args.len());
        args.extend(main.args);
        Sql { text, args, must_change: main.must_change }
    }
}

/// Rows a statement of a batch returned, of either engine.
enum Rows {
    Sqlite(Vec<SqliteRow>),
    Postgres(Vec<PgRow>),
}

/// What one statement of a batch did.
pub(crate) struct Done {
    rows: Rows,
    /// Rows inserted, updated or deleted (meaningless for a `SELECT` on SQLite, which reports the last change).
    changed: u64,
}

impl Done {
    pub(crate) fn rows<T: Row>(&self) -> Result<Vec<T>, sqlx::Error> {
        match &self.rows {
            Rows::Sqlite(rows) => rows.iter().map(|r| T::from_row(r)).collect(),
            Rows::Postgres(rows) => rows.iter().map(|r| T::from_row(r)).collect(),
        }
    }

    pub(crate) fn row<T: Row>(&self) -> Result<Option<T>, sqlx::Error> {
        Ok(self.rows::<T>()?.into_iter().next())
    }
}

/// What a batch did, statement by statement, read in order with [`Ran::next`].
pub(crate) struct Ran {
    /// Each statement that ran, with its [`Sql::must_change`].
    done: VecDeque<(Option<u64>, Done)>,
    error: Option<sqlx::Error>,
}

impl Ran {
    /// The next statement's result; the error that stopped the batch when it stopped at this statement.
    pub(crate) fn next(&mut self) -> Result<Done, sqlx::Error> {
        match self.done.pop_front() {
            Some((_, done)) => Ok(done),
            None => Err(self.error.take().unwrap_or_else(|| sqlx::Error::Protocol("the batch stopped earlier".into()))),
        }
    }

    /// The next statement's result when it changed as many rows as its [`Sql::must_change`] says; `None` when
    /// it changed another number.
    pub(crate) fn next_met(&mut self) -> Result<Option<Done>, sqlx::Error> {
        let expected = self.done.front().and_then(|(expected, _)| *expected);
        let done = self.next()?;
        Ok(expected.is_none_or(|n| n == done.changed).then_some(done))
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
            Tx::Sqlite(lent) => lent.conn(),
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
            Pooled::Sqlite(c) => Conn::Sqlite(c, None),
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
                    .busy_timeout(Duration::from_secs(10))
                    // Savepoint journals stay in memory: a batch nests one savepoint per request (group_commit.rs),
                    // and a journal spilled to a temporary file costs a file write per page.
                    .pragma("temp_store", "memory");
                let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
                // An in-process connection does not break while idle: no ping (a hop to its thread) per read.
                let readers = SqlitePoolOptions::new()
                    .max_connections(settings.sqlite_readers.max(1))
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                let commits = GroupCommit::start(writer.clone());
                Ok(Pools::Sqlite { writer, commits, readers })
            }
            "postgres" | "postgresql" => {
                let options = PgConnectOptions::from_str(url)?;
                // A busy pool hands out connections that were idle for microseconds; pinging each first (sqlx's
                // default) cost a round trip per use, several per join. Only a connection idle long enough to
                // have been dropped by a server restart or a network hiccup is pinged.
                let pool = PgPoolOptions::new()
                    .max_connections(settings.postgres_connections.max(1))
                    .acquire_timeout(Duration::from_secs(10))
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for > PING_WHEN_IDLE_FOR {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn a_batch_numbers_each_statements_placeholders_after_the_ones_before() {
        let (text, args) = one_text(&[
            sql("INSERT INTO t VALUES ($1, $2)").bind(1).bind("a"),
            sql("UPDATE t SET n = $2 WHERE id = $1 AND $1 > 0").bind(1).bind(9),
            sql("SELECT $1, $10").bind(2).bind(3),
        ]);
        assert_eq!(
            text,
            "INSERT INTO t VALUES ($1, $2);\nUPDATE t SET n = $4 WHERE id = $3 AND $3 > 0;\nSELECT $5, $14"
        );
        assert_eq!(args.len(), 6);
        let all = Sql::chain(vec![
            sql("INSERT INTO a VALUES ($1)").bind(1),
            sql("INSERT INTO b VALUES ($1, $2)").bind(2).bind(3),
            sql("INSERT INTO c VALUES ($1)").bind(4).must_change(1),
        ])
        .unwrap();
        assert_eq!(
            all.text,
            "WITH s0 AS (INSERT INTO a VALUES ($1)), s1 AS (INSERT INTO b VALUES ($2, $3)) INSERT INTO c VALUES ($4)"
        );
        assert_eq!((all.args.len(), all.must_change), (4, Some(1)));
        assert!(Sql::chain(Vec::new()).is_none());
    }

    /// A fresh database with a scratch table, and a write transaction on it (kept with its database and store).
    async fn scratch(backend: tuangou_testkit::Backend) -> (tuangou_testkit::TestDb, Store, Tx) {
        let db = tuangou_testkit::TestDb::new(backend).await;
        let store = Store::open(&db.url, &crate::PoolSettings::default()).await.unwrap();
        let mut tx = store.pools.begin().await.unwrap();
        let created = tx
            .conn()
            .run(vec![
                sql("CREATE TEMPORARY TABLE batch_t (id BIGINT PRIMARY KEY, n BIGINT NOT NULL, label TEXT)"),
                sql("INSERT INTO batch_t (id, n, label) VALUES (1, 10, 'one'), (2, 20, 'two')"),
            ])
            .await
            .next();
        assert!(created.is_ok(), "{:?}", created.err());
        (db, store, tx)
    }

    /// A batch answers statement by statement: rows, changes, and each statement's own arguments.
    async fn a_batch_reads_back_each_statement(backend: tuangou_testkit::Backend) {
        let (_db, store, mut tx) = scratch(backend).await;
        let mut ran = tx
            .conn()
            .run(vec![
                sql("UPDATE batch_t SET n = n + $1 WHERE id = $2 RETURNING n").bind(5).bind(1).must_change(1),
                sql("INSERT INTO batch_t (id, n, label) VALUES ($1, $2, $3)").bind(3).bind(30).bind("three"),
                sql("SELECT label FROM batch_t WHERE n > $1 ORDER BY id").bind(14),
                sql("UPDATE batch_t SET n = 0 WHERE id > $1").bind(1),
            ])
            .await;
        let bumped = ran.next_met().unwrap().expect("one row changed");
        assert_eq!(bumped.row::<(i64,)>().unwrap(), Some((15,)));
        assert_eq!(ran.next().unwrap().changed, 1);
        let labels: Vec<(String,)> = ran.next().unwrap().rows().unwrap();
        assert_eq!(labels, [("one".to_owned(),), ("two".to_owned(),), ("three".to_owned(),)]);
        assert_eq!(ran.next().unwrap().changed, 2);
        assert!(ran.next().is_err(), "nothing after the last statement");
        drop(tx);
        store.close().await;
    }

    /// A batch stops at a failing statement and says so at that statement; an unmet `must_change` is reported,
    /// and on PostgreSQL nothing after it runs.
    async fn a_batch_stops_where_it_fails(backend: tuangou_testkit::Backend) {
        let (_db, store, mut tx) = scratch(backend).await;
        let mut ran = tx
            .conn()
            .run(vec![
                sql("UPDATE batch_t SET n = n + 1 WHERE id = 99").must_change(1),
                sql("UPDATE batch_t SET label = 'after' WHERE id = 1"),
            ])
            .await;
        assert!(ran.next_met().unwrap().is_none(), "no row changed where one had to");
        drop(ran);
        let label: (Option<String>,) =
            tx.conn().fetch_one(sql("SELECT label FROM batch_t WHERE id = 1")).await.unwrap();
        match backend {
            tuangou_testkit::Backend::Postgres => assert_eq!(label.0.as_deref(), Some("one"), "stopped there"),
            tuangou_testkit::Backend::Sqlite => assert_eq!(label.0.as_deref(), Some("after"), "one call ran all"),
        }

        let mut ran = tx
            .conn()
            .run(vec![
                sql("UPDATE batch_t SET n = n + 1 WHERE id = 1"),
                sql("INSERT INTO batch_t (id, n) VALUES (2, 0)"),
                sql("UPDATE batch_t SET n = n + 100 WHERE id = 1"),
            ])
            .await;
        assert!(ran.next().is_ok());
        let duplicate = ran.next().err().expect("the primary key refuses");
        assert!(matches!(&duplicate, sqlx::Error::Database(db) if db.is_unique_violation()), "{duplicate:?}");
        assert!(ran.next().is_err(), "the statement after the failure did not run");
        drop(ran);
        // PostgreSQL aborts the whole transaction at the failure; SQLite keeps it, so look there.
        if backend == tuangou_testkit::Backend::Sqlite {
            let n: (i64,) = tx.conn().fetch_one(sql("SELECT n FROM batch_t WHERE id = 1")).await.unwrap();
            assert_eq!(n.0, 11, "the first statement ran, the third did not");
        }
        drop(tx);
        store.close().await;
    }

    tuangou_testkit::on_both_backends!(a_batch_reads_back_each_statement, a_batch_stops_where_it_fails);
}
