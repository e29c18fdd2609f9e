//! One queue as operators see it: [`QueueSummary`].

use super::Count;
use serde::Serialize;
use std::time::Duration;

/// A queue's counts by state, how far behind it is, and whether it is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueSummary {
    /// The queue's name.
    pub name: String,
    /// Jobs waiting on the queue (enqueued).
    pub pending: Count,
    /// Jobs waiting for their due time (delayed jobs and retries).
    pub scheduled: Count,
    /// Jobs leased by a worker.
    pub processing: Count,
    /// Failed jobs kept for inspection.
    pub failed: Count,
    /// When the job at the front of the queue (the next one fetched) was enqueued, in
    /// milliseconds since the Unix epoch; `None` when nothing waits.
    pub oldest_pending_at_ms: Option<u64>,
    /// The age of that job when this summary was read: how far behind the workers are.
    pub latency_ms: Option<u64>,
    /// Whether the queue is paused: no worker fetches from it until it is resumed.
    pub paused: bool,
    /// Lifetime count of successful completions.
    pub succeeded_total: u64,
    /// Lifetime count of jobs that ended Failed.
    pub failed_total: u64,
}

impl QueueSummary {
    /// An empty, running queue named `name` (backends fill in the rest).
    pub fn new(name: impl Into<String>) -> QueueSummary {
        QueueSummary {
            name: name.into(),
            pending: Count::default(),
            scheduled: Count::default(),
            processing: Count::default(),
            failed: Count::default(),
            oldest_pending_at_ms: None,
            latency_ms: None,
            paused: false,
            succeeded_total: 0,
            failed_total: 0,
        }
    }

    /// The same summary with its front job enqueued at `at_ms`, read at `now_ms`.
    #[must_use]
    pub fn oldest_pending(mut self, at_ms: Option<u64>, now_ms: u64) -> QueueSummary {
        self.oldest_pending_at_ms = at_ms;
        self.latency_ms = at_ms.map(|at| now_ms.saturating_sub(at));
        self
    }

    /// [`latency_ms`](Self::latency_ms) as a duration.
    pub fn latency(&self) -> Option<Duration> {
        self.latency_ms.map(Duration::from_millis)
    }

    /// Whether every count is exact.
    pub fn counts_exact(&self) -> bool {
        [self.pending, self.scheduled, self.processing, self.failed]
            .iter()
            .all(Count::is_exact)
    }
}
