//! The flows capability of a storage ([`Flows`]: continuations, batches, limits) and its
//! records: unique-job keys carried by a [`NewJob`],
//! continuation conditions ([`Finish`]) and concurrency / rate limit requests ([`LimitRequest`]).
//!
//! [`NewJob`]: super::NewJob

use super::{Lease, NewJob};
use crate::error::Result;
use crate::job::JobId;
use async_trait::async_trait;
use std::time::Duration;

/// When a continuation runs, relative to how its parent ended.
///
/// A parent that fails for good stays *Failed* until someone requeues or deletes it, so only
/// [`Finish::Any`] treats *Failed* as an end: the other conditions keep the continuation
/// waiting, and it runs (or is deleted) once the parent is requeued and succeeds (or is deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Finish {
    /// Run once the parent succeeded; delete the continuation when the parent is deleted.
    #[default]
    Success,
    /// Run once the parent succeeded, failed for good, or was deleted.
    Any,
    /// Run once the parent was deleted; delete the continuation when the parent succeeded.
    Deleted,
}

impl Finish {
    /// The one-letter code stored by backends.
    pub fn code(self) -> &'static str {
        match self {
            Finish::Success => "s",
            Finish::Any => "a",
            Finish::Deleted => "d",
        }
    }

    /// Parses [`Finish::code`].
    pub fn from_code(code: &str) -> Option<Finish> {
        Some(match code {
            "s" => Finish::Success,
            "a" => Finish::Any,
            "d" => Finish::Deleted,
            _ => return None,
        })
    }

    /// What happens to a continuation waiting on `self` when its parent enters `end`
    /// (`O` succeeded, `F` failed, `D` deleted): `Some(true)` run it, `Some(false)` delete it,
    /// `None` keep waiting.
    pub fn decide(self, end: char) -> Option<bool> {
        match (self, end) {
            (Finish::Success, 'O') | (Finish::Any, 'O' | 'F' | 'D') | (Finish::Deleted, 'D') => {
                Some(true)
            }
            (Finish::Success, 'D') | (Finish::Deleted, 'O') => Some(false),
            _ => None,
        }
    }
}

/// A uniqueness claim carried by a [`NewJob`](super::NewJob): while a job with the same key is
/// live on the same queue (enqueued, scheduled, processing or awaiting), storing another returns
/// the live job's id instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UniqueKey {
    /// The key; jobs with equal keys on one queue are duplicates.
    pub key: String,
    /// The claim lapses after this long even if the job is still live (`None`: only when it
    /// finishes).
    pub window: Option<Duration>,
}

impl UniqueKey {
    /// A claim on `key`, optionally lapsing after `window`.
    pub fn new(key: impl Into<String>, window: Option<Duration>) -> Self {
        UniqueKey {
            key: key.into(),
            window,
        }
    }
}

/// One leased job asking for a slot under its limits, see [`Flows::acquire_limits`].
///
/// [`Flows::acquire_limits`]: super::Flows::acquire_limits
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LimitRequest {
    /// The lease of the job asking; a concurrency slot is held exactly as long as this lease.
    pub lease: Lease,
    /// The limit's key, e.g. the job name plus the value of its `limit_key` argument. Keys are
    /// scoped to the job's queue.
    pub key: String,
    /// At most this many jobs with this key hold a slot at once.
    pub concurrency: Option<u32>,
    /// At most `.0` jobs with this key start within any window of `.1`.
    pub rate: Option<(u32, Duration)>,
}

impl LimitRequest {
    /// A request of the job leased as `lease` for the limit `key`.
    pub fn new(
        lease: Lease,
        key: impl Into<String>,
        concurrency: Option<u32>,
        rate: Option<(u32, Duration)>,
    ) -> Self {
        LimitRequest {
            lease,
            key: key.into(),
            concurrency,
            rate,
        }
    }
}

/// What [`Flows::enqueue_batch`](super::Flows::enqueue_batch) stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Batch {
    /// The batch's id, for [`Flows::batch_progress`](super::Flows::batch_progress). It is
    /// numbered like a job of the batch's queue but is not a job.
    pub id: JobId,
    /// The member jobs, in order.
    pub jobs: Vec<JobId>,
    /// The continuation that runs once every member succeeded.
    pub then: Option<JobId>,
}

/// How far a batch got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BatchProgress {
    /// Members in all.
    pub total: u64,
    /// Members that succeeded.
    pub succeeded: u64,
    /// Times a member failed for good (a member requeued after failing and then succeeding
    /// counts here and in `succeeded`).
    pub failed: u64,
}

impl BatchProgress {
    /// Whether every member succeeded.
    pub fn is_done(&self) -> bool {
        self.succeeded >= self.total
    }
}

/// Flows: continuations, batches and concurrency / rate limits (unique jobs travel in
/// [`NewJob::unique`](super::NewJob::unique) and are kept by [`Delivery::enqueue`](super::Delivery::enqueue)).
#[async_trait]
pub trait Flows: Send + Sync + 'static {
    /// Stores `child` in *Awaiting* until `parent` ends as `on` says, then makes it ready (or
    /// deletes it). When the parent already ended, the child is decided at once. Returns the
    /// child's id, or `None` when the parent is unknown (then the child never runs).
    async fn continue_with(
        &self,
        parent: &JobId,
        child: NewJob,
        on: Finish,
    ) -> Result<Option<JobId>>;

    /// The JSON return value of the parent of continuation `id`, once the parent succeeded with
    /// a serializable value.
    async fn parent_result(&self, id: &JobId) -> Result<Option<String>>;

    /// Asks for a slot under each request's limits, atomically per queue. A job that gets one
    /// holds it for as long as it holds its lease (completion, release or lease expiry frees
    /// it). A job that does not is moved from *Processing* back to *Scheduled* at `retry_in`
    /// from now (or when the rate window frees a start, if later) without counting an attempt.
    /// Returns, per request, whether the slot was granted.
    async fn acquire_limits(
        &self,
        requests: &[LimitRequest],
        retry_in: Duration,
    ) -> Result<Vec<bool>>;

    /// Stores `jobs` (all on one queue) as a batch, all or none, with an optional continuation
    /// `then` (on any queue) that waits in *Awaiting* until every member succeeded. An empty
    /// batch's continuation is enqueued at once.
    ///
    /// # Errors
    ///
    /// When the jobs are on different queues, or the storage fails.
    async fn enqueue_batch(&self, jobs: Vec<NewJob>, then: Option<NewJob>) -> Result<Batch>;

    /// The progress of batch `id`, if the storage knows it: a batch is known until it finished
    /// (every member succeeded), and then for as long as [`Retention`](super::Retention) keeps succeeded jobs (at
    /// most `succeeded_max` finished batches per queue, none older than `succeeded_ttl`).
    async fn batch_progress(&self, id: &JobId) -> Result<Option<BatchProgress>>;
}
