//! OpenTelemetry trace propagation (feature `opentelemetry`): a job enqueued inside a span (an
//! HTTP request's, say) gets a creation span there (`create <job>`) whose W3C trace context it
//! carries in its headers, and the worker's span of each attempt is linked to it (or, with
//! `TraceRelation::Child`, made its child). Spans go to
//! an in-memory exporter here; the example prints the trace ids of enqueue and perform.
//!
//! ```text
//! cargo run --example tracing                                   # in memory
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example tracing  # on Redis
//! ```

use jobs::telemetry::TraceRelation;
use jobs::{background_job, Client, JobId, Worker};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

#[background_job(queue = "tracing-example")]
async fn send_receipt(order: u64) {
    tracing::info!(order, "receipt sent");
}

/// Enqueues one job inside a span named `request`, then performs it with a worker that
/// relates its attempt span as `relation` says. Returns the job's id.
async fn run_once(
    storage: &Arc<dyn jobs::Storage>,
    order: u64,
    relation: TraceRelation,
) -> anyhow::Result<JobId> {
    let client = Client::from_shared(storage.clone());
    let request = tracing::info_span!("request", order);
    let id = {
        let _entered = request.enter();
        // Inside the span: the job's headers get its trace context.
        jobs::enqueue!(&client, send_receipt(order)).await?
    };
    drop(request);
    let info = client.job(&id).await?.expect("stored");
    println!(
        "job {id} headers: traceparent={}",
        info.headers.get("traceparent").unwrap_or("(none)")
    );
    let worker = Worker::builder_shared(storage.clone())
        .queues(["tracing-example"])
        .trace_relation(relation)
        .build()?;
    let probe = client.clone();
    let watched = id.clone();
    worker
        .run_until(async move {
            while probe.job(&watched).await.expect("job").expect("kept").state
                != jobs::JobState::Succeeded
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await?;
    Ok(id)
}

fn find<'a>(spans: &'a [SpanData], name: &str, attr: (&str, &str)) -> Option<&'a SpanData> {
    spans.iter().rev().find(|s| {
        s.name == name
            && s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == attr.0 && kv.value.as_str() == attr.1)
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("jobs-example")));
    tracing::subscriber::set_global_default(subscriber)?;

    let storage = jobs_examples::storage_from_env().await?;
    let linked = run_once(&storage, 1, TraceRelation::Link).await?;
    let child = run_once(&storage, 2, TraceRelation::Child).await?;
    provider.force_flush()?;
    let spans = exporter.get_finished_spans()?;

    for (id, order, relation) in [(&linked, "1", "link"), (&child, "2", "child")] {
        let request = find(&spans, "request", ("order", order)).expect("the request span");
        // The job's creation span, a child of the request: the context its headers carry.
        let enqueue = spans
            .iter()
            .find(|s| {
                s.name == "create send_receipt"
                    && s.parent_span_id == request.span_context.span_id()
            })
            .expect("the enqueue (create) span");
        let perform = find(
            &spans,
            "perform send_receipt",
            ("messaging.message.id", &id.to_string()),
        )
        .expect("the perform span");
        let (e, p) = (&enqueue.span_context, &perform.span_context);
        println!(
            "{relation}: enqueue trace {} span {} (create send_receipt, in request span {})",
            e.trace_id(),
            e.span_id(),
            request.span_context.span_id()
        );
        anyhow::ensure!(e.trace_id() == request.span_context.trace_id());
        println!(
            "{relation}: perform trace {} span {}",
            p.trace_id(),
            p.span_id()
        );
        match relation {
            "link" => {
                let link = perform.links.first().expect("the perform span is linked");
                println!(
                    "{relation}: perform links to trace {} span {} (a trace of its own)",
                    link.span_context.trace_id(),
                    link.span_context.span_id()
                );
                anyhow::ensure!(link.span_context.trace_id() == e.trace_id());
                anyhow::ensure!(link.span_context.span_id() == e.span_id());
            }
            _ => {
                println!(
                    "{relation}: perform's parent is span {} (the same trace)",
                    perform.parent_span_id
                );
                anyhow::ensure!(p.trace_id() == e.trace_id());
                anyhow::ensure!(perform.parent_span_id == e.span_id());
            }
        }
    }
    Ok(())
}
