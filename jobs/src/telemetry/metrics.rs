//! The metrics of the `metrics` feature (see the table in [`telemetry`](super)): their names,
//! descriptions, the handles the client and the worker keep, and the worker's gauge sampler.
//!
//! Handles (`Counter`, `Histogram`) are looked up once per queue and job and kept, so recording
//! an attempt costs a map lookup by name and a few atomic additions, not a registration with
//! the recorder per job.

use super::by_job::{same, ByJob};
use crate::storage::{now_ms, FetchedJob, Outcome, Storage};
use metrics::{Counter, Histogram, Unit};
use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `jobs_enqueued_total`.
pub(crate) const ENQUEUED: &str = "jobs_enqueued_total";
/// `jobs_attempts_total`.
pub(crate) const ATTEMPTS: &str = "jobs_attempts_total";
/// `jobs_attempt_duration_seconds`.
pub(crate) const DURATION: &str = "jobs_attempt_duration_seconds";
/// `jobs_queue_wait_seconds`.
pub(crate) const QUEUE_WAIT: &str = "jobs_queue_wait_seconds";
const PENDING: &str = "jobs_pending";
const SCHEDULED: &str = "jobs_scheduled";
const PROCESSING: &str = "jobs_processing";
const FAILED: &str = "jobs_failed";
const OLDEST: &str = "jobs_oldest_pending_age_seconds";
const BUSY: &str = "jobs_busy_slots";
const SLOTS: &str = "jobs_slots";

/// The `outcome` label values, in the order of [`JobHandles::outcomes`].
const OUTCOMES: [&str; 6] = [
    "succeeded",
    "failed",
    "retried",
    "deleted",
    "timed_out",
    "lease_lost",
];

/// Describes every metric to the recorder (once per process: the Prometheus exporter turns
/// descriptions into `# HELP` lines and units into suffix checks).
pub(crate) fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        metrics::describe_counter!(ENQUEUED, Unit::Count, "Jobs stored by clients");
        metrics::describe_counter!(
            ATTEMPTS,
            Unit::Count,
            "Attempts ended, by outcome (succeeded, failed, retried, deleted, timed_out, lease_lost)"
        );
        metrics::describe_histogram!(DURATION, Unit::Seconds, "How long attempts ran");
        metrics::describe_histogram!(
            QUEUE_WAIT,
            Unit::Seconds,
            "From when a job became ready (enqueued or due) to the start of its attempt"
        );
        metrics::describe_gauge!(PENDING, Unit::Count, "Jobs waiting on the queue");
        metrics::describe_gauge!(SCHEDULED, Unit::Count, "Jobs waiting for their due time");
        metrics::describe_gauge!(PROCESSING, Unit::Count, "Jobs leased by workers");
        metrics::describe_gauge!(FAILED, Unit::Count, "Failed jobs kept for inspection");
        metrics::describe_gauge!(
            OLDEST,
            Unit::Seconds,
            "How long the next job of the queue has been waiting"
        );
        metrics::describe_gauge!(BUSY, Unit::Count, "Worker slots of this process running a job");
        metrics::describe_gauge!(SLOTS, Unit::Count, "Worker slots of this process");
    });
}

thread_local! {
    /// The `jobs_enqueued_total` handles of one thread (no lock on the enqueue path).
    static ENQUEUED_HANDLES: RefCell<ByJob<Counter>> = const { RefCell::new(ByJob::new()) };
}

/// Counts stored jobs, given as `(queue, job)` pairs (runs of equal pairs are counted at once).
pub(crate) fn enqueued<'a>(jobs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut run: Option<((&str, &str), u64)> = None;
    for job in jobs {
        match &mut run {
            Some((at, n)) if same(at.0, job.0) && same(at.1, job.1) => *n += 1,
            _ => {
                if let Some((at, n)) = run.replace((job, 1)) {
                    count_enqueued(at, n);
                }
            }
        }
    }
    if let Some((at, n)) = run {
        count_enqueued(at, n);
    }
}

fn count_enqueued((queue, job): (&str, &str), n: u64) {
    ENQUEUED_HANDLES.with(|cell| {
        cell.borrow_mut()
            .get(&queue, &job, || {
                describe();
                metrics::counter!(
                    ENQUEUED,
                    "queue" => queue.to_owned(),
                    "job" => job.to_owned()
                )
            })
            .increment(n);
    });
}

/// Times one attempt: made when the job is taken from the buffer (at `started_at_ms`, the
/// wall clock the caller read already), finished when it ended.
///
/// It reads `quanta`'s clock (the TSC where it is invariant): a read and an elapsed cost 26 ns
/// against 38 ns for `std::time::Instant` on the benchmark machine, per attempt.
pub(crate) struct AttemptClock {
    started: quanta::Instant,
    wait_ms: u64,
}

impl AttemptClock {
    pub(crate) fn start(job: &FetchedJob, started_at_ms: u64) -> Self {
        AttemptClock {
            started: quanta::Instant::now(),
            wait_ms: started_at_ms.saturating_sub(job.ready_at_ms),
        }
    }

    pub(crate) fn finish(self, timed_out: bool) -> AttemptReport {
        let duration_ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        AttemptReport {
            duration_ns,
            // The top bit says whether the attempt timed out: the report travels with every
            // acknowledgement, so it is kept to two words.
            wait_ms: self.wait_ms.min(TIMED_OUT - 1) | if timed_out { TIMED_OUT } else { 0 },
        }
    }
}

/// The bit of [`AttemptReport::wait_ms`] that marks a timed-out attempt.
const TIMED_OUT: u64 = 1 << 63;

/// What the acker records for one ended attempt.
pub(crate) struct AttemptReport {
    duration_ns: u64,
    wait_ms: u64,
}

/// The handles of one job name on one queue.
struct JobHandles {
    outcomes: [Counter; 6],
    duration: Histogram,
    wait: Histogram,
}

impl JobHandles {
    fn new(queue: &str, job: &str) -> Self {
        JobHandles {
            outcomes: OUTCOMES.map(|outcome| {
                metrics::counter!(
                    ATTEMPTS,
                    "queue" => queue.to_owned(),
                    "job" => job.to_owned(),
                    "outcome" => outcome
                )
            }),
            duration: metrics::histogram!(
                DURATION,
                "queue" => queue.to_owned(),
                "job" => job.to_owned()
            ),
            wait: metrics::histogram!(QUEUE_WAIT, "queue" => queue.to_owned()),
        }
    }
}

/// The attempt metrics of one worker, kept by its acker (one task: no lock). Histograms are
/// recorded per attempt; the counters of a batch of acknowledgements are added up and
/// incremented once per job name and outcome ([`AttemptMetrics::flush`]), and consecutive
/// attempts of one job name (the common case in a batch) share one lookup of their handles.
pub(crate) struct AttemptMetrics {
    handles: Vec<JobHandles>,
    /// Per handle, the attempts of this batch by outcome, not added to the counters yet.
    counts: Vec<[u64; 6]>,
    /// The handles with counts.
    dirty: Vec<usize>,
    /// The index in `handles` by queue and job.
    index: ByJob<usize>,
}

impl AttemptMetrics {
    pub(crate) fn new() -> Self {
        describe();
        // Calibrates quanta's clock here, at start-up, not in the first attempt.
        let _ = quanta::Instant::now();
        AttemptMetrics {
            handles: Vec::new(),
            counts: Vec::new(),
            dirty: Vec::new(),
            index: ByJob::new(),
        }
    }

    /// The index of the handles of `job` on `queue`, made on first use.
    fn handles(&mut self, queue: &Arc<str>, job: &Arc<str>) -> usize {
        let (handles, counts) = (&mut self.handles, &mut self.counts);
        *self.index.get(queue, job, || {
            handles.push(JobHandles::new(queue, job));
            counts.push([0; 6]);
            handles.len() - 1
        })
    }

    /// Adds the counts of the attempts recorded since the last flush to the counters.
    pub(crate) fn flush(&mut self) {
        for at in self.dirty.drain(..) {
            let counts = std::mem::take(&mut self.counts[at]);
            for (counter, n) in self.handles[at].outcomes.iter().zip(counts) {
                if n > 0 {
                    counter.increment(n);
                }
            }
        }
    }

    /// Records an attempt of `job` on `queue` that ended as `outcome`; `applied` is whether the
    /// storage took the completion (the lease was still held).
    pub(crate) fn ended(
        &mut self,
        queue: &Arc<str>,
        job: &Arc<str>,
        outcome: &Outcome,
        applied: bool,
        report: &AttemptReport,
    ) {
        let at = self.handles(queue, job);
        let outcome = if !applied {
            5
        } else if report.wait_ms & TIMED_OUT != 0 {
            4
        } else {
            match outcome {
                Outcome::Succeeded => 0,
                Outcome::Failed { .. } => 1,
                Outcome::Retry { .. } => 2,
                _ => 3,
            }
        };
        let counts = &mut self.counts[at];
        if counts.iter().all(|&n| n == 0) {
            self.dirty.push(at);
        }
        counts[outcome] += 1;
        let handles = &self.handles[at];
        #[allow(clippy::cast_precision_loss)] // exact up to 2^53 ns (104 days) and ms
        {
            handles.duration.record(report.duration_ns as f64 / 1e9);
            handles
                .wait
                .record((report.wait_ms & !TIMED_OUT) as f64 / 1000.0);
        }
    }
}

/// Slots of this process's workers running a job (as last sampled by each), and in all.
static BUSY_SLOTS: AtomicI64 = AtomicI64::new(0);
static ALL_SLOTS: AtomicI64 = AtomicI64::new(0);

/// Samples the gauges every `every` until `stop`: one `stats` call per queue of the worker,
/// and the process's slots: `slots` are added to `jobs_slots` while it runs, and `busy` tells
/// how many of them run a job now (read from what the worker tracks anyway, so a job costs
/// nothing for this gauge).
pub(crate) async fn sample(
    storage: Arc<dyn Storage>,
    queues: Vec<Arc<str>>,
    slots: usize,
    every: Duration,
    stop: CancellationToken,
    busy: impl Fn() -> usize + Send,
) {
    describe();
    let slots = i64::try_from(slots).unwrap_or(i64::MAX);
    ALL_SLOTS.fetch_add(slots, Ordering::Relaxed);
    // This worker's share of `BUSY_SLOTS`.
    let mut mine = 0i64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => break,
        }
        let now = i64::try_from(busy()).unwrap_or(i64::MAX).min(slots);
        BUSY_SLOTS.fetch_add(now - mine, Ordering::Relaxed);
        mine = now;
        #[allow(clippy::cast_precision_loss)] // slot counts
        {
            metrics::gauge!(BUSY).set(BUSY_SLOTS.load(Ordering::Relaxed) as f64);
            metrics::gauge!(SLOTS).set(ALL_SLOTS.load(Ordering::Relaxed) as f64);
        }
        for queue in &queues {
            match storage.stats(queue).await {
                Ok(s) => {
                    let q = queue.to_string();
                    #[allow(clippy::cast_precision_loss)] // counts and milliseconds
                    {
                        metrics::gauge!(PENDING, "queue" => q.clone()).set(s.enqueued as f64);
                        metrics::gauge!(SCHEDULED, "queue" => q.clone()).set(s.scheduled as f64);
                        metrics::gauge!(PROCESSING, "queue" => q.clone()).set(s.processing as f64);
                        metrics::gauge!(FAILED, "queue" => q.clone()).set(s.failed as f64);
                        let age_ms = s
                            .oldest_pending_at_ms
                            .map_or(0, |at| now_ms().saturating_sub(at));
                        metrics::gauge!(OLDEST, "queue" => q).set(age_ms as f64 / 1000.0);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, queue = %queue, "sampling queue gauges failed")
                }
            }
        }
    }
    ALL_SLOTS.fetch_sub(slots, Ordering::Relaxed);
    BUSY_SLOTS.fetch_sub(mine, Ordering::Relaxed);
}
