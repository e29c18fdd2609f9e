//! Recurring jobs in the memory backend: entries in a map under the storage's one lock, so the
//! compare-and-set of a tick and the enqueue of its job are one critical section.

use super::{MemoryStorage, Record};
use crate::error::Result;
use crate::job::JobId;
use crate::state::JobState;
use crate::storage::{now_ms, Recurring, RecurringEntry, RecurringFire};
use async_trait::async_trait;
use std::collections::BTreeMap;

/// The registered recurring jobs, by id.
pub(super) type Registry = BTreeMap<String, RecurringEntry>;

impl MemoryStorage {
    /// Puts one new job straight on its queue; the caller holds the lock.
    fn push_ready(inner: &mut super::Inner, entry: &RecurringEntry, now: u64) -> JobId {
        let queue = inner.queues.entry(entry.queue.clone()).or_default();
        queue.seq += 1;
        let seq = queue.seq;
        let name = queue.intern(&entry.name);
        let record = Record::new(name, entry.args.clone(), JobState::Enqueued, None, now, 0)
            .with_headers(entry.headers.clone());
        queue.jobs.insert(seq, record);
        queue.pending.push_back(seq);
        JobId::new(entry.queue.clone(), seq)
    }

    pub(super) fn register_recurring_now(&self, mut entry: RecurringEntry) -> RecurringEntry {
        let mut inner = self.lock();
        if let Some(old) = inner.recurring.get(&entry.id) {
            if old.same_schedule(&entry) {
                entry.next_run_ms = old.next_run_ms;
            }
            entry.last_run_ms = old.last_run_ms;
            entry.revision = old.revision + 1;
        } else {
            entry.revision = 1;
        }
        inner.recurring.insert(entry.id.clone(), entry.clone());
        entry
    }

    pub(super) fn remove_recurring_now(&self, id: &str) -> bool {
        self.lock().recurring.remove(id).is_some()
    }

    pub(super) fn recurring_now(&self) -> Vec<RecurringEntry> {
        self.lock().recurring.values().cloned().collect()
    }

    pub(super) fn fire_recurring_now(&self, fire: &RecurringFire) -> Option<Vec<JobId>> {
        let now = now_ms();
        let ids = {
            let mut inner = self.lock();
            let entry = inner.recurring.get(&fire.id)?;
            if entry.revision != fire.revision
                || entry.next_run_ms != Some(fire.expected_next_ms)
                || entry.queue != fire.queue
            {
                return None;
            }
            let entry = entry.clone();
            let ids: Vec<JobId> = fire
                .ticks
                .iter()
                .map(|_| Self::push_ready(&mut inner, &entry, now))
                .collect();
            let stored = inner.recurring.get_mut(&fire.id)?;
            stored.next_run_ms = fire.next_run_ms;
            if let Some(&last) = fire.ticks.last() {
                stored.last_run_ms = Some(last);
            }
            ids
        };
        if !ids.is_empty() {
            self.shared.ready.notify_waiters();
        }
        Some(ids)
    }

    pub(super) fn trigger_recurring_now(&self, id: &str) -> Option<JobId> {
        let now = now_ms();
        let job = {
            let mut inner = self.lock();
            let entry = inner.recurring.get(id)?.clone();
            let job = Self::push_ready(&mut inner, &entry, now);
            if let Some(stored) = inner.recurring.get_mut(id) {
                stored.last_run_ms = Some(now);
            }
            job
        };
        self.shared.ready.notify_waiters();
        Some(job)
    }
}

#[async_trait]
impl Recurring for MemoryStorage {
    async fn register_recurring(&self, entry: RecurringEntry) -> Result<RecurringEntry> {
        self.shared.payload.check_recurring(&entry)?;
        Ok(self.register_recurring_now(entry))
    }

    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        Ok(self.remove_recurring_now(id))
    }

    async fn recurring(&self) -> Result<Vec<RecurringEntry>> {
        Ok(self.recurring_now())
    }

    async fn fire_recurring(&self, fire: &RecurringFire) -> Result<Option<Vec<JobId>>> {
        Ok(self.fire_recurring_now(fire))
    }

    async fn trigger_recurring(&self, id: &str) -> Result<Option<JobId>> {
        Ok(self.trigger_recurring_now(id))
    }
}
