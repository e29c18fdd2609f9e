//! The soak: a steady load for `--minutes`, with 1 % of jobs failing once (retried after the
//! worker's backoff) and 1 % delayed by a second. Prints one line a minute with the worker's
//! RSS, Redis's `used_memory` and the minute's throughput: with retention bounding what is kept,
//! both memories stay flat after the first minute.

use crate::report::Report;
use crate::Args;
use jobs::{enqueue, schedule, Client, JobContext, Storage, Worker};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The soak's queue.
const QUEUE: &str = "soak";

/// Soak jobs performed in this process (attempts that succeeded).
static SUCCEEDED: AtomicU64 = AtomicU64::new(0);

/// Does nothing, except that one job in a hundred fails its first attempt.
#[jobs::background_job(name = "bench.soak", queue = "soak", retries = 3)]
async fn soak_job(n: u64, ctx: JobContext) -> Result<(), String> {
    if n.is_multiple_of(100) && ctx.attempt() == 1 {
        return Err("fails once, on purpose".to_owned());
    }
    SUCCEEDED.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Runs the soak and returns its last line (the per-minute lines go to stdout as they come).
pub(crate) async fn run(
    args: &Args,
    storage: &Arc<dyn Storage>,
    backend: &'static str,
) -> anyhow::Result<Report> {
    let client = Client::from_shared(storage.clone());
    let worker = Worker::builder_shared(storage.clone())
        .queues([QUEUE])
        .concurrency(args.concurrency)
        .fetch_batch(args.batch)
        .retry_backoff(jobs::RetryBackoff::exponential(Duration::from_millis(500)))
        .build()?;
    let minutes = args.minutes.max(1);
    let end = Instant::now() + Duration::from_secs(60 * minutes);
    let running = tokio::spawn(worker.run_until(tokio::time::sleep_until(end.into())));
    let producer = tokio::spawn(produce(client, args.rate.max(1), end));
    let mut minute = tokio::time::interval_at(
        (Instant::now() + Duration::from_secs(60)).into(),
        Duration::from_secs(60),
    );
    let mut last = 0;
    for m in 1..=minutes {
        minute.tick().await;
        let done = SUCCEEDED.load(Ordering::Relaxed);
        let line = Report::new("soak", backend, done - last)
            .with("minute", m)
            .with("jobs_per_s", (done - last) / 60)
            .with("rss_kib", rss_kib().unwrap_or(0))
            .with("redis_used_memory", redis_used_memory(args).unwrap_or(0));
        println!("{}", line.finish());
        last = done;
    }
    producer.await??;
    running.await??;
    let st = storage.stats(QUEUE).await?;
    Ok(
        Report::new("soak", backend, SUCCEEDED.load(Ordering::Relaxed))
            .with("minutes", minutes)
            .with("succeeded", st.succeeded_total)
            .with("failed", st.failed_total)
            .with("left", st.enqueued + st.scheduled + st.processing),
    )
}

/// Enqueues at `rate` jobs a second until `end`: one in a hundred is delayed by a second.
async fn produce(client: Client, rate: u64, end: Instant) -> anyhow::Result<()> {
    #[allow(clippy::cast_precision_loss)]
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        n += 1;
        if n % 100 == 1 {
            schedule!(&client, soak_job(n), in = Duration::from_secs(1)).await?;
        } else {
            enqueue!(&client, soak_job(n)).await?;
        }
    }
    Ok(())
}

/// This process's resident memory, from `/proc/self/status` (Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Redis's `used_memory`, read with `redis-cli` (the bench has no Redis client of its own).
fn redis_used_memory(args: &Args) -> Option<u64> {
    if args.backend != crate::Backend::Redis {
        return None;
    }
    let out = std::process::Command::new("redis-cli")
        .args(["-u", &args.redis_url, "info", "memory"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().find(|l| l.starts_with("used_memory:"))?;
    line.trim_start_matches("used_memory:").trim().parse().ok()
}
