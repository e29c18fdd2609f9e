//! A memory queue: its indexes by state (pending, scheduled, leases, failed, finished), its job
//! records, and what keeps them in order (promotion of due jobs, reaping of expired leases,
//! retention).

use super::{flow, leases, MAINTENANCE_BATCH};
use crate::job::JobId;
use crate::state::{JobState, StateChange};
use crate::storage::{JobInfo, LeaseToken, Retention};
use foldhash::{HashMap, HashSet};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

#[derive(Default)]
pub(super) struct Queue {
    pub(super) seq: u64,
    pub(super) pending: VecDeque<u64>,
    /// (due ms, seq)
    pub(super) scheduled: BTreeSet<(u64, u64)>,
    /// Leases by deadline.
    pub(super) leases: leases::LeaseIndex,
    /// (failed at ms, seq)
    pub(super) failed: BTreeSet<(u64, u64)>,
    /// (finished at ms, seq), oldest first
    pub(super) succeeded: VecDeque<(u64, u64)>,
    pub(super) deleted: VecDeque<(u64, u64)>,
    pub(super) jobs: HashMap<u64, Record>,
    /// The job names stored here, so records share one allocation per name.
    pub(super) names: HashSet<Arc<str>>,
    /// Processing jobs with a cancel request, cleared when their attempt completes.
    pub(super) cancels: HashSet<u64>,
    pub(super) succeeded_total: u64,
    pub(super) failed_total: u64,
    /// Unique keys: key -> (seq, claim expiry ms).
    pub(super) unique: HashMap<String, (u64, u64)>,
    /// Whether fetches skip this queue.
    pub(super) paused: bool,
    /// History snapshots by (resolution, ring slot).
    pub(super) history: HashMap<(crate::monitor::Resolution, u64), crate::monitor::Snapshot>,
}

pub(super) struct Record {
    pub(super) name: Arc<str>,
    /// Shared with every fetch of the job, so a fetch copies no arguments.
    pub(super) args: Arc<str>,
    /// Its headers (empty for most jobs: no allocation).
    pub(super) headers: crate::headers::Headers,
    pub(super) attempts: u32,
    /// Leases that ran out after their start was marked (see the crash accounting in `storage`).
    pub(super) crashes: u32,
    /// Leases that ran out before a start was marked.
    pub(super) orphaned: u32,
    pub(super) enqueued_at_ms: u64,
    pub(super) state: JobState,
    pub(super) history: Vec<StateChange>,
    /// The current lease (token, deadline ms) while Processing.
    pub(super) lease: Option<(LeaseToken, u64)>,
    /// Whether the current lease's worker marked the job started.
    pub(super) started: bool,
    /// Due time while Scheduled; failure time while Failed.
    pub(super) score: u64,
    /// Unique key, continuations, results: only for jobs that use them.
    pub(super) flow: Option<Box<flow::RecordFlow>>,
}

impl Record {
    /// A job just stored in `state` (its first history entry, with `reason`), due at `score`.
    pub(super) fn new(
        name: Arc<str>,
        args: String,
        state: JobState,
        reason: Option<String>,
        now: u64,
        score: u64,
    ) -> Self {
        let mut history = Vec::with_capacity(4);
        history.push(StateChange::new(state, now, reason));
        Record {
            name,
            args: Arc::from(args),
            headers: crate::headers::Headers::new(),
            attempts: 0,
            crashes: 0,
            orphaned: 0,
            enqueued_at_ms: now,
            state,
            history,
            lease: None,
            started: false,
            score,
            flow: None,
        }
    }

    /// The same record carrying `headers`.
    pub(super) fn with_headers(mut self, headers: crate::headers::Headers) -> Self {
        self.headers = headers;
        self
    }

    /// When the job last became ready: the time of its latest transition, for a job that is
    /// Enqueued (its enqueue, or when it came due, was handed back or its parent finished).
    pub(super) fn ready_at_ms(&self) -> u64 {
        self.history.last().map_or(self.enqueued_at_ms, |c| c.at_ms)
    }

    /// Whether the job is Processing under a lease that runs out at `deadline`.
    pub(super) fn holds_lease_until(&self, deadline: u64) -> bool {
        self.state == JobState::Processing && self.lease.is_some_and(|(_, d)| d == deadline)
    }

    pub(super) fn enter(&mut self, state: JobState, at_ms: u64, reason: Option<String>) {
        self.state = state;
        self.history.push(StateChange::new(state, at_ms, reason));
    }
}

impl Queue {
    /// The shared copy of the job name `name`.
    pub(super) fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.names.get(name) {
            return known.clone();
        }
        let name: Arc<str> = Arc::from(name);
        self.names.insert(name.clone());
        name
    }

    /// Makes due scheduled jobs ready and puts jobs with expired leases back, at most
    /// `MAINTENANCE_BATCH` of each.
    pub(super) fn maintain(&mut self, now: u64) {
        for _ in 0..MAINTENANCE_BATCH {
            let Some(&(due, seq)) = self.scheduled.first() else {
                break;
            };
            if due > now {
                break;
            }
            self.scheduled.pop_first();
            if let Some(rec) = self.jobs.get_mut(&seq) {
                rec.enter(JobState::Enqueued, now, None);
                self.pending.push_back(seq);
            }
        }
        for _ in 0..MAINTENANCE_BATCH {
            let Some((deadline, seq)) = self.leases.pop_due(now) else {
                break;
            };
            if let Some(rec) = self
                .jobs
                .get_mut(&seq)
                .filter(|rec| rec.holds_lease_until(deadline))
            {
                self.leases.remove();
                rec.lease = None;
                if std::mem::take(&mut rec.started) {
                    rec.crashes += 1;
                    let due = now.saturating_add(crate::storage::crash_pause_ms(rec.crashes));
                    rec.enter(
                        JobState::Scheduled,
                        now,
                        Some(crate::storage::crash_reason(rec.crashes)),
                    );
                    rec.score = due;
                    self.scheduled.insert((due, seq));
                } else {
                    rec.orphaned += 1;
                    let reason = crate::storage::ORPHANED_REASON.to_owned();
                    rec.enter(JobState::Enqueued, now, Some(reason));
                    self.pending.push_front(seq);
                }
            }
        }
    }

    /// The earliest time something here becomes ready without an enqueue.
    pub(super) fn next_event(&self) -> Option<u64> {
        let due = self.scheduled.first().map(|&(t, _)| t);
        let lease = self.leases.next_deadline();
        match (due, lease) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drops the lease index's entries of ended leases once they outnumber the live ones.
    pub(super) fn compact_leases(&mut self) {
        let jobs = &self.jobs;
        self.leases.compact(|deadline, seq| {
            jobs.get(&seq)
                .is_some_and(|rec| rec.holds_lease_until(deadline))
        });
    }

    /// Drops the finished jobs retention no longer keeps, moving their records into `dropped`
    /// so the caller can free them after releasing the lock.
    pub(super) fn trim(&mut self, now: u64, retention: &Retention, dropped: &mut Vec<Record>) {
        self.compact_leases();
        let ttl_s = u64::try_from(retention.succeeded_ttl.as_millis()).unwrap_or(u64::MAX);
        while let Some(&(at, seq)) = self.succeeded.front() {
            if self.succeeded.len() > retention.succeeded_max || at.saturating_add(ttl_s) <= now {
                self.succeeded.pop_front();
                dropped.extend(self.jobs.remove(&seq));
            } else {
                break;
            }
        }
        let ttl_d = u64::try_from(retention.deleted_ttl.as_millis()).unwrap_or(u64::MAX);
        while let Some(&(at, seq)) = self.deleted.front() {
            if self.deleted.len() > retention.deleted_max || at.saturating_add(ttl_d) <= now {
                self.deleted.pop_front();
                dropped.extend(self.jobs.remove(&seq));
            } else {
                break;
            }
        }
    }

    /// Moves a job to Deleted with `reason` and trims the deleted jobs kept. Returns whether
    /// the job has flow data (unique key, continuations) to settle with `flow::ended`.
    pub(super) fn delete_now(
        &mut self,
        seq: u64,
        reason: &str,
        now: u64,
        retention: &Retention,
    ) -> bool {
        self.unindex(seq);
        let mut hooked = false;
        if let Some(rec) = self.jobs.get_mut(&seq) {
            rec.enter(JobState::Deleted, now, Some(reason.to_owned()));
            hooked = rec.flow.is_some();
        }
        self.deleted.push_back((now, seq));
        self.trim(now, retention, &mut Vec::new());
        hooked
    }

    /// Takes a job out of whichever index its state keeps it in.
    pub(super) fn unindex(&mut self, seq: u64) {
        let Some(rec) = self.jobs.get(&seq) else {
            return;
        };
        match rec.state {
            JobState::Enqueued => {
                if let Some(pos) = self.pending.iter().position(|&s| s == seq) {
                    self.pending.remove(pos);
                }
            }
            JobState::Scheduled => {
                self.scheduled.remove(&(rec.score, seq));
            }
            JobState::Failed => {
                self.failed.remove(&(rec.score, seq));
            }
            JobState::Processing => {
                if rec.lease.is_some() {
                    self.leases.remove();
                }
            }
            JobState::Succeeded => self.succeeded.retain(|&(_, s)| s != seq),
            JobState::Deleted => self.deleted.retain(|&(_, s)| s != seq),
            JobState::Awaiting => {}
        }
    }
}

pub(super) fn info(id: JobId, rec: &Record) -> JobInfo {
    JobInfo {
        id,
        name: rec.name.to_string(),
        args: rec.args.to_string(),
        headers: rec.headers.clone(),
        state: rec.state,
        attempts: rec.attempts,
        crashes: rec.crashes,
        orphaned: rec.orphaned,
        history: rec.history.clone(),
    }
}
