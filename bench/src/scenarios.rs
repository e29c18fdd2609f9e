//! The scenarios: each returns its report line.

use crate::report::Report;
use crate::{backend, Args, Scenario};
use jobs::{enqueue, Client, Storage, Worker};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The queue every benchmark job goes to without `--queues`.
const QUEUE: &str = "bench";

/// The queues of a run: `bench`, or `bench0..benchK-1` with `--queues K`.
#[derive(Clone)]
struct Queues(Arc<[Arc<str>]>);

impl Queues {
    fn of(args: &Args) -> Queues {
        Queues(match args.queues {
            None => vec![Arc::from(QUEUE)].into(),
            Some(k) => (0..k).map(|i| Arc::from(format!("{QUEUE}{i}"))).collect(),
        })
    }

    /// Whether jobs go to their own queue (`bench`), not to one chosen here.
    fn is_default(&self) -> bool {
        self.0.len() == 1 && &*self.0[0] == QUEUE
    }

    /// The queue of the `n`th job: round-robin.
    fn nth(&self, n: u64) -> &Arc<str> {
        #[allow(clippy::cast_possible_truncation)]
        &self.0[(n % self.0.len() as u64) as usize]
    }

    /// The sum of the queues' counters.
    async fn stats(
        &self,
        storage: &Arc<dyn Storage>,
    ) -> Result<jobs::storage::QueueStats, jobs::Error> {
        let mut sum = jobs::storage::QueueStats::default();
        for queue in self.0.iter() {
            let s = storage.stats(queue).await?;
            sum.enqueued += s.enqueued;
            sum.scheduled += s.scheduled;
            sum.processing += s.processing;
            sum.failed += s.failed;
            sum.succeeded_total += s.succeeded_total;
            sum.failed_total += s.failed_total;
        }
        Ok(sum)
    }
}

/// Jobs performed in this process.
static DONE: AtomicU64 = AtomicU64::new(0);
/// How long each job takes, in microseconds.
static JOB_US: AtomicU64 = AtomicU64::new(0);
/// Whether jobs record their start latency (their argument is then the enqueue time in µs).
static RECORD_LATENCY: AtomicU64 = AtomicU64::new(0);
/// Enqueue-to-start latencies, in µs.
static LATENCIES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// The benchmark job: one `u64` argument, does nothing (or waits `--job-us`).
#[jobs::background_job(name = "bench.noop", queue = "bench", retries = 0)]
async fn noop(n: u64) {
    if RECORD_LATENCY.load(Ordering::Relaxed) == 1 {
        let latency = now_us().saturating_sub(n);
        LATENCIES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(latency);
    }
    let us = JOB_US.load(Ordering::Relaxed);
    if us > 0 {
        tokio::time::sleep(Duration::from_micros(us)).await;
    }
    DONE.fetch_add(1, Ordering::Relaxed);
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<String> {
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| format!("bench-{:08x}", rand_suffix()));
    backend::check(args)?;
    let (storage, backend) = backend::open(args, &prefix).await?;
    let queues = Queues::of(args);
    JOB_US.store(args.job_us, Ordering::Relaxed);
    let report = |name: &str| Report::new(name, backend, args.jobs);
    let line = match args.scenario {
        Scenario::Enqueue => {
            let client = Client::from_shared(storage.clone());
            let elapsed = produce(&client, &queues, args.jobs, args.producers).await?;
            report("enqueue")
                .rate(args.jobs, elapsed)
                .with("producers", args.producers)
        }
        Scenario::EnqueueBulk => {
            let client = Client::from_shared(storage.clone());
            let start = Instant::now();
            prefill(&client, &queues, args.jobs, args.batch, args.producers).await?;
            report("enqueue-bulk")
                .rate(args.jobs, start.elapsed())
                .with("batch", args.batch)
                .with("producers", args.producers)
        }
        Scenario::Drain => {
            let client = Client::from_shared(storage.clone());
            prefill(&client, &queues, args.jobs, args.batch, args.producers).await?;
            let start = Instant::now();
            let worker = worker(args, &storage, &queues)?;
            worker
                .run_until(completed(storage.clone(), queues.clone(), args.jobs))
                .await?;
            report("drain")
                .rate(args.jobs, start.elapsed())
                .with("concurrency", args.concurrency)
        }
        Scenario::E2e => {
            let client = Client::from_shared(storage.clone());
            let worker = worker(args, &storage, &queues)?;
            let start = Instant::now();
            let running = tokio::spawn(worker.run_until(completed(
                storage.clone(),
                queues.clone(),
                args.jobs,
            )));
            let produced = produce(&client, &queues, args.jobs, args.producers).await?;
            running.await??;
            report("e2e")
                .rate(args.jobs, start.elapsed())
                .with("concurrency", args.concurrency)
                .with("producers", args.producers)
                // When the last enqueue returned: tells whether producers or the worker bound
                // the run.
                .with("produced_s", format!("{:.3}", produced.as_secs_f64()))
        }
        Scenario::Latency => latency(args, &storage, &queues, report("latency")).await?,
        Scenario::Work => {
            let start = Instant::now();
            let worker = worker(args, &storage, &queues)?;
            let probe = storage.clone();
            let probed = queues.clone();
            worker
                .run_until(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if let Ok(s) = probed.stats(&probe).await {
                            if s.enqueued + s.scheduled + s.processing == 0 {
                                return;
                            }
                        }
                    }
                })
                .await?;
            let done = DONE.load(Ordering::Relaxed);
            Report::new("work", backend, done).rate(done, start.elapsed())
        }
        Scenario::Soak => crate::soak::run(args, &storage, backend).await?,
        Scenario::Idle => {
            let worker = worker(args, &storage, &queues)?;
            worker
                .run_until(tokio::time::sleep(Duration::from_secs(args.seconds)))
                .await?;
            Report::new("idle", backend, 0)
                .with("jobs_per_s", 0)
                .with("seconds", args.seconds)
        }
        Scenario::Dashboard => crate::dashboard::run(args, &storage, backend).await?,
        Scenario::Stats => {
            let s = queues.stats(&storage).await?;
            Report::new("stats", backend, s.enqueued + s.scheduled + s.processing)
                .with("jobs_per_s", 0)
                .with("enqueued", s.enqueued)
                .with("scheduled", s.scheduled)
                .with("processing", s.processing)
                .with("succeeded", s.succeeded_total)
                .with("failed", s.failed_total)
        }
    };
    let line = if args.queues.is_some() {
        line.with("queues", queues.0.len())
    } else {
        line
    };
    let line = match args.replicas_ack {
        Some(n) => line.with("replicas_ack", n),
        None => line,
    };
    backend::clean_up(args, &storage).await?;
    Ok(line.with("prefix", prefix).finish())
}

fn rand_suffix() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

fn worker(args: &Args, storage: &Arc<dyn Storage>, queues: &Queues) -> anyhow::Result<Worker> {
    Ok(Worker::builder_shared(storage.clone())
        .queues(queues.0.iter().map(|q| q.to_string()))
        .concurrency(args.concurrency)
        .fetch_batch(args.batch)
        .lease(Duration::from_millis(args.lease_ms))
        .shutdown_timeout(Duration::from_secs(5))
        .build()?)
}

/// Completes once this process performed `jobs` jobs and the storage counted them all.
async fn completed(storage: Arc<dyn Storage>, queues: Queues, jobs: u64) {
    while DONE.load(Ordering::Relaxed) < jobs {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    loop {
        match queues.stats(&storage).await {
            Ok(s) if s.succeeded_total >= jobs => return,
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// `jobs` jobs via `enqueue!` from `producers` tasks, each awaiting its own call; with several
/// queues, job `n` (counted over all producers) goes to queue `n mod K`.
async fn produce(
    client: &Client,
    queues: &Queues,
    jobs: u64,
    producers: usize,
) -> anyhow::Result<Duration> {
    let producers = producers.max(1) as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let client = client.clone();
        let queues = queues.clone();
        let share = jobs / producers + u64::from(p < jobs % producers);
        tasks.push(tokio::spawn(async move {
            if queues.is_default() {
                for i in 0..share {
                    enqueue!(&client, noop(i)).await?;
                }
            } else {
                for i in 0..share {
                    let queue = queues.nth(p + i * producers).clone();
                    client.enqueue_on(queue, jobs::job!(noop(i))).await?;
                }
            }
            Ok::<_, jobs::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed())
}

/// `jobs` jobs via the bulk API in batches of `batch`, from `producers` tasks; with several
/// queues, each batch is split round-robin over them (one bulk call per queue).
async fn prefill(
    client: &Client,
    queues: &Queues,
    jobs: u64,
    batch: usize,
    producers: usize,
) -> anyhow::Result<()> {
    let producers = producers.max(1) as u64;
    let batch = batch.max(1) as u64;
    let mut tasks = Vec::new();
    for p in 0..producers {
        let client = client.clone();
        let queues = queues.clone();
        let share = jobs / producers + u64::from(p < jobs % producers);
        tasks.push(tokio::spawn(async move {
            let mut sent = 0;
            while sent < share {
                let n = batch.min(share - sent);
                if queues.is_default() {
                    client
                        .enqueue_many((sent..sent + n).map(|i| jobs::job!(noop(i))))
                        .await?;
                } else {
                    let k = queues.0.len() as u64;
                    for (q, queue) in queues.0.iter().enumerate() {
                        let q = q as u64;
                        let mine = (sent..sent + n).filter(|i| i % k == q);
                        let jobs: Vec<_> = mine.map(|i| jobs::job!(noop(i))).collect();
                        if !jobs.is_empty() {
                            client.enqueue_many_on(queue.clone(), jobs).await?;
                        }
                    }
                }
                sent += n;
            }
            Ok::<_, jobs::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn latency(
    args: &Args,
    storage: &Arc<dyn Storage>,
    queues: &Queues,
    report: Report,
) -> anyhow::Result<Report> {
    RECORD_LATENCY.store(1, Ordering::Relaxed);
    let client = Client::from_shared(storage.clone());
    let worker = worker(args, storage, queues)?;
    let running =
        tokio::spawn(worker.run_until(completed(storage.clone(), queues.clone(), args.jobs)));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // How long each enqueue took to return (its commit), to tell what bounds the latency.
    let calls: Arc<Mutex<Vec<u64>>> = Arc::default();
    for n in 0..args.jobs {
        tick.tick().await;
        let client = client.clone();
        let calls = calls.clone();
        let queue = (!queues.is_default()).then(|| queues.nth(n).clone());
        // Each enqueue on its own task, so a slow one does not delay the next send.
        tokio::spawn(async move {
            let sent = now_us();
            let done = match queue {
                Some(queue) => client.enqueue_on(queue, jobs::job!(noop(sent))).await,
                None => enqueue!(&client, noop(sent)).await,
            };
            let took = now_us().saturating_sub(sent);
            calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(took);
            done
        });
    }
    running.await??;
    let mut calls = std::mem::take(
        &mut *calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    calls.sort_unstable();
    let mut lat = std::mem::take(
        &mut *LATENCIES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    lat.sort_unstable();
    let pct = |v: &[u64], p: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(i).copied().unwrap_or(0)
    };
    Ok(report
        .with("jobs_per_s", args.rate)
        .with("p50_us", pct(&lat, 0.50))
        .with("p99_us", pct(&lat, 0.99))
        .with("max_us", lat.last().copied().unwrap_or(0))
        // The enqueue call alone (until its commit returned): the rest of the latency is the
        // wake-up, the fetch and the start.
        .with("enqueue_p50_us", pct(&calls, 0.50))
        .with("enqueue_p99_us", pct(&calls, 0.99)))
}
