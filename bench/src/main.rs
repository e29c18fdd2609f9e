//! `jobs-bench`: the benchmark program. One scenario per run, one line of `key=value` output.
//!
//! ```text
//! cargo run --release --bin jobs-bench -- <scenario> [--backend redis|postgres|memory]
//!     [--redis-url URL[,URL...]] [--redis-ca FILE] [--cluster] [--replicas-ack N] [--postgres-url URL]
//!     [--queues K] [--prefix P] [--jobs N] [--concurrency C] [--producers P] [--batch B] [--rate R]
//!     [--job-us U] [--lease-ms L] [--threads T] [--minutes M] [--seconds S] [--metrics]
//! ```
//!
//! `--cluster` connects to the Redis Cluster that the `--redis-url` nodes (comma-separated)
//! belong to; `--replicas-ack N` turns on Redis's durable acknowledgement (`WAIT N` on every
//! enqueue and completion). With `--queues K`, `enqueue`, `enqueue-bulk`, `e2e`, `drain` and
//! `latency` spread jobs round-robin over the queues `bench0..benchK-1`, and `work` and `stats`
//! cover all K (`stats` prints their sums); without it every job goes to `bench`.
//! `--redis-ca FILE` trusts the CA certificate in that PEM file for a `rediss://` URL (TLS).
//!
//! `--metrics` needs a build with `--features metrics`: it installs a Prometheus recorder
//! (`metrics-exporter-prometheus`, histograms with buckets) before the run, as a production
//! worker would, and renders the exposition once at the end (its size goes on the line).
//!
//! See BENCHMARKS.md for the method and the figures.

mod backend;
mod dashboard;
mod report;
mod scenarios;
mod soak;

use clap::{Parser, ValueEnum};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// N no-op jobs via `enqueue!` from P concurrent producers, each awaiting its own call.
    Enqueue,
    /// N jobs via the bulk API in batches of B.
    EnqueueBulk,
    /// Pre-fill N jobs (untimed), then time one worker with concurrency C draining them.
    Drain,
    /// A worker runs while P producers enqueue N; time from first enqueue to last completion.
    E2e,
    /// Enqueue at R jobs/s for N jobs; report enqueue-to-start percentiles.
    Latency,
    /// Run a worker on the jobs already under --prefix until none is left, then exit.
    Work,
    /// Print the counters of --prefix.
    Stats,
    /// Run a worker with nothing to do for --seconds S (to count what an idle worker sends).
    Idle,
    /// A steady load at R jobs/s for --minutes M (1 % failing once, 1 % delayed), printing each
    /// minute's throughput, the worker's RSS and Redis's `used_memory`.
    Soak,
    /// Store N jobs (89 % pending, 10 % failed, 1 % scheduled; kept under --prefix for another
    /// run), serve the dashboard and time 20 loads of every page and API call.
    Dashboard,
}

/// Which storage to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The Redis backend.
    Redis,
    /// The PostgreSQL backend (the bench runs `migrate()`; `--prefix` names the schema).
    Postgres,
    /// The in-memory backend.
    Memory,
}

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "jobs-bench", about = "Benchmarks of the jobs framework")]
struct Args {
    /// The scenario to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// The storage backend.
    #[arg(long, value_enum, default_value = "redis")]
    backend: Backend,
    /// The Redis server; with `--cluster`, a comma-separated list of cluster nodes.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Trust the CA certificate (or certificates) in this PEM file for a `rediss://`
    /// `--redis-url` (TLS), instead of the system's root certificates.
    #[arg(long, value_name = "FILE")]
    redis_ca: Option<std::path::PathBuf>,
    /// Connect to a Redis Cluster from the `--redis-url` nodes.
    #[arg(long)]
    cluster: bool,
    /// Durable acknowledgement on Redis: enqueues and completions wait until N replicas have
    /// the write (`WAIT`). Default: off.
    #[arg(long, value_name = "N")]
    replicas_ack: Option<u32>,
    /// Spread jobs round-robin over the queues `bench0..benchK-1` (default: the one queue
    /// `bench`).
    #[arg(long, value_name = "K")]
    queues: Option<usize>,
    /// The PostgreSQL server (with `--backend postgres`).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Key prefix (the schema on PostgreSQL), so runs never collide (default: a fresh one per
    /// run).
    #[arg(long)]
    prefix: Option<String>,
    /// How many jobs.
    #[arg(long, default_value_t = 100_000)]
    jobs: u64,
    /// Worker concurrency.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Concurrent producers.
    #[arg(long, default_value_t = 16)]
    producers: usize,
    /// Bulk batch size (also the worker's fetch batch).
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Jobs per second (latency scenario).
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// How long each job takes, in microseconds.
    #[arg(long, default_value_t = 0)]
    job_us: u64,
    /// The lease, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// How long the soak runs, in minutes.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// How long the idle worker runs, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Runtime worker threads (default: tokio's, one per core or `TOKIO_WORKER_THREADS`).
    #[arg(long)]
    threads: Option<usize>,
    /// Install a Prometheus recorder for the jobs metrics (a build with `--features metrics`).
    #[arg(long)]
    metrics: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let recorder = metrics::install(args.metrics)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build()?;
    let line = runtime.block_on(scenarios::run(&args))?;
    // The thread count is part of the result: say it on the line.
    print!("{line} threads={}", runtime.metrics().num_workers());
    if let Some(bytes) = metrics::rendered(recorder.as_ref()) {
        print!(" metrics_bytes={bytes}");
    }
    println!();
    Ok(())
}

/// The `--metrics` recorder.
mod metrics {
    #[cfg(feature = "metrics")]
    pub(crate) type Handle = metrics_exporter_prometheus::PrometheusHandle;
    #[cfg(not(feature = "metrics"))]
    pub(crate) type Handle = ();

    /// Installs the recorder when asked to.
    pub(crate) fn install(wanted: bool) -> anyhow::Result<Option<Handle>> {
        if !wanted {
            return Ok(None);
        }
        #[cfg(feature = "metrics")]
        {
            use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0],
                )?
                .install_recorder()?;
            Ok(Some(handle))
        }
        #[cfg(not(feature = "metrics"))]
        anyhow::bail!("--metrics needs a build with `--features metrics`")
    }

    /// The size of the exposition, rendered once.
    pub(crate) fn rendered(handle: Option<&Handle>) -> Option<usize> {
        #[cfg(feature = "metrics")]
        return handle.map(|h| h.render().len());
        #[cfg(not(feature = "metrics"))]
        {
            let _ = handle;
            None
        }
    }
}
