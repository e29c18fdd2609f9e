//! Reading jobs back for inspection: one job with its history, a queue's counts, failed jobs.

use super::ScriptCall;
use super::{record, RedisStorage, TOKENS_PIN};
use crate::error::Result;
use crate::headers::Headers;
use crate::job::JobId;
use crate::monitor::{
    BatchPage, Count, JobDetail, JobPage, JobQuery, QueueSummary, Resolution, ServerReport,
    Snapshot,
};
use crate::state::{JobState, StateChange};
use crate::storage::{Cancellation, Monitoring};
use crate::storage::{JobInfo, QueueStats};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

impl RedisStorage {
    pub(super) async fn job_info(&self, id: &JobId) -> Result<Option<JobInfo>> {
        let k = self.keys(id.queue());
        let seq = id.seq();
        #[allow(clippy::type_complexity)]
        let (rec, hist, leased, scheduled, failed, succeeded, deleted, awaiting): (
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            bool,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            bool,
        ) = self
            .idempotent(
                "reading a job",
                redis::pipe()
                    .hget(&k.jobs, seq)
                    .hget(&k.hist, seq)
                    .hexists(&k.tokens, seq)
                    .zscore(&k.scheduled, seq)
                    .zscore(&k.failed, seq)
                    .zscore(&k.succeeded, seq)
                    .zscore(&k.deleted, seq)
                    .sismember(&k.awaiting, seq),
            )
            .await?;
        let state = if awaiting {
            JobState::Awaiting
        } else if leased {
            JobState::Processing
        } else if scheduled.is_some() {
            JobState::Scheduled
        } else if failed.is_some() {
            JobState::Failed
        } else if succeeded.is_some() {
            JobState::Succeeded
        } else if deleted.is_some() {
            JobState::Deleted
        } else {
            JobState::Enqueued
        };
        Ok(Self::info(id.clone(), rec, hist, state))
    }

    pub(super) async fn queue_stats(&self, queue: &str) -> Result<QueueStats> {
        let k = self.keys(queue);
        #[allow(clippy::type_complexity)]
        let (enqueued, scheduled, tokens, pinned, failed, counters, head): (
            u64,
            u64,
            u64,
            bool,
            u64,
            (Option<u64>, Option<u64>),
            Option<u64>,
        ) = self
            .idempotent(
                "reading queue stats",
                redis::pipe()
                    .llen(&k.pending)
                    .zcard(&k.scheduled)
                    .hlen(&k.tokens)
                    .hexists(&k.tokens, TOKENS_PIN)
                    .zcard(&k.failed)
                    .hmget(&k.stats, &["succeeded", "failed"])
                    .lindex(&k.pending, 0),
            )
            .await?;
        // The front job's record holds when it became ready (see `record`): a second read,
        // only for a queue with jobs waiting.
        let oldest_pending_at_ms = match head {
            None => None,
            Some(seq) => {
                let rec: Option<Vec<u8>> = self
                    .idempotent(
                        "reading queue stats",
                        redis::cmd("HGET").arg(&k.jobs).arg(seq),
                    )
                    .await?;
                rec.and_then(|rec| {
                    record::decode(std::str::from_utf8(&rec).ok()?).map(|r| r.enqueued_at_ms)
                })
            }
        };
        Ok(QueueStats {
            enqueued,
            scheduled,
            processing: tokens - u64::from(pinned),
            failed,
            succeeded_total: counters.0.unwrap_or(0),
            failed_total: counters.1.unwrap_or(0),
            oldest_pending_at_ms,
        })
    }

    pub(super) async fn failed_jobs(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let k = self.keys(queue);
        let seqs: Vec<u64> = self
            .idempotent(
                "listing failed jobs",
                redis::cmd("ZRANGE")
                    .arg(&k.failed)
                    .arg(0)
                    .arg(limit.min(i64::MAX as usize) as i64 - 1),
            )
            .await?;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let (recs, hists) = self
            .hmget_both::<Vec<u8>>("listing failed jobs", &k.jobs, &k.hist, &seqs)
            .await?;
        let queue: Arc<str> = Arc::from(queue);
        Ok(seqs
            .into_iter()
            .zip(recs.into_iter().zip(hists))
            .filter_map(|(seq, (rec, hist))| {
                Self::info(JobId::new(queue.clone(), seq), rec, hist, JobState::Failed)
            })
            .collect())
    }

    /// A job as inspection shows it, from its stored record and history and the state its
    /// keys put it in; `None` without a record.
    pub(crate) fn info(
        id: JobId,
        rec: Option<Vec<u8>>,
        hist: Option<Vec<u8>>,
        state: JobState,
    ) -> Option<JobInfo> {
        let rec = rec?;
        let text = String::from_utf8_lossy(&rec);
        let (name, args, headers, (attempts, crashes, orphaned), enqueued) =
            match record::decode(&text) {
                Some(r) => (
                    r.name.to_owned(),
                    r.args.to_owned(),
                    r.headers().unwrap_or_default(),
                    (r.attempts, r.crashes, r.orphaned),
                    r.enqueued_at_ms,
                ),
                None => (
                    String::new(),
                    text.into_owned(),
                    Headers::new(),
                    (0, 0, 0),
                    0,
                ),
            };
        // A success does not rewrite the record (see complete.lua): count its attempt here.
        let attempts = if state == JobState::Succeeded {
            attempts.saturating_add(1)
        } else {
            attempts
        };
        let mut history = hist.map(|h| record::decode_history(&h)).unwrap_or_default();
        // The first entry is implicit until the job leaves its first state, and stays implicit
        // when that happens by starting an attempt that succeeds (see complete.lua).
        if history
            .first()
            .map_or(true, |c| c.state == JobState::Processing)
        {
            history.insert(0, StateChange::new(JobState::Enqueued, enqueued, None));
        }
        Some(JobInfo {
            id,
            name,
            args,
            headers,
            state,
            attempts,
            crashes,
            orphaned,
            history,
        })
    }
}

#[async_trait]
impl Monitoring for RedisStorage {
    async fn job(&self, id: &JobId) -> Result<Option<JobInfo>> {
        self.job_info(id).await
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        self.queue_stats(queue).await
    }

    async fn failed(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>> {
        self.failed_jobs(queue, limit).await
    }

    async fn requeue(&self, id: &JobId) -> Result<bool> {
        let k = self.keys(id.queue());
        let mut inv = ScriptCall::new(&self.inner.scripts.requeue);
        inv.key(&k.jobs)
            .key(&k.failed)
            .key(&k.deleted)
            .key(&k.pending)
            .key(&k.hist)
            .key(&k.wake)
            .arg(id.seq());
        let done: i64 = inv
            .invoke(&mut self.conn())
            .await
            .map_err(self.err("requeueing a job"))?;
        Ok(done == 1)
    }

    async fn delete(&self, id: &JobId) -> Result<bool> {
        let k = self.keys(id.queue());
        let done: i64 = self
            .deletion_call(&self.inner.scripts.delete, &k, id)
            .invoke(&mut self.conn())
            .await
            .map_err(self.err("deleting a job"))?;
        if done == 2 {
            self.dispatch_continuations(id.queue_arc()).await?;
        }
        Ok(done >= 1)
    }

    async fn servers(&self) -> Result<Vec<String>> {
        self.live_servers().await
    }

    async fn cancel(&self, id: &JobId) -> Result<Cancellation> {
        self.cancel_job(id).await
    }

    async fn requeue_many(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        self.requeue_many_now(ids).await
    }

    async fn delete_many(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        self.delete_many_now(ids).await
    }

    async fn queue_names(&self) -> Result<Vec<String>> {
        self.queue_names_now().await
    }

    async fn queue_summary(&self, queue: &str) -> Result<QueueSummary> {
        self.queue_summary_now(queue).await
    }

    async fn count(&self, queue: &str, state: JobState) -> Result<Count> {
        self.count_now(queue, state).await
    }

    async fn list_jobs(&self, queue: &str, query: &JobQuery) -> Result<JobPage> {
        self.list_jobs_now(queue, query).await
    }

    async fn job_detail(&self, id: &JobId) -> Result<Option<JobDetail>> {
        self.job_detail_now(id).await
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()> {
        self.set_queue_paused_now(queue, paused).await
    }

    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool> {
        self.set_recurring_paused_now(id, paused).await
    }

    async fn paused_recurring(&self) -> Result<Vec<String>> {
        self.paused_recurring_now().await
    }

    async fn report_server(&self, report: &ServerReport, ttl: Duration) -> Result<()> {
        self.report_server_now(report, ttl).await
    }

    async fn server_reports(&self) -> Result<Vec<ServerReport>> {
        self.server_reports_now().await
    }

    async fn record_history(&self, queues: &[Arc<str>], now_ms: u64) -> Result<()> {
        self.record_history_now(queues, now_ms).await
    }

    async fn history_snapshots(
        &self,
        queue: &str,
        resolution: Resolution,
    ) -> Result<Vec<Snapshot>> {
        self.history_snapshots_now(queue, resolution).await
    }

    async fn batches(&self, queue: &str, cursor: Option<&str>, limit: usize) -> Result<BatchPage> {
        self.batches_now(queue, cursor, limit).await
    }
}
