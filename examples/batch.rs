//! Batches: many jobs stored at once, and a job that runs once all of them succeeded.
//!
//! Runs on the in-memory storage; set `REDIS_URL` to run on Redis.
//!
//! ```text
//! cargo run --example batch
//! ```

use jobs::{background_job, Client, JobState, Worker};
use std::sync::Arc;
use std::time::Duration;

#[background_job(queue = "batch-example")]
async fn thumbnail(image: u64) {
    tokio::time::sleep(Duration::from_millis(10 * (image % 3))).await;
    println!("  thumbnail of image {image} made");
}

#[background_job(queue = "batch-example")]
async fn publish_gallery(gallery: u64) {
    println!("  gallery {gallery} published: every thumbnail is ready");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage: Arc<dyn jobs::Storage> = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());

    let batch = client
        .batch((1..=6).map(|image| jobs::job!(thumbnail(image))))
        .then(jobs::job!(publish_gallery(1)))
        .await?;
    let then = batch.then.clone().expect("a continuation was given");
    println!(
        "batch {} stored with {} jobs; {then} waits for them",
        batch.id,
        batch.jobs.len()
    );

    println!("running a worker");
    let worker = Worker::builder_shared(storage.clone())
        .queues(["batch-example"])
        .build()?;
    let c = client.clone();
    let (id, watched) = (batch.id.clone(), then.clone());
    worker
        .run_until(async move {
            let mut last = None;
            loop {
                if let Ok(Some(p)) = c.batch_progress(&id).await {
                    if last != Some(p.succeeded) {
                        println!("progress: {}/{} succeeded", p.succeeded, p.total);
                        last = Some(p.succeeded);
                    }
                }
                let state = c.job(&watched).await.ok().flatten().map(|j| j.state);
                if state == Some(JobState::Succeeded) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await?;
    let progress = client
        .batch_progress(&batch.id)
        .await?
        .expect("batch known");
    println!(
        "done: {}/{} succeeded, continuation {then} succeeded",
        progress.succeeded, progress.total
    );
    assert!(progress.is_done());
    Ok(())
}
