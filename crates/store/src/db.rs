//! The two backends behind one small query surface.
//!
//! PostgreSQL runs through a typed sqlx pool, SQLite through rusqlite (the C library: one writer thread,
//! `sqlite_writer.rs`, and readers on the calling thread, `sqlite_sql.rs`); sqlx's `Any` driver is avoided on
//! purpose (DESIGN.md, pitfall 1). Store code builds a [`Sql`] once, with `$1`-style placeholders that both engines
//! read, and runs it on a [`Conn`]; rows decode into structs that derive `sqlx::FromRow` (PostgreSQL) and
//! implement [`FromValues`] (SQLite). The few statements that differ between the engines branch on
//! [`Conn::backend`] where they are written.
//!
//! Writes go through units of work ([`crate::Store::write`]); this module has no transactions of its own.

use crate::sqlite_sql::{self, FromValues, Reader, Readers, ValueRow};
use crate::sqlite_writer::Writer;
use futures::StreamExt;
use sqlx::Either;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Database, Encode, FromRow, PgConnection, PgPool, Postgres, Type};
use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// Statements this process has sent to PostgreSQL, `BEGIN` and `COMMIT` included: each one is a round trip. A
/// process-wide count (every store of the process adds to it), read by the benchmark for its statements per join.
static POSTGRES_STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// How many statements this process has sent to PostgreSQL so far (see [`POSTGRES_STATEMENTS`]).
pub fn postgres_statements_sent() -> u64 {
    POSTGRES_STATEMENTS.load(Ordering::Relaxed)
}

/// Counts `n` statements sent to PostgreSQL.
pub(crate) fn count_postgres_statements(n: u64) {
    POSTGRES_STATEMENTS.fetch_add(n, Ordering::Relaxed);
}

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

    /// How many arguments are bound so far (the next placeholder is one more).
    pub(crate) fn arg_count(&self) -> usize {
        self.args.len()
    }

    pub(crate) fn into_parts(self) -> (String, Vec<Arg>) {
        (self.text, self.args)
    }

    /// The statement with `text` appended (a `RETURNING` clause, say).
    pub(crate) fn followed_by(mut self, text: &str) -> Self {
        self.text.push_str(text);
        self
    }

    /// In a batch, the statement must change exactly `rows` rows, or the rest of the batch is pointless: the
    /// batch stops there, and [`Ran::next_met`] reports it.
    pub(crate) fn must_change(mut self, rows: u64) -> Self {
        self.must_change = Some(rows);
        self
    }
}

/// PostgreSQL, for a statement that is its own transaction ([`crate::Store::write_in_one_statement`]): an
/// expression that fails the whole statement with the first refusal whose condition holds (SQL over the
/// statement's clauses, evaluated in order), else is 0. Migration 0012's `refuse` raises SQLSTATE [`REFUSED`].
pub(crate) fn refuse_when(refusals: &[(&str, &'static str)]) -> String {
    let cases: String =
        refusals.iter().map(|(condition, code)| format!(" WHEN {condition} THEN refuse('{code}')")).collect();
    format!("CASE{cases} ELSE 0 END")
}

/// The SQLSTATE of a statement that refused itself ([`refuse_when`]).
const REFUSED: &str = "TG001";

/// The code a statement refused itself with ([`refuse_when`]), if that is how it failed.
pub(crate) fn refusal_of(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(REFUSED) => Some(db.message().to_owned()),
        _ => None,
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

/// Rows that decode from both engines' connections: PostgreSQL's through sqlx, SQLite's through rusqlite.
pub(crate) trait Row: for<'r> FromRow<'r, PgRow> + FromValues + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, PgRow> + FromValues + Send + Unpin {}

/// One connection: SQLite's (the writer inside a unit of work, or a reader) or PostgreSQL's (inside a unit of
/// work's transaction, or a pooled one for reads).
pub(crate) enum Conn<'a> {
    /// A SQLite connection through rusqlite: the writer inside a unit's savepoint ([`crate::sqlite_writer`]), or
    /// a reader. Its calls are synchronous: a future on it never waits.
    Sqlite(&'a mut rusqlite::Connection),
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
        Ok(self.one(q).await?.changed)
    }

    pub(crate) async fn fetch_all<T: Row>(&mut self, q: Sql) -> Result<Vec<T>, sqlx::Error> {
        self.one(q).await?.rows()
    }

    pub(crate) async fn fetch_optional<T: Row>(&mut self, q: Sql) -> Result<Option<T>, sqlx::Error> {
        self.one(q).await?.row()
    }

    pub(crate) async fn fetch_one<T: Row>(&mut self, q: Sql) -> Result<T, sqlx::Error> {
        self.fetch_optional(q).await?.ok_or(sqlx::Error::RowNotFound)
    }

    /// Runs `statements` in order, as one batch (see [`Ran`]), one after another: it stops at the first that
    /// fails and after the first whose [`Sql::must_change`] is not met, the same on every engine, so a refused
    /// step ends the batch with the same meaning everywhere. (On SQLite's writer the statements are calls into
    /// the C library in this thread: a batch costs no round trips.)
    pub(crate) async fn run(&mut self, statements: Vec<Sql>) -> Ran {
        let mut ran = Ran { done: VecDeque::new(), error: None };
        for statement in statements {
            let must_change = statement.must_change;
            match self.one(statement).await {
                Ok(done) => {
                    let unmet = must_change.is_some_and(|n| n != done.changed);
                    ran.done.push_back((must_change, done));
                    if unmet {
                        break;
                    }
                }
                Err(error) => {
                    ran.error = Some(error);
                    break;
                }
            }
        }
        ran
    }

    /// Runs one statement.
    async fn one(&mut self, statement: Sql) -> Result<Done, sqlx::Error> {
        let query = |s: Sql| {
            let (text, args) = s.into_parts();
            (AssertSqlSafe(text), args)
        };
        match self {
            Conn::Sqlite(c) => {
                let executed = sqlite_sql::execute(c, statement)?;
                Ok(Done { rows: Rows::Sqlite(executed.rows), changed: executed.changed })
            }
            Conn::Postgres(c) => {
                count_postgres_statements(1);
                let (text, args) = query(statement);
                let (rows, changed) =
                    collect(sqlx::Executor::fetch_many(&mut **c, bind_all(sqlx::query(text), args))).await?;
                Ok(Done { rows: Rows::Postgres(rows), changed })
            }
        }
    }
}

/// A statement's rows and how many rows it changed, read from sqlx's stream of results.
async fn collect(
    mut results: futures::stream::BoxStream<'_, Result<Either<sqlx::postgres::PgQueryResult, PgRow>, sqlx::Error>>,
) -> Result<(Vec<PgRow>, u64), sqlx::Error> {
    let (mut rows, mut changed) = (Vec::new(), 0);
    while let Some(result) = results.next().await {
        match result? {
            Either::Right(row) => rows.push(row),
            Either::Left(done) => changed += done.rows_affected(),
        }
    }
    Ok((rows, changed))
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
    Sqlite(Vec<ValueRow>),
    Postgres(Vec<PgRow>),
}

/// What one statement of a batch did.
pub(crate) struct Done {
    rows: Rows,
    /// Rows inserted, updated or deleted.
    changed: u64,
}

impl Done {
    pub(crate) fn rows<T: Row>(&self) -> Result<Vec<T>, sqlx::Error> {
        match &self.rows {
            Rows::Sqlite(rows) => rows.iter().map(T::from_values).collect(),
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

/// A pooled connection for reads outside a transaction.
pub(crate) enum Pooled {
    Sqlite(Reader),
    Postgres(sqlx::pool::PoolConnection<Postgres>),
}

impl Pooled {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(reader) => Conn::Sqlite(reader.connection()),
            Pooled::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// The pools. SQLite gets one writer connection, owned by the writer thread ([`crate::sqlite_writer`]: every
/// batch is one `BEGIN IMMEDIATE` transaction on it, so writers queue instead of failing with SQLITE_BUSY), and a
/// few reader connections (WAL lets them read while the writer writes). PostgreSQL gets one pool for both.
#[derive(Clone)]
pub(crate) enum Pools {
    Sqlite { writer: Writer, readers: Arc<Readers> },
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
    /// SQLite reader connections kept open between reads (more are opened while more read at once; there is
    /// always exactly one writer).
    pub sqlite_readers: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { postgres_connections: 16, sqlite_readers: 4 }
    }
}

impl Pools {
    /// Opens the database at `url` and brings its schema up to date.
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
                // The schema first, on a connection of its own, before the writer thread takes the database.
                // Foreign keys off while migrating: a table rebuild (SQLite's way to change a CHECK) drops a
                // table others refer to, and the migration's own copy keeps every reference whole.
                let migrator = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone().foreign_keys(false))
                    .await?;
                sqlx::migrate!("migrations/sqlite").run(&migrator).await?;
                migrator.close().await;
                let path = options.get_filename().to_string_lossy().into_owned();
                let connection = sqlite_sql::open_writer(&path)?;
                let writer = Writer::start(connection).map_err(sqlx::Error::Io)?;
                let readers = Readers::new(path, settings.sqlite_readers as usize);
                Ok(Pools::Sqlite { writer, readers })
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
                sqlx::migrate!("migrations/postgres").run(&pool).await?;
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

    pub(crate) async fn read(&self) -> Result<Pooled, sqlx::Error> {
        match self {
            Pools::Sqlite { readers, .. } => Ok(Pooled::Sqlite(readers.take()?)),
            Pools::Postgres(pool) => Ok(Pooled::Postgres(pool.acquire().await?)),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            // The writer thread ends once every handle to it is gone, after the units queued before.
            Pools::Sqlite { readers, .. } => readers.close(),
            Pools::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreResult};

    #[test]
    fn a_chain_numbers_each_statements_placeholders_after_the_ones_before() {
        let all = Sql::chain(vec![
            sql("INSERT INTO a VALUES ($1)").bind(1),
            sql("INSERT INTO b VALUES ($1, $2)").bind(2).bind(3),
            sql("INSERT INTO c VALUES ($1) RETURNING $1, $10").bind(4).must_change(1),
        ])
        .unwrap();
        assert_eq!(
            all.text,
            "WITH s0 AS (INSERT INTO a VALUES ($1)), s1 AS (INSERT INTO b VALUES ($2, $3)) \
             INSERT INTO c VALUES ($4) RETURNING $4, $13"
        );
        assert_eq!((all.args.len(), all.must_change), (4, Some(1)));
        assert!(Sql::chain(Vec::new()).is_none());
    }

    /// A scratch table `name` with rows 1 ('one', 10) and 2 ('two', 20), in the unit's connection.
    async fn scratch(conn: &mut Conn<'_>, name: &str) -> StoreResult<()> {
        conn.execute(sql(format!(
            "CREATE TEMPORARY TABLE {name} (id BIGINT PRIMARY KEY, n BIGINT NOT NULL, label TEXT)"
        )))
        .await?;
        conn.execute(sql(format!("INSERT INTO {name} (id, n, label) VALUES (1, 10, 'one'), (2, 20, 'two')"))).await?;
        Ok(())
    }

    async fn store(backend: tuangou_testkit::Backend) -> (tuangou_testkit::TestDb, Store) {
        let db = tuangou_testkit::TestDb::new(backend).await;
        let store = Store::open(&db.url, &crate::PoolSettings::default()).await.unwrap();
        (db, store)
    }

    /// A batch answers statement by statement: rows, changes, and each statement's own arguments (`$n` bound by
    /// its number wherever it stands, `$2` before `$1` included).
    async fn a_batch_reads_back_each_statement(backend: tuangou_testkit::Backend) {
        let (_db, store) = store(backend).await;
        type Seen = (Option<(i64,)>, u64, Vec<(String,)>, u64, bool);
        let seen: Seen = store
            .write((), |mut conn, ()| {
                Box::pin(async move {
                    scratch(&mut conn, "batch_a").await?;
                    let mut ran = conn
                        .run(vec![
                            sql("UPDATE batch_a SET n = n + $1 WHERE id = $2 RETURNING n")
                                .bind(5)
                                .bind(1)
                                .must_change(1),
                            sql("INSERT INTO batch_a (id, label, n) VALUES ($1, $3, $2)")
                                .bind(3)
                                .bind(30)
                                .bind("three"),
                            sql("SELECT label FROM batch_a WHERE n > $1 ORDER BY id").bind(14),
                            sql("UPDATE batch_a SET n = 0 WHERE id > $1").bind(1),
                        ])
                        .await;
                    let bumped = ran.next_met()?.expect("one row changed").row::<(i64,)>()?;
                    let inserted = ran.next()?.changed;
                    let labels = ran.next()?.rows()?;
                    let zeroed = ran.next()?.changed;
                    Ok((bumped, inserted, labels, zeroed, ran.next().is_err()))
                })
            })
            .await
            .unwrap();
        assert_eq!(seen.0, Some((15,)));
        assert_eq!(seen.1, 1);
        assert_eq!(seen.2, [("one".to_owned(),), ("two".to_owned(),), ("three".to_owned(),)]);
        assert_eq!(seen.3, 2);
        assert!(seen.4, "nothing after the last statement");
        store.close().await;
    }

    /// A batch stops at a failing statement and says so at that statement; it stops after an unmet
    /// `must_change` too, with the same meaning on both engines: nothing after it runs.
    async fn a_batch_stops_where_it_fails(backend: tuangou_testkit::Backend) {
        let (_db, store) = store(backend).await;
        let (unmet, label): (bool, Option<String>) = store
            .write((), |mut conn, ()| {
                Box::pin(async move {
                    scratch(&mut conn, "batch_b").await?;
                    let mut ran = conn
                        .run(vec![
                            sql("UPDATE batch_b SET n = n + 1 WHERE id = 99").must_change(1),
                            sql("UPDATE batch_b SET label = 'after' WHERE id = 1"),
                        ])
                        .await;
                    let unmet = ran.next_met()?.is_none();
                    drop(ran);
                    let (label,): (Option<String>,) =
                        conn.fetch_one(sql("SELECT label FROM batch_b WHERE id = 1")).await?;
                    Ok((unmet, label))
                })
            })
            .await
            .unwrap();
        assert!(unmet, "no row changed where one had to");
        assert_eq!(label.as_deref(), Some("one"), "the batch stopped there");

        let (first_ran, unique, stopped): (bool, bool, bool) = store
            .write((), |mut conn, ()| {
                Box::pin(async move {
                    scratch(&mut conn, "batch_c").await?;
                    let mut ran = conn
                        .run(vec![
                            sql("UPDATE batch_c SET n = n + 1 WHERE id = 1"),
                            sql("INSERT INTO batch_c (id, n) VALUES (2, 0)"),
                            sql("UPDATE batch_c SET n = n + 100 WHERE id = 1"),
                        ])
                        .await;
                    let first = ran.next().is_ok();
                    let unique = matches!(ran.next(), Err(sqlx::Error::Database(db)) if db.is_unique_violation());
                    Ok((first, unique, ran.next().is_err()))
                })
            })
            .await
            .unwrap();
        assert!(first_ran && unique, "the primary key refuses, as a unique violation on both engines");
        assert!(stopped, "the statement after the failure did not run");
        store.close().await;
    }

    tuangou_testkit::on_both_backends!(a_batch_reads_back_each_statement, a_batch_stops_where_it_fails);
}
