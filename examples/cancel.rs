//! Cancellation and deletion: `Client::cancel` and `Client::delete`.
//!
//! Cancels a job while a worker runs it (its `JobContext` token fires and it ends Deleted),
//! cancels a scheduled job before it runs (deleted at once), and deletes a queued one.
//!
//! ```text
//! cargo run --example cancel                                   # in memory
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example cancel  # on Redis
//! ```

use jobs::storage::Cancellation;
use jobs::{background_job, enqueue, schedule, Client, JobContext, JobId, JobState, Worker};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exports rows one by one, stopping when asked to.
#[background_job(queue = "cancel")]
async fn export(rows: u64, ctx: JobContext) -> Result<(), String> {
    for row in 0..rows {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
            () = ctx.cancelled() => {
                println!("  export: token fired at row {row}, stopping");
                return Err(format!("stopped at row {row}"));
            }
        }
    }
    Ok(())
}

async fn state(client: &Client, id: &JobId) -> anyhow::Result<JobState> {
    Ok(client.job(id).await?.map_or(JobState::Deleted, |i| i.state))
}

async fn wait_for(client: &Client, id: &JobId, wanted: JobState) -> anyhow::Result<()> {
    while state(client, id).await? != wanted {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage: Arc<dyn jobs::Storage> = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());
    client.install();

    // Not running yet: a scheduled job is deleted by `cancel`, a queued one by `delete`.
    let later = schedule!(export(10), in = Duration::from_secs(3600)).await?;
    println!(
        "cancel scheduled {later}: {:?}",
        client.cancel(&later).await?
    );
    let queued = enqueue!(export(10)).await?;
    println!("delete queued {queued}: {}", client.delete(&queued).await?);

    let worker = Worker::builder_shared(storage.clone())
        .queues(["cancel"])
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));

    // A running job: a minute of work, cancelled after it started.
    let id = enqueue!(export(6_000)).await?;
    wait_for(&client, &id, JobState::Processing).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = Instant::now();
    let answer = client.cancel(&id).await?;
    println!("cancel running {id}: {answer:?}");
    assert_eq!(answer, Cancellation::Requested);
    wait_for(&client, &id, JobState::Deleted).await?;
    println!("  {id} is Deleted {:?} after the cancel", asked.elapsed());
    let info = client
        .job(&id)
        .await?
        .expect("kept for the retention period");
    for change in &info.history {
        println!(
            "    {:<10} {}",
            change.state.as_str(),
            change.reason.as_deref().unwrap_or("")
        );
    }
    println!("cancel it again: {:?}", client.cancel(&id).await?);

    let _ = stop.send(());
    running.await??;
    Ok(())
}
