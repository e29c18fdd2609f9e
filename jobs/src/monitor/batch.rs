//! Batches as listed: [`BatchInfo`] and [`BatchPage`].

use crate::job::JobId;
use crate::storage::BatchProgress;

/// One batch and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchInfo {
    /// The batch's id.
    pub id: JobId,
    /// Its members' progress.
    pub progress: BatchProgress,
    /// The continuation that runs once every member succeeded, if it has one (and the storage
    /// still knows it).
    pub then: Option<JobId>,
}

impl BatchInfo {
    /// Batch `id` at `progress`, continued by `then`.
    pub fn new(id: JobId, progress: BatchProgress, then: Option<JobId>) -> BatchInfo {
        BatchInfo { id, progress, then }
    }
}

/// One page of a queue's batches.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BatchPage {
    /// The batches, newest first.
    pub batches: Vec<BatchInfo>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<String>,
}

impl BatchPage {
    /// A page of `batches` continued at `next`.
    pub fn new(batches: Vec<BatchInfo>, next: Option<String>) -> BatchPage {
        BatchPage { batches, next }
    }
}
