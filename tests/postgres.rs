//! PostgreSQL for the tests: the local server (`JOBS_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), with a schema of its own per test, created
//! (and migrated) by [`TestPostgres::start`] and dropped with everything in it when the
//! [`TestPostgres`] is dropped. Nothing the tests did not create is touched.
//!
//! Skips (or fails, with `JOBS_REQUIRE_POSTGRES=1`) when the server cannot be reached.

use jobs::storage::Retention;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static SCHEMA_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The URL of the server the tests use.
pub fn postgres_url() -> String {
    std::env::var("JOBS_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// One test's schema on the test server.
pub struct TestPostgres {
    url: String,
    schema: String,
}

/// Runs `f` on a runtime of its own, on a thread of its own: the harness sets up and tears
/// down from sync code that may itself run inside a test's runtime.
fn on_own_runtime<T: Send>(f: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(f)
        })
        .join()
        .expect("the set-up thread")
    })
}

impl TestPostgres {
    /// A fresh, migrated schema for the test named `test`, or `None` (after printing why)
    /// when the server cannot be reached and `JOBS_REQUIRE_POSTGRES` is not `1`.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached and `JOBS_REQUIRE_POSTGRES=1`, or migrating fails.
    pub fn start(test: &str) -> Option<TestPostgres> {
        let url = postgres_url();
        let n = SCHEMA_COUNTER.fetch_add(1, Ordering::SeqCst);
        let mut tag: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        tag.truncate(20);
        let schema = format!("t_{tag}_{}_{n}", std::process::id());
        let reached = on_own_runtime(async {
            let storage = jobs::PostgresStorage::builder(&url)
                .schema(&schema)
                .max_connections(1)
                .build()
                .expect("a valid PostgreSQL URL");
            let result = tokio::time::timeout(Duration::from_secs(10), storage.migrate()).await;
            storage.pool().close().await;
            match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out".to_owned()),
            }
        });
        if let Err(e) = reached {
            let why = format!("test `{test}`: no PostgreSQL at {url} ({e})");
            crate::skip_unless_required("JOBS_REQUIRE_POSTGRES", &why);
            return None;
        }
        Some(TestPostgres { url, schema })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The test's schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A builder for a storage on the test's schema, keeping jobs as `retention` says.
    pub fn storage_builder(&self, retention: Retention) -> jobs::PostgresStorageBuilder {
        jobs::PostgresStorage::builder(&self.url)
            .schema(&self.schema)
            .retention(retention)
            .max_connections(4)
    }

    /// A storage on the test's schema.
    pub fn storage(&self, retention: Retention) -> jobs::PostgresStorage {
        self.storage_builder(retention)
            .build()
            .expect("a valid PostgreSQL URL")
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let dropped = on_own_runtime(async move {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&mut conn)
                .await?;
            Ok::<_, sqlx::Error>(())
        });
        if let Err(e) = dropped {
            eprintln!("could not drop the test schema {}: {e}", self.schema);
        }
    }
}
