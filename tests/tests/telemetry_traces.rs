//! Trace propagation with the `opentelemetry` feature on, from enqueue to perform, read back
//! from an in-memory OpenTelemetry span exporter, on every backend: creation spans, perform spans
//! linked to them or their children, continuations and recurring ticks.
//!
//! One tracing subscriber serves the whole binary (it is process-global); the tests run one at a
//! time (`trace_test`).

use jobs::telemetry::TraceRelation;
use jobs::{Client, JobContext, JobId, JobState, RetryBackoff, Storage, Worker};
use jobs_tests::backends::{backend, Kind};
use jobs_tests::until_state;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::future::IntoFuture;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

jobs_tests::on_every_backend!(
    perform_spans_link_to_the_enqueue_span_on_every_attempt,
    a_child_perform_span_is_in_the_enqueue_trace,
    continuations_carry_their_own_context_and_recurring_ticks_none,
);

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
