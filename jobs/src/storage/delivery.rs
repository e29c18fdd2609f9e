//! The delivery capability of a storage: enqueue, fetch, complete, renew, release, heartbeats.

use super::{Completion, FetchRequest, FetchedJob, Lease, NewJob};
use crate::error::Result;
use crate::job::JobId;
use async_trait::async_trait;
use std::time::Duration;

/// Delivery, the capability every backend starts with: store jobs, lease them to workers, take
/// their completions, renew and release leases, and know which workers are alive.
///
/// Implementations must keep the lease semantics described in the [module docs](super): a job
/// leaves storage only when an attempt's completion says so, and only while its lease is held.
#[async_trait]
pub trait Delivery: Send + Sync + 'static {
    /// Stores the jobs, all or none, and returns their ids in order.
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>>;

    /// Refuses, before anything is written, a job this storage could never store (e.g. a name
    /// its format cannot hold, or arguments over its payload limit). Concurrent enqueues that share one storage call check each job
    /// first, so one refused job fails only its own caller. The default accepts every job.
    ///
    /// # Errors
    ///
    /// A configuration error saying why the job cannot be stored.
    fn check(&self, job: &NewJob) -> Result<()> {
        let _ = job;
        Ok(())
    }

    /// Leases up to `req.max` ready jobs, taking from queues in priority order. Scheduled jobs
    /// that came due are made ready first and expired leases are reaped back to their queue.
    /// When nothing is ready it waits (without polling) up to `req.wait`.
    async fn fetch(&self, req: FetchRequest<'_>) -> Result<Vec<FetchedJob>>;

    /// Records the end of attempts. For each completion, returns whether it was applied: `false`
    /// means the lease was no longer held (it expired and the job was handed to someone else).
    async fn complete(&self, completions: &[Completion]) -> Result<Vec<bool>>;

    /// Records that the handlers of these leased jobs start now, so that a lease running out
    /// later counts as a crash of the job, not as a job handed back unstarted (see
    /// [Crash accounting](super#crash-accounting)). Returns, per lease, whether it was still held;
    /// the mark ends with the lease (completion, release, expiry). Leases no longer held are
    /// ignored.
    ///
    /// The worker sends the marks of most jobs with its next batch of acknowledgements (a job
    /// that completes in that batch needs none), and awaits this call before starting a job that
    /// crashed or was orphaned before.
    async fn mark_started(&self, leases: &[Lease]) -> Result<Vec<bool>>;

    /// Extends the given leases to `lease` from now. Returns, per lease, whether it was still held.
    ///
    /// A backend may extend leases by the fetch they came from (the Redis backend keeps one
    /// deadline per fetch): a caller renews every lease it still holds, as the worker does.
    async fn renew(&self, leases: &[Lease], lease: Duration) -> Result<Vec<bool>>;

    /// Hands leased jobs back to the front of their queue at once, without counting an attempt
    /// (graceful shutdown). Leases no longer held are ignored.
    async fn release(&self, leases: &[Lease]) -> Result<()>;

    /// Completes once what this storage still does in the background for calls that were
    /// dropped is done: a fetch dropped after it leased jobs (a worker stopping while it
    /// waited) hands them back on a task of its own. A worker awaits this before it stops, so
    /// the jobs are back on their queue when its `run_until` returns and the process may exit.
    /// The default has nothing to wait for.
    async fn settle(&self) {}

    /// For each job (all in flight on the caller), whether a cancel request is recorded for it.
    /// Workers call this about twice a second, only while they have jobs in flight, so it must
    /// be one cheap batched read.
    async fn cancel_requested(&self, ids: &[JobId]) -> Result<Vec<bool>>;

    /// Records that a worker process is alive; it counts as dead once `ttl` passes without
    /// another heartbeat.
    async fn heartbeat(&self, server: &str, ttl: Duration) -> Result<()>;

    /// Tells the server that `server` stopped (graceful shutdown), so it is no longer listed.
    async fn deregister(&self, server: &str) -> Result<()>;

    /// This storage as [`Any`](std::any::Any), for code that knows the backend and needs its
    /// own API (e.g. the PostgreSQL backend's `InTransaction` reaching the PostgreSQL
    /// storage behind a client). The default is `None`.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}
