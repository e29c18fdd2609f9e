//! Enqueueing: one call stores many jobs (a multi-row insert from arrays), on the storage's
//! pool or inside the application's own transaction ([`InTransaction`]).

use super::failure::{retrying, Doing};
use super::{unsigned, PostgresStorage};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::storage::NewJob;
use sqlx::{PgConnection, Postgres};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// The arrays one enqueue call binds.
struct Columns {
    queues: Vec<String>,
    names: Vec<String>,
    args: Vec<String>,
    run_at: Vec<i64>,
    /// `None` when no job has headers.
    headers: Option<Vec<Option<String>>>,
    /// `None` when no job has a unique key (the set-based path).
    keys: Option<Vec<Option<String>>>,
    windows: Option<Vec<Option<i64>>>,
}

impl Columns {
    fn of(jobs: Vec<NewJob>) -> (Columns, Vec<Arc<str>>) {
        let any_unique = jobs.iter().any(|j| j.unique.is_some());
        let any_headers = jobs.iter().any(|j| !j.headers.is_empty());
        let mut c = Columns {
            queues: Vec::with_capacity(jobs.len()),
            names: Vec::with_capacity(jobs.len()),
            args: Vec::with_capacity(jobs.len()),
            run_at: Vec::with_capacity(jobs.len()),
            headers: any_headers.then(Vec::new),
            keys: any_unique.then(Vec::new),
            windows: any_unique.then(Vec::new),
        };
        let mut queues = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Some(headers) = &mut c.headers {
                headers.push(super::flow::stored_headers(&job.headers));
            }
            c.queues.push(job.queue.to_string());
            queues.push(job.queue);
            c.names.push(job.name.into_owned());
            c.args.push(job.args);
            c.run_at.push(
                job.run_at_ms
                    .map_or(0, |t| i64::try_from(t).unwrap_or(i64::MAX)),
            );
            if let (Some(keys), Some(windows)) = (&mut c.keys, &mut c.windows) {
                windows.push(
                    job.unique
                        .as_ref()
                        .and_then(|u| u.window)
                        .map(super::millis),
                );
                keys.push(job.unique.map(|u| u.key));
            }
        }
        (c, queues)
    }
}

impl PostgresStorage {
    /// Stores `jobs` through `executor` (the pool, or the caller's connection).
    pub(super) async fn enqueue_on<'e, E>(
        &self,
        executor: E,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<JobId>>
    where
        E: sqlx::Executor<'e, Database = Postgres> + Copy,
    {
        for job in &jobs {
            self.check_job(job)?;
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let (c, queues) = Columns::of(jobs);
        let ids: Vec<i64> = retrying(|| {
            sqlx::query_scalar(&self.inner.sql.enqueue)
                .bind(&c.queues)
                .bind(&c.names)
                .bind(&c.args)
                .bind(&c.run_at)
                .bind(&c.keys)
                .bind(&c.windows)
                .bind(&c.headers)
                .fetch_one(executor)
        })
        .await
        .doing("enqueueing jobs", self.schema_name())?;
        Ok(queues
            .into_iter()
            .zip(ids)
            .map(|(q, id)| JobId::new(q, unsigned(id)))
            .collect())
    }

    /// Stores `jobs` on `conn`, inside whatever transaction it is in: they exist if and only
    /// if that transaction commits, and workers wake on its commit. Filters do not run here
    /// (see [`InTransaction`] for enqueueing as a client does).
    ///
    /// # Errors
    ///
    /// When a job is over the payload limit, the schema is not current, or PostgreSQL fails;
    /// the transaction is then best rolled back.
    pub async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<JobId>> {
        self.check_schema().await?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        for job in &jobs {
            self.check_job(job)?;
        }
        let (c, queues) = Columns::of(jobs);
        // No retry here: a serialization failure aborts the caller's transaction, which only
        // the caller can run again.
        let ids: Vec<i64> = sqlx::query_scalar(&self.inner.sql.enqueue)
            // Behind a transaction-mode pooler a named statement would outlive the caller's
            // transaction on a server connection other clients get next.
            .persistent(!self.inner.db.pooled)
            .bind(&c.queues)
            .bind(&c.names)
            .bind(&c.args)
            .bind(&c.run_at)
            .bind(&c.keys)
            .bind(&c.windows)
            .bind(&c.headers)
            .fetch_one(&mut *conn)
            .await
            .doing("enqueueing jobs in a transaction", self.schema_name())?;
        Ok(queues
            .into_iter()
            .zip(ids)
            .map(|(q, id)| JobId::new(q, unsigned(id)))
            .collect())
    }

    fn check_job(&self, job: &NewJob) -> Result<()> {
        self.inner.payload.check(job)
    }
}

/// A client's enqueue inside the application's own transaction: `enqueue!`, `schedule!` and
/// [`enqueue_many`](Self::enqueue_many) on it store jobs that exist if and only if the
/// transaction commits (workers wake on the commit), with the client's filters.
///
/// # Examples
///
/// Create an order and the job that emails its receipt in one transaction:
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// #[jobs::background_job]
/// async fn send_receipt(order_id: i64) {}
///
/// let storage = jobs::PostgresStorage::builder("postgres://postgres@127.0.0.1/shop").build()?;
/// storage.migrate().await?;
/// let client = jobs::Client::new(storage.clone());
///
/// let mut tx = storage.pool().begin().await?;
/// let (order_id,): (i64,) = sqlx::query_as("INSERT INTO orders (total) VALUES (42) RETURNING id")
///     .fetch_one(&mut *tx)
///     .await?;
/// let jobs = jobs::InTransaction::new(&client, &mut tx)?;
/// jobs::enqueue!(&jobs, send_receipt(order_id)).await?;
/// drop(jobs);
/// tx.commit().await?; // the order and its job, or neither
/// # Ok(()) }
/// ```
pub struct InTransaction<'c> {
    client: Client,
    storage: PostgresStorage,
    conn: Mutex<&'c mut PgConnection>,
}

impl std::fmt::Debug for InTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InTransaction")
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

impl<'c> InTransaction<'c> {
    /// Enqueues with `client` (its filters; its storage must be a [`PostgresStorage`]) on
    /// `conn`, e.g. `&mut tx` of an `sqlx::Transaction<'_, Postgres>`.
    ///
    /// # Errors
    ///
    /// A configuration error when the client's storage is not PostgreSQL.
    pub fn new(client: &Client, conn: &'c mut PgConnection) -> Result<Self> {
        let storage = client
            .storage()
            .as_any()
            .and_then(|any| any.downcast_ref::<PostgresStorage>())
            .cloned()
            .ok_or_else(|| {
                Error::config(
                    "enqueueing inside a PostgreSQL transaction needs a client whose storage is \
                     a `PostgresStorage`",
                )
            })?;
        Ok(InTransaction {
            client: client.clone(),
            storage,
            conn: Mutex::new(conn),
        })
    }

    /// Stores one job (what `enqueue!(&this, f(..))` calls); it exists once the transaction
    /// commits.
    pub async fn enqueue<J: Job>(&self, job: J) -> Result<JobId> {
        let new_job = self.client.prepare(&job, None)?;
        self.store(vec![new_job]).await.and_then(first)
    }

    /// Stores one job to run not before `at` (what `schedule!(&this, f(..), at = t)` calls).
    pub async fn schedule_at<J: Job>(&self, job: J, at: SystemTime) -> Result<JobId> {
        let at_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let new_job = self.client.prepare(&job, Some(at_ms))?;
        self.store(vec![new_job]).await.and_then(first)
    }

    /// Stores one job to run once `delay` has passed (what `schedule!(&this, f(..), in = d)`
    /// calls).
    pub async fn schedule_in<J: Job>(&self, job: J, delay: Duration) -> Result<JobId> {
        self.schedule_at(job, SystemTime::now() + delay).await
    }

    /// Stores many jobs in one statement; they exist once the transaction commits.
    pub async fn enqueue_many<J: Job>(
        &self,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<Vec<JobId>> {
        let new_jobs = jobs
            .into_iter()
            .map(|job| self.client.prepare(&job, None))
            .collect::<Result<Vec<_>>>()?;
        self.store(new_jobs).await
    }

    async fn store(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        let meta: Vec<_> = jobs
            .iter()
            .map(|j| (j.name.clone(), j.run_at_ms.is_some()))
            .collect();
        let mut conn = self.conn.lock().await;
        let ids = self.storage.enqueue_in(&mut conn, jobs).await?;
        crate::telemetry::enqueued(
            ids.iter()
                .zip(&meta)
                .map(|(id, (name, _))| (id.queue(), name.as_ref())),
        );
        self.client.stored(&ids, meta);
        Ok(ids)
    }
}

fn first(ids: Vec<JobId>) -> Result<JobId> {
    ids.into_iter()
        .next()
        .ok_or_else(|| Error::storage("PostgreSQL returned no id for the job it stored"))
}
