//! The quick start: enqueue a few jobs and let a worker perform them.
//!
//! Runs on the embedded in-memory storage with no server. Set `REDIS_URL` to run on Redis.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use jobs::{background_job, enqueue, Client, JobContext, Worker};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts what the jobs did, so the example can tell when it is done.
#[derive(Clone, Default)]
struct Outbox {
    sent: Arc<AtomicUsize>,
}

#[background_job]
async fn send_welcome_email(user_id: u64, address: String, #[state] outbox: Outbox) {
    println!("  sending a welcome email to user {user_id} <{address}>");
    outbox.sent.fetch_add(1, Ordering::SeqCst);
}

#[background_job(queue = "reports", retries = 2)]
async fn build_report(month: String, ctx: JobContext) -> Result<(), String> {
    if ctx.attempt() == 1 {
        // Fails once to show a retry.
        return Err(format!("the data for {month} is not ready yet"));
    }
    println!("  report for {month} built on attempt {}", ctx.attempt());
    Ok(())
}

#[background_job]
fn resize_image(path: String) {
    // A plain `fn` runs on tokio's blocking pool.
    println!("  resized {path}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage: Arc<dyn jobs::Storage> = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());
    client.install();

    println!("enqueueing jobs");
    let ids = vec![
        enqueue!(send_welcome_email(1, "ada@example.com".into())).await?,
        enqueue!(send_welcome_email(2, "grace@example.com".into())).await?,
        enqueue!(build_report("2026-10".into())).await?,
        enqueue!(&client, resize_image("cat.png".into())).await?,
    ];
    for id in &ids {
        println!("  stored job {id}");
    }

    println!("running a worker");
    let outbox = Outbox::default();
    let worker = Worker::builder_shared(storage.clone())
        .queues(["default", "reports"])
        .state(outbox.clone())
        .retry_backoff(jobs::RetryBackoff::exponential(Duration::from_millis(100)))
        .build()?;
    let watch = client.clone();
    let finished = ids.clone();
    worker
        .run_until(async move {
            loop {
                let mut done = 0;
                for id in &finished {
                    if let Ok(Some(info)) = watch.job(id).await {
                        done += usize::from(info.state.is_final());
                    }
                }
                if done == finished.len() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;

    println!("what happened");
    for id in &ids {
        let info = client.job(id).await?.expect("finished jobs are kept");
        let states: Vec<String> = info.history.iter().map(|c| c.state.to_string()).collect();
        println!("  {id} {:<20} {}", info.name, states.join(" -> "));
    }
    println!("{} welcome emails sent", outbox.sent.load(Ordering::SeqCst));
    Ok(())
}
