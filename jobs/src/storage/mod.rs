//! Where jobs live: the [`Storage`] trait every backend implements, and the records it trades in.
//!
//! The worker and the client know nothing but this trait. Every operation is batch-first: a
//! backend is asked to enqueue many jobs, fetch up to N, complete many, renew many leases.
//!
//! # Leases
//!
//! [`Storage::fetch`] moves each job it returns into *processing* with a lease: a deadline and a
//! [`LeaseToken`]. Until the deadline passes the job is hidden from every other fetch. The worker
//! renews its leases ([`Storage::renew`]) well before they run out; [`Storage::complete`] and
//! [`Storage::release`] only act on a job whose lease the caller still holds (the token matches),
//! so a worker that lost its lease can neither acknowledge nor overwrite the job. A lease that
//! runs out puts the job back on its queue (any `fetch` reaps expired leases), which is how a job
//! whose worker died is performed again: delivery is **at least once**.
//!
//! # Crash accounting
//!
//! A fetched job may wait in a worker's buffer before its handler starts, so a lease that runs
//! out says nothing by itself about whether the job ran. The worker tells the storage when a
//! handler starts ([`Storage::mark_started`]); the mark ends with the lease. When a lease runs
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

use crate::error::Result;
use crate::job::JobId;
use crate::state::{JobState, StateChange};
use async_trait::async_trait;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod cancellation;
mod crash_accounting;
mod flow;
pub mod memory;
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
pub use flow::{Batch, BatchProgress, Finish, LimitRequest, UniqueKey};
pub use memory::{MemoryStorage, MemoryStorageBuilder};
pub(crate) use payload_limit::PayloadLimit;
pub use payload_limit::DEFAULT_MAX_PAYLOAD;
pub use recurring::{RecurringEntry, RecurringFire};
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
        }
    }

    /// The same job, due at `run_at_ms` (milliseconds since the Unix epoch).
    #[must_use]
    pub fn run_at_ms(mut self, run_at_ms: u64) -> Self {
        self.run_at_ms = Some(run_at_ms);
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

/// What [`Storage::fetch`] is asked for.
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

/// A job handed to a worker by [`Storage::fetch`].
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
    /// The lease this fetch handed out.
    pub token: LeaseToken,
    /// How many times a worker died (or hung past its lease) while running the job: leases that
    /// ran out after [`Storage::mark_started`] marked them.
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
}

/// A backend that stores jobs. Implemented by [`MemoryStorage`] and, with the `redis` feature,
/// the Redis backend.
///
/// Implementations must keep the lease semantics described in the [module docs](self): a job
/// leaves storage only when an attempt's completion says so, and only while its lease is held.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Stores the jobs, all or none, and returns their ids in order.
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>>;

    /// Refuses, before anything is written, a job this storage could never store (e.g. a name
    /// its format cannot hold, or arguments over its payload limit). Concurrent enqueues that share one storage call check each job
    /// first, so one refused job fails only its own caller. The default accepts every job.
    ///
    /// # Errors
    ///
    /// A configuration error saying why the job cannot be stored.
    fn check(&self, job: &NewJob) -> Result<()> {
        let _ = job;
        Ok(())
    }

    /// Leases up to `req.max` ready jobs, taking from queues in priority order. Scheduled jobs
    /// that came due are made ready first and expired leases are reaped back to their queue.
    /// When nothing is ready it waits (without polling) up to `req.wait`.
    async fn fetch(&self, req: FetchRequest<'_>) -> Result<Vec<FetchedJob>>;

    /// Records the end of attempts. For each completion, returns whether it was applied: `false`
    /// means the lease was no longer held (it expired and the job was handed to someone else).
    async fn complete(&self, completions: &[Completion]) -> Result<Vec<bool>>;

    /// Records that the handlers of these leased jobs start now, so that a lease running out
    /// later counts as a crash of the job, not as a job handed back unstarted (see
    /// [Crash accounting](self#crash-accounting)). Returns, per lease, whether it was still held;
    /// the mark ends with the lease (completion, release, expiry). Leases no longer held are
    /// ignored.
    ///
    /// The worker sends the marks of most jobs with its next batch of acknowledgements (a job
    /// that completes in that batch needs none), and awaits this call before starting a job that
    /// crashed or was orphaned before.
    async fn mark_started(&self, leases: &[Lease]) -> Result<Vec<bool>>;

    /// Extends the given leases to `lease` from now. Returns, per lease, whether it was still held.
    ///
    /// A backend may extend leases by the fetch they came from (the Redis backend keeps one
    /// deadline per fetch): a caller renews every lease it still holds, as the worker does.
    async fn renew(&self, leases: &[Lease], lease: Duration) -> Result<Vec<bool>>;

    /// Hands leased jobs back to the front of their queue at once, without counting an attempt
    /// (graceful shutdown). Leases no longer held are ignored.
    async fn release(&self, leases: &[Lease]) -> Result<()>;

    /// Completes once what this storage still does in the background for calls that were
    /// dropped is done: a fetch dropped after it leased jobs (a worker stopping while it
    /// waited) hands them back on a task of its own. A worker awaits this before it stops, so
    /// the jobs are back on their queue when its `run_until` returns and the process may exit.
    /// The default has nothing to wait for.
    async fn settle(&self) {}

    /// The job with this id, if the storage still has it.
    async fn job(&self, id: &JobId) -> Result<Option<JobInfo>>;

    /// Counts for one queue.
    async fn stats(&self, queue: &str) -> Result<QueueStats>;

    /// Failed jobs of a queue, oldest first, at most `limit`.
    async fn failed(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>>;

    /// Puts a failed (or deleted) job back on its queue for a fresh attempt: its counts of
    /// attempts, crashes and orphaned leases start again from zero. Returns whether the job was
    /// found in a state that allows it.
    async fn requeue(&self, id: &JobId) -> Result<bool>;

    /// Deletes a job that is enqueued, scheduled, failed or awaiting (a continuation that then
    /// never runs, whatever its parent does). Returns whether it was found in such a state.
    async fn delete(&self, id: &JobId) -> Result<bool>;

    /// Records that a worker process is alive; it counts as dead once `ttl` passes without
    /// another heartbeat.
    async fn heartbeat(&self, server: &str, ttl: Duration) -> Result<()>;

    /// Names of the worker processes whose heartbeat has not run out.
    async fn servers(&self) -> Result<Vec<String>>;

    /// Tells the server that `server` stopped (graceful shutdown), so it is no longer listed.
    async fn deregister(&self, server: &str) -> Result<()>;

    // --- cancellation ---

    /// Cancels a job, atomically by its state: an enqueued, scheduled or awaiting job is deleted
    /// (history reason `cancelled`; an awaiting continuation then never runs, whatever its
    /// parent does); a processing job gets a cancel request, which its worker finds
    /// with [`cancel_requested`](Storage::cancel_requested) and acts on (the request is cleared
    /// when that job's attempt completes). A finished job is left alone.
    async fn cancel(&self, id: &JobId) -> Result<Cancellation>;

    /// For each job (all in flight on the caller), whether a cancel request is recorded for it.
    /// Workers call this about twice a second, only while they have jobs in flight, so it must
    /// be one cheap batched read.
    async fn cancel_requested(&self, ids: &[JobId]) -> Result<Vec<bool>>;
    // --- recurring jobs ---

    /// Stores a recurring job, replacing one with the same id (wherever its queue). When the
    /// replaced entry has the same schedule (cron and time zone), its next run and last run are
    /// kept, so registering again at every start-up neither skips nor repeats a tick; otherwise
    /// the next run is the one given. Bumps the revision. Returns the entry as stored.
    async fn register_recurring(&self, entry: RecurringEntry) -> Result<RecurringEntry>;

    /// Removes a recurring job. Returns whether it existed.
    async fn remove_recurring(&self, id: &str) -> Result<bool>;

    /// Every recurring job, ordered by id.
    async fn recurring(&self) -> Result<Vec<RecurringEntry>>;

    /// Enqueues the ticks of a recurring job **exactly once**: atomically, only if its entry is
    /// still at `fire.revision` with next run `fire.expected_next_ms`, enqueues one job per tick
    /// and sets the next run to `fire.next_run_ms` (and the last run to the latest tick).
    /// Returns the ids of the jobs enqueued, or `None` when the entry changed (another scheduler
    /// got there first, or it was re-registered or removed) and nothing was done.
    async fn fire_recurring(&self, fire: &RecurringFire) -> Result<Option<Vec<JobId>>>;

    /// Enqueues one job of a recurring job now, leaving its schedule alone (the last run becomes
    /// now). Returns its id, or `None` when there is no recurring job `id`.
    async fn trigger_recurring(&self, id: &str) -> Result<Option<JobId>>;

    // --- continuations, batches, unique jobs, limits ---

    /// Stores `child` in *Awaiting* until `parent` ends as `on` says, then makes it ready (or
    /// deletes it). When the parent already ended, the child is decided at once. Returns the
    /// child's id, or `None` when the parent is unknown (then the child never runs).
    async fn continue_with(
        &self,
        parent: &JobId,
        child: NewJob,
        on: Finish,
    ) -> Result<Option<JobId>>;

    /// The JSON return value of the parent of continuation `id`, once the parent succeeded with
    /// a serializable value.
    async fn parent_result(&self, id: &JobId) -> Result<Option<String>>;

    /// Asks for a slot under each request's limits, atomically per queue. A job that gets one
    /// holds it for as long as it holds its lease (completion, release or lease expiry frees
    /// it). A job that does not is moved from *Processing* back to *Scheduled* at `retry_in`
    /// from now (or when the rate window frees a start, if later) without counting an attempt.
    /// Returns, per request, whether the slot was granted.
    async fn acquire_limits(
        &self,
        requests: &[LimitRequest],
        retry_in: Duration,
    ) -> Result<Vec<bool>>;

    /// Stores `jobs` (all on one queue) as a batch, all or none, with an optional continuation
    /// `then` (on any queue) that waits in *Awaiting* until every member succeeded. An empty
    /// batch's continuation is enqueued at once.
    ///
    /// # Errors
    ///
    /// When the jobs are on different queues, or the storage fails.
    async fn enqueue_batch(&self, jobs: Vec<NewJob>, then: Option<NewJob>) -> Result<Batch>;

    /// The progress of batch `id`, if the storage knows it: a batch is known until it finished
    /// (every member succeeded), and then for as long as [`Retention`] keeps succeeded jobs (at
    /// most `succeeded_max` finished batches per queue, none older than `succeeded_ttl`).
    async fn batch_progress(&self, id: &JobId) -> Result<Option<BatchProgress>>;

    /// This storage as [`Any`](std::any::Any), for code that knows the backend and needs its
    /// own API (e.g. the PostgreSQL backend's `InTransaction` reaching the PostgreSQL
    /// storage behind a client). The default is `None`.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
