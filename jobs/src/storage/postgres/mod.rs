//! The PostgreSQL backend (feature `postgres`): transactional enqueue, a dead worker's jobs
//! back at once, no polling.
//!
//! # Layout
//!
//! One schema (default `jobs`) holds the tables and the functions every call runs (one round
//! trip each, like the Redis backend's scripts), created by versioned migrations
//! ([`PostgresStorage::migrate`]). The rows that change on every claim are small and apart from
//! the payload: `ready` (one row per job waiting on its queue) and `leases` (one per job a
//! worker holds); a job's wide row in `jobs` is written when it is stored, when an attempt ends
//! and when retention drops it. No transaction stays open while a job runs.
//!
//! # Delivery
//!
//! A fetch claims with `FOR UPDATE SKIP LOCKED` in one short statement: it deletes the jobs'
//! `ready` rows and inserts their leases, each with a fencing token, a deadline and the owner
//! key of the worker's session. Completions, renewals and releases act only while
//! the token matches. A lease ends up reaped by any live worker's maintenance pass (at most
//! every 250 ms while busy, every second while idle) when its deadline passed or when its
//! owner's session is gone: the jobs of a process that died are claimable again within about a
//! second, whatever the lease length. Crash accounting is the storage interface's.
//!
//! # Waking
//!
//! An enqueue sends `NOTIFY` in its own transaction (the caller's, for a transactional
//! enqueue), delivered on commit and coalesced by PostgreSQL per transaction; idle workers
//! LISTEN on their session and fetch at once. They poll once a second as a fallback (and to
//! reap), which is all they do without a session ([`PostgresStorageBuilder::listen`]).

mod builder;
mod enqueue;
mod failure;
mod fetch;
mod flow;
mod inspect;
mod leases;
mod migrate;
mod monitor;
mod names;
mod pooler;
mod recurring;
mod servers;
mod session;
mod vacuum;

pub use builder::PostgresStorageBuilder;
pub use enqueue::InTransaction;

use super::{Completion, FetchRequest, FetchedJob, Lease, NewJob, PayloadLimit, Retention};
use crate::error::Result;
use crate::job::JobId;
use crate::storage::Delivery;
use async_trait::async_trait;
use builder::Source;
use foldhash::HashSet;
use names::{Names, Statements};
use pooler::Db;
use session::Session;
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Jobs in PostgreSQL. Cheap to clone: clones share the pool and the worker session.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// #[jobs::background_job]
/// async fn send_email(user_id: u64) {}
///
/// let storage = jobs::PostgresStorage::builder("postgres://postgres@127.0.0.1/app").build()?;
/// storage.migrate().await?; // creates or upgrades the `jobs` schema
/// let client = jobs::Client::new(storage);
/// jobs::enqueue!(&client, send_email(7)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStorage {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    names: Names,
    sql: Statements,
    retention: Retention,
    payload: PayloadLimit,
    listen: bool,
    maintenance_batch: i32,
    session: Arc<Session>,
    /// Whether this handle's vacuum task runs (started by its first fetch).
    vacuuming: AtomicBool,
    /// Jobs claimed and completed through this handle (one count each), which paces its vacuum
    /// and lets it skip passes while idle.
    churn: Arc<AtomicU64>,
    /// Whether the schema was found at the version this code needs.
    schema_ok: AtomicBool,
    /// When this handle last ran a maintenance pass (ms since the epoch).
    last_maintenance: AtomicU64,
    /// The job names fetched so far, so fetched jobs share one allocation per name.
    names_seen: Mutex<HashSet<Arc<str>>>,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("schema", &self.inner.names.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStorage {
    /// A builder for a storage that opens its own pool on `url`
    /// (`postgres://user:password@host:port/database`).
    pub fn builder(url: &str) -> PostgresStorageBuilder {
        PostgresStorageBuilder::new(Source::Url(url.to_owned()))
    }

    /// A builder for a storage on the application's own pool.
    pub fn from_pool(pool: PgPool) -> PostgresStorageBuilder {
        PostgresStorageBuilder::new(Source::Pool(pool))
    }

    fn from_parts(builder: PostgresStorageBuilder, names: Names, pool: PgPool) -> Self {
        PostgresStorage {
            inner: Arc::new(Inner {
                db: Db {
                    pool,
                    pooled: builder.pooler,
                },
                sql: Statements::new(&names),
                names,
                retention: builder.retention,
                payload: builder.payload,
                listen: builder.listen,
                maintenance_batch: builder.maintenance_batch,
                session: Arc::new(Session::default()),
                vacuuming: AtomicBool::new(false),
                churn: Arc::new(AtomicU64::new(0)),
                schema_ok: AtomicBool::new(false),
                last_maintenance: AtomicU64::new(0),
                names_seen: Mutex::new(HashSet::default()),
            }),
        }
    }

    /// The pool the storage uses.
    pub fn pool(&self) -> &PgPool {
        &self.inner.db.pool
    }

    /// The schema its tables live in.
    pub fn schema(&self) -> &str {
        &self.inner.names.schema
    }

    /// Creates the schema and its tables, or upgrades them to the version this code needs.
    /// Safe to run from several processes at once (they take turns) and at every start-up.
    ///
    /// # Errors
    ///
    /// When PostgreSQL fails, or the schema is newer than this code.
    pub async fn migrate(&self) -> Result<()> {
        migrate::migrate(&self.inner.db, &self.inner.names).await?;
        self.inner.schema_ok.store(true, Ordering::Release);
        Ok(())
    }

    /// Checks once that the schema is current (later calls return at once).
    async fn check_schema(&self) -> Result<()> {
        if !self.inner.schema_ok.load(Ordering::Acquire) {
            migrate::check(&self.inner.db, &self.inner.names).await?;
            self.inner.schema_ok.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Where statements go, once the schema is known to be current.
    async fn ready(&self) -> Result<&Db> {
        self.check_schema().await?;
        Ok(&self.inner.db)
    }

    fn schema_name(&self) -> &str {
        &self.inner.names.schema
    }

    /// The shared copy of the job name `name`.
    fn intern(&self, name: String) -> Arc<str> {
        let mut seen = self
            .inner
            .names_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(known) = seen.get(name.as_str()) {
            return known.clone();
        }
        let name: Arc<str> = Arc::from(name);
        if seen.len() < 10_000 {
            seen.insert(name.clone());
        }
        name
    }

    /// Retention as the SQL functions take it: kept succeeded, their TTL, kept deleted, their
    /// TTL (counts and milliseconds).
    fn retention_params(&self) -> [i64; 4] {
        let r = &self.inner.retention;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        [
            count(r.succeeded_max),
            ms(r.succeeded_ttl),
            count(r.deleted_max),
            ms(r.deleted_ttl),
        ]
    }
}

/// A job id's number as PostgreSQL stores it.
fn seq(id: &JobId) -> i64 {
    i64::try_from(id.seq()).unwrap_or(i64::MAX)
}

/// A stored number as a job id's.
fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Delivery for PostgresStorage {
    fn check(&self, job: &NewJob) -> Result<()> {
        self.inner.payload.check(job)
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        let pool = self.ready().await?;
        self.enqueue_on(pool, jobs).await
    }

    async fn fetch(&self, req: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        self.fetch_now(req).await
    }

    async fn complete(&self, completions: &[Completion]) -> Result<Vec<bool>> {
        self.complete_now(completions).await
    }

    async fn mark_started(&self, leases: &[Lease]) -> Result<Vec<bool>> {
        self.mark_started_now(leases).await
    }

    async fn renew(&self, leases: &[Lease], lease: Duration) -> Result<Vec<bool>> {
        self.renew_now(leases, lease).await
    }

    async fn release(&self, leases: &[Lease]) -> Result<()> {
        self.release_now(leases).await
    }

    async fn heartbeat(&self, server: &str, ttl: Duration) -> Result<()> {
        self.heartbeat_now(server, ttl).await
    }

    async fn deregister(&self, server: &str) -> Result<()> {
        self.deregister_now(server).await
    }

    async fn cancel_requested(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        self.cancel_requested_now(ids).await
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
