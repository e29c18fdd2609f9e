//! Unique jobs: enqueueing an identical job while one is live returns the existing id.
//!
//! Runs on the in-memory storage; set `REDIS_URL` to run on Redis.
//!
//! ```text
//! cargo run --example unique
//! ```

use jobs::{background_job, enqueue, Client, JobState, Worker};
use std::sync::Arc;
use std::time::Duration;

/// `unique`: an identical call (same arguments) while one is enqueued or running is the same
/// job. `unique_for` bounds how long the claim lasts.
#[background_job(queue = "unique-example", unique_for = "10m")]
async fn reindex_account(account: u64) {
    println!("  reindexing account {account}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage: Arc<dyn jobs::Storage> = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());

    let first = enqueue!(&client, reindex_account(7)).await?;
    let second = enqueue!(&client, reindex_account(7)).await?;
    let other = enqueue!(&client, reindex_account(8)).await?;
    println!("reindex_account(7) twice -> {first} and {second}");
    println!("reindex_account(8)       -> {other}");
    assert_eq!(first, second, "the second call returned the live job");

    // A key of your own: jobs with different arguments but the same key are duplicates.
    let by_key = client
        .submit(jobs::job!(reindex_account(9)))
        .unique_key("nightly-reindex")
        .await?;
    let by_key_again = client
        .submit(jobs::job!(reindex_account(10)))
        .unique_key("nightly-reindex")
        .await?;
    println!("unique_key(\"nightly-reindex\") twice -> {by_key} and {by_key_again}");
    assert_eq!(by_key, by_key_again);

    println!("running a worker");
    let worker = Worker::builder_shared(storage.clone())
        .queues(["unique-example"])
        .build()?;
    let ids = [first.clone(), other, by_key];
    let c = client.clone();
    worker
        .run_until(async move {
            loop {
                let mut done = true;
                for id in &ids {
                    let state = c.job(id).await.ok().flatten().map(|j| j.state);
                    done &= state == Some(JobState::Succeeded);
                }
                if done {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;

    // The job finished, so its key is free: the same call is a new job now.
    let after = enqueue!(&client, reindex_account(7)).await?;
    println!("after it ran, reindex_account(7) -> {after} (a new job)");
    assert_ne!(after, first);
    Ok(())
}
