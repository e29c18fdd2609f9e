//! The monitoring capability of a storage: what operators read (a job, a queue's counts, failed
//! jobs, live servers) and the actions they take (requeue, delete, cancel).

use super::{Cancellation, JobInfo, QueueStats};
use crate::error::Result;
use crate::job::JobId;
use async_trait::async_trait;

/// Monitoring, what operators read and act on: a job, a queue's counts, failed jobs, live
/// servers, and the actions requeue, delete and cancel.
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
}
