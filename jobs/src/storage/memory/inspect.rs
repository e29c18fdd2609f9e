//! The memory storage's monitoring: a job, a queue's counts, failed jobs, servers, and the
//! actions requeue, delete and cancel.

use super::{info, MemoryStorage, Record};
use crate::error::Result;
use crate::job::JobId;
use crate::monitor::{
    BatchPage, Count, JobDetail, JobPage, JobQuery, QueueSummary, Resolution, ServerReport,
    Snapshot,
};
use crate::state::JobState;
use crate::storage::{now_ms, Cancellation, JobInfo, Monitoring, QueueStats};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

#[async_trait]
impl Monitoring for MemoryStorage {
    async fn job(&self, id: &JobId) -> Result<Option<JobInfo>> {
        let inner = self.lock();
        Ok(inner
            .queues
            .get(id.queue())
            .and_then(|q| q.jobs.get(&id.seq()))
            .map(|rec| info(id.clone(), rec)))
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let inner = self.lock();
        Ok(inner
            .queues
            .get(queue)
            .map_or_else(QueueStats::default, |q| QueueStats {
                enqueued: q.pending.len() as u64,
                scheduled: q.scheduled.len() as u64,
                processing: q.leases.len() as u64,
                failed: q.failed.len() as u64,
                succeeded_total: q.succeeded_total,
                failed_total: q.failed_total,
                oldest_pending_at_ms: q
                    .pending
                    .iter()
                    .find_map(|seq| q.jobs.get(seq))
                    .map(Record::ready_at_ms),
            }))
    }

    async fn failed(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>> {
        let inner = self.lock();
        let Some((name, q)) = inner.queues.get_key_value(queue) else {
            return Ok(Vec::new());
        };
        Ok(q.failed
            .iter()
            .take(limit)
            .filter_map(|&(_, seq)| {
                q.jobs
                    .get(&seq)
                    .map(|rec| info(JobId::new(name.clone(), seq), rec))
            })
            .collect())
    }

    async fn requeue(&self, id: &JobId) -> Result<bool> {
        let now = now_ms();
        {
            let mut inner = self.lock();
            let Some(queue) = inner.queues.get_mut(id.queue()) else {
                return Ok(false);
            };
            let seq = id.seq();
            let Some(state) = queue.jobs.get(&seq).map(|r| r.state) else {
                return Ok(false);
            };
            if !matches!(state, JobState::Failed | JobState::Deleted) {
                return Ok(false);
            }
            queue.unindex(seq);
            if let Some(rec) = queue.jobs.get_mut(&seq) {
                rec.attempts = 0;
                rec.crashes = 0;
                rec.orphaned = 0;
                rec.enter(JobState::Enqueued, now, Some("requeued".to_owned()));
            }
            queue.pending.push_back(seq);
        }
        self.shared.ready.notify_waiters();
        Ok(true)
    }

    async fn delete(&self, id: &JobId) -> Result<bool> {
        let now = now_ms();
        let mut inner = self.lock();
        let retention = inner.retention;
        let Some(queue) = inner.queues.get_mut(id.queue()) else {
            return Ok(false);
        };
        let seq = id.seq();
        let Some(state) = queue.jobs.get(&seq).map(|r| r.state) else {
            return Ok(false);
        };
        if !matches!(
            state,
            JobState::Enqueued | JobState::Scheduled | JobState::Failed | JobState::Awaiting
        ) {
            return Ok(false);
        }
        let hooked = queue.delete_now(seq, "deleted", now, &retention);
        self.deletion_ended(inner, id, hooked, now);
        Ok(true)
    }

    async fn servers(&self) -> Result<Vec<String>> {
        let now = now_ms();
        let mut inner = self.lock();
        inner.servers.retain(|_, &mut expires| expires > now);
        let mut names: Vec<String> = inner.servers.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    async fn cancel(&self, id: &JobId) -> Result<Cancellation> {
        let now = now_ms();
        let mut inner = self.lock();
        let retention = inner.retention;
        let Some(queue) = inner.queues.get_mut(id.queue()) else {
            return Ok(Cancellation::NotFound);
        };
        let seq = id.seq();
        let Some(state) = queue.jobs.get(&seq).map(|r| r.state) else {
            return Ok(Cancellation::NotFound);
        };
        match state {
            // An awaiting continuation is deleted too: its parent's end finds it no longer
            // awaiting and leaves it alone.
            JobState::Enqueued | JobState::Scheduled | JobState::Awaiting => {
                let hooked = queue.delete_now(seq, "cancelled", now, &retention);
                self.deletion_ended(inner, id, hooked, now);
                Ok(Cancellation::Deleted)
            }
            JobState::Processing => {
                queue.cancels.insert(seq);
                Ok(Cancellation::Requested)
            }
            _ => Ok(Cancellation::Finished),
        }
    }

    async fn queue_names(&self) -> Result<Vec<String>> {
        Ok(self.queue_names_now())
    }

    async fn queue_summary(&self, queue: &str) -> Result<QueueSummary> {
        Ok(self.queue_summary_now(queue))
    }

    async fn count(&self, queue: &str, state: JobState) -> Result<Count> {
        Ok(self.count_now(queue, state))
    }

    async fn list_jobs(&self, queue: &str, query: &JobQuery) -> Result<JobPage> {
        self.list_jobs_now(queue, query)
    }

    async fn job_detail(&self, id: &JobId) -> Result<Option<JobDetail>> {
        Ok(self.job_detail_now(id))
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()> {
        self.set_queue_paused_now(queue, paused);
        Ok(())
    }

    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool> {
        Ok(self.set_recurring_paused_now(id, paused))
    }

    async fn paused_recurring(&self) -> Result<Vec<String>> {
        Ok(self.paused_recurring_now())
    }

    async fn report_server(&self, report: &ServerReport, ttl: Duration) -> Result<()> {
        self.report_server_now(report, ttl);
        Ok(())
    }

    async fn server_reports(&self) -> Result<Vec<ServerReport>> {
        Ok(self.server_reports_now())
    }

    async fn record_history(&self, queues: &[Arc<str>], now_ms: u64) -> Result<()> {
        self.record_history_now(queues, now_ms);
        Ok(())
    }

    async fn history_snapshots(
        &self,
        queue: &str,
        resolution: Resolution,
    ) -> Result<Vec<Snapshot>> {
        Ok(self.history_snapshots_now(queue, resolution))
    }

    async fn batches(&self, queue: &str, cursor: Option<&str>, limit: usize) -> Result<BatchPage> {
        self.batches_now(queue, cursor, limit)
    }
}
