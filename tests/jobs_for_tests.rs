//! Jobs performed by the integration tests and the `jobs-test-worker` binary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Sleeps `ms` milliseconds, then succeeds: a job that is easy to kill mid-run.
#[jobs::background_job(queue = "crash", retries = 5)]
pub async fn sleepy(n: u64, ms: u64) {
    let _ = n;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Does nothing: the cheapest job, for throughput and memory.
#[jobs::background_job(queue = "bulk")]
pub async fn noop(n: u64) {
    let _ = n;
}

/// Runs for two minutes unless cancelled: a job that only ends early when its token fires.
#[jobs::background_job(queue = "cancel", retries = 0)]
pub async fn until_cancelled(n: u64, ctx: jobs::JobContext) -> Result<(), String> {
    let _ = n;
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(120)) => Ok(()),
        () = ctx.cancelled() => Err("stopped: the token fired".to_owned()),
    }
}

/// Sleeps `ms` milliseconds; at most one runs at a time across all worker processes.
#[jobs::background_job(queue = "exclusive", concurrency = 1)]
pub async fn exclusive(n: u64, ms: u64) {
    let _ = n;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// How many times each `n` of [`first_run_slow`], [`deadly`] and [`hangs`] started in this
/// process.
static STARTS: std::sync::Mutex<Vec<(u64, u32)>> = std::sync::Mutex::new(Vec::new());

fn count_start(n: u64) -> u32 {
    let mut starts = STARTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, count)) = starts.iter_mut().find(|(m, _)| *m == n) {
        *count += 1;
        return *count;
    }
    starts.push((n, 1));
    1
}

/// How many times job `n` started in this process (tests pick distinct `n`s).
pub fn starts_of(n: u64) -> u32 {
    STARTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|(m, _)| *m == n)
        .map_or(0, |&(_, count)| count)
}

/// Sleeps `ms` milliseconds on its first start, succeeds at once on later ones. No retries: an
/// attempt charged for a worker's death would fail it.
#[jobs::background_job(queue = "doomed", retries = 0)]
pub async fn first_run_slow(n: u64, ms: u64) {
    if count_start(n) == 1 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Never finishes: each worker that runs it dies with it (the test kills it). Its own crash
/// limit is 2.
#[jobs::background_job(queue = "doomed", retries = 0, max_crashes = 2)]
pub async fn deadly(n: u64) {
    count_start(n);
    std::future::pending::<()>().await;
}

/// Never finishes, like [`deadly`], without a crash limit of its own (the worker's applies).
#[jobs::background_job(queue = "doomed", retries = 0)]
pub async fn hangs(n: u64) {
    count_start(n);
    std::future::pending::<()>().await;
}

/// Aborts the process that runs it: a poison pill for crash tests with real processes.
#[jobs::background_job(queue = "poison", retries = 0)]
pub async fn poison_pill(n: u64) {
    let _ = n;
    std::process::abort();
}

/// Sleeps `ms` milliseconds, then succeeds; no retries, so a charged crash would fail it.
#[jobs::background_job(queue = "storm", retries = 0)]
pub async fn storm(n: u64, ms: u64) {
    let _ = n;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// When each run of a [`recorded`] job started in this process, by its tag and number.
static RUNS: std::sync::Mutex<BTreeMap<(String, u64), Vec<Instant>>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Records that it started (see [`runs`]), then sleeps `ms` milliseconds (ignoring
/// cancellation, like a job that does not look at its token) and succeeds. `tag` keeps the
/// records of one test apart from the others running in the same process.
#[jobs::background_job(queue = "faults", retries = 5)]
pub async fn recorded(tag: String, n: u64, ms: u64) {
    RUNS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry((tag, n))
        .or_default()
        .push(Instant::now());
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// When the runs of `recorded(tag, n, _)` started in this process, in order.
pub fn runs(tag: &str, n: u64) -> Vec<Instant> {
    RUNS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&(tag.to_owned(), n))
        .cloned()
        .unwrap_or_default()
}
