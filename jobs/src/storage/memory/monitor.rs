//! The memory storage's monitoring beyond single jobs: queues and their counts, jobs by state
//! with cursors and filters, a job's detail, pauses, server reports, history snapshots and
//! batches.
//!
//! Indexes are walked from the cursor on, so a page costs what it looks at; the exceptions are
//! awaiting jobs (no index of their own: a page sorts them all), which only continuations have.

use super::queue::{info, Queue};
use super::MemoryStorage;
use crate::error::Result;
use crate::job::JobId;
use crate::monitor::{
    parse_pair, BatchInfo, BatchPage, Count, JobDetail, JobPage, JobQuery, QueueSummary,
    Resolution, ServerReport, Snapshot,
};
use crate::state::JobState;
use crate::storage::now_ms;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

/// How far past its old place a listing looks for the job a cursor names among the pending ones
/// (jobs handed back go to the front, pushing it back).
const PENDING_SLACK: usize = 1_000;

impl MemoryStorage {
    pub(super) fn queue_names_now(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().queues.keys().map(|q| q.to_string()).collect();
        names.sort();
        names
    }

    pub(super) fn queue_summary_now(&self, queue: &str) -> QueueSummary {
        let now = now_ms();
        let inner = self.lock();
        let Some(q) = inner.queues.get(queue) else {
            return QueueSummary::new(queue);
        };
        let oldest = q
            .pending
            .front()
            .and_then(|seq| q.jobs.get(seq))
            .map(|rec| rec.history.last().map_or(rec.enqueued_at_ms, |c| c.at_ms));
        let mut s = QueueSummary::new(queue).oldest_pending(oldest, now);
        s.pending = Count::exact(q.pending.len() as u64);
        s.scheduled = Count::exact(q.scheduled.len() as u64);
        s.processing = Count::exact(q.leases.len() as u64);
        s.failed = Count::exact(q.failed.len() as u64);
        s.paused = q.paused;
        s.succeeded_total = q.succeeded_total;
        s.failed_total = q.failed_total;
        s
    }

    pub(super) fn count_now(&self, queue: &str, state: JobState) -> Count {
        let inner = self.lock();
        Count::exact(inner.queues.get(queue).map_or(0, |q| count(q, state)))
    }

    pub(super) fn list_jobs_now(&self, queue: &str, query: &JobQuery) -> Result<JobPage> {
        let after = query.cursor.as_deref().map(parse_pair).transpose()?;
        let inner = self.lock();
        let Some((name, q)) = inner.queues.get_key_value(queue) else {
            return Ok(JobPage::empty(Count::exact(0)));
        };
        let total = Count::exact(count(q, query.state));
        let page = match query.state {
            JobState::Enqueued => {
                let start = after.map_or(0, |(idx, seq)| pending_after(q, idx, seq));
                let entries = q
                    .pending
                    .iter()
                    .enumerate()
                    .skip(start)
                    .map(|(i, &seq)| ((i as u64, seq), seq));
                scan(q, name, entries, query, total)
            }
            JobState::Scheduled => {
                let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                let entries = q
                    .scheduled
                    .range((from, Bound::Unbounded))
                    .map(|&(due, seq)| ((due, seq), seq));
                scan(q, name, entries, query, total)
            }
            JobState::Failed => {
                let to = after.map_or(Bound::Unbounded, Bound::Excluded);
                let entries = q
                    .failed
                    .range((Bound::Unbounded, to))
                    .rev()
                    .map(|&(at, seq)| ((at, seq), seq));
                scan(q, name, entries, query, total)
            }
            JobState::Succeeded | JobState::Deleted => {
                let index = if query.state == JobState::Succeeded {
                    &q.succeeded
                } else {
                    &q.deleted
                };
                let end = after.map_or(index.len(), |c| index.partition_point(|&e| e < c));
                let entries = index.range(..end).rev().map(|&(at, seq)| ((at, seq), seq));
                scan(q, name, entries, query, total)
            }
            JobState::Processing => {
                let mut live: Vec<u64> = q
                    .leases
                    .entries()
                    .filter(|&(deadline, seq)| {
                        q.jobs
                            .get(&seq)
                            .is_some_and(|rec| rec.holds_lease_until(deadline))
                    })
                    .map(|(_, seq)| seq)
                    .filter(|&seq| after.map_or(true, |(_, s)| seq > s))
                    .collect();
                live.sort_unstable();
                live.dedup();
                scan(q, name, live.into_iter().map(|s| ((0, s), s)), query, total)
            }
            _ => {
                let mut seqs: Vec<u64> = q
                    .jobs
                    .iter()
                    .filter(|(_, rec)| rec.state == query.state)
                    .map(|(&seq, _)| seq)
                    .filter(|&seq| after.map_or(true, |(_, s)| seq > s))
                    .collect();
                seqs.sort_unstable();
                scan(q, name, seqs.into_iter().map(|s| ((0, s), s)), query, total)
            }
        };
        Ok(page)
    }

    pub(super) fn job_detail_now(&self, id: &JobId) -> Option<JobDetail> {
        let inner = self.lock();
        let rec = inner.queues.get(id.queue())?.jobs.get(&id.seq())?;
        let mut detail = JobDetail::from_info(info(id.clone(), rec));
        if let Some(flow) = &rec.flow {
            let (result, continuations, batch) = flow.detail();
            detail.result = result;
            detail.continuations = continuations;
            detail.batch = batch;
        }
        Some(detail)
    }

    pub(super) fn set_queue_paused_now(&self, queue: &str, paused: bool) {
        {
            let mut inner = self.lock();
            let q: Arc<str> = Arc::from(queue);
            inner.queues.entry(q).or_default().paused = paused;
        }
        if !paused {
            self.shared.ready.notify_waiters();
        }
    }

    pub(super) fn set_recurring_paused_now(&self, id: &str, paused: bool) -> bool {
        let mut inner = self.lock();
        if !inner.recurring.contains_key(id) {
            inner.paused_recurring.remove(id);
            return false;
        }
        if paused {
            inner.paused_recurring.insert(id.to_owned());
        } else {
            inner.paused_recurring.remove(id);
        }
        true
    }

    pub(super) fn paused_recurring_now(&self) -> Vec<String> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let known = &inner.recurring;
        inner.paused_recurring.retain(|id| known.contains_key(id));
        inner.paused_recurring.iter().cloned().collect()
    }

    pub(super) fn report_server_now(&self, report: &ServerReport, ttl: Duration) {
        let expires = now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        self.lock()
            .reports
            .insert(report.name.clone(), (report.clone(), expires));
    }

    pub(super) fn server_reports_now(&self) -> Vec<ServerReport> {
        let now = now_ms();
        let mut inner = self.lock();
        inner.reports.retain(|_, (_, expires)| *expires > now);
        let mut out: Vec<ServerReport> = inner.reports.values().map(|(r, _)| r.clone()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub(super) fn record_history_now(&self, queues: &[Arc<str>], now: u64) {
        let mut inner = self.lock();
        for name in queues {
            let Some(q) = inner.queues.get_mut(name) else {
                continue;
            };
            for res in [Resolution::Minute, Resolution::Hour] {
                let bucket = res.bucket_of(now);
                let snap = Snapshot::new(bucket, q.succeeded_total, q.failed_total);
                let slot = q.history.entry((res, res.slot_of(bucket))).or_insert(snap);
                if slot.at_ms != bucket {
                    *slot = snap;
                }
            }
        }
    }

    pub(super) fn history_snapshots_now(&self, queue: &str, res: Resolution) -> Vec<Snapshot> {
        let inner = self.lock();
        inner.queues.get(queue).map_or_else(Vec::new, |q| {
            q.history
                .iter()
                .filter(|((r, _), _)| *r == res)
                .map(|(_, s)| *s)
                .collect()
        })
    }

    pub(super) fn batches_now(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<BatchPage> {
        let before = cursor.map(crate::monitor::parse_one).transpose()?;
        let mut all = self.lock().batches.of_queue(queue);
        all.retain(|(id, _, _)| before.map_or(true, |b| id.seq() < b));
        all.sort_by_key(|(id, _, _)| std::cmp::Reverse(id.seq()));
        let more = all.len() > limit;
        all.truncate(limit);
        let next = if more {
            all.last().map(|(id, _, _)| id.seq().to_string())
        } else {
            None
        };
        let batches = all
            .into_iter()
            .map(|(id, progress, then)| BatchInfo::new(id, progress, then))
            .collect();
        Ok(BatchPage::new(batches, next))
    }
}

/// How many jobs of `q` are in `state`.
fn count(q: &Queue, state: JobState) -> u64 {
    (match state {
        JobState::Enqueued => q.pending.len(),
        JobState::Scheduled => q.scheduled.len(),
        JobState::Processing => q.leases.len(),
        JobState::Failed => q.failed.len(),
        JobState::Succeeded => q.succeeded.len(),
        JobState::Deleted => q.deleted.len(),
        _ => q.jobs.values().filter(|r| r.state == state).count(),
    }) as u64
}

/// Where a listing of pending jobs goes on after the job `seq` it last saw at `idx`: just past
/// it, wherever it moved to, or from the front when it left the queue (jobs ahead of it have
/// left too, as the queue is first in, first out).
fn pending_after(q: &Queue, idx: u64, seq: u64) -> usize {
    let idx = usize::try_from(idx).unwrap_or(usize::MAX);
    if q.pending.get(idx) == Some(&seq) {
        return idx + 1;
    }
    q.pending
        .iter()
        .take(idx.saturating_add(PENDING_SLACK))
        .position(|&s| s == seq)
        .map_or(0, |at| at + 1)
}

/// One page from index `entries` ((cursor key, seq), in listing order) of queue `q`: jobs in the
/// query's state that pass its filters, looking at no more than its budget.
fn scan(
    q: &Queue,
    queue: &Arc<str>,
    entries: impl Iterator<Item = ((u64, u64), u64)>,
    query: &JobQuery,
    total: Count,
) -> JobPage {
    let limit = query.page_size();
    let budget = query.budget();
    let mut entries = entries.peekable();
    let mut jobs = Vec::new();
    let mut examined = 0usize;
    let mut last = None;
    while jobs.len() < limit && examined < budget {
        let Some((key, seq)) = entries.next() else {
            break;
        };
        examined += 1;
        last = Some(key);
        let Some(rec) = q.jobs.get(&seq).filter(|r| r.state == query.state) else {
            continue;
        };
        if query.matches(&rec.name, &rec.args) {
            jobs.push(info(JobId::new(queue.clone(), seq), rec));
        }
    }
    let next = match (entries.peek(), last) {
        (Some(_), Some((a, b))) => Some(format!("{a}:{b}")),
        _ => None,
    };
    JobPage::new(jobs, next, examined as u64, total)
}
