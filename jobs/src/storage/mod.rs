//! Where jobs live: the [`Storage`] traits every backend implements (its capabilities), and the records it trades in.
//!
//! The worker and the client know nothing but this trait. Every operation is batch-first: a
//! backend is asked to enqueue many jobs, fetch up to N, complete many, renew many leases.
//!
//! # Leases
//!
//! [`Delivery::fetch`] moves each job it returns into *processing* with a lease: a deadline and a
//! [`LeaseToken`]. Until the deadline passes the job is hidden from every other fetch. The worker
//! renews its leases ([`Delivery::renew`]) well before they run out; [`Delivery::complete`] and
//! [`Delivery::release`] only act on a job whose lease the caller still holds (the token matches),
//! so a worker that lost its lease can neither acknowledge nor overwrite the job. A lease that
//! runs out puts the job back on its queue (any `fetch` reaps expired leases), which is how a job
//! whose worker died is performed again: delivery is **at least once**.
//!
//! # Crash accounting
//!
//! A fetched job may wait in a worker's buffer before its handler starts, so a lease that runs
//! out says nothing by itself about whether the job ran. The worker tells the storage when a
//! handler starts ([`Delivery::mark_started`]); the mark ends with the lease. When a lease runs
//! out, the reaper reads it:
//!
//! - **marked**: the worker died (or hung) while running the job. That is a *crash*, counted in
//!   [`FetchedJob::crashes`], apart from the attempts that ended with an error. The job is
//!   Scheduled to run again after a pause of one second per crash (jittered to 50–150 %), and
//!   the worker fails a job that reached its crash limit instead of running it again (a poison
//!   pill that kills its worker cannot loop forever).
//! - **not marked**: the job was buffered, or had only just started when the mark could not be
//!   sent. It goes back to the front of its queue as if released, charged nothing; it is counted
//!   in [`FetchedJob::orphaned`], and the next worker to run it stores its start mark before
//!   the handler starts, so a job that kills its worker at once is counted from then on.
//!
//! An expired lease never counts an attempt: [`FetchedJob::attempt`] counts attempts that
//! ended (success, error, timeout).

use crate::headers::Headers;
use crate::job::JobId;
use crate::state::{JobState, StateChange};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod cancellation;
mod crash_accounting;
mod delivery;
mod flow;
pub mod memory;
mod monitoring;
mod payload_limit;
#[cfg(feature = "postgres")]
pub mod postgres;
mod recurring;
#[cfg(feature = "redis")]
pub mod redis;
mod retention;
pub use cancellation::Cancellation;
pub(crate) use crash_accounting::{
    crash_limit_reason, crash_pause_ms, crash_reason, ORPHANED_REASON,
};
pub use delivery::Delivery;
pub use flow::{Batch, BatchProgress, Finish, Flows, LimitRequest, UniqueKey};
pub use memory::{MemoryStorage, MemoryStorageBuilder};
pub use monitoring::Monitoring;
pub use payload_limit::DEFAULT_MAX_PAYLOAD;
pub(crate) use payload_limit::{size, PayloadLimit};
pub use recurring::{Recurring, RecurringEntry, RecurringFire};
pub use retention::Retention;

/// A job to be stored: what `enqueue!` hands to the storage.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewJob {
    /// The queue to put it on.
    pub queue: Arc<str>,
    /// The job's registered name.
    pub name: Cow<'static, str>,
    /// The arguments, serialized as a JSON object.
    pub args: String,
    /// Not before this time, in milliseconds since the Unix epoch (`None`: now).
    pub run_at_ms: Option<u64>,
    /// A uniqueness claim: while a live job on the queue holds the same key, the storage
    /// returns that job's id instead of storing this one.
    pub unique: Option<UniqueKey>,
    /// Its headers (trace context and other metadata; most jobs have none). They count toward
    /// the storage's payload limit and are bounded by [`MAX_HEADERS`](crate::headers::MAX_HEADERS).
    pub headers: Headers,
}

impl NewJob {
    /// A job for `queue` named `name` with JSON `args`, to run now.
    pub fn new(
        queue: impl Into<Arc<str>>,
        name: impl Into<Cow<'static, str>>,
        args: String,
    ) -> Self {
        NewJob {
            queue: queue.into(),
            name: name.into(),
            args,
            run_at_ms: None,
            unique: None,
            headers: Headers::new(),
        }
    }

    /// The same job, due at `run_at_ms` (milliseconds since the Unix epoch).
    #[must_use]
    pub fn run_at_ms(mut self, run_at_ms: u64) -> Self {
        self.run_at_ms = Some(run_at_ms);
        self
    }

    /// The same job carrying `headers`.
    #[must_use]
    pub fn headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
}

/// The fencing token of one lease. A new token is handed out by every fetch of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub u64);

/// A job plus the token of the lease its fetch handed out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The job leased.
    pub id: JobId,
    /// The lease's token.
    pub token: LeaseToken,
}

/// What [`Delivery::fetch`] is asked for.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FetchRequest<'a> {
    /// Queues to take from, highest priority first.
    pub queues: &'a [Arc<str>],
    /// At most this many jobs.
    pub max: usize,
    /// How long the leases of the fetched jobs last.
    pub lease: Duration,
    /// When nothing is ready, wait up to this long for a job to become ready (an enqueue, or a
    /// scheduled job coming due) before returning an empty batch. Backends must not busy-poll.
    pub wait: Duration,
}

impl<'a> FetchRequest<'a> {
    /// A request for up to `max` jobs from `queues` with leases of `lease`, waiting up to `wait`.
    pub fn new(queues: &'a [Arc<str>], max: usize, lease: Duration, wait: Duration) -> Self {
        FetchRequest {
            queues,
            max,
            lease,
            wait,
        }
    }
}

/// A job handed to a worker by [`Delivery::fetch`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchedJob {
    /// The job's id.
    pub id: JobId,
    /// Its registered name (possibly one no handler exists for).
    pub name: Arc<str>,
    /// Its JSON arguments (shared: a backend may hand out the copy it keeps).
    pub args: Arc<str>,
    /// Which attempt this fetch starts: 1 for the first. Attempts whose worker died are not
    /// counted here but in `crashes`.
    pub attempt: u32,
    /// When it was first enqueued, in milliseconds since the Unix epoch.
    pub enqueued_at_ms: u64,
    /// When it last became ready to run, in milliseconds since the Unix epoch: its enqueue
    /// time, or for a scheduled job or a retry the time it came due (the start of its queue
    /// wait, as the `jobs_queue_wait_seconds` metric measures it).
    pub ready_at_ms: u64,
    /// Its headers (see [`Headers`]).
    pub headers: Headers,
    /// The lease this fetch handed out.
    pub token: LeaseToken,
    /// How many times a worker died (or hung past its lease) while running the job: leases that
    /// ran out after [`Delivery::mark_started`] marked them.
    pub crashes: u32,
    /// How many leases of the job ran out before a start was marked (its worker died while the
    /// job waited in its buffer, or right as it started). Never charged to the job; a job with
    /// any has its next start marked before its handler runs.
    pub orphaned: u32,
}

impl FetchedJob {
    /// The lease of this fetch.
    pub fn lease(&self) -> Lease {
        Lease {
            id: self.id.clone(),
            token: self.token,
        }
    }
}

/// How an attempt ended, as the worker reports it to the storage.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The job succeeded; it moves to Succeeded (kept for the retention period).
    Succeeded,
    /// The attempt failed and another is due at `at_ms`; the job moves to Scheduled.
    Retry {
        /// When the next attempt is due, in milliseconds since the Unix epoch.
        at_ms: u64,
        /// Why the attempt failed.
        reason: String,
    },
    /// The job failed for good; it moves to Failed and is kept until requeued or deleted.
    Failed {
        /// Why.
        reason: String,
    },
    /// The job is dropped; it moves to Deleted.
    Deleted {
        /// Why.
        reason: String,
    },
}

/// The end of one attempt: which lease, and how it ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Completion {
    /// The lease the attempt ran under.
    pub lease: Lease,
    /// When the attempt started, in milliseconds since the Unix epoch (for the history).
    pub started_at_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The job's return value as JSON, for continuations that ask for it (`None` for `()` and
    /// for jobs whose `Ok` value is not serializable).
    pub result: Option<String>,
}

impl Completion {
    /// The end of the attempt that ran under `lease`, started at `started_at_ms`.
    pub fn new(lease: Lease, started_at_ms: u64, outcome: Outcome) -> Self {
        Completion {
            lease,
            started_at_ms,
            outcome,
            result: None,
        }
    }

    /// The same completion carrying the job's JSON return value.
    #[must_use]
    pub fn with_result(mut self, result: Option<String>) -> Self {
        self.result = result;
        self
    }
}

/// Everything the storage knows of one job, for inspection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobInfo {
    /// The job's id.
    pub id: JobId,
    /// Its registered name.
    pub name: String,
    /// Its JSON arguments.
    pub args: String,
    /// Its headers (see [`Headers`]).
    pub headers: Headers,
    /// Its current state.
    pub state: JobState,
    /// How many attempts have ended so far (success, error, timeout; not crashes).
    pub attempts: u32,
    /// How many times its worker died while running it (see [`FetchedJob::crashes`]).
    pub crashes: u32,
    /// How many of its leases ran out before it started (see [`FetchedJob::orphaned`]).
    pub orphaned: u32,
    /// Every transition so far, oldest first.
    pub history: Vec<StateChange>,
}

impl JobInfo {
    /// The reason recorded with the latest transition, e.g. why it failed.
    pub fn last_reason(&self) -> Option<&str> {
        self.history.last().and_then(|c| c.reason.as_deref())
    }
}

/// Counts of one queue's jobs by state, plus lifetime counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Waiting on the queue.
    pub enqueued: u64,
    /// Waiting for their due time (delayed jobs and retries).
    pub scheduled: u64,
    /// Leased by a worker (including leases that ran out and were not reaped yet).
    pub processing: u64,
    /// Failed and kept for inspection.
    pub failed: u64,
    /// Lifetime count of successful completions.
    pub succeeded_total: u64,
    /// Lifetime count of jobs that ended Failed.
    pub failed_total: u64,
    /// When the job at the front of the queue (the next one fetched) became ready, in
    /// milliseconds since the Unix epoch; `None` when nothing waits. Its age is how far behind
    /// the queue's workers are (the `jobs_oldest_pending_age_seconds` metric).
    pub oldest_pending_at_ms: Option<u64>,
}

/// A backend that stores jobs: the sum of its capabilities, [`Delivery`], [`Monitoring`],
/// [`Flows`] and [`Recurring`]. Implemented by [`MemoryStorage`] and, with their features, the
/// Redis and PostgreSQL backends; any type with the four capabilities is a `Storage`.
///
/// A backend is written one capability at a time, each checked by its part of the shared backend
/// suite. Code holding an `Arc<dyn Storage>` brings the capability traits it calls into scope
/// (`use jobs::storage::{Delivery, Monitoring};`).
pub trait Storage: Delivery + Monitoring + Flows + Recurring {}

impl<T: Delivery + Monitoring + Flows + Recurring + ?Sized> Storage for T {}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
