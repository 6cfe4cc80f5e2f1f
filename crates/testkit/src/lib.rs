//! Test support shared by the crates' tests: a fresh database per test on either backend, a running server on
//! a port of its own, and a fingerprint of everything stored (to show that a refused request changed nothing).
//!
//! PostgreSQL tests connect to `TUANGOU_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! create a database of their own and drop it when done. They never skip: without a server they fail.
#![forbid(unsafe_code)]

pub mod browser;
pub mod fake_wechatpay;
mod server;

pub use server::{TestApp, TestUser, server_password};

use sqlx::{Connection, PgConnection, Row, SqliteConnection};
use std::str::FromStr;
pub use tuangou_store::Backend;
use tuangou_store::{PoolSettings, Store};

/// Where the PostgreSQL tests create their databases.
pub fn postgres_admin_url() -> String {
    std::env::var("TUANGOU_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    /// The test's own media directory (photos), on either backend; a restart on this database keeps it.
    pub media: tempfile::TempDir,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

fn media_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder for photos")
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// A new SQLite file in a temporary folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self { url, backend: Backend::Sqlite, media: media_dir(), cleanup: Cleanup::Sqlite(dir) }
    }

    /// A new, empty PostgreSQL database.
    pub async fn postgres() -> Self {
        let admin_url = postgres_admin_url();
        let name = format!("tuangou_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL tests need a server at {admin_url}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let _ = admin.close().await;
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Self { url, backend: Backend::Postgres, media: media_dir(), cleanup: Cleanup::Postgres { admin_url, name } }
    }

    pub async fn open(&self) -> Store {
        Store::open(&self.url, &PoolSettings { postgres_connections: 32, sqlite_readers: 4 })
            .await
            .expect("open the store")
    }

    /// Everything stored, as text: equal fingerprints mean no row was added, removed or changed.
    pub async fn fingerprint(&self) -> String {
        let tables = [
            "users",
            "sessions",
            "merchants",
            "merchant_roles",
            "campaigns",
            "ledger_entries",
            "ledger_postings",
            "balances",
            "groups",
            "memberships",
            "participations",
            "idempotency_keys",
            "vouchers",
            "redemptions",
            "redemption_attempts",
            "payments",
            "payment_events",
            "refunds",
            "refund_events",
            "sandbox_payments",
            "sandbox_refunds",
            "sandbox_transfers",
            "sandbox_notifications",
        ];
        // One connection for the whole reading: the bad-input test takes two fingerprints per request.
        enum Reader {
            Sqlite(SqliteConnection),
            Postgres(PgConnection),
        }
        let mut reader = match self.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url).expect("url");
                Reader::Sqlite(SqliteConnection::connect_with(&options).await.expect("connect"))
            }
            Backend::Postgres => Reader::Postgres(PgConnection::connect(&self.url).await.expect("connect")),
        };
        let mut out = String::new();
        for table in tables {
            let query = sqlx::AssertSqlSafe(format!("SELECT * FROM {table}"));
            let mut rows = match &mut reader {
                Reader::Sqlite(c) => {
                    let rows = sqlx::query(query).fetch_all(&mut *c).await.expect("read");
                    rows.iter()
                        .map(|r| (0..r.len()).map(|i| sqlite_cell(r, i)).collect::<Vec<_>>().join("|"))
                        .collect::<Vec<_>>()
                }
                Reader::Postgres(c) => {
                    let rows = sqlx::query(query).fetch_all(&mut *c).await.expect("read");
                    rows.iter()
                        .map(|r| (0..r.len()).map(|i| pg_cell(r, i)).collect::<Vec<_>>().join("|"))
                        .collect::<Vec<_>>()
                }
            };
            rows.sort();
            out.push_str(&format!("{table}: {}\n", rows.join("\n  ")));
        }
        match reader {
            Reader::Sqlite(c) => drop(c.close().await),
            Reader::Postgres(c) => drop(c.close().await),
        }
        out
    }

    /// Runs one query that answers one integer (a `COUNT(*)`, say) directly, bypassing the service.
    pub async fn scalar(&self, query: &str) -> i64 {
        let query = sqlx::AssertSqlSafe(query.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url).expect("url");
                let mut c = SqliteConnection::connect_with(&options).await.expect("connect");
                let value = sqlx::query_scalar(query).fetch_one(&mut c).await.expect("query");
                drop(c.close().await);
                value
            }
            Backend::Postgres => {
                let mut c = PgConnection::connect(&self.url).await.expect("connect");
                let value = sqlx::query_scalar(query).fetch_one(&mut c).await.expect("query");
                drop(c.close().await);
                value
            }
        }
    }

    /// Runs one statement directly (to corrupt a copy of the data on purpose).
    pub async fn execute(&self, statement: &str) {
        match self.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url).expect("url");
                let mut c = SqliteConnection::connect_with(&options).await.expect("connect");
                sqlx::query(sqlx::AssertSqlSafe(statement.to_owned())).execute(&mut c).await.expect("execute");
            }
            Backend::Postgres => {
                let mut c = PgConnection::connect(&self.url).await.expect("connect");
                sqlx::query(sqlx::AssertSqlSafe(statement.to_owned())).execute(&mut c).await.expect("execute");
            }
        }
    }
}

fn sqlite_cell(row: &sqlx::sqlite::SqliteRow, i: usize) -> String {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return format!("{v:?}");
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return format!("{v:?}");
    }
    format!("{:?}", row.try_get::<Option<String>, _>(i).ok().flatten())
}

fn pg_cell(row: &sqlx::postgres::PgRow, i: usize) -> String {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return format!("{v:?}");
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return format!("{v:?}");
    }
    format!("{:?}", row.try_get::<Option<String>, _>(i).ok().flatten())
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; a thread of its own may block on a runtime of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                runtime.block_on(async {
                    let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await.ok()
                })
            })
            .join();
        }
    }
}

/// Like `on_both_backends!`, for tests that drive a real browser: they are left out of the plain test command
/// (`cargo nextest run --workspace`, which needs no browser) and run by `.ci/run` with `--run-ignored only`.
#[macro_export]
macro_rules! on_both_backends_in_a_browser {
    ($($name:ident),* $(,)?) => {
        pub mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[ignore = "drives Chromium: needs chromium and chromium-driver; .ci/run runs it"]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        pub mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[ignore = "drives Chromium: needs chromium and chromium-driver; .ci/run runs it"]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Writes one `#[tokio::test]` per backend for an `async fn(Backend)`: `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        pub mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        pub mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}
