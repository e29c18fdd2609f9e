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

/// Runs for two minutes unless cancelled: a job that only ends early when its token fires.
#[jobs::background_job(queue = "cancel", retries = 0)]
pub async fn until_cancelled(n: u64, ctx: jobs::JobContext) -> Result<(), String> {
    let _ = n;
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(120)) => Ok(()),
        () = ctx.cancelled() => Err("stopped: the token fired".to_owned()),
    }
}

/// Sleeps `ms` milliseconds; at most one runs at a time across all worker processes.
#[jobs::background_job(queue = "exclusive", concurrency = 1)]
pub async fn exclusive(n: u64, ms: u64) {
    let _ = n;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
