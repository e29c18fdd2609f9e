//! The monitoring capability of a storage: what operators read (a job, queues and their counts,
//! jobs by state, history, servers, batches) and the actions they take (requeue, delete,
//! cancel, pause a queue or a recurring job).
//!
//! These are the primitives each backend implements; [`Monitor`](crate::monitor::Monitor)
//! puts them together for dashboards and the CLI.

use super::{Cancellation, JobInfo, QueueStats};
use crate::error::Result;
use crate::job::JobId;
use crate::monitor::{
    BatchPage, Count, JobDetail, JobPage, JobQuery, QueueSummary, Resolution, ServerReport,
    Snapshot,
};
use crate::state::JobState;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Monitoring, what operators read and act on.
///
/// Every call is bounded: none scans all jobs of a state, so each stays fast with a million
/// jobs stored (see [`JobQuery`] for how filtered listings bound themselves).
#[async_trait]
pub trait Monitoring: Send + Sync + 'static {
    /// The job with this id, if the storage still has it.
    async fn job(&self, id: &JobId) -> Result<Option<JobInfo>>;

    /// Counts for one queue.
    async fn stats(&self, queue: &str) -> Result<QueueStats>;

    /// Failed jobs of a queue, oldest first, at most `limit`.
    async fn failed(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>>;

    /// Names of the worker processes whose heartbeat has not run out.
    async fn servers(&self) -> Result<Vec<String>>;

    /// Puts a failed (or deleted) job back on its queue for a fresh attempt: its counts of
    /// attempts, crashes and orphaned leases start again from zero. Returns whether the job was
    /// found in a state that allows it.
    async fn requeue(&self, id: &JobId) -> Result<bool>;

    /// Deletes a job that is enqueued, scheduled, failed or awaiting (a continuation that then
    /// never runs, whatever its parent does). Returns whether it was found in such a state.
    async fn delete(&self, id: &JobId) -> Result<bool>;

    /// Cancels a job, atomically by its state: an enqueued, scheduled or awaiting job is deleted
    /// (history reason `cancelled`; an awaiting continuation then never runs, whatever its
    /// parent does); a processing job gets a cancel request, which its worker finds
    /// with [`cancel_requested`](super::Delivery::cancel_requested) and acts on (the request is cleared
    /// when that job's attempt completes). A finished job is left alone.
    async fn cancel(&self, id: &JobId) -> Result<Cancellation>;

    /// [`requeue`](Self::requeue) for many jobs; returns, per id, whether it was requeued.
    /// Backends may batch the calls.
    async fn requeue_many(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        let mut done = Vec::with_capacity(ids.len());
        for id in ids {
            done.push(self.requeue(id).await?);
        }
        Ok(done)
    }

    /// [`delete`](Self::delete) for many jobs; returns, per id, whether it was deleted.
    /// Backends may batch the calls.
    async fn delete_many(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        let mut done = Vec::with_capacity(ids.len());
        for id in ids {
            done.push(self.delete(id).await?);
        }
        Ok(done)
    }

    /// The names of the queues this storage holds jobs (or a pause, or history) for, sorted.
    async fn queue_names(&self) -> Result<Vec<String>>;

    /// One queue's counts by state, latency, pause and lifetime counters, read at once.
    async fn queue_summary(&self, queue: &str) -> Result<QueueSummary>;

    /// How many jobs of `queue` are in `state` (exact, or capped or estimated where counting
    /// would not be cheap; see [`Count`]).
    async fn count(&self, queue: &str, state: JobState) -> Result<Count>;

    /// One page of the jobs of `queue` in `query.state` that pass its filters (`query.queue` is
    /// ignored: [`Monitor::jobs`](crate::monitor::Monitor::jobs) walks the queues).
    ///
    /// # Errors
    ///
    /// A configuration error for a cursor this listing did not make.
    async fn list_jobs(&self, queue: &str, query: &JobQuery) -> Result<JobPage>;

    /// The job with everything its page shows. The default reads [`job`](Self::job) and what
    /// its history tells (last error, parent); backends add what they keep (return value,
    /// continuations, batch).
    async fn job_detail(&self, id: &JobId) -> Result<Option<JobDetail>> {
        Ok(self.job(id).await?.map(JobDetail::from_info))
    }

    /// Pauses (`true`) or resumes a queue. The state is stored: no worker leases a job of a
    /// paused queue, from its next fetch on (jobs already fetched still run), until it is
    /// resumed, which wakes the workers waiting for it.
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()>;

    /// Pauses (`true`) or resumes a recurring job: while paused, its ticks pass without a job
    /// (the schedulers advance it as if skipped). Returns whether it exists.
    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool>;

    /// The ids of the paused recurring jobs, sorted.
    async fn paused_recurring(&self) -> Result<Vec<String>>;

    /// Stores what worker `report.name` says about itself, kept for `ttl`. Workers send it with
    /// each heartbeat.
    async fn report_server(&self, report: &ServerReport, ttl: Duration) -> Result<()>;

    /// The latest reports of the workers whose report has not run out, by name.
    async fn server_reports(&self) -> Result<Vec<ServerReport>>;

    /// Records the lifetime counters of `queues` as the snapshots of the minute and the hour
    /// `now_ms` falls in, where those have none yet (the first writer of a bucket wins; see
    /// [History](crate::monitor#history)). Workers call it at the start of each minute they were busy in.
    async fn record_history(&self, queues: &[Arc<str>], now_ms: u64) -> Result<()>;

    /// The snapshots of `queue` kept at `resolution` (at most [`Resolution::ring`]), in any
    /// order.
    async fn history_snapshots(&self, queue: &str, resolution: Resolution)
        -> Result<Vec<Snapshot>>;

    /// One page of the batches stored on `queue`, newest first where the storage keeps an
    /// order, continued at `cursor`.
    async fn batches(&self, queue: &str, cursor: Option<&str>, limit: usize) -> Result<BatchPage>;
}
