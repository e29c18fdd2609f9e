//! Timeouts: `#[background_job(timeout = "...")]` limits each attempt.
//!
//! The first attempt hangs; at the timeout the worker drops it (and fires its `JobContext`
//! token, for work it handed to other tasks), the attempt fails as timed out, and the retry
//! policy schedules another attempt, which succeeds.
//!
//! ```text
//! cargo run --example timeout                                   # in memory
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example timeout  # on Redis
//! ```

use jobs::{background_job, enqueue, Client, JobContext, JobState, RetryBackoff, Worker};
use std::sync::Arc;
use std::time::Duration;

/// Calls a slow service: the first attempt hangs, later ones answer at once.
#[background_job(queue = "timeout", timeout = "300ms", retries = 2)]
async fn fetch_rates(currency: String, ctx: JobContext) {
    println!("  attempt {} for {currency}", ctx.attempt());
    if ctx.attempt() == 1 {
        // Hangs: the 300 ms timeout ends this attempt.
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage: Arc<dyn jobs::Storage> = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());
    client.install();

    let id = enqueue!(fetch_rates("EUR".into())).await?;
    let worker = Worker::builder_shared(storage.clone())
        .queues(["timeout"])
        // Short retry delays for the example (the default starts at 2 s).
        .retry_backoff(RetryBackoff::exponential(Duration::from_millis(200)))
        .build()?;
    let probe = client.clone();
    let watched = id.clone();
    worker
        .run_until(async move {
            while !probe
                .job(&watched)
                .await
                .ok()
                .flatten()
                .is_some_and(|i| i.state.is_final())
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;

    let info = client.job(&id).await?.expect("kept");
    println!(
        "{id} ended {} after {} attempts:",
        info.state, info.attempts
    );
    for change in &info.history {
        println!(
            "    {:<10} {}",
            change.state.as_str(),
            change.reason.as_deref().unwrap_or("")
        );
    }
    assert_eq!(info.state, JobState::Succeeded);
    Ok(())
}
