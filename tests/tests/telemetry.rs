//! Telemetry with the features on: the metrics a worker and a client record (read back from a
//! real Prometheus recorder's exposition), and trace propagation from enqueue to perform (read
//! back from an in-memory OpenTelemetry span exporter), on every backend.
//!
//! One recorder and one tracing subscriber serve the whole binary (both are process-global);
//! each test keeps to queues and job ids of its own.

use jobs::telemetry::TraceRelation;
use jobs::{Client, JobContext, JobId, JobState, RetryBackoff, Storage, Worker};
use jobs_tests::backends::{backend, Kind};
use jobs_tests::{eventually, until_state};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

jobs_tests::on_every_backend!(
    perform_spans_link_to_the_enqueue_span_on_every_attempt,
    a_child_perform_span_is_in_the_enqueue_trace,
    continuations_carry_their_own_context_and_recurring_ticks_none,
);

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

/// The process's span exporter, behind the subscriber installed on first use.
fn export() -> &'static (SdkTracerProvider, InMemorySpanExporter) {
    static EXPORT: OnceLock<(SdkTracerProvider, InMemorySpanExporter)> = OnceLock::new();
    EXPORT.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("jobs-tests")));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        (provider, exporter)
    })
}

/// The spans exported so far.
fn spans() -> Vec<SpanData> {
    let (provider, exporter) = export();
    provider.force_flush().expect("flush");
    exporter.get_finished_spans().expect("spans")
}

/// The tracing tests run one at a time, each with the exporter emptied first: job ids repeat
/// across backends (`tt:1` on each), and spans tell them apart by nothing else.
async fn trace_test() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let guard = ONE_AT_A_TIME.lock().await;
    let (provider, exporter) = export();
    provider.force_flush().expect("flush");
    exporter.reset();
    guard
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// The perform spans of job `id`, in the order they ended.
fn performs(id: &JobId) -> Vec<SpanData> {
    let id = id.to_string();
    spans()
        .into_iter()
        .filter(|s| attr(s, "messaging.message.id").is_some_and(|v| v.as_str() == id.as_str()))
        .collect()
}

/// The span named `request` whose `tag` attribute is `tag`.
fn request(tag: &str) -> SpanData {
    spans()
        .into_iter()
        .find(|s| s.name == "request" && attr(s, "tag").is_some_and(|v| v.as_str() == tag))
        .expect("the request span was exported")
}

/// The creation span of the job enqueued inside the `request` span tagged `tag`: its child.
fn created(tag: &str) -> SpanData {
    let request = request(tag).span_context.span_id();
    spans()
        .into_iter()
        .find(|s| s.name.starts_with("create ") && s.parent_span_id == request)
        .expect("the job's creation span was exported, a child of the request span")
}

// --- metrics ---

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

// --- trace propagation ---

/// Fails its first attempt.
#[jobs::background_job(queue = "tt", retries = 1)]
async fn traced(tag: String, ctx: JobContext) -> Result<(), String> {
    if ctx.attempt() == 1 {
        return Err(format!("{tag}: first attempt fails"));
    }
    Ok(())
}

#[jobs::background_job(queue = "tt")]
async fn traced_once(tag: String) {
    let _ = tag;
}

/// Enqueues with `enqueue` inside a span `request` tagged `tag`.
async fn in_request<F, Fut>(tag: &str, enqueue: F) -> JobId
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = jobs::Result<JobId>>,
{
    let span = tracing::info_span!("request", tag);
    let future = {
        let _entered = span.enter();
        // `enqueue!` reads the span when called, not when awaited.
        enqueue()
    };
    future.await.expect("enqueued")
}

/// Runs a worker of queue `tt` (relating spans as `relation` says) until `ids` succeeded.
async fn perform(storage: &Arc<dyn Storage>, relation: TraceRelation, ids: &[JobId]) {
    let worker = Worker::builder_shared(storage.clone())
        .queues(["tt"])
        .trace_relation(relation)
        .retry_backoff(RetryBackoff::exponential(Duration::from_millis(10)))
        .build()
        .unwrap();
    let storage = storage.clone();
    let ids = ids.to_vec();
    worker
        .run_until(async move {
            for id in &ids {
                assert!(until_state(&*storage, id, JobState::Succeeded).await);
            }
        })
        .await
        .unwrap();
}

async fn perform_spans_link_to_the_enqueue_span_on_every_attempt(kind: Kind) {
    let Some(b) = backend(kind, "tt-link", jobs::storage::Retention::default()) else {
        return;
    };
    let _one = trace_test().await;
    let tag = format!("link-{kind:?}");
    let client = Client::from_shared(b.storage.clone());
    let id = in_request(&tag, || jobs::enqueue!(&client, traced(tag.clone()))).await;
    let headers = client.job(&id).await.unwrap().unwrap().headers;
    assert!(headers.get("traceparent").is_some(), "{headers:?}");
    perform(&b.storage, TraceRelation::Link, std::slice::from_ref(&id)).await;
    let enqueue = created(&tag);
    assert_eq!(
        enqueue.name,
        format!("create {}", <traced as jobs::Job>::NAME)
    );
    assert_eq!(enqueue.span_kind, opentelemetry::trace::SpanKind::Producer);
    assert_eq!(
        enqueue.span_context.trace_id(),
        request(&tag).span_context.trace_id()
    );
    for (key, value) in [
        ("messaging.system", "jobs"),
        ("messaging.operation.type", "create"),
        ("messaging.destination.name", "tt"),
    ] {
        assert_eq!(
            attr(&enqueue, key).map(Value::as_str).as_deref(),
            Some(value),
            "{enqueue:#?}"
        );
    }
    let attempts = performs(&id);
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    for (n, span) in attempts.iter().enumerate() {
        assert_eq!(
            span.name,
            format!("perform {}", <traced as jobs::Job>::NAME)
        );
        assert_eq!(span.links.len(), 1, "{span:#?}");
        let link = &span.links[0].span_context;
        assert_eq!(link.trace_id(), enqueue.span_context.trace_id());
        assert_eq!(link.span_id(), enqueue.span_context.span_id());
        assert_ne!(
            span.span_context.trace_id(),
            enqueue.span_context.trace_id()
        );
        assert_eq!(attr(span, "jobs.attempt"), Some(&Value::I64(n as i64 + 1)));
        assert_eq!(
            attr(span, "messaging.system").map(Value::as_str).as_deref(),
            Some("jobs")
        );
        assert_eq!(
            attr(span, "messaging.destination.name")
                .map(Value::as_str)
                .as_deref(),
            Some("tt")
        );
        assert_eq!(
            attr(span, "messaging.operation.type")
                .map(Value::as_str)
                .as_deref(),
            Some("process")
        );
        assert_eq!(span.span_kind, opentelemetry::trace::SpanKind::Consumer);
    }
}

async fn a_child_perform_span_is_in_the_enqueue_trace(kind: Kind) {
    let Some(b) = backend(kind, "tt-child", jobs::storage::Retention::default()) else {
        return;
    };
    let _one = trace_test().await;
    let tag = format!("child-{kind:?}");
    let client = Client::from_shared(b.storage.clone());
    let id = in_request(&tag, || jobs::enqueue!(&client, traced_once(tag.clone()))).await;
    perform(&b.storage, TraceRelation::Child, std::slice::from_ref(&id)).await;
    let enqueue = created(&tag);
    let attempts = performs(&id);
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    let span = &attempts[0];
    assert_eq!(
        span.span_context.trace_id(),
        enqueue.span_context.trace_id()
    );
    assert_eq!(span.parent_span_id, enqueue.span_context.span_id());
    assert!(span.links.is_empty());
}

async fn continuations_carry_their_own_context_and_recurring_ticks_none(kind: Kind) {
    let Some(b) = backend(kind, "tt-flows", jobs::storage::Retention::default()) else {
        return;
    };
    let _one = trace_test().await;
    let client = Client::from_shared(b.storage.clone());
    let parent_tag = format!("parent-{kind:?}");
    let child_tag = format!("continuation-{kind:?}");
    let parent = in_request(&parent_tag, || {
        jobs::enqueue!(&client, traced_once(parent_tag.clone()))
    })
    .await;
    let child = in_request(&child_tag, || {
        client
            .continue_with(&parent, jobs::job!(traced_once(child_tag.clone())))
            .into_future()
    })
    .await;
    let recurring_id = format!("tick-{kind:?}");
    // Registered inside a span: its ticks carry no context all the same.
    let registering = tracing::info_span!("request", tag = "register");
    let entry = {
        let _entered = registering.enter();
        client
            .recurring(
                &recurring_id,
                "0 0 3 1 1 *",
                jobs::job!(traced_once(recurring_id.clone())),
            )
            .register()
    }
    .await
    .unwrap();
    assert!(entry.headers.is_empty(), "{:?}", entry.headers);
    // Triggered inside a span: a tick carries no context all the same.
    let tick = client
        .trigger_recurring(&recurring_id)
        .instrument(tracing::info_span!("request", tag = "trigger"))
        .await
        .unwrap();
    assert!(client.job(&tick).await.unwrap().unwrap().headers.is_empty());
    perform(
        &b.storage,
        TraceRelation::Link,
        &[parent.clone(), child.clone(), tick.clone()],
    )
    .await;

    let links = |id: &JobId| -> Vec<_> {
        performs(id)[0]
            .links
            .iter()
            .map(|l| l.span_context.span_id())
            .collect()
    };
    assert_eq!(
        links(&parent),
        [created(&parent_tag).span_context.span_id()]
    );
    assert_eq!(links(&child), [created(&child_tag).span_context.span_id()]);
    let tick_span = &performs(&tick)[0];
    assert!(tick_span.links.is_empty(), "{tick_span:#?}");
    assert_eq!(
        tick_span.parent_span_id,
        opentelemetry::trace::SpanId::INVALID
    );
}
