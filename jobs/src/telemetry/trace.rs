//! Trace propagation (feature `opentelemetry`): the W3C trace context of the enqueueing span,
//! stored in the job's headers, and the relation of each attempt's span to it.

use crate::headers::Headers;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// How an attempt's span relates to the span the job was enqueued in.
///
/// # Examples
///
/// ```
/// let worker = jobs::Worker::builder(jobs::MemoryStorage::new())
///     .trace_relation(jobs::telemetry::TraceRelation::Child)
///     .build()
///     .expect("valid configuration");
/// # drop(worker);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceRelation {
    /// The attempt starts a trace of its own, with a link to the enqueueing span (the default,
    /// as the OpenTelemetry messaging conventions advise: a job often runs long after the
    /// request that enqueued it ended, and may run several times).
    #[default]
    Link,
    /// The attempt's span is a child of the enqueueing span: one trace from the request to
    /// every attempt of its jobs.
    Child,
}

struct Inject<'a>(&'a mut Headers);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}

struct Extract<'a>(&'a Headers);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k).collect()
    }
}

/// When there is a current span (or else a current OpenTelemetry context): records the
/// creation of job `job` on `queue` as a span of its own under it, and stores that span's trace
/// context in `headers` (the current one's, when the creation span is filtered out).
pub(crate) fn inject(headers: &mut Headers, queue: &str, job: &str) {
    let mut cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        cx = opentelemetry::Context::current();
        if !cx.span().span_context().is_valid() {
            return;
        }
    }
    let create = tracing::info_span!(
        "jobs.create",
        otel.name = %format_args!("create {job}"),
        otel.kind = "producer",
        messaging.system = "jobs",
        messaging.operation.type = "create",
        messaging.operation.name = "enqueue",
        messaging.destination.name = %queue,
        jobs.job = %job,
    );
    if !create.is_disabled() {
        // Fails only without an OpenTelemetry layer; then the span has no context either.
        let _ = create.set_parent(cx.clone());
        let own = create.context();
        if own.span().span_context().is_valid() {
            cx = own;
        }
    }
    TraceContextPropagator::new().inject_context(&cx, &mut Inject(headers));
}

/// Links `span` (an attempt's, not entered yet) to the trace context in `headers`, or makes it
/// its child, as `relation` says. Nothing when the job carries no context.
pub(crate) fn relate(span: &tracing::Span, headers: &Headers, relation: TraceRelation) {
    if headers.get("traceparent").is_none() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Extract(headers));
    let remote = cx.span().span_context().clone();
    if !remote.is_valid() {
        return;
    }
    match relation {
        TraceRelation::Child => {
            // Fails only without an OpenTelemetry layer, where there is nothing to relate.
            let _ = span.set_parent(cx);
        }
        TraceRelation::Link => span.add_link(remote),
    }
}
