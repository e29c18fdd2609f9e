//! Concurrency and rate limits: at most N runs at once across every worker, per key.
//!
//! Two workers with 8 slots each share the jobs, yet at most 2 `export` jobs run at once and at
//! most one per account.
//!
//! Runs on the in-memory storage; set `REDIS_URL` to run on Redis.
//!
//! ```text
//! cargo run --example concurrency
//! ```

use jobs::{background_job, Client, Worker};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

static RUNNING: AtomicU32 = AtomicU32::new(0);
static MOST: AtomicU32 = AtomicU32::new(0);

/// At most 2 at once in all, whatever the workers' own concurrency.
#[background_job(queue = "concurrency-example", concurrency = 2)]
async fn export(report: u64) {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MOST.fetch_max(now, Ordering::SeqCst);
    println!("  export {report} started ({now} running)");
    tokio::time::sleep(Duration::from_millis(100)).await;
    RUNNING.fetch_sub(1, Ordering::SeqCst);
}

/// One at a time per account (a mutex per key), and at most 20 starts per second.
#[background_job(
    queue = "concurrency-example",
    concurrency = 1,
    limit_key = "account",
    rate = "20/1s"
)]
async fn sync_account(account: u64, page: u64) {
    println!("  syncing account {account}, page {page}");
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage: Arc<dyn jobs::Storage> = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());
    let mut ids = client
        .enqueue_many((0..8).map(|n| jobs::job!(export(n))))
        .await?;
    ids.extend(
        client
            .enqueue_many((0..6).map(|n| jobs::job!(sync_account(n % 2, n))))
            .await?,
    );

    println!("running two workers");
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut workers = Vec::new();
    for n in 0..2 {
        let worker = Worker::builder_shared(storage.clone())
            .queues(["concurrency-example"])
            .concurrency(8)
            .name(format!("concurrency-example-{n}"))
            .build()?;
        let stop = stop.clone();
        workers.push(tokio::spawn(
            worker.run_until(async move { stop.notified().await }),
        ));
    }
    loop {
        let mut done = true;
        for id in &ids {
            let state = client.job(id).await?.map(|j| j.state);
            done &= state == Some(jobs::JobState::Succeeded);
        }
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.notify_waiters();
    for w in workers {
        w.await??;
    }
    let most = MOST.load(Ordering::SeqCst);
    println!(
        "all {} jobs done; at most {most} exports ran at once",
        ids.len()
    );
    assert!(most <= 2);
    Ok(())
}
