//! `jobs-bench dashboard`: the dashboard and its API over a large store. Fills the storage
//! (unless it already holds the jobs: run it again with the same `--prefix`) with `--jobs` jobs:
//! 89 % pending on `bulk`, 10 % failed on `mail` (every 1,000th with `needle` in its arguments),
//! 1 % scheduled on `later`; serves the dashboard in-process and times 20 loads of every page
//! and API call over HTTP, printing p50 / p95 / max per path and the storage's round trip.

use crate::report::Report;
use crate::Args;
use jobs::monitor::{JobQuery, Monitor};
use jobs::storage::{now_ms, Completion, FetchRequest, NewJob, Outcome};
use jobs::{JobState, Storage};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Loads per path.
const LOADS: usize = 20;
/// Jobs per enqueue call while filling.
const CHUNK: usize = 5_000;

pub(crate) async fn run(
    args: &Args,
    storage: &Arc<dyn Storage>,
    backend: &str,
) -> anyhow::Result<Report> {
    let m = Monitor::from_shared(storage.clone());
    let total = args.jobs;
    let failed = total / 10;
    let scheduled = total / 100;
    let pending = total - failed - scheduled;
    let have = m.queue("bulk").await?.pending;
    // A count "at least" its cap (PostgreSQL caps counts, and without statistics it cannot
    // estimate beyond) says only that more jobs than the cap are there: taken as a filled store
    // (a run reusing its `--prefix`), rather than filling another million on top.
    let filled = have.kind == jobs::monitor::CountKind::AtLeast || have.value >= pending * 9 / 10;
    let have = have.value;
    if !filled {
        let started = Instant::now();
        fill(storage, pending, failed, scheduled).await?;
        eprintln!(
            "filled {total} jobs in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    } else {
        eprintln!("reusing the jobs under this prefix ({have} pending on bulk)");
    }
    let rtt = round_trip(storage).await?;
    let failed_page = m
        .jobs(&JobQuery::new(JobState::Failed).queue("mail").limit(1))
        .await?;
    let one_failed = failed_page
        .jobs
        .first()
        .map(|j| j.id.to_string())
        .ok_or_else(|| anyhow::anyhow!("no failed job"))?;
    // A cursor ten pages deep into the pending jobs.
    let mut q = JobQuery::new(JobState::Enqueued).queue("bulk");
    for _ in 0..10 {
        q.cursor = m.jobs(&q).await?.next;
    }
    let deep = q.cursor.unwrap_or_default();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app: axum::Router = jobs_dashboard::router(jobs_dashboard::Config::new(m.clone()));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let paths = [
        "/".to_owned(),
        "/queues".to_owned(),
        "/jobs?state=enqueued".to_owned(),
        format!("/jobs?state=enqueued&queue=bulk&after={}", encode(&deep)),
        "/jobs?state=failed".to_owned(),
        "/jobs?state=failed&queue=mail&search=needle".to_owned(),
        "/jobs?state=failed&search=no-such-text".to_owned(),
        "/jobs?state=scheduled".to_owned(),
        format!("/jobs/{one_failed}"),
        "/recurring".to_owned(),
        "/servers".to_owned(),
        "/batches".to_owned(),
        "/api/queues".to_owned(),
        "/api/stats".to_owned(),
        "/api/jobs?state=failed".to_owned(),
        format!("/api/jobs/{one_failed}"),
        "/api/history".to_owned(),
    ];
    println!("round trip ({backend}): {:.3} ms (median of 100)", ms(rtt));
    println!(
        "{:<58} {:>9} {:>9} {:>9}",
        "path", "p50 ms", "p95 ms", "max ms"
    );
    let mut worst_p95 = Duration::ZERO;
    for path in &paths {
        let mut times = Vec::with_capacity(LOADS);
        for _ in 0..LOADS {
            let started = Instant::now();
            let status = get(addr, path).await?;
            times.push(started.elapsed());
            anyhow::ensure!(status == 200, "{path} answered {status}");
        }
        times.sort();
        let p95 = times[(LOADS * 95).div_ceil(100) - 1];
        worst_p95 = worst_p95.max(p95);
        println!(
            "{:<58} {:>9.1} {:>9.1} {:>9.1}",
            shorten(path),
            ms(times[LOADS / 2]),
            ms(p95),
            ms(times[LOADS - 1])
        );
    }
    Ok(Report::new("dashboard", backend, total)
        .with("jobs_per_s", 0)
        .with("worst_p95_ms", format!("{:.1}", ms(worst_p95)))
        .with("rtt_ms", format!("{:.3}", ms(rtt))))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn shorten(path: &str) -> String {
    if path.len() > 58 {
        format!("{}…", &path[..57])
    } else {
        path.to_owned()
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b':' || b == b'-' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One GET over a fresh connection, reading the whole answer; returns the status.
async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).await?;
    let head = String::from_utf8_lossy(&body[..body.len().min(12)]).into_owned();
    Ok(head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0))
}

/// The median of 100 of the storage's cheapest calls (a count of one queue).
async fn round_trip(storage: &Arc<dyn Storage>) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(100);
    for _ in 0..100 {
        let started = Instant::now();
        storage.servers().await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[50])
}

async fn fill(
    storage: &Arc<dyn Storage>,
    pending: u64,
    failed: u64,
    scheduled: u64,
) -> anyhow::Result<()> {
    let job = |queue: &'static str, n: u64| {
        let args = if n % 1_000 == 999 {
            format!("{{\"n\":{n},\"to\":\"needle{n}@example.com\"}}")
        } else {
            format!("{{\"n\":{n},\"to\":\"user{n}@example.com\"}}")
        };
        NewJob::new(queue, "bench.dashboard", args)
    };
    let mut n = 0;
    while n < pending {
        let end = (n + CHUNK as u64).min(pending);
        storage
            .enqueue((n..end).map(|i| job("bulk", i)).collect())
            .await?;
        n = end;
    }
    let later = now_ms() + 7 * 24 * 3_600_000;
    let mut n = 0;
    while n < scheduled {
        let end = (n + CHUNK as u64).min(scheduled);
        storage
            .enqueue(
                (n..end)
                    .map(|i| job("later", i).run_at_ms(later + i))
                    .collect(),
            )
            .await?;
        n = end;
    }
    let queues: Vec<Arc<str>> = vec![Arc::from("mail")];
    let mut n = 0;
    while n < failed {
        let end = (n + 1_000).min(failed);
        storage
            .enqueue((n..end).map(|i| job("mail", i)).collect())
            .await?;
        let got = storage
            .fetch(FetchRequest::new(
                &queues,
                1_000,
                Duration::from_secs(300),
                Duration::ZERO,
            ))
            .await?;
        let done: Vec<Completion> = got
            .iter()
            .map(|j| {
                Completion::new(
                    j.lease(),
                    now_ms(),
                    Outcome::Failed {
                        reason: format!("smtp: {} refused", j.id),
                    },
                )
            })
            .collect();
        storage.complete(&done).await?;
        n = end;
    }
    Ok(())
}
