//! Reading jobs back: one job, a queue's counts, its failed jobs.

use super::failure::Doing;
use super::{seq, unsigned, PostgresStorage};
use crate::error::{Error, Result};
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

/// The stored state codes (see `migrations/0001_tables.sql`).
fn state(code: i16) -> JobState {
    match code {
        0 => JobState::Enqueued,
        1 => JobState::Scheduled,
        2 => JobState::Processing,
        3 => JobState::Succeeded,
        4 => JobState::Failed,
        5 => JobState::Deleted,
        _ => JobState::Awaiting,
    }
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// One history entry as the SQL functions write it (`entry()` in the migrations): the state by
/// its [`JobState::as_str`] name.
#[derive(serde::Deserialize)]
struct Entry {
    s: String,
    t: u64,
    #[serde(default)]
    r: Option<String>,
}

fn decode_history(id: &JobId, text: &str) -> Result<Vec<StateChange>> {
    let undecodable =
        || Error::serialization(format!("the stored history of job {id} does not decode"));
    let entries: Vec<Entry> =
        serde_json::from_str(text).map_err(|e| undecodable().with_source(e))?;
    entries
        .into_iter()
        .map(|e| {
            let state = JobState::parse(&e.s).ok_or_else(undecodable)?;
            Ok(StateChange::new(state, e.t, e.r))
        })
        .collect()
}

/// The stored headers of job `id` (NULL: none).
pub(super) fn decode_headers(id: &JobId, stored: Option<&str>) -> Result<Headers> {
    Headers::from_json(stored.unwrap_or("")).ok_or_else(|| {
        Error::serialization(format!("the stored headers of job {id} do not decode"))
    })
}

pub(super) type JobRow = (
    String,
    String,
    i16,
    i32,
    i32,
    i32,
    String,
    Option<i64>,
    Option<String>,
);

/// A failed job's row: its id, then a [`JobRow`] without the lease.
type FailedRow = (
    i64,
    String,
    String,
    i16,
    i32,
    i32,
    i32,
    String,
    Option<String>,
);

impl PostgresStorage {
    pub(super) fn info(&self, id: JobId, row: JobRow) -> Result<JobInfo> {
        let (name, args, code, attempts, crashes, orphaned, history, claimed_at, headers) = row;
        let mut history = decode_history(&id, &history)?;
        let headers = decode_headers(&id, headers.as_deref())?;
        let mut state = state(code);
        // A leased job is processing: its lease row says so, and since when.
        if let Some(at) = claimed_at {
            state = JobState::Processing;
            history.push(StateChange::new(state, unsigned(at), None));
        }
        Ok(JobInfo {
            id,
            name,
            args,
            headers,
            state,
            attempts: count(attempts),
            crashes: count(crashes),
            orphaned: count(orphaned),
            history,
        })
    }

    pub(super) async fn job_now(&self, id: &JobId) -> Result<Option<JobInfo>> {
        let pool = self.ready().await?;
        let row: Option<JobRow> = sqlx::query_as(&self.inner.sql.job)
            .bind(seq(id))
            .bind(id.queue())
            .fetch_optional(pool)
            .await
            .doing("reading a job", self.schema_name())?;
        row.map(|row| self.info(id.clone(), row)).transpose()
    }

    pub(super) async fn stats_now(&self, queue: &str) -> Result<QueueStats> {
        let pool = self.ready().await?;
        #[allow(clippy::type_complexity)]
        let (enqueued, scheduled, processing, failed, succeeded_total, failed_total, oldest): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            Option<i64>,
        ) = sqlx::query_as(&self.inner.sql.stats)
            .bind(queue)
            .fetch_one(pool)
            .await
            .doing("counting a queue's jobs", self.schema_name())?;
        Ok(QueueStats {
            enqueued: unsigned(enqueued),
            scheduled: unsigned(scheduled),
            processing: unsigned(processing),
            failed: unsigned(failed),
            succeeded_total: unsigned(succeeded_total),
            failed_total: unsigned(failed_total),
            oldest_pending_at_ms: oldest.map(unsigned),
        })
    }

    pub(super) async fn failed_now(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>> {
        let pool = self.ready().await?;
        let rows: Vec<FailedRow> = sqlx::query_as(&self.inner.sql.failed)
            .bind(queue)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await
            .doing("listing failed jobs", self.schema_name())?;
        rows.into_iter()
            .map(
                |(id, name, args, code, attempts, crashes, orphaned, history, headers)| {
                    self.info(
                        JobId::new(queue, unsigned(id)),
                        (
                            name, args, code, attempts, crashes, orphaned, history, None, headers,
                        ),
                    )
                },
            )
            .collect()
    }
}

#[async_trait]
impl Monitoring for PostgresStorage {
    async fn job(&self, id: &JobId) -> Result<Option<JobInfo>> {
        self.job_now(id).await
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        self.stats_now(queue).await
    }

    async fn failed(&self, queue: &str, limit: usize) -> Result<Vec<JobInfo>> {
        self.failed_now(queue, limit).await
    }

    async fn requeue(&self, id: &JobId) -> Result<bool> {
        self.requeue_now(id).await
    }

    async fn delete(&self, id: &JobId) -> Result<bool> {
        Ok(self.remove(id, false).await? == Cancellation::Deleted)
    }

    async fn servers(&self) -> Result<Vec<String>> {
        self.servers_now().await
    }

    async fn cancel(&self, id: &JobId) -> Result<Cancellation> {
        self.remove(id, true).await
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
