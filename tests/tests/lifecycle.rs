//! A job's lifecycle through a real worker, on both backends: delayed jobs, cancellation and
//! deletion, timeouts, and the retry policy (backoff, permanent errors, `on_exhausted`).
//!
//! No assertion depends on the machine being fast: "not before" bounds are exact, "within"
//! bounds are generous and only catch a job that would otherwise never end.

use jobs::storage::{now_ms, Cancellation, JobInfo, Retention};
use jobs::{
    background_job, permanent, Client, JobContext, JobId, JobState, RetryBackoff, Storage, Worker,
};
use jobs_tests::backends::Kind;
use jobs_tests::{eventually, unique_prefix, until_state, TestRedis};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A storage for one test, a second handle on the same jobs (another connection, as "another
/// process" would have), and the key the test jobs record what they saw under.
struct Backend {
    storage: Arc<dyn Storage>,
    other: Arc<dyn Storage>,
    key: String,
    _shared: jobs_tests::backends::Backend,
}

fn backend(kind: Kind, test: &str) -> Option<Backend> {
    let shared = jobs_tests::backends::backend(kind, test, Retention::default())?;
    Some(Backend {
        storage: shared.storage.clone(),
        other: shared.another_handle(),
        key: format!("{kind:?}:{test}"),
        _shared: shared,
    })
}

jobs_tests::on_every_backend!(
    a_delayed_job_starts_at_its_time_not_before,
    a_job_scheduled_at_a_time_starts_then,
    queued_and_scheduled_jobs_are_deleted_or_cancelled,
    a_running_job_is_cancelled_from_another_client,
    a_cancelled_job_ends_deleted_even_when_it_returns_ok,
    a_timed_out_attempt_is_retried,
    timeouts_use_up_the_retries_then_the_job_fails,
    a_permanent_error_is_not_retried,
    on_exhausted_delete_drops_the_job,
    polynomial_backoff_waits_longer_than_the_workers_backoff,
);

/// What the test jobs saw, per test key.
#[derive(Default, Clone)]
struct Seen {
    /// Wall-clock start of each attempt, in ms since the epoch.
    starts: Vec<u64>,
    /// When the token fired, if it did.
    token_fired: Option<Instant>,
    /// Whether an attempt ran to its natural end.
    finished: bool,
}

static SEEN: Mutex<Option<HashMap<String, Seen>>> = Mutex::new(None);

fn with_seen<T>(key: &str, f: impl FnOnce(&mut Seen) -> T) -> T {
    let mut seen = SEEN.lock().unwrap();
    f(seen
        .get_or_insert_with(HashMap::new)
        .entry(key.to_owned())
        .or_default())
}

fn seen(key: &str) -> Seen {
    with_seen(key, |s| s.clone())
}

/// Records its start and returns the attempt number.
fn start(key: &str) -> usize {
    with_seen(key, |s| {
        s.starts.push(now_ms());
        s.starts.len()
    })
}

#[background_job(queue = "lifecycle")]
async fn record_start(key: String) {
    start(&key);
}

/// Runs for a minute unless its token fires.
#[background_job(queue = "lifecycle", retries = 0)]
async fn wait_for_cancel(key: String, ctx: JobContext) -> Result<(), String> {
    start(&key);
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(60)) => {
            with_seen(&key, |s| s.finished = true);
            Ok(())
        }
        () = ctx.cancelled() => {
            with_seen(&key, |s| s.token_fired = Some(Instant::now()));
            Err("stopped: the token fired".to_owned())
        }
    }
}

/// Waits for its token (or a minute), then reports success anyway.
#[background_job(queue = "lifecycle", retries = 0)]
async fn succeeds_when_cancelled(key: String, ctx: JobContext) {
    start(&key);
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(60)) => {}
        () = ctx.cancelled() => with_seen(&key, |s| s.token_fired = Some(Instant::now())),
    }
    with_seen(&key, |s| s.finished = true);
}

/// Hangs on its first attempt (until the 200 ms timeout), succeeds on the next.
#[background_job(queue = "lifecycle", timeout = "200ms", retries = 2)]
async fn hangs_once(key: String) {
    if start(&key) == 1 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

/// Always hangs past its 100 ms timeout.
#[background_job(queue = "lifecycle", timeout = "100ms", retries = 1)]
async fn always_hangs(key: String) {
    start(&key);
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[background_job(queue = "lifecycle", retries = 5)]
async fn refuses_bad_input(key: String) -> anyhow::Result<()> {
    start(&key);
    Err(anyhow::Error::new(permanent("amount must be positive")).context("charging order 7"))
}

#[background_job(queue = "lifecycle", retries = 1, on_exhausted = "delete")]
async fn best_effort(key: String) -> Result<(), String> {
    start(&key);
    Err("cache backend down".to_owned())
}

#[background_job(queue = "lifecycle", retries = 1, backoff = "polynomial")]
async fn fails_with_slow_backoff(key: String) -> Result<(), String> {
    start(&key);
    Err("upstream down".to_owned())
}

#[background_job(queue = "lifecycle", retries = 1)]
async fn fails_with_worker_backoff(key: String) -> Result<(), String> {
    start(&key);
    Err("upstream down".to_owned())
}

fn worker(storage: &Arc<dyn Storage>) -> Worker {
    Worker::builder_shared(storage.clone())
        .queues(["lifecycle"])
        .retry_backoff(RetryBackoff::exponential(Duration::from_millis(10)))
        .lease(Duration::from_secs(5))
        .build()
        .expect("a valid worker")
}

/// Starts `worker` in the background; the returned sender stops it.
fn spawn(
    worker: Worker,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        worker
            .run_until(async move {
                let _ = stopped.await;
            })
            .await
            .expect("the worker stops cleanly");
    });
    (stop, handle)
}

async fn stop(
    worker: (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
) {
    let _ = worker.0.send(());
    worker.1.await.unwrap();
}

/// Runs a worker on `b.storage` until job `id` is in `state`, stops it and returns the job.
async fn run_until(b: &Backend, id: &JobId, state: JobState) -> JobInfo {
    let w = spawn(worker(&b.storage));
    assert!(until_state(&*b.storage, id, state).await);
    stop(w).await;
    info(&b.storage, id).await
}

async fn info(storage: &Arc<dyn Storage>, id: &JobId) -> JobInfo {
    storage.job(id).await.unwrap().expect("the job is kept")
}

async fn a_delayed_job_starts_at_its_time_not_before(kind: Kind) {
    let Some(b) = backend(kind, "delayed") else {
        return;
    };
    // The worker is idle (blocked waiting) when the job is scheduled: the schedule must wake it.
    let w = spawn(worker(&b.storage));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = Client::from_shared(b.other.clone());
    let delay = Duration::from_millis(1_000);
    let before = now_ms();
    let id = jobs::schedule!(&client, record_start(b.key.clone()), in = delay)
        .await
        .unwrap();
    assert_eq!(info(&b.storage, &id).await.state, JobState::Scheduled);
    assert!(until_state(&*b.storage, &id, JobState::Succeeded).await);
    stop(w).await;
    let started = seen(&b.key).starts;
    assert_eq!(started.len(), 1);
    let due = before + 1_000;
    assert!(
        started[0] >= due,
        "started {} ms before its time",
        due - started[0]
    );
    eprintln!(
        "delayed job started {} ms after its due time",
        started[0] - due
    );
    let history: Vec<JobState> = info(&b.storage, &id)
        .await
        .history
        .iter()
        .map(|c| c.state)
        .collect();
    assert_eq!(
        history,
        [
            JobState::Scheduled,
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
}

async fn a_job_scheduled_at_a_time_starts_then(kind: Kind) {
    let Some(b) = backend(kind, "delayed-at") else {
        return;
    };
    let client = Client::from_shared(b.other.clone());
    let at = SystemTime::now() + Duration::from_millis(700);
    let due = u64::try_from(
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let id = jobs::schedule!(&client, record_start(b.key.clone()), at = at)
        .await
        .unwrap();
    let w = spawn(worker(&b.storage));
    assert!(until_state(&*b.storage, &id, JobState::Succeeded).await);
    stop(w).await;
    let started = seen(&b.key).starts;
    assert_eq!(started.len(), 1);
    assert!(started[0] >= due, "started before its time");
}

async fn queued_and_scheduled_jobs_are_deleted_or_cancelled(kind: Kind) {
    let Some(b) = backend(kind, "delete") else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let key = b.key.clone();
    let queued = jobs::enqueue!(&client, record_start(key.clone()))
        .await
        .unwrap();
    let scheduled = jobs::schedule!(
        &client,
        record_start(key.clone()),
        in = Duration::from_secs(3600)
    )
    .await
    .unwrap();
    let deleted = jobs::enqueue!(&client, record_start(key.clone()))
        .await
        .unwrap();
    let kept = jobs::enqueue!(&client, record_start(key.clone()))
        .await
        .unwrap();

    assert_eq!(client.cancel(&queued).await.unwrap(), Cancellation::Deleted);
    assert_eq!(
        client.cancel(&scheduled).await.unwrap(),
        Cancellation::Deleted
    );
    assert!(client.delete(&deleted).await.unwrap());
    for id in [&queued, &scheduled] {
        let i = info(&b.storage, id).await;
        assert_eq!(i.state, JobState::Deleted);
        assert_eq!(i.last_reason(), Some("cancelled"));
    }
    assert_eq!(
        info(&b.storage, &deleted).await.last_reason(),
        Some("deleted")
    );
    // Nothing left to cancel or delete.
    assert_eq!(
        client.cancel(&queued).await.unwrap(),
        Cancellation::Finished
    );
    assert!(!client.delete(&queued).await.unwrap());
    let unknown = JobId::new("lifecycle", 9_999);
    assert_eq!(
        client.cancel(&unknown).await.unwrap(),
        Cancellation::NotFound
    );

    let st = client.stats("lifecycle").await.unwrap();
    assert_eq!((st.enqueued, st.scheduled), (1, 0));
    // A worker runs only the job that is left.
    let w = spawn(worker(&b.storage));
    assert!(until_state(&*b.storage, &kept, JobState::Succeeded).await);
    stop(w).await;
    assert_eq!(seen(&key).starts.len(), 1);
}

async fn a_running_job_is_cancelled_from_another_client(kind: Kind) {
    let Some(b) = backend(kind, "cancel") else {
        return;
    };
    // Two workers; the job runs on one of them. The cancel comes from a third party: a client
    // on its own storage handle (its own Redis connection).
    let w1 = spawn(worker(&b.storage));
    let w2 = spawn(worker(&b.storage));
    let client = Client::from_shared(b.other.clone());
    let id = jobs::enqueue!(&client, wait_for_cancel(b.key.clone()))
        .await
        .unwrap();
    assert!(until_state(&*b.other, &id, JobState::Processing).await);
    assert!(
        eventually(Duration::from_secs(30), || async {
            !seen(&b.key).starts.is_empty()
        })
        .await
    );
    let asked = Instant::now();
    assert_eq!(client.cancel(&id).await.unwrap(), Cancellation::Requested);
    // The job sleeps a minute unless its token fires: reaching Deleted in 30 s proves it fired.
    assert!(until_state(&*b.other, &id, JobState::Deleted).await);
    let s = seen(&b.key);
    let fired = s.token_fired.expect("the token fired");
    eprintln!(
        "cancel latency ({}): token fired {:?} after Client::cancel",
        b.key,
        fired - asked
    );
    assert!(!s.finished);
    assert_eq!(s.starts.len(), 1, "a cancelled job is not retried");
    let i = info(&b.other, &id).await;
    assert_eq!(i.last_reason(), Some("cancelled"));
    assert_eq!(i.attempts, 1);
    assert_eq!(
        client.cancel(&id).await.unwrap(),
        Cancellation::Finished,
        "the request was cleared with the attempt"
    );
    stop(w1).await;
    stop(w2).await;
}

async fn a_cancelled_job_ends_deleted_even_when_it_returns_ok(kind: Kind) {
    let Some(b) = backend(kind, "cancel-ignored") else {
        return;
    };
    let w = spawn(worker(&b.storage));
    let client = Client::from_shared(b.other.clone());
    let id = jobs::enqueue!(&client, succeeds_when_cancelled(b.key.clone()))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            !seen(&b.key).starts.is_empty()
        })
        .await
    );
    let answer = client.cancel(&id).await.unwrap();
    assert_eq!(answer, Cancellation::Requested);
    assert!(until_state(&*b.other, &id, JobState::Deleted).await);
    stop(w).await;
    let s = seen(&b.key);
    assert!(s.token_fired.is_some(), "its token fired");
    assert!(s.finished, "the job returned Ok");
    assert_eq!(info(&b.other, &id).await.last_reason(), Some("cancelled"));
}

async fn a_timed_out_attempt_is_retried(kind: Kind) {
    let Some(b) = backend(kind, "timeout-retry") else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let id = jobs::enqueue!(&client, hangs_once(b.key.clone()))
        .await
        .unwrap();
    let i = run_until(&b, &id, JobState::Succeeded).await;
    assert_eq!(i.attempts, 2);
    let retry = i
        .history
        .iter()
        .find(|c| c.state == JobState::Scheduled)
        .expect("the timed-out attempt was scheduled for a retry");
    let reason = retry.reason.as_deref().unwrap();
    assert!(reason.contains("timed out after 200ms"), "{reason}");
}

async fn timeouts_use_up_the_retries_then_the_job_fails(kind: Kind) {
    let Some(b) = backend(kind, "timeout-fail") else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let id = jobs::enqueue!(&client, always_hangs(b.key.clone()))
        .await
        .unwrap();
    let i = run_until(&b, &id, JobState::Failed).await;
    assert_eq!(i.attempts, 2);
    assert_eq!(seen(&b.key).starts.len(), 2);
    let reason = i.last_reason().unwrap();
    assert!(
        reason.contains("attempt 2 of 2") && reason.contains("timed out after 100ms"),
        "{reason}"
    );
}

async fn a_permanent_error_is_not_retried(kind: Kind) {
    let Some(b) = backend(kind, "permanent") else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let id = jobs::enqueue!(&client, refuses_bad_input(b.key.clone()))
        .await
        .unwrap();
    let i = run_until(&b, &id, JobState::Failed).await;
    assert_eq!(i.attempts, 1, "5 retries allowed, none used");
    assert_eq!(seen(&b.key).starts.len(), 1);
    let reason = i.last_reason().unwrap();
    assert!(
        reason.contains("permanent error (not retried)")
            && reason.contains("charging order 7: amount must be positive"),
        "{reason}"
    );
}

async fn on_exhausted_delete_drops_the_job(kind: Kind) {
    let Some(b) = backend(kind, "exhausted-delete") else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let id = jobs::enqueue!(&client, best_effort(b.key.clone()))
        .await
        .unwrap();
    let i = run_until(&b, &id, JobState::Deleted).await;
    assert_eq!(i.attempts, 2, "the retry ran first");
    assert!(i
        .last_reason()
        .unwrap()
        .contains("attempt 2 of 2 failed: cache backend down"));
    let st = client.stats("lifecycle").await.unwrap();
    assert_eq!((st.failed, st.failed_total), (0, 0), "not kept as Failed");
}

async fn polynomial_backoff_waits_longer_than_the_workers_backoff(kind: Kind) {
    let Some(b) = backend(kind, "backoff") else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let slow_key = format!("{}:slow", b.key);
    let slow = jobs::enqueue!(&client, fails_with_slow_backoff(slow_key.clone()))
        .await
        .unwrap();
    let quick = jobs::enqueue!(&client, fails_with_worker_backoff(b.key.clone()))
        .await
        .unwrap();
    let w = spawn(worker(&b.storage));
    // The worker's own backoff (10 ms) retries the quick job at once...
    assert!(until_state(&*b.storage, &quick, JobState::Failed).await);
    assert!(until_state(&*b.storage, &slow, JobState::Scheduled).await);
    // ...while the polynomial one (1⁴ + 15 s, jittered to at least 11 s) waits.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop(w).await;
    assert_eq!(seen(&b.key).starts.len(), 2);
    assert_eq!(seen(&slow_key).starts.len(), 1, "the retry is not due yet");
    let i = info(&b.storage, &slow).await;
    assert_eq!((i.state, i.attempts), (JobState::Scheduled, 1));
}

// --- across processes, on Redis ---

/// A worker process (`jobs-test-worker`) runs the job; this process cancels it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_in_another_process_is_cancelled() {
    let Some(r) = TestRedis::start("cancel-process") else {
        return;
    };
    let prefix = unique_prefix("cancel-process");
    let storage = jobs::RedisStorage::builder(r.url())
        .prefix(&prefix)
        .build()
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_jobs-test-worker"))
        .args([r.url(), &prefix, "5000", "4", "cancel"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the test worker starts");
    let client = Client::new(storage.clone());
    let id = jobs::enqueue!(&client, jobs_tests::jobs_for_tests::until_cancelled(1))
        .await
        .unwrap();
    let running = eventually(Duration::from_secs(60), || async {
        client.job(&id).await.unwrap().unwrap().state == JobState::Processing
    })
    .await;
    assert!(running, "the worker process took the job");
    let asked = Instant::now();
    assert_eq!(client.cancel(&id).await.unwrap(), Cancellation::Requested);
    // The job runs two minutes unless its token fires.
    let deleted = eventually(Duration::from_secs(30), || async {
        client.job(&id).await.unwrap().unwrap().state == JobState::Deleted
    })
    .await;
    let took = asked.elapsed();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert!(deleted, "the job in the other process was stopped");
    eprintln!("cross-process cancel: Deleted {took:?} after Client::cancel (polled every 20 ms)");
    let i = client.job(&id).await.unwrap().unwrap();
    assert_eq!((i.last_reason(), i.attempts), (Some("cancelled"), 1));
}

/// An idle worker makes at most about one Redis command per second: no busy polling, and no
/// cancel checks without jobs in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_stays_quiet() {
    let Some(r) = TestRedis::start_private("idle", false) else {
        return;
    };
    let storage: Arc<dyn Storage> = Arc::new(r.storage("idle", Retention::default()));
    // The metrics gauges are sampled with one `stats` call per queue every interval (5 s by
    // default): deliberate reads, counted apart from the polling this test is about.
    let idle = Worker::builder_shared(storage)
        .queues(["lifecycle"])
        .lease(Duration::from_secs(5))
        .metrics_interval(Duration::from_secs(3600))
        .build()
        .expect("a valid worker");
    let w = spawn(idle);
    // Past start-up (connections, script loading, the first heartbeat).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let commands = |conn: &mut ::redis::Connection| -> u64 {
        let info: String = ::redis::cmd("INFO").arg("stats").query(conn).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap()
    };
    let mut conn = r.raw();
    let before = commands(&mut conn);
    let window = Duration::from_secs(4);
    tokio::time::sleep(window).await;
    let after = commands(&mut conn);
    stop(w).await;
    // Minus the first INFO itself, which the second count includes.
    let used = after - before - 1;
    eprintln!("idle worker: {used} Redis commands in {window:?}");
    assert!(
        used <= window.as_secs(),
        "an idle worker sent {used} commands in {window:?}"
    );
}
