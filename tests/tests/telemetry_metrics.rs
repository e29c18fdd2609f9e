//! Metrics with the `metrics` feature on: what a worker and a client record, read back from a
//! real Prometheus recorder's exposition (attempts by outcome, durations, queue waits, sampled
//! queue gauges).
//!
//! One recorder serves the whole binary (it is process-global); each test keeps to queues of
//! its own.

use jobs::{Client, JobContext, JobState, RetryBackoff, Worker};
use jobs_tests::{eventually, until_state};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The process's Prometheus recorder, installed before any job is enqueued or run here.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets(&[0.01, 0.1, 1.0])
            .expect("buckets")
            .install_recorder()
            .expect("the only recorder of this test binary")
    })
}

/// The value of the exposition's sample `line` (its name and labels, as rendered).
fn sample(exposition: &str, line: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == line).then(|| value.parse().expect("a number"))
    })
}

#[jobs::background_job(queue = "tm-outcomes")]
async fn fine(n: u64) {
    let _ = n;
}

#[jobs::background_job(queue = "tm-outcomes", retries = 1)]
async fn flaky(n: u64, ctx: JobContext) -> Result<(), String> {
    if ctx.attempt() == 1 {
        return Err(format!("{n}: first attempt fails"));
    }
    Ok(())
}

#[jobs::background_job(queue = "tm-outcomes", retries = 0)]
async fn broken(n: u64) -> Result<(), String> {
    Err(format!("{n}: always fails"))
}

#[jobs::background_job(queue = "tm-outcomes", retries = 0, timeout = "50ms")]
async fn slow(n: u64) {
    let _ = n;
    tokio::time::sleep(Duration::from_secs(5)).await;
}

#[jobs::background_job(queue = "tm-outcomes", retries = 0, on_exhausted = "delete")]
async fn dropped(n: u64) -> Result<(), String> {
    Err(format!("{n}: dropped"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_counted_by_outcome_and_timed() {
    let handle = recorder();
    let storage = jobs::MemoryStorage::new();
    let client = Client::new(storage.clone());
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(jobs::enqueue!(&client, fine(n)).await.unwrap());
    }
    ids.extend(client.enqueue_many([jobs::job!(fine(3))]).await.unwrap());
    ids.push(jobs::enqueue!(&client, flaky(1)).await.unwrap());
    ids.push(jobs::enqueue!(&client, broken(1)).await.unwrap());
    ids.push(jobs::enqueue!(&client, slow(1)).await.unwrap());
    ids.push(jobs::enqueue!(&client, dropped(1)).await.unwrap());
    let worker = Worker::builder(storage.clone())
        .queues(["tm-outcomes"])
        .retry_backoff(RetryBackoff::exponential(Duration::from_millis(10)))
        .build()
        .unwrap();
    let probe = client.clone();
    worker
        .run_until(async move {
            for id in &ids {
                let finished = eventually(Duration::from_secs(20), || async {
                    let state = probe.job(id).await.unwrap().unwrap().state;
                    matches!(
                        state,
                        JobState::Succeeded | JobState::Failed | JobState::Deleted
                    )
                })
                .await;
                assert!(finished, "{id} never finished");
            }
        })
        .await
        .unwrap();
    // The acker records an attempt once its completion is stored: the run just returned.
    let text = handle.render();
    let q = r#"queue="tm-outcomes""#;
    let job = |j: &str| {
        let n = match j {
            "fine" => <fine as jobs::Job>::NAME,
            "flaky" => <flaky as jobs::Job>::NAME,
            "broken" => <broken as jobs::Job>::NAME,
            "slow" => <slow as jobs::Job>::NAME,
            _ => <dropped as jobs::Job>::NAME,
        };
        format!(r#"job="{n}""#)
    };
    let attempts = |j: &str, outcome: &str| {
        sample(
            &text,
            &format!(
                r#"jobs_attempts_total{{{q},{},outcome="{outcome}"}}"#,
                job(j)
            ),
        )
    };
    assert_eq!(
        sample(
            &text,
            &format!("jobs_enqueued_total{{{q},{}}}", job("fine"))
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(attempts("fine", "succeeded"), Some(4.0), "{text}");
    assert_eq!(attempts("flaky", "retried"), Some(1.0), "{text}");
    assert_eq!(attempts("flaky", "succeeded"), Some(1.0), "{text}");
    assert_eq!(attempts("broken", "failed"), Some(1.0), "{text}");
    assert_eq!(attempts("slow", "timed_out"), Some(1.0), "{text}");
    assert_eq!(attempts("slow", "failed"), Some(0.0), "{text}");
    assert_eq!(attempts("dropped", "deleted"), Some(1.0), "{text}");
    assert_eq!(attempts("fine", "lease_lost"), Some(0.0), "{text}");
    let count = |metric: &str, labels: &str| {
        sample(&text, &format!("{metric}_count{{{labels}}}")).unwrap_or(0.0)
    };
    assert_eq!(
        count(
            "jobs_attempt_duration_seconds",
            &format!("{q},{}", job("flaky"))
        ),
        2.0,
        "{text}"
    );
    let slow_took = sample(
        &text,
        &format!("jobs_attempt_duration_seconds_sum{{{q},{}}}", job("slow")),
    )
    .unwrap();
    assert!(
        (0.04..1.0).contains(&slow_took),
        "{slow_took}: the timeout is 50 ms"
    );
    // One queue wait per attempt: 4 + 2 + 1 + 1 + 1.
    assert_eq!(count("jobs_queue_wait_seconds", q), 9.0, "{text}");
}

/// Runs of `outlives_its_lease` so far.
static OUTLIVING_RUNS: AtomicU32 = AtomicU32::new(0);

/// Its first run blocks the only thread of its worker's runtime past the lease, so the lease
/// keeper cannot renew it: another worker takes the job over, and the first run's completion
/// is refused.
#[jobs::background_job(queue = "tm-lost", retries = 0)]
async fn outlives_its_lease(n: u64) {
    let _ = n;
    if OUTLIVING_RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1_200));
    }
}

#[test]
fn an_attempt_whose_lease_was_lost_is_counted_as_lease_lost() {
    let handle = recorder();
    let storage = jobs::MemoryStorage::new();
    let client = Client::new(storage.clone());
    let multi = tokio::runtime::Runtime::new().unwrap();
    let id = multi
        .block_on(jobs::enqueue!(&client, outlives_its_lease(1)).into_future())
        .unwrap();
    let first = Worker::builder(storage.clone())
        .queues(["tm-lost"])
        .lease(Duration::from_millis(200))
        .build()
        .unwrap();
    let (stop_first, first_stopped) = tokio::sync::oneshot::channel::<()>();
    let first = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(first.run_until(async {
                let _ = first_stopped.await;
            }))
    });
    let lost = |text: &str| {
        sample(
            text,
            &format!(
                r#"jobs_attempts_total{{queue="tm-lost",job="{}",outcome="lease_lost"}}"#,
                <outlives_its_lease as jobs::Job>::NAME
            ),
        )
    };
    let second = Worker::builder(storage.clone())
        .queues(["tm-lost"])
        .build()
        .unwrap();
    let probe = client.clone();
    multi.block_on(async {
        assert!(
            eventually(Duration::from_secs(10), || async {
                OUTLIVING_RUNS.load(Ordering::SeqCst) >= 1
            })
            .await,
            "the first worker started the job"
        );
        second
            .run_until(async {
                assert!(
                    until_state(&**probe.storage(), &id, JobState::Succeeded).await,
                    "the second worker ran the job once its lease ran out"
                );
                // The first run ends and its completion is refused.
                assert!(
                    eventually(Duration::from_secs(10), || async {
                        lost(&handle.render()) == Some(1.0)
                    })
                    .await,
                    "{}",
                    handle.render()
                );
            })
            .await
            .unwrap();
    });
    let _ = stop_first.send(());
    first.join().unwrap().unwrap();
    let text = handle.render();
    assert_eq!(OUTLIVING_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(lost(&text), Some(1.0), "{text}");
    let succeeded = sample(
        &text,
        &format!(
            r#"jobs_attempts_total{{queue="tm-lost",job="{}",outcome="succeeded"}}"#,
            <outlives_its_lease as jobs::Job>::NAME
        ),
    );
    assert_eq!(
        succeeded,
        Some(1.0),
        "only the second run counts as succeeded: {text}"
    );
}

/// Set once the test has read the gauges: `held` jobs wait until then.
static RELEASE: AtomicBool = AtomicBool::new(false);

#[jobs::background_job(queue = "tm-gauges")]
async fn held(n: u64) {
    let _ = n;
    while !RELEASE.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_samples_queue_gauges() {
    let handle = recorder();
    let storage = jobs::MemoryStorage::new();
    let client = Client::new(storage.clone());
    for n in 0..4 {
        jobs::enqueue!(&client, held(n)).await.unwrap();
    }
    jobs::schedule!(&client, held(9), in = Duration::from_secs(3600))
        .await
        .unwrap();
    // One running, one prefetched, two pending, one scheduled.
    let worker = Worker::builder(storage.clone())
        .queues(["tm-gauges"])
        .concurrency(1)
        .fetch_batch(1)
        .metrics_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let probe = client.clone();
    worker
        .run_until(async move {
            let q = r#"{queue="tm-gauges"}"#;
            let sampled = eventually(Duration::from_secs(10), || async {
                let text = handle.render();
                sample(&text, &format!("jobs_pending{q}")) == Some(2.0)
                    && sample(&text, &format!("jobs_processing{q}")) == Some(2.0)
                    && sample(&text, &format!("jobs_scheduled{q}")) == Some(1.0)
                    && sample(&text, &format!("jobs_failed{q}")) == Some(0.0)
                    && sample(&text, &format!("jobs_oldest_pending_age_seconds{q}"))
                        .is_some_and(|age| age > 0.0 && age < 10.0)
                    && sample(&text, "jobs_busy_slots").is_some_and(|b| b >= 1.0)
                    && sample(&text, "jobs_slots").is_some_and(|s| s >= 1.0)
            })
            .await;
            assert!(sampled, "{}", handle.render());
            RELEASE.store(true, Ordering::Relaxed);
            let drained = eventually(Duration::from_secs(10), || async {
                probe.stats("tm-gauges").await.unwrap().succeeded_total == 4
            })
            .await;
            assert!(drained);
            let emptied = eventually(Duration::from_secs(10), || async {
                sample(&handle.render(), &format!("jobs_pending{q}")) == Some(0.0)
            })
            .await;
            assert!(emptied, "{}", handle.render());
        })
        .await
        .unwrap();
}
