//! The retry policy: attempts, backoff, permanent errors, and what happens when attempts run
//! out.
//!
//! ```text
//! cargo run --example retries                                   # in memory
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example retries  # on Redis
//! ```

use jobs::{background_job, enqueue, permanent, Client, JobContext, JobId, RetryBackoff, Worker};
use std::sync::Arc;
use std::time::Duration;

/// Fails twice, then succeeds: retried with the worker's (exponential, jittered) backoff.
#[background_job(queue = "retries", retries = 3)]
async fn sync_inventory(store: u64, ctx: JobContext) -> anyhow::Result<()> {
    if ctx.attempt() < 3 {
        anyhow::bail!("store {store}: warehouse API answered 503");
    }
    Ok(())
}

/// A permanent error: no retry can fix it, so the job fails at once despite `retries = 5`.
#[background_job(queue = "retries", retries = 5)]
async fn charge(amount_cents: i64) -> anyhow::Result<()> {
    if amount_cents <= 0 {
        return Err(permanent(format!("cannot charge {amount_cents} cents")).into());
    }
    Ok(())
}

/// Best effort: once its attempts are used up it is dropped (Deleted), not kept as Failed.
#[background_job(queue = "retries", retries = 1, on_exhausted = "delete")]
async fn warm_cache(key: String) -> Result<(), String> {
    Err(format!("{key}: cache node unreachable"))
}

/// Hangfire-style polynomial backoff: the retry waits `1⁴ + 15 s` (jittered).
#[background_job(queue = "retries", retries = 10, backoff = "polynomial")]
async fn sync_partner_feed(feed: u64) -> Result<(), String> {
    Err(format!("feed {feed}: partner is down"))
}

async fn show(client: &Client, id: &JobId) -> anyhow::Result<()> {
    let info = client.job(id).await?.expect("kept");
    println!(
        "{} ({id}): {} after {} attempt(s)",
        info.name, info.state, info.attempts
    );
    for change in &info.history {
        println!(
            "    {:<10} {}",
            change.state.as_str(),
            change.reason.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage: Arc<dyn jobs::Storage> = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());
    client.install();

    println!("backoff delays (jittered ±25 %):");
    let exponential = RetryBackoff::exponential(Duration::from_secs(2));
    let polynomial = RetryBackoff::polynomial();
    for retry in 1..=5 {
        println!(
            "  retry {retry}: exponential {:>6.1?}, polynomial {:>7.1?}",
            exponential.delay(retry),
            polynomial.delay(retry)
        );
    }

    let ids = vec![
        enqueue!(sync_inventory(7)).await?,
        enqueue!(charge(-5)).await?,
        enqueue!(warm_cache("home-page".into())).await?,
    ];
    let slow = enqueue!(sync_partner_feed(3)).await?;

    let worker = Worker::builder_shared(storage.clone())
        .queues(["retries"])
        // Short delays for the example (the default is exponential from 2 s).
        .retry_backoff(RetryBackoff::exponential(Duration::from_millis(100)))
        .build()?;
    let probe = client.clone();
    let watched = ids.clone();
    let slow_watched = slow.clone();
    worker
        .run_until(async move {
            loop {
                let mut done = true;
                for id in &watched {
                    done &= probe
                        .job(id)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|i| i.state.is_final());
                }
                done &= probe
                    .job(&slow_watched)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|i| i.attempts >= 1);
                if done {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;

    for id in ids.iter().chain([&slow]) {
        show(&client, id).await?;
    }
    // Not left waiting for 15 s: this example is done with it.
    client.delete(&slow).await?;
    Ok(())
}
