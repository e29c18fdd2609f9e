//! Prometheus metrics (feature `metrics`): a few jobs run (one fails once and is retried),
//! then the metrics are printed in the Prometheus text format, as a `/metrics` endpoint would
//! serve them.
//!
//! ```text
//! cargo run --example metrics                                   # in memory
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example metrics  # on Redis
//! ```
//!
//! The library records through the `metrics` facade and never installs a recorder: the
//! application does, here `metrics-exporter-prometheus` (serve `handle.render()` from your
//! HTTP server, or use the exporter's own listener).

use jobs::{background_job, enqueue, Client, JobContext, RetryBackoff, Worker};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::time::Duration;

#[background_job(queue = "metrics-example")]
async fn resize(image: u64) {
    tokio::time::sleep(Duration::from_millis(5 + image)).await;
}

/// Fails its first attempt, then succeeds.
#[background_job(queue = "metrics-example", retries = 2)]
async fn notify(user: u64, ctx: JobContext) -> Result<(), String> {
    if ctx.attempt() == 1 {
        return Err(format!("user {user}: mail server busy"));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Install the recorder first: clients and workers take their handles from it.
    let handle = PrometheusBuilder::new()
        // Histograms with buckets (the exporter's default is a summary).
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0],
        )?
        .install_recorder()?;

    let storage = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());
    client.install();
    for image in 0..5 {
        enqueue!(resize(image)).await?;
    }
    let flaky = enqueue!(notify(7)).await?;

    let worker = Worker::builder_shared(storage.clone())
        .queues(["metrics-example"])
        .retry_backoff(RetryBackoff::exponential(Duration::from_millis(50)))
        // Gauges (pending, scheduled, processing, failed, oldest pending age, busy slots)
        // are sampled at this interval, with one storage call per queue.
        .metrics_interval(Duration::from_millis(100))
        .build()?;
    let probe = client.clone();
    worker
        .run_until(async move {
            loop {
                let stats = probe.stats("metrics-example").await.expect("stats");
                let done = probe.job(&flaky).await.expect("job").expect("kept").state
                    == jobs::JobState::Succeeded;
                if done && stats.enqueued + stats.scheduled + stats.processing == 0 {
                    // One more sample of the gauges, now that the queue is empty.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;

    print!("{}", handle.render());
    Ok(())
}
