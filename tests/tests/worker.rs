//! The worker runtime on the memory backend: bad input, failures, retries, timeouts, shutdown,
//! app state and filters. (Storage semantics shared with Redis live in the conformance suite.)

use jobs::filter::{AttemptOutcome, CreatingJob, Filter, StateChangeEvent};
use jobs::storage::{Delivery, Monitoring, NewJob};
use jobs::{
    background_job, enqueue, Client, JobContext, JobId, JobState, MemoryStorage, RetryBackoff,
    Worker, WorkerBuilder,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Attempts seen per test key, so parallel tests do not see each other's jobs.
static SEEN: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

fn bump(key: &str) -> u32 {
    let mut seen = SEEN.lock().unwrap();
    let n = seen
        .get_or_insert_with(HashMap::new)
        .entry(key.to_owned())
        .or_insert(0);
    *n += 1;
    *n
}

fn seen(key: &str) -> u32 {
    SEEN.lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(key).copied())
        .unwrap_or(0)
}

#[background_job]
async fn succeed(key: String) {
    bump(&key);
}

/// Panics on the first attempt, returns `Err` on the second, succeeds on the third.
#[background_job(retries = 3)]
async fn flaky(key: String) -> Result<(), String> {
    match bump(&key) {
        1 => panic!("boom on the first attempt"),
        2 => Err("the service answered 503".to_owned()),
        _ => Ok(()),
    }
}

#[background_job(retries = 1)]
async fn always_fails(key: String) -> anyhow::Result<()> {
    bump(&key);
    Err(anyhow::anyhow!("disk full").context("writing the export"))
}

#[background_job(timeout = "50ms", retries = 0)]
async fn too_slow(key: String, ctx: JobContext) {
    bump(&key);
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(30)) => {}
        () = ctx.cancelled() => { bump(&format!("{key}:cancelled")); }
    }
}

/// Runs until cancelled, then fails: what a cooperative long job does at shutdown.
#[background_job(queue = "long")]
async fn until_cancelled(key: String, ctx: JobContext) -> Result<(), String> {
    bump(&key);
    ctx.cancelled().await;
    bump(&format!("{key}:cancelled"));
    Err("stopped".to_owned())
}

#[background_job(queue = "long")]
async fn short_sleep(key: String) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    bump(&key);
}

#[background_job]
fn blocking_job(key: String) {
    std::thread::sleep(Duration::from_millis(5));
    bump(&key);
}

#[derive(Clone)]
struct Greeting(&'static str);

#[background_job(queue = "with-state")]
async fn greet(key: String, #[state] greeting: Greeting, ctx: JobContext) {
    bump(&format!("{key}:{}:{}", greeting.0, ctx.attempt()));
}

fn quick(storage: &MemoryStorage) -> WorkerBuilder {
    Worker::builder(storage.clone())
        .retry_backoff(RetryBackoff::exponential(Duration::from_millis(5)))
        .lease(Duration::from_secs(5))
}

/// Runs `worker` until every job in `ids` reached a final state (or 10 s passed).
async fn run_until_final(worker: Worker, storage: &MemoryStorage, ids: &[JobId]) {
    let probe = storage.clone();
    let ids = ids.to_vec();
    worker
        .run_until(async move {
            for _ in 0..1000 {
                let mut done = true;
                for id in &ids {
                    let info = probe.job(id).await.unwrap().expect("job kept");
                    done &= info.state.is_final();
                }
                if done {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
}

async fn info(storage: &MemoryStorage, id: &JobId) -> jobs::storage::JobInfo {
    storage.job(id).await.unwrap().expect("job kept")
}

#[tokio::test]
async fn a_job_without_handler_fails_and_the_worker_goes_on() {
    let storage = MemoryStorage::new();
    let ids = storage
        .enqueue(vec![NewJob::new("default", "no.such.job", "{}".to_owned())])
        .await
        .unwrap();
    let client = Client::new(storage.clone());
    let good = enqueue!(&client, succeed("no-handler".into()))
        .await
        .unwrap();
    run_until_final(
        quick(&storage).build().unwrap(),
        &storage,
        &[ids[0].clone(), good.clone()],
    )
    .await;

    let bad = info(&storage, &ids[0]).await;
    assert_eq!(bad.state, JobState::Failed);
    assert!(
        bad.last_reason()
            .unwrap()
            .contains("no handler registered for job `no.such.job`"),
        "{:?}",
        bad.last_reason()
    );
    assert_eq!(info(&storage, &good).await.state, JobState::Succeeded);
    assert_eq!(seen("no-handler"), 1);
    let failed = storage.failed("default", 10).await.unwrap();
    assert_eq!(failed.len(), 1, "kept as failed for inspection");
    assert_eq!(failed[0].id, ids[0]);
}

#[tokio::test]
async fn arguments_that_no_longer_decode_fail_with_the_serde_error_and_the_job_name() {
    let storage = MemoryStorage::new();
    // As if `succeed` had taken `count: u64` when this job was stored.
    let ids = storage
        .enqueue(vec![NewJob::new(
            "default",
            "succeed",
            r#"{"count":3}"#.to_owned(),
        )])
        .await
        .unwrap();
    run_until_final(quick(&storage).build().unwrap(), &storage, &ids).await;
    let job = info(&storage, &ids[0]).await;
    assert_eq!(job.state, JobState::Failed);
    let reason = job.last_reason().unwrap();
    assert!(reason.contains("job `succeed`"), "{reason}");
    assert!(reason.contains("missing field `key`"), "{reason}");
    assert_eq!(
        job.attempts, 1,
        "not retried: retrying cannot fix the arguments"
    );
}

#[tokio::test]
async fn an_err_or_a_panic_fails_one_attempt_and_retries_follow() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = enqueue!(&client, flaky("flaky".into())).await.unwrap();
    run_until_final(
        quick(&storage).build().unwrap(),
        &storage,
        std::slice::from_ref(&id),
    )
    .await;
    let job = info(&storage, &id).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempts, 3);
    let reasons: Vec<&str> = job
        .history
        .iter()
        .filter(|c| c.state == JobState::Scheduled)
        .filter_map(|c| c.reason.as_deref())
        .collect();
    assert_eq!(reasons.len(), 2, "{:?}", job.history);
    assert!(
        reasons[0].contains("panicked: boom on the first attempt"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].contains("the service answered 503"),
        "{}",
        reasons[1]
    );
}

#[tokio::test]
async fn after_the_last_attempt_the_job_is_failed_with_its_error_chain() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = enqueue!(&client, always_fails("always".into()))
        .await
        .unwrap();
    run_until_final(
        quick(&storage).build().unwrap(),
        &storage,
        std::slice::from_ref(&id),
    )
    .await;
    let job = info(&storage, &id).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(seen("always"), 2, "retries = 1: two attempts");
    let reason = job.last_reason().unwrap();
    assert!(reason.contains("attempt 2 of 2"), "{reason}");
    assert!(reason.contains("writing the export: disk full"), "{reason}");
    assert_eq!(storage.stats("default").await.unwrap().failed_total, 1);
}

#[tokio::test]
async fn a_retry_is_stored_and_survives_a_worker_restart() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = enqueue!(&client, flaky("restart".into())).await.unwrap();
    // The first worker stops as soon as the first attempt failed and its retry is stored.
    let probe = storage.clone();
    let watched = id.clone();
    Worker::builder(storage.clone())
        .retry_backoff(RetryBackoff::exponential(Duration::from_millis(300)))
        .build()
        .unwrap()
        .run_until(async move {
            while probe.job(&watched).await.unwrap().unwrap().state != JobState::Scheduled {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
    assert_eq!(info(&storage, &id).await.state, JobState::Scheduled);
    assert_eq!(seen("restart"), 1);
    run_until_final(
        quick(&storage).build().unwrap(),
        &storage,
        std::slice::from_ref(&id),
    )
    .await;
    assert_eq!(info(&storage, &id).await.state, JobState::Succeeded);
    assert_eq!(seen("restart"), 3);
}

#[tokio::test]
async fn a_timeout_fires_the_token_and_fails_the_attempt() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = enqueue!(&client, too_slow("slow".into())).await.unwrap();
    run_until_final(
        quick(&storage).build().unwrap(),
        &storage,
        std::slice::from_ref(&id),
    )
    .await;
    let job = info(&storage, &id).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.last_reason().unwrap().contains("timed out after 50ms"),
        "{:?}",
        job.last_reason()
    );
}

#[tokio::test]
async fn sync_functions_run_on_the_blocking_pool() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let ids = client
        .enqueue_many((0..20).map(|_| jobs::job!(blocking_job("blocking".into()))))
        .await
        .unwrap();
    run_until_final(
        quick(&storage).concurrency(4).build().unwrap(),
        &storage,
        &ids,
    )
    .await;
    assert_eq!(seen("blocking"), 20);
}

/// Runs a worker on the `long` queue and shuts it down, with `shutdown` as its shutdown
/// timeout, as soon as job `id` started.
async fn stop_once_started(storage: &MemoryStorage, id: &JobId, shutdown: Duration) {
    let probe = storage.clone();
    let watched = id.clone();
    quick(storage)
        .queues(["long"])
        .shutdown_timeout(shutdown)
        .build()
        .unwrap()
        .run_until(async move {
            while probe.job(&watched).await.unwrap().unwrap().state != JobState::Processing {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn shutdown_lets_running_jobs_finish_within_the_timeout() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = enqueue!(&client, short_sleep("graceful".into()))
        .await
        .unwrap();
    stop_once_started(&storage, &id, Duration::from_secs(10)).await;
    assert_eq!(info(&storage, &id).await.state, JobState::Succeeded);
    assert_eq!(seen("graceful"), 1);
}

#[tokio::test]
async fn after_the_shutdown_timeout_jobs_are_cancelled_and_handed_back_at_once() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = enqueue!(&client, until_cancelled("handback".into()))
        .await
        .unwrap();
    stop_once_started(&storage, &id, Duration::from_millis(50)).await;
    let job = info(&storage, &id).await;
    assert_eq!(job.state, JobState::Enqueued, "{:?}", job.history);
    assert_eq!(job.attempts, 0, "a handed-back attempt is not counted");
    assert!(
        job.last_reason().unwrap().contains("handed back"),
        "{:?}",
        job.history
    );
    assert_eq!(seen("handback:cancelled"), 1, "the job saw its token fire");
    assert_eq!(storage.stats("long").await.unwrap().enqueued, 1);
}

#[tokio::test]
async fn app_state_is_injected_and_missing_state_is_a_build_error() {
    let storage = MemoryStorage::new();
    let err = quick(&storage)
        .queues(["with-state"])
        .build()
        .err()
        .unwrap();
    assert!(err.is_config());
    let message = err.to_string();
    assert!(message.contains("job `greet`"), "{message}");
    assert!(message.contains("Greeting"), "{message}");
    assert!(message.contains(".state(value)"), "{message}");

    let client = Client::new(storage.clone());
    let id = enqueue!(&client, greet("state".into())).await.unwrap();
    let worker = quick(&storage)
        .queues(["with-state"])
        .state(Greeting("hi"))
        .build()
        .unwrap();
    run_until_final(worker, &storage, &[id]).await;
    assert_eq!(seen("state:hi:1"), 1);
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

struct Recording(Arc<Recorder>);

impl Filter for Recording {
    fn on_create(&self, job: &CreatingJob<'_>) -> Result<(), String> {
        if job.args.contains("reject-me") {
            return Err("no thanks".to_owned());
        }
        self.0
            .events
            .lock()
            .unwrap()
            .push(format!("create {}", job.name));
        Ok(())
    }
    fn before_perform(&self, ctx: &JobContext) {
        self.0
            .events
            .lock()
            .unwrap()
            .push(format!("before {}", ctx.attempt()));
    }
    fn after_perform(&self, ctx: &JobContext, outcome: &AttemptOutcome) {
        let outcome = match outcome {
            AttemptOutcome::Succeeded => "ok".to_owned(),
            AttemptOutcome::Failed(e) => format!("failed: {e}"),
            _ => "other".to_owned(),
        };
        self.0
            .events
            .lock()
            .unwrap()
            .push(format!("after {} {outcome}", ctx.attempt()));
    }
    fn on_state_change(&self, event: &StateChangeEvent) {
        self.0
            .events
            .lock()
            .unwrap()
            .push(format!("state {} {}", event.name, event.state));
    }
}

#[tokio::test]
async fn filters_see_creation_each_attempt_and_each_state_change() {
    let storage = MemoryStorage::new();
    let recorder = Arc::new(Recorder::default());
    let client = Client::builder(storage.clone())
        .filter(Recording(recorder.clone()))
        .build();
    let rejected = enqueue!(&client, succeed("reject-me".into()))
        .await
        .unwrap_err();
    assert!(rejected.is_rejected());
    assert!(rejected.to_string().contains("no thanks"), "{rejected}");
    assert_eq!(
        storage.stats("default").await.unwrap().enqueued,
        0,
        "nothing stored"
    );

    let id = enqueue!(&client, always_fails("filtered".into()))
        .await
        .unwrap();
    let worker = quick(&storage)
        .filter(Recording(recorder.clone()))
        .build()
        .unwrap();
    run_until_final(worker, &storage, &[id]).await;
    let events = recorder.events.lock().unwrap().clone();
    assert_eq!(
        events,
        vec![
            "create always_fails",
            "state always_fails enqueued",
            "before 1",
            "state always_fails processing",
            "after 1 failed: writing the export: disk full",
            "state always_fails scheduled",
            "before 2",
            "state always_fails processing",
            "after 2 failed: writing the export: disk full",
            "state always_fails failed",
        ]
    );
}
