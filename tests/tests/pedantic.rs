//! The macros' output compiles cleanly under a strict user crate: this file is built by
//! `cargo clippy --workspace --all-targets -- -D warnings` with the lints below, and its jobs
//! run on a real worker.
#![deny(warnings, unused_qualifications, missing_docs, clippy::pedantic)]

use jobs::{background_job, enqueue, job, schedule, JobContext, JobState, MemoryStorage, Worker};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// App state shared by the jobs.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

/// A public async job returning `anyhow::Result`, with state and context.
///
/// # Errors
///
/// Never, in practice: attempts start at 1.
#[background_job(
    queue = "critical",
    retries = 2,
    timeout = "30s",
    name = "pedantic.count"
)]
pub async fn count(step: usize, #[state] counter: Counter, ctx: JobContext) -> anyhow::Result<()> {
    anyhow::ensure!(ctx.attempt() >= 1, "attempts start at 1");
    counter.0.fetch_add(step, Ordering::SeqCst);
    Ok(())
}

/// A public sync job returning `Result<(), String>`.
///
/// # Errors
///
/// When `text` is empty.
#[background_job]
pub fn label(text: String, #[state] counter: Counter) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty label".to_owned());
    }
    counter.0.fetch_add(text.len(), Ordering::SeqCst);
    Ok(())
}

#[background_job]
async fn private_unit(#[state] counter: Counter) {
    counter.0.fetch_add(100, Ordering::SeqCst);
}

#[background_job]
fn private_sync_unit(values: Vec<u64>, #[state] counter: Counter) {
    let total: u64 = values.iter().sum();
    counter
        .0
        .fetch_add(usize::try_from(total).unwrap_or(0), Ordering::SeqCst);
}

#[tokio::test]
async fn strict_jobs_compile_and_run() -> anyhow::Result<()> {
    let storage = MemoryStorage::new();
    let client = jobs::Client::new(storage.clone());
    client.install();
    let counter = Counter::default();

    let ids = vec![
        enqueue!(&client, count(1)).await?,
        enqueue!(label("abc".to_owned())).await?,
        enqueue!(private_unit()).await?,
        client
            .enqueue(job!(private_sync_unit(vec![1, 2, 3])))
            .await?,
        schedule!(&client, count(10), in = Duration::ZERO).await?,
        schedule!(count(1000), at = SystemTime::now()).await?,
    ];
    assert_eq!(ids[0].queue(), "critical");

    let worker = Worker::builder(storage)
        .queues(["critical", "default"])
        .state(counter.clone())
        .build()?;
    worker
        .run_until(async {
            for _ in 0..200 {
                if counter.0.load(Ordering::SeqCst) == 1 + 3 + 100 + 6 + 10 + 1000 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await?;
    assert_eq!(counter.0.load(Ordering::SeqCst), 1120);
    for id in &ids {
        let info = client.job(id).await?.expect("kept after success");
        assert_eq!(info.state, JobState::Succeeded, "{id}");
    }
    Ok(())
}
