//! Recurring jobs: a per-second heartbeat and a nightly report in Berlin time, scheduled by two
//! workers at once (each tick is still enqueued exactly once), a manual trigger, the listing,
//! and removal.
//!
//! Runs on the embedded in-memory storage; set `REDIS_URL` to run on Redis. Finishes by itself
//! after three heartbeats.
//!
//! ```text
//! cargo run --example recurring
//! ```

use jobs::recurring::Misfire;
use jobs::{background_job, job, Client, Worker};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the jobs did, so the example knows when to stop.
#[derive(Clone, Default)]
struct Counts {
    heartbeats: Arc<AtomicUsize>,
    reports: Arc<AtomicUsize>,
}

#[background_job]
async fn heartbeat(service: String, #[state] counts: Counts) {
    let n = counts.heartbeats.fetch_add(1, Ordering::SeqCst) + 1;
    println!("  heartbeat #{n} of {service}");
}

#[background_job]
async fn nightly_report(kind: String, #[state] counts: Counts) {
    counts.reports.fetch_add(1, Ordering::SeqCst);
    println!("  built the {kind} report");
}

/// A time relative to now, e.g. `in 3600 s` or `2 s ago`.
fn relative(t: Option<SystemTime>) -> String {
    let Some(t) = t else {
        return "-".to_owned();
    };
    match t.duration_since(SystemTime::now()) {
        Ok(ahead) => format!("in {} s", ahead.as_secs()),
        Err(behind) => format!("{} s ago", behind.duration().as_secs()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage: Arc<dyn jobs::Storage> = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());

    println!("registering recurring jobs");
    client
        .recurring("heartbeat", "* * * * * *", job!(heartbeat("api".into())))
        .misfire(Misfire::Skip)
        .register()
        .await?;
    client
        .recurring(
            "nightly-report",
            "0 0 3 * * *",
            job!(nightly_report("sales".into())),
        )
        .time_zone("Europe/Berlin")
        .register()
        .await?;
    match client
        .recurring("broken", "0 0 25 * * *", job!(heartbeat("x".into())))
        .register()
        .await
    {
        Ok(_) => anyhow::bail!("an invalid cron expression was accepted"),
        Err(e) => println!("  refused, as expected: {e}"),
    }
    for e in client.recurring_jobs().await? {
        println!(
            "  {:<15} cron `{}` in {}, next run {}",
            e.id,
            e.cron,
            e.time_zone,
            relative(e.next_run())
        );
    }

    println!("triggering the nightly report now");
    let id = client.trigger_recurring("nightly-report").await?;
    println!("  enqueued job {id}");

    println!("running two workers until three heartbeats ran");
    let counts = Counts::default();
    let workers: Vec<Worker> = (0..2)
        .map(|_| {
            Worker::builder_shared(storage.clone())
                .state(counts.clone())
                .build()
        })
        .collect::<Result<_, _>>()?;
    let mut running = Vec::new();
    for worker in workers {
        let counts = counts.clone();
        running.push(tokio::spawn(worker.run_until(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while counts.heartbeats.load(Ordering::SeqCst) < 3
                || counts.reports.load(Ordering::SeqCst) < 1
            {
                if tokio::time::Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })));
    }
    for r in running {
        r.await??;
    }
    let beats = counts.heartbeats.load(Ordering::SeqCst);
    let reports = counts.reports.load(Ordering::SeqCst);
    println!("  {beats} heartbeats and {reports} report(s) ran");
    anyhow::ensure!(
        beats >= 3 && reports == 1,
        "the jobs did not all run in 30 s"
    );

    for e in client.recurring_jobs().await? {
        println!("  {:<15} last run {}", e.id, relative(e.last_run()));
    }
    println!("removing them");
    for id in ["heartbeat", "nightly-report"] {
        client.remove_recurring(id).await?;
    }
    println!(
        "  {} recurring jobs left",
        client.recurring_jobs().await?.len()
    );
    Ok(())
}
