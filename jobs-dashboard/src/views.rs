//! The typed view models every page renders and its `/api/...` twin serializes as JSON (the
//! `jobs` CLI prints the same ones).

use crate::Redact;
use jobs::monitor::{
    BatchInfo, Count, HistoryPoint, JobDetail, JobPage, QueueSummary, RecurringView, ServerReport,
};
use jobs::storage::{Finish, JobInfo};
use jobs::JobState;
use serde::{Serialize, Serializer};

/// A state by its name (`failed`), as everywhere in the dashboard.
fn state_name<S: Serializer>(state: &JobState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.as_str())
}

/// One transition of a job's history.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    /// The state entered.
    #[serde(serialize_with = "state_name")]
    pub state: JobState,
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// Why, where recorded.
    pub reason: Option<String>,
}

/// Totals over every queue.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Totals {
    /// Jobs waiting on their queue.
    pub pending: Count,
    /// Jobs waiting for their due time.
    pub scheduled: Count,
    /// Jobs leased by workers.
    pub processing: Count,
    /// Failed jobs kept.
    pub failed: Count,
    /// Lifetime successes.
    pub succeeded_total: u64,
    /// Lifetime failures.
    pub failed_total: u64,
}

/// The overview: every queue, the totals and how many workers are alive.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Every queue, by name.
    pub queues: Vec<QueueSummary>,
    /// Their sums.
    pub totals: Totals,
    /// Live worker processes.
    pub servers: usize,
}

impl Stats {
    /// The overview of `queues` with `servers` live workers.
    pub fn new(queues: Vec<QueueSummary>, servers: usize) -> Stats {
        let mut t = Totals::default();
        for q in &queues {
            t.pending = t.pending.plus(q.pending);
            t.scheduled = t.scheduled.plus(q.scheduled);
            t.processing = t.processing.plus(q.processing);
            t.failed = t.failed.plus(q.failed);
            t.succeeded_total += q.succeeded_total;
            t.failed_total += q.failed_total;
        }
        Stats {
            queues,
            totals: t,
            servers,
        }
    }
}

/// One job as listed.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// `queue:number`.
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// Its registered name.
    pub name: String,
    /// Its state.
    #[serde(serialize_with = "state_name")]
    pub state: JobState,
    /// Its arguments as stored (JSON text), after redaction.
    pub args: String,
    /// Attempts that ended.
    pub attempts: u32,
    /// Times its worker died while running it.
    pub crashes: u32,
    /// When it entered its state (ms since the epoch).
    pub since_ms: u64,
    /// The reason recorded with its latest transition.
    pub reason: Option<String>,
    /// Every transition, oldest first.
    pub history: Vec<Transition>,
}

impl JobView {
    /// The view of `info`, its arguments passed through `redact`.
    pub fn new(info: &JobInfo, redact: &Redact) -> JobView {
        JobView {
            id: info.id.to_string(),
            queue: info.id.queue().to_owned(),
            name: info.name.clone(),
            state: info.state,
            args: redact(&info.name, &info.args),
            attempts: info.attempts,
            crashes: info.crashes,
            since_ms: info.history.last().map_or(0, |c| c.at_ms),
            reason: info.last_reason().map(str::to_owned),
            history: info
                .history
                .iter()
                .map(|c| Transition {
                    state: c.state,
                    at_ms: c.at_ms,
                    reason: c.reason.clone(),
                })
                .collect(),
        }
    }

    /// The arguments pretty-printed when they are JSON.
    pub fn pretty_args(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.args)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| self.args.clone())
    }
}

/// One page of jobs by state.
#[derive(Debug, Clone, Serialize)]
pub struct JobList {
    /// The state listed.
    #[serde(serialize_with = "state_name")]
    pub state: JobState,
    /// The queue listed (`None`: all).
    pub queue: Option<String>,
    /// The jobs.
    pub jobs: Vec<JobView>,
    /// The cursor of the next page.
    pub next: Option<String>,
    /// How many jobs this page looked at.
    pub examined: u64,
    /// How many jobs are in the state.
    pub total: Count,
    /// Whether `total` is exact.
    pub total_exact: bool,
}

impl JobList {
    /// The view of `page`.
    pub fn new(state: JobState, queue: Option<String>, page: JobPage, redact: &Redact) -> Self {
        JobList {
            state,
            queue,
            jobs: page.jobs.iter().map(|j| JobView::new(j, redact)).collect(),
            next: page.next,
            examined: page.examined,
            total_exact: page.total.is_exact(),
            total: page.total,
        }
    }
}

/// A continuation waiting for a job.
#[derive(Debug, Clone, Serialize)]
pub struct ContinuationView {
    /// The continuation's id.
    pub id: String,
    /// When it runs: `success`, `any`, `deleted`.
    pub on: &'static str,
}

/// Everything about one job.
#[derive(Debug, Clone, Serialize)]
pub struct JobPageView {
    /// The job.
    #[serde(flatten)]
    pub job: JobView,
    /// Its latest error.
    pub last_error: Option<String>,
    /// Its stored return value.
    pub result: Option<String>,
    /// The job it waited for.
    pub parent: Option<String>,
    /// Continuations waiting for it.
    pub continuations: Vec<ContinuationView>,
    /// Its batch.
    pub batch: Option<String>,
}

impl JobPageView {
    /// The view of `detail`.
    pub fn new(detail: &JobDetail, redact: &Redact) -> JobPageView {
        JobPageView {
            job: JobView::new(&detail.info, redact),
            last_error: detail.last_error.clone(),
            result: detail.result.clone(),
            parent: detail.parent.as_ref().map(ToString::to_string),
            continuations: detail
                .continuations
                .iter()
                .map(|(id, on)| ContinuationView {
                    id: id.to_string(),
                    on: match on {
                        Finish::Any => "any",
                        Finish::Deleted => "deleted",
                        _ => "success",
                    },
                })
                .collect(),
            batch: detail.batch.as_ref().map(ToString::to_string),
        }
    }
}

/// A recurring job as listed.
#[derive(Debug, Clone, Serialize)]
pub struct RecurringItem {
    /// Its id.
    pub id: String,
    /// Its cron expression.
    pub cron: String,
    /// The time zone it is read in.
    pub time_zone: String,
    /// The queue its jobs go to.
    pub queue: String,
    /// The job it enqueues.
    pub name: String,
    /// The next tick (ms since the epoch).
    pub next_run_ms: Option<u64>,
    /// The latest tick or trigger.
    pub last_run_ms: Option<u64>,
    /// Whether its ticks pass without a job.
    pub paused: bool,
}

impl From<&RecurringView> for RecurringItem {
    fn from(v: &RecurringView) -> Self {
        RecurringItem {
            id: v.entry.id.clone(),
            cron: v.entry.cron.clone(),
            time_zone: v.entry.time_zone.clone(),
            queue: v.entry.queue.to_string(),
            name: v.entry.name.clone(),
            next_run_ms: v.entry.next_run_ms,
            last_run_ms: v.entry.last_run_ms,
            paused: v.paused,
        }
    }
}

/// A batch as listed.
#[derive(Debug, Clone, Serialize)]
pub struct BatchItem {
    /// Its id.
    pub id: String,
    /// Members in all.
    pub total: u64,
    /// Members that succeeded.
    pub succeeded: u64,
    /// Failures of members.
    pub failed: u64,
    /// Its continuation.
    pub then: Option<String>,
}

impl From<&BatchInfo> for BatchItem {
    fn from(b: &BatchInfo) -> Self {
        BatchItem {
            id: b.id.to_string(),
            total: b.progress.total,
            succeeded: b.progress.succeeded,
            failed: b.progress.failed,
            then: b.then.as_ref().map(ToString::to_string),
        }
    }
}

/// The servers page.
#[derive(Debug, Clone, Serialize)]
pub struct Servers {
    /// Every live worker process.
    pub servers: Vec<ServerReport>,
}

/// The history graph's data.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// `minute` or `hour`.
    pub resolution: jobs::monitor::Resolution,
    /// The points, oldest first.
    pub points: Vec<HistoryPoint>,
}
