//! Actions on every job a query matches, in bounded chunks: [`BulkAction`], [`BulkReport`].

use serde::Serialize;

/// The most jobs one chunk of a bulk action acts on (one listing call and one batched action).
pub const BULK_CHUNK: usize = 500;

/// What to do with each matching job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BulkAction {
    /// Put failed or deleted jobs back on their queue (see
    /// [`Monitoring::requeue`](crate::storage::Monitoring::requeue)).
    Requeue,
    /// Delete enqueued, scheduled, failed or awaiting jobs (see
    /// [`Monitoring::delete`](crate::storage::Monitoring::delete)).
    Delete,
}

/// What a bulk action did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BulkReport {
    /// Jobs acted on.
    pub acted: u64,
    /// Jobs looked at.
    pub examined: u64,
    /// Where to go on from when it stopped at its bound before the end (`None`: done).
    pub next: Option<String>,
}
