//! Flow features of the in-memory backend: unique keys, continuations and batches (limits are
//! in `limits.rs`). Everything here runs under the storage's one lock, so each operation is
//! atomic.

use super::{Inner, MemoryStorage, Queue, Record};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::state::JobState;
use crate::storage::{
    now_ms, Batch, BatchProgress, Delivery, Finish, Flows, LimitRequest, NewJob, Retention,
    UniqueKey,
};
use async_trait::async_trait;
use foldhash::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// The flow data of one job, boxed so plain jobs pay one pointer.
#[derive(Default)]
pub(super) struct RecordFlow {
    /// The unique key this job claimed.
    unique: Option<String>,
    /// Continuations waiting on this job.
    children: Vec<(JobId, Finish)>,
    /// This job's JSON return value, kept while continuations may ask for it.
    result: Option<String>,
    /// For a continuation: its parent's JSON return value.
    parent_result: Option<String>,
    /// The batch this job belongs to.
    batch: Option<JobId>,
}

/// One batch: its progress and the continuation waiting for it.
struct BatchState {
    progress: BatchProgress,
    then: Option<JobId>,
}

/// Batches by id, and each queue's finished ones by finish time (oldest first), which retention
/// drops like succeeded jobs.
#[derive(Default)]
pub(super) struct Batches(
    HashMap<JobId, BatchState>,
    HashMap<Arc<str>, VecDeque<(u64, JobId)>>,
);

impl Batches {
    /// Records that batch `id` finished at `now`, and forgets the finished batches of its queue
    /// `retention` no longer keeps.
    fn finished(&mut self, id: JobId, now: u64, retention: &Retention) {
        let done = self.1.entry(id.queue_arc().clone()).or_default();
        done.push_back((now, id));
        let ttl = u64::try_from(retention.succeeded_ttl.as_millis()).unwrap_or(u64::MAX);
        while let Some(&(at, _)) = done.front() {
            if done.len() <= retention.succeeded_max && at.saturating_add(ttl) > now {
                break;
            }
            if let Some((_, gone)) = done.pop_front() {
                self.0.remove(&gone);
            }
        }
    }
}

impl RecordFlow {
    /// What a job's page shows of its flow data: its kept return value, the continuations
    /// waiting on it, its batch.
    pub(super) fn detail(&self) -> (Option<String>, Vec<(JobId, Finish)>, Option<JobId>) {
        (
            self.result.clone(),
            self.children.clone(),
            self.batch.clone(),
        )
    }
}

impl Batches {
    /// The batches stored on `queue`: id, progress, continuation.
    pub(super) fn of_queue(&self, queue: &str) -> Vec<(JobId, BatchProgress, Option<JobId>)> {
        self.0
            .iter()
            .filter(|(id, _)| id.queue() == queue)
            .map(|(id, b)| (id.clone(), b.progress, b.then.clone()))
            .collect()
    }
}

fn flow_of(rec: &mut Record) -> &mut RecordFlow {
    rec.flow.get_or_insert_with(Box::default)
}

impl Queue {
    /// The seq of a live job holding `u`'s key, if its claim has not lapsed.
    pub(super) fn live_unique(&self, u: &UniqueKey, now: u64) -> Option<u64> {
        let &(seq, expires) = self.unique.get(&u.key)?;
        let rec = self.jobs.get(&seq)?;
        let live = !rec.state.is_final() && expires > now;
        live.then_some(seq)
    }

    pub(super) fn claim_unique(&mut self, u: &UniqueKey, seq: u64, now: u64) {
        let expires = u.window.map_or(u64::MAX, |w| {
            now.saturating_add(u64::try_from(w.as_millis()).unwrap_or(u64::MAX))
        });
        self.unique.insert(u.key.clone(), (seq, expires));
        if let Some(rec) = self.jobs.get_mut(&seq) {
            flow_of(rec).unique = Some(u.key.clone());
        }
    }
}

/// Applies the end (`O`, `F`, `D`) of jobs that have flow data: releases their unique keys and
/// runs, deletes or keeps their continuations.
pub(super) fn ended(inner: &mut Inner, ended: Vec<(JobId, char, Option<String>)>, now: u64) {
    for (id, end, result) in ended {
        let Some(queue) = inner.queues.get_mut(id.queue()) else {
            continue;
        };
        let Some(flow) = queue.jobs.get_mut(&id.seq()).and_then(|r| r.flow.as_mut()) else {
            continue;
        };
        if end == 'O' {
            flow.result = result;
        }
        let unique = flow.unique.take();
        let children = std::mem::take(&mut flow.children);
        let parent_result = flow.result.clone();
        let batch = match end {
            'O' | 'D' => flow.batch.take(),
            _ => flow.batch.clone(),
        };
        if let Some(b) = batch {
            if let Some(state) = inner_batch(&mut inner.batches, &b) {
                match end {
                    'O' => state.progress.succeeded += 1,
                    'F' => state.progress.failed += 1,
                    _ => {}
                }
                if end == 'O' && state.progress.is_done() {
                    if let Some(then) = state.then.take() {
                        decide_child(inner, &then, true, None, now);
                    }
                    let retention = inner.retention;
                    inner.batches.finished(b, now, &retention);
                }
            }
        }
        let Some(queue) = inner.queues.get_mut(id.queue()) else {
            continue;
        };
        if let Some(key) = unique {
            if queue.unique.get(&key).is_some_and(|&(s, _)| s == id.seq()) {
                queue.unique.remove(&key);
            }
        }
        let mut kept = Vec::new();
        for (child, on) in children {
            match on.decide(end) {
                None => kept.push((child, on)),
                Some(run) => decide_child(inner, &child, run, parent_result.clone(), now),
            }
        }
        if let Some(flow) = inner
            .queues
            .get_mut(id.queue())
            .and_then(|q| q.jobs.get_mut(&id.seq()))
            .and_then(|r| r.flow.as_mut())
        {
            flow.children = kept;
        }
    }
}

fn inner_batch<'a>(batches: &'a mut Batches, id: &JobId) -> Option<&'a mut BatchState> {
    batches.0.get_mut(id)
}

/// Makes an awaiting continuation ready (`run`) or deletes it.
fn decide_child(inner: &mut Inner, child: &JobId, run: bool, result: Option<String>, now: u64) {
    let Some(queue) = inner.queues.get_mut(child.queue()) else {
        return;
    };
    let seq = child.seq();
    let Some(rec) = queue.jobs.get_mut(&seq) else {
        return;
    };
    if rec.state != JobState::Awaiting {
        return;
    }
    if run {
        if result.is_some() {
            flow_of(rec).parent_result = result;
        }
        rec.enter(JobState::Enqueued, now, Some("parent finished".to_owned()));
        queue.pending.push_back(seq);
    } else {
        rec.enter(
            JobState::Deleted,
            now,
            Some("parent ended without meeting the continuation's condition".to_owned()),
        );
        queue.deleted.push_back((now, seq));
    }
}

/// The end a parent in `state` already reached, as the code [`Finish::decide`] takes.
fn end_of(state: JobState) -> Option<char> {
    match state {
        JobState::Succeeded => Some('O'),
        JobState::Failed => Some('F'),
        JobState::Deleted => Some('D'),
        _ => None,
    }
}

pub(super) fn continue_with(
    inner: &mut Inner,
    parent: &JobId,
    child: NewJob,
    on: Finish,
    now: u64,
) -> Option<JobId> {
    let (parent_state, parent_result) = {
        let rec = inner.queues.get(parent.queue())?.jobs.get(&parent.seq())?;
        (rec.state, rec.flow.as_ref().and_then(|f| f.result.clone()))
    };
    let id = create_awaiting(inner, child, format!("waiting for {parent}"), now);
    match end_of(parent_state).and_then(|end| on.decide(end)) {
        Some(run) => decide_child(inner, &id, run, parent_result, now),
        None => {
            if let Some(rec) = inner
                .queues
                .get_mut(parent.queue())
                .and_then(|q| q.jobs.get_mut(&parent.seq()))
            {
                flow_of(rec).children.push((id.clone(), on));
            }
        }
    }
    Some(id)
}

pub(super) fn parent_result(inner: &Inner, id: &JobId) -> Option<String> {
    inner
        .queues
        .get(id.queue())?
        .jobs
        .get(&id.seq())?
        .flow
        .as_ref()?
        .parent_result
        .clone()
}

/// Stores `child` in Awaiting and returns its id.
fn create_awaiting(inner: &mut Inner, child: NewJob, reason: String, now: u64) -> JobId {
    let queue = inner.queues.entry(child.queue.clone()).or_default();
    queue.seq += 1;
    let seq = queue.seq;
    let name = queue.intern(&child.name);
    queue.jobs.insert(
        seq,
        Record::new(name, child.args, JobState::Awaiting, Some(reason), now, 0)
            .with_headers(child.headers),
    );
    JobId::new(child.queue, seq)
}

pub(super) fn enqueue_batch(
    inner: &mut Inner,
    jobs: Vec<NewJob>,
    then: Option<NewJob>,
    now: u64,
) -> Result<Batch> {
    let queue_name = match jobs.first() {
        Some(j) => j.queue.clone(),
        None => then
            .as_ref()
            .map_or_else(|| Arc::from("default"), |t| t.queue.clone()),
    };
    if jobs.iter().any(|j| j.queue != queue_name) {
        return Err(Error::config(
            "the jobs of a batch must all be on one queue (a batch is stored atomically, and \
             atomicity spans one queue)",
        ));
    }
    let queue = inner.queues.entry(queue_name.clone()).or_default();
    queue.seq += 1;
    let id = JobId::new(queue_name.clone(), queue.seq);
    let mut members = Vec::with_capacity(jobs.len());
    for job in jobs {
        queue.seq += 1;
        let seq = queue.seq;
        let name = queue.intern(&job.name);
        let mut rec =
            Record::new(name, job.args, JobState::Enqueued, None, now, 0).with_headers(job.headers);
        rec.flow = Some(Box::new(RecordFlow {
            batch: Some(id.clone()),
            ..RecordFlow::default()
        }));
        queue.jobs.insert(seq, rec);
        queue.pending.push_back(seq);
        members.push(JobId::new(queue_name.clone(), seq));
    }
    let then = then.map(|t| create_awaiting(inner, t, format!("waiting for batch {id}"), now));
    let progress = BatchProgress {
        total: members.len() as u64,
        succeeded: 0,
        failed: 0,
    };
    if progress.is_done() {
        if let Some(t) = &then {
            decide_child(inner, t, true, None, now);
        }
    }
    inner.batches.0.insert(
        id.clone(),
        BatchState {
            progress,
            then: then.clone().filter(|_| !progress.is_done()),
        },
    );
    if progress.is_done() {
        let retention = inner.retention;
        inner.batches.finished(id.clone(), now, &retention);
    }
    Ok(Batch {
        id,
        jobs: members,
        then,
    })
}

pub(super) fn batch_progress(inner: &Inner, id: &JobId) -> Option<BatchProgress> {
    inner.batches.0.get(id).map(|b| b.progress)
}

#[async_trait]
impl Flows for MemoryStorage {
    async fn continue_with(
        &self,
        parent: &JobId,
        child: NewJob,
        on: Finish,
    ) -> Result<Option<JobId>> {
        self.check(&child)?;
        let id = continue_with(&mut self.lock(), parent, child, on, now_ms());
        self.shared.ready.notify_waiters();
        Ok(id)
    }

    async fn parent_result(&self, id: &JobId) -> Result<Option<String>> {
        Ok(parent_result(&self.lock(), id))
    }

    async fn acquire_limits(
        &self,
        requests: &[LimitRequest],
        retry_in: Duration,
    ) -> Result<Vec<bool>> {
        let granted = super::limits::acquire_limits(&mut self.lock(), requests, retry_in, now_ms());
        self.shared.ready.notify_waiters();
        Ok(granted)
    }

    async fn enqueue_batch(&self, jobs: Vec<NewJob>, then: Option<NewJob>) -> Result<Batch> {
        for job in jobs.iter().chain(&then) {
            self.check(job)?;
        }
        let batch = enqueue_batch(&mut self.lock(), jobs, then, now_ms())?;
        self.shared.ready.notify_waiters();
        Ok(batch)
    }

    async fn batch_progress(&self, id: &JobId) -> Result<Option<BatchProgress>> {
        Ok(batch_progress(&self.lock(), id))
    }
}
