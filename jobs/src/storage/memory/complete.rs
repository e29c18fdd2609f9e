//! Completing attempts in memory: each completion applied while its lease is held, the job moved
//! to the state its outcome names, continuations decided, retention applied.

use super::{flow, MemoryStorage};
use crate::error::Result;
use crate::job::JobId;
use crate::state::JobState;
use crate::storage::{now_ms, Completion, Outcome};
use std::sync::Arc;

impl MemoryStorage {
    pub(super) async fn complete_now(&self, completions: &[Completion]) -> Result<Vec<bool>> {
        let now = now_ms();
        let mut applied = Vec::with_capacity(completions.len());
        let mut inner = self.lock();
        let retention = inner.retention;
        let mut touched: Vec<Arc<str>> = Vec::new();
        let mut ended: Vec<(JobId, char, Option<String>)> = Vec::new();
        for c in completions {
            let seq = c.lease.id.seq();
            let Some(queue) = inner.queues.get_mut(c.lease.id.queue()) else {
                applied.push(false);
                continue;
            };
            let Some(rec) = queue.jobs.get_mut(&seq) else {
                applied.push(false);
                continue;
            };
            let Some((token, _)) = rec.lease else {
                applied.push(false);
                continue;
            };
            if token != c.lease.token || rec.state != JobState::Processing {
                applied.push(false);
                continue;
            }
            queue.leases.remove();
            queue.cancels.remove(&seq);
            rec.lease = None;
            rec.started = false;
            rec.attempts += 1;
            match &c.outcome {
                Outcome::Succeeded => {
                    rec.enter(JobState::Succeeded, now, None);
                    queue.succeeded.push_back((now, seq));
                    queue.succeeded_total += 1;
                }
                Outcome::Retry { at_ms, reason } => {
                    rec.enter(JobState::Scheduled, now, Some(reason.clone()));
                    rec.score = *at_ms;
                    queue.scheduled.insert((*at_ms, seq));
                }
                Outcome::Failed { reason } => {
                    rec.enter(JobState::Failed, now, Some(reason.clone()));
                    rec.score = now;
                    queue.failed.insert((now, seq));
                    queue.failed_total += 1;
                }
                Outcome::Deleted { reason } => {
                    rec.enter(JobState::Deleted, now, Some(reason.clone()));
                    queue.deleted.push_back((now, seq));
                }
            }
            if rec.flow.is_some() {
                let end = match &c.outcome {
                    Outcome::Succeeded => Some('O'),
                    Outcome::Failed { .. } => Some('F'),
                    Outcome::Deleted { .. } => Some('D'),
                    Outcome::Retry { .. } => None,
                };
                if let Some(end) = end {
                    ended.push((c.lease.id.clone(), end, c.result.clone()));
                }
            }
            applied.push(true);
            if !touched.iter().any(|q| q == c.lease.id.queue_arc()) {
                touched.push(c.lease.id.queue_arc().clone());
            }
        }
        if !ended.is_empty() {
            flow::ended(&mut inner, ended, now);
        }
        // About one record leaves per completion once retention is full.
        let mut dropped = Vec::with_capacity(completions.len());
        for name in touched {
            if let Some(queue) = inner.queues.get_mut(&name) {
                queue.trim(now, &retention, &mut dropped);
            }
        }
        drop(inner);
        // Freed outside the lock, so fetches wait less for it.
        drop(dropped);
        // A retry changes the next due time a waiting fetch sleeps until.
        self.shared.ready.notify_waiters();
        Ok(applied)
    }
}
