//! The storage-level records of flow features: unique-job keys carried by a [`NewJob`],
//! continuation conditions ([`Finish`]) and concurrency / rate limit requests ([`LimitRequest`]).
//!
//! [`NewJob`]: super::NewJob

use super::Lease;
use crate::job::JobId;
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

/// One leased job asking for a slot under its limits, see [`Storage::acquire_limits`].
///
/// [`Storage::acquire_limits`]: super::Storage::acquire_limits
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

/// What [`Storage::enqueue_batch`](super::Storage::enqueue_batch) stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Batch {
    /// The batch's id, for [`Storage::batch_progress`](super::Storage::batch_progress). It is
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
