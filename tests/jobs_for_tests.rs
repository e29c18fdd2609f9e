//! Jobs performed by the integration tests and the `jobs-test-worker` binary.

use std::time::Duration;

/// Sleeps `ms` milliseconds, then succeeds: a job that is easy to kill mid-run.
#[jobs::background_job(queue = "crash", retries = 5)]
pub async fn sleepy(n: u64, ms: u64) {
    let _ = n;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Does nothing: the cheapest job, for throughput and memory.
#[jobs::background_job(queue = "bulk")]
pub async fn noop(n: u64) {
    let _ = n;
}

/// Sleeps `ms` milliseconds; at most one runs at a time across all worker processes.
#[jobs::background_job(queue = "exclusive", concurrency = 1)]
pub async fn exclusive(n: u64, ms: u64) {
    let _ = n;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
