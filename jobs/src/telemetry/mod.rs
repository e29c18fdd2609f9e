//! Telemetry: Prometheus-ready metrics (feature `metrics`) and OpenTelemetry trace propagation
//! (feature `opentelemetry`). Both are off by default and cost nothing then.
//!
//! # Metrics
//!
//! With the `metrics` feature the client and the worker record through the
//! [`metrics`](https://docs.rs/metrics) facade. The library never installs a recorder: install
//! one in the application (e.g. `metrics_exporter_prometheus::PrometheusBuilder`) **before**
//! building clients and workers (handles are taken once per queue and job, from the recorder
//! installed at that moment).
//!
//! | name | kind | labels | what |
//! |------|------|--------|------|
//! | `jobs_enqueued_total` | counter | `queue`, `job` | jobs stored by clients of this process (and by its recurring scheduler) |
//! | `jobs_attempts_total` | counter | `queue`, `job`, `outcome` | attempts ended: `succeeded`, `failed` (for good), `retried`, `deleted`, `timed_out` (retried or not), `lease_lost` (the completion was refused: another worker had the job) |
//! | `jobs_attempt_duration_seconds` | histogram | `queue`, `job` | how long attempts ran |
//! | `jobs_queue_wait_seconds` | histogram | `queue` | from when a job became ready (enqueued, or came due) to the start of its attempt |
//! | `jobs_pending` | gauge | `queue` | jobs waiting on the queue |
//! | `jobs_scheduled` | gauge | `queue` | jobs waiting for their due time (delayed jobs, retries) |
//! | `jobs_processing` | gauge | `queue` | jobs leased by workers |
//! | `jobs_failed` | gauge | `queue` | failed jobs kept for inspection |
//! | `jobs_oldest_pending_age_seconds` | gauge | `queue` | how long the next job of the queue has been waiting (0 when none) |
//! | `jobs_busy_slots` | gauge | | slots of this process's workers running a job |
//! | `jobs_slots` | gauge | | slots of this process's workers (their concurrency) |
//!
//! The gauges of queues are sampled by each worker for its queues, every
//! `WorkerBuilder::metrics_interval` (5 s by default), with one
//! [`Monitoring::stats`](crate::storage::Monitoring::stats) call per queue: never per job.
//!
//! # Trace propagation
//!
//! With the `opentelemetry` feature, a job enqueued inside a span (a `tracing` span with a
//! `tracing-opentelemetry` layer, or else the current OpenTelemetry context) gets a span of its
//! own there, `create <job>` (kind producer, `messaging.operation.type` `create`, as the
//! messaging conventions give each message of a batch its own creation context), and carries
//! that span's W3C trace context (`traceparent`, `tracestate`) in its
//! [headers](crate::Headers). Each attempt runs in a span named `perform <job>` that is
//! **linked** to it (the default: a job runs later, often long after the request ended) or
//! made its **child** (`TraceRelation::Child` with `WorkerBuilder::trace_relation`).
//! Every attempt of the job, retries included, refers to the context stored at enqueue; a
//! continuation or batch carries the context it was created in; a tick of a recurring job
//! carries none, so its attempts are new roots. The span's attributes follow the OpenTelemetry
//! messaging conventions: `messaging.system` (`jobs`), `messaging.operation.type`
//! (`process`), `messaging.operation.name` (`perform`), `messaging.destination.name` (the
//! queue), `messaging.message.id` (the job id), and `jobs.attempt`.

#[cfg(feature = "metrics")]
mod by_job;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
#[cfg(feature = "opentelemetry")]
mod trace;

#[cfg(feature = "opentelemetry")]
pub use trace::TraceRelation;
#[cfg(feature = "opentelemetry")]
pub(crate) use trace::{inject, relate};

/// Without the `opentelemetry` feature there is no trace context to store.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn inject(_headers: &mut crate::Headers, _queue: &str, _job: &str) {}

/// Counts jobs stored by a client (nothing without the `metrics` feature).
#[cfg(not(feature = "metrics"))]
pub(crate) fn enqueued<'a>(_jobs: impl IntoIterator<Item = (&'a str, &'a str)>) {}

#[cfg(feature = "metrics")]
pub(crate) use self::metrics::enqueued;

#[cfg(feature = "metrics")]
pub(crate) use self::metrics::{AttemptClock, AttemptMetrics, AttemptReport};

/// Without the `metrics` feature attempts are not timed: these stand-ins are empty.
#[cfg(not(feature = "metrics"))]
mod no_metrics {
    use crate::storage::{FetchedJob, Outcome};

    pub(crate) struct AttemptClock;
    pub(crate) struct AttemptReport;
    pub(crate) struct AttemptMetrics;

    impl AttemptClock {
        pub(crate) fn start(_job: &FetchedJob, _now_ms: u64) -> Self {
            AttemptClock
        }

        pub(crate) fn finish(self, _timed_out: bool) -> AttemptReport {
            AttemptReport
        }
    }

    impl AttemptMetrics {
        pub(crate) fn new() -> Self {
            AttemptMetrics
        }

        pub(crate) fn ended(
            &mut self,
            _queue: &std::sync::Arc<str>,
            _job: &std::sync::Arc<str>,
            _outcome: &Outcome,
            _applied: bool,
            _report: &AttemptReport,
        ) {
        }

        pub(crate) fn flush(&mut self) {}
    }
}

#[cfg(not(feature = "metrics"))]
pub(crate) use no_metrics::{AttemptClock, AttemptMetrics, AttemptReport};
