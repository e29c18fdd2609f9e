//! The recurring capability of a storage ([`Recurring`]) and the records it keeps: the registered entries and
//! the compare-and-set request that enqueues their ticks exactly once.

use crate::error::Result;
use crate::headers::Headers;
use crate::job::JobId;
use crate::recurring::Misfire;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// A registered recurring job, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecurringEntry {
    /// The id it was registered under (unique within the storage).
    pub id: String,
    /// The cron expression.
    pub cron: String,
    /// The IANA time zone the expression is read in.
    pub time_zone: String,
    /// What to do about missed ticks.
    pub misfire: Misfire,
    /// How late a tick may be enqueued before it counts as missed; `None`: the scheduler's
    /// own (see [`WorkerBuilder::recurring_misfire_grace`](crate::WorkerBuilder::recurring_misfire_grace)).
    pub misfire_grace: Option<Duration>,
    /// The queue its jobs go to.
    pub queue: Arc<str>,
    /// The registered name of the job it enqueues.
    pub name: String,
    /// The job's JSON arguments.
    pub args: String,
    /// The headers every job it enqueues carries (set at registration by the caller and the
    /// client's filters; never a trace context: each tick starts a trace of its own).
    pub headers: Headers,
    /// The next tick, in milliseconds since the Unix epoch; `None` when the schedule has no
    /// further tick.
    pub next_run_ms: Option<u64>,
    /// The latest tick a job was enqueued for (or the latest manual trigger).
    pub last_run_ms: Option<u64>,
    /// Bumped by every registration, so a scheduler working from an older copy of the entry
    /// cannot enqueue with it.
    pub revision: u64,
}

impl RecurringEntry {
    /// An entry for `id`, to be stored with [`Recurring::register_recurring`](super::Recurring::register_recurring).
    /// `next_run_ms` is the schedule's next tick after the time of registration.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: impl Into<String>,
        cron: impl Into<String>,
        time_zone: impl Into<String>,
        misfire: Misfire,
        queue: impl Into<Arc<str>>,
        name: impl Into<String>,
        args: String,
        next_run_ms: Option<u64>,
    ) -> Self {
        RecurringEntry {
            id: id.into(),
            cron: cron.into(),
            time_zone: time_zone.into(),
            misfire,
            misfire_grace: None,
            queue: queue.into(),
            name: name.into(),
            args,
            headers: Headers::new(),
            next_run_ms,
            last_run_ms: None,
            revision: 0,
        }
    }

    /// Whether `other` has the same schedule (cron expression and time zone).
    pub fn same_schedule(&self, other: &RecurringEntry) -> bool {
        self.cron == other.cron && self.time_zone == other.time_zone
    }
}

/// A request to enqueue ticks of a recurring job: applied only if the entry is still at
/// `revision` with next run `expected_next_ms`, in which case one job per tick in `ticks` is
/// enqueued and the next run becomes `next_run_ms`, all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecurringFire {
    /// The recurring job's id.
    pub id: String,
    /// The queue its entry is on (as listed).
    pub queue: Arc<str>,
    /// The revision the caller read.
    pub revision: u64,
    /// The next run the caller read.
    pub expected_next_ms: u64,
    /// The ticks to enqueue one job each for, oldest first (may be empty: a skip).
    pub ticks: Vec<u64>,
    /// The next run to store (`None`: the schedule has no further tick).
    pub next_run_ms: Option<u64>,
}

impl RecurringFire {
    /// A request to advance `entry` from its next run to `next_run_ms`, enqueueing `ticks`.
    pub fn new(entry: &RecurringEntry, ticks: Vec<u64>, next_run_ms: Option<u64>) -> Self {
        RecurringFire {
            id: entry.id.clone(),
            queue: entry.queue.clone(),
            revision: entry.revision,
            expected_next_ms: entry.next_run_ms.unwrap_or(0),
            ticks,
            next_run_ms,
        }
    }
}

/// Recurring jobs as a storage keeps them: registered entries, and the compare-and-set that
/// enqueues each tick exactly once across processes.
#[async_trait]
pub trait Recurring: Send + Sync + 'static {
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
}
