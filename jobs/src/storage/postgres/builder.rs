//! [`PostgresStorageBuilder`]: where the PostgreSQL backend connects and how it keeps jobs.

use super::{Names, PostgresStorage};
use crate::error::{Error, Result};
use crate::storage::{PayloadLimit, Retention};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::time::Duration;

/// Where the connections come from.
#[derive(Debug, Clone)]
pub(super) enum Source {
    Url(String),
    Pool(PgPool),
}

/// Configures a [`PostgresStorage`].
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// use std::time::Duration;
/// let storage = jobs::PostgresStorage::builder("postgres://postgres@127.0.0.1/app")
///     .schema("jobs")
///     .retention(jobs::storage::Retention::default().succeeded(10_000, Duration::from_secs(3600)))
///     .build()?;
/// storage.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStorageBuilder {
    pub(super) source: Source,
    pub(super) schema: String,
    pub(super) retention: Retention,
    pub(super) payload: PayloadLimit,
    pub(super) listen: bool,
    pub(super) max_connections: u32,
    pub(super) maintenance_batch: i32,
    pub(super) acquire_timeout: Duration,
    pub(super) pooler: bool,
}

impl PostgresStorageBuilder {
    pub(super) fn new(source: Source) -> Self {
        PostgresStorageBuilder {
            source,
            schema: "jobs".to_owned(),
            retention: Retention::default(),
            payload: PayloadLimit::default(),
            listen: true,
            max_connections: 16,
            maintenance_batch: 1_000,
            acquire_timeout: Duration::from_secs(5),
            pooler: false,
        }
    }

    /// The schema the storage's tables live in, so several applications can share one
    /// database. Default: `jobs`. Lower-case letters, digits and `_`.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// How many succeeded and deleted jobs are kept, and for how long.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The most bytes a job's arguments may take once serialized. Default:
    /// [`DEFAULT_MAX_PAYLOAD`](crate::storage::DEFAULT_MAX_PAYLOAD), 512 KiB. A larger job is
    /// refused at enqueue ([`Error::is_too_large`](crate::Error::is_too_large)), and nothing
    /// is stored.
    #[must_use]
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.payload = PayloadLimit(bytes);
        self
    }

    /// Whether workers hold a session of their own (default: yes). The session LISTENs, so an
    /// idle worker takes a new job the moment its enqueue commits, and holds an advisory lock
    /// that ties the worker's leases to it, so the jobs of a worker whose process died are
    /// claimable again within a second. Turn it off behind a pooler that cannot keep a session
    /// (PgBouncer in transaction mode): workers then poll once a second, and a dead worker's
    /// jobs come back when their lease runs out.
    #[must_use]
    pub fn listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// Whether PostgreSQL is reached through a transaction-mode pooler (PgBouncer with
    /// `pool_mode = transaction`, or a managed equivalent). Default: no. Such a pooler hands each
    /// transaction to whichever server connection is free, so nothing that lives in a session
    /// survives it: the storage then runs every call in a transaction of its own with unnamed
    /// statements (a `BEGIN` and a `COMMIT` more per call) and keeps no session, as with
    /// [`listen(false)`](Self::listen): workers poll once a second and a dead worker's jobs come
    /// back when their lease runs out. Run [`migrate`](PostgresStorage::migrate) through the
    /// pooler or directly; transactional enqueue works as usual inside the caller's transaction.
    #[must_use]
    pub fn transaction_pooler(mut self, pooler: bool) -> Self {
        self.pooler = pooler;
        if pooler {
            self.listen = false;
        }
        self
    }

    /// The size of the pool the storage opens from a URL (default 16; unused with
    /// [`PostgresStorage::from_pool`]). Workers use one more connection for their session.
    #[must_use]
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// How long a call waits for a connection of the pool the storage opens from a URL before
    /// it fails with an [unreachable](crate::Error::is_unreachable) error (default 5 s). While
    /// PostgreSQL is down, that is how long an `enqueue!` takes to fail; a pool that is merely
    /// busy also makes callers wait up to this long.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// At most this many due scheduled jobs are promoted, and this many lost leases reaped, per
    /// maintenance pass. Default: 1,000.
    #[must_use]
    pub fn maintenance_batch(mut self, batch: usize) -> Self {
        self.maintenance_batch = i32::try_from(batch).unwrap_or(i32::MAX).max(1);
        self
    }

    /// Builds the storage without contacting PostgreSQL: it connects on first use. Its first
    /// call checks that the schema is at the version this code needs (see
    /// [`PostgresStorage::migrate`]).
    ///
    /// # Errors
    ///
    /// When the URL is not a valid PostgreSQL URL or the schema name is not allowed.
    pub fn build(self) -> Result<PostgresStorage> {
        let names = Names::new(&self.schema)?;
        let pool = match &self.source {
            Source::Pool(pool) => pool.clone(),
            Source::Url(url) => {
                let options: PgConnectOptions = url.parse().map_err(|e| {
                    Error::config(format!("`{url}` is not a valid PostgreSQL URL")).with_source(e)
                })?;
                PgPoolOptions::new()
                    .max_connections(self.max_connections)
                    .acquire_timeout(self.acquire_timeout)
                    .connect_lazy_with(options)
            }
        };
        Ok(PostgresStorage::from_parts(self, names, pool))
    }

    /// Builds the storage and checks that PostgreSQL answers and the schema is current.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build), when PostgreSQL cannot be reached, and when the schema is
    /// missing or at another version (the message says to run `migrate()`).
    pub async fn connect(self) -> Result<PostgresStorage> {
        let storage = self.build()?;
        storage.check_schema().await?;
        Ok(storage)
    }
}
