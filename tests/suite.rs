//! What the storage conformance tests share: a job, queue names, and fetch and completion
//! shorthands over the `Storage` trait.

use jobs::storage::{now_ms, Completion, FetchRequest, FetchedJob, NewJob, Outcome};
use jobs::{JobState, Storage};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lease of fetches that must not run out during a test.
pub const LEASE: Duration = Duration::from_secs(30);

/// Job `n` of `queue`.
pub fn job(queue: &str, n: u64) -> NewJob {
    NewJob::new(queue, "conformance::job", format!("{{\"n\":{n}}}"))
}

/// Queue names as a fetch takes them.
pub fn queues(names: &[&str]) -> Vec<Arc<str>> {
    names.iter().map(|&q| Arc::from(q)).collect()
}

/// A fetch of up to `max` jobs from `queues` with a 30 s lease that does not wait for jobs.
pub fn now_request(queues: &[Arc<str>], max: usize) -> FetchRequest<'_> {
    FetchRequest::new(queues, max, LEASE, Duration::ZERO)
}

/// Up to `max` jobs of `q`, without waiting.
///
/// # Panics
///
/// When the storage fails.
pub async fn fetch(
    s: &dyn Storage,
    q: &[Arc<str>],
    max: usize,
    lease: Duration,
) -> Vec<FetchedJob> {
    s.fetch(FetchRequest::new(q, max, lease, Duration::ZERO))
        .await
        .expect("fetch")
}

/// The next job of `q`, fetching (and waiting up to 10 s) until one is due.
///
/// # Panics
///
/// When the storage fails or no job comes due in time.
pub async fn fetch_when_due(s: &dyn Storage, q: &[Arc<str>], lease: Duration) -> FetchedJob {
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        let req = FetchRequest::new(q, 1, lease, Duration::from_millis(200));
        if let Some(j) = s.fetch(req).await.expect("fetch").pop() {
            return j;
        }
    }
    panic!("no job came due within 10 s");
}

/// The completion of `j` with `outcome`, started now.
pub fn done(j: &FetchedJob, outcome: Outcome) -> Completion {
    Completion::new(j.lease(), now_ms(), outcome)
}

/// The states of a job's history, oldest first.
pub fn states(info: &jobs::storage::JobInfo) -> Vec<JobState> {
    info.history.iter().map(|c| c.state).collect()
}
