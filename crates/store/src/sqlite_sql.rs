//! Statements on SQLite's connections through rusqlite (the C library, called on the calling thread), with the
//! same surface as sqlx's for PostgreSQL: `$n` placeholders, rows that decode into the store's row types, and
//! errors that read like sqlx's (a unique violation is one). The writer's connection belongs to its thread
//! (`sqlite_writer.rs`); readers come from [`Readers`].

use crate::db::{Arg, Sql};
use rusqlite::types::{FromSql, Value, ValueRef};
use rusqlite::{Connection, ErrorCode, ffi};
use std::borrow::Cow;
use std::sync::Arc;

/// A row read through rusqlite, owned, so that a statement's rows outlive the statement.
pub(crate) struct ValueRow {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl ValueRow {
    /// The value of the column named `column`.
    pub(crate) fn get<T: FromSql>(&self, column: &str) -> Result<T, sqlx::Error> {
        let index = self
            .columns
            .iter()
            .position(|name| name.eq_ignore_ascii_case(column))
            .ok_or_else(|| sqlx::Error::ColumnNotFound(column.to_owned()))?;
        self.at(index)
    }

    /// The value of the `index`-th column (from 0).
    pub(crate) fn at<T: FromSql>(&self, index: usize) -> Result<T, sqlx::Error> {
        let value =
            self.values.get(index).ok_or(sqlx::Error::ColumnIndexOutOfBounds { index, len: self.values.len() })?;
        T::column_result(ValueRef::from(value))
            .map_err(|error| sqlx::Error::ColumnDecode { index: index.to_string(), source: Box::new(error) })
    }
}

/// A row type SQLite's rows decode into. Structs implement it with [`from_values!`], tuples by position.
pub(crate) trait FromValues: Sized {
    fn from_values(row: &ValueRow) -> Result<Self, sqlx::Error>;
}

/// Implements [`FromValues`] for a struct whose fields are named like the columns: `from_values!(T { a, b })`;
/// fields after `flatten` decode from the same row as a whole (sqlx's `#[sqlx(flatten)]`).
macro_rules! from_values {
    ($ty:ty { $($field:ident),* $(,)? } $(flatten { $($nested:ident),* $(,)? })?) => {
        impl $crate::sqlite_sql::FromValues for $ty {
            fn from_values(row: &$crate::sqlite_sql::ValueRow) -> Result<Self, sqlx::Error> {
                Ok(Self {
                    $($field: row.get(stringify!($field))?,)*
                    $($($nested: $crate::sqlite_sql::FromValues::from_values(row)?,)*)?
                })
            }
        }
    };
}
pub(crate) use from_values;

macro_rules! tuple_from_values {
    ($($t:ident $i:tt),+) => {
        impl<$($t: FromSql),+> FromValues for ($($t,)+) {
            fn from_values(row: &ValueRow) -> Result<Self, sqlx::Error> {
                Ok(($(row.at::<$t>($i)?,)+))
            }
        }
    };
}
tuple_from_values!(A 0);
tuple_from_values!(A 0, B 1);
tuple_from_values!(A 0, B 1, C 2);
tuple_from_values!(A 0, B 1, C 2, D 3);
tuple_from_values!(A 0, B 1, C 2, D 3, E 4);
tuple_from_values!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_values!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_values!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// What one statement did: its rows, and how many rows it inserted, updated or deleted (0 for a read).
pub(crate) struct Executed {
    pub(crate) rows: Vec<ValueRow>,
    pub(crate) changed: u64,
}

/// Runs one statement. `$n` is bound to the statement's n-th argument by name, wherever and however often it
/// appears (SQLite numbers parameters in order of first appearance, which is not always `n`).
pub(crate) fn execute(connection: &Connection, q: Sql) -> Result<Executed, sqlx::Error> {
    let (text, args) = q.into_parts();
    let mut statement = connection.prepare_cached(&text).map_err(failure)?;
    for index in 1..=statement.parameter_count() {
        let arg = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| args.get(n.checked_sub(1)?))
            .ok_or_else(|| sqlx::Error::Protocol(format!("parameter {index} of {text:?} has no argument")))?;
        match arg {
            Arg::I64(v) => statement.raw_bind_parameter(index, v),
            Arg::F64(v) => statement.raw_bind_parameter(index, v),
            Arg::Text(v) => statement.raw_bind_parameter(index, v),
        }
        .map_err(failure)?;
    }
    let columns: Arc<[String]> = statement.column_names().into_iter().map(str::to_owned).collect();
    let reads_only = statement.readonly();
    let mut rows = Vec::new();
    let mut cursor = statement.raw_query();
    while let Some(row) = cursor.next().map_err(failure)? {
        let values = (0..columns.len()).map(|i| row.get::<_, Value>(i)).collect::<Result<_, _>>().map_err(failure)?;
        rows.push(ValueRow { columns: Arc::clone(&columns), values });
    }
    drop(cursor);
    let changed = if reads_only { 0 } else { connection.changes() };
    Ok(Executed { rows, changed })
}

/// A rusqlite error as sqlx's: a database error keeps its kind, so `is_unique_violation` and the like work.
fn failure(error: rusqlite::Error) -> sqlx::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            let message = message.unwrap_or_else(|| code.to_string());
            sqlx::Error::Database(Box::new(SqliteFailure { code, message }))
        }
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// A failure the SQLite library reported.
#[derive(Debug)]
struct SqliteFailure {
    code: ffi::Error,
    message: String,
}

impl std::fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SqliteFailure {}

impl sqlx::error::DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.extended_code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind;
        if self.code.code != ErrorCode::ConstraintViolation {
            return ErrorKind::Other;
        }
        match self.code.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => ErrorKind::UniqueViolation,
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// Opens the writer's connection the way every SQLite connection of the store is set up (db.rs): WAL, durable
/// commits (synchronous = FULL: money moves here), foreign keys on, savepoint journals in memory.
pub(crate) fn open_writer(path: &str) -> Result<Connection, sqlx::Error> {
    let connection = Connection::open(path).map_err(failure)?;
    // `journal_mode` answers with the mode it set.
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(failure)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(sqlx::Error::Protocol(format!("the database would not use WAL (it answered {mode:?})")));
    }
    connection
        .execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(failure)?;
    // Joins, draws and posts have a few dozen distinct statements (multi-row inserts vary with their row count).
    connection.set_prepared_statement_cache_capacity(256);
    Ok(connection)
}

/// SQLite's reader connections. A read is a call into the C library on the calling thread: in WAL it never waits
/// for the writer, and it costs microseconds, far less than handing it to another thread and back (which sqlx's
/// SQLite driver does for every statement). Connections are opened when none is idle; up to `keep` idle ones are
/// kept for the next reads.
pub(crate) struct Readers {
    path: String,
    keep: usize,
    idle: std::sync::Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: String, keep: usize) -> Arc<Self> {
        Arc::new(Readers { path, keep: keep.max(1), idle: std::sync::Mutex::new(Vec::new()) })
    }

    /// An idle reader, or a new one.
    pub(crate) fn take(self: &Arc<Self>) -> Result<Reader, sqlx::Error> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_reader(&self.path)?,
        };
        Ok(Reader { connection: Some(connection), readers: Arc::clone(self) })
    }

    /// Closes the idle readers (the ones in use close when they come back).
    pub(crate) fn close(&self) {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}

/// A reader in use; it goes back to the idle ones when dropped.
pub(crate) struct Reader {
    connection: Option<Connection>,
    readers: Arc<Readers>,
}

impl Reader {
    pub(crate) fn connection(&mut self) -> &mut Connection {
        self.connection.as_mut().expect("present until dropped")
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            let mut idle = self.readers.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if idle.len() < self.readers.keep {
                idle.push(connection);
            }
        }
    }
}

/// A reader: it may not write (`query_only`), so a read path can never change anything by mistake.
fn open_reader(path: &str) -> Result<Connection, sqlx::Error> {
    let connection = Connection::open(path).map_err(failure)?;
    connection.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA query_only = ON;").map_err(failure)?;
    connection.set_prepared_statement_cache_capacity(128);
    Ok(connection)
}
