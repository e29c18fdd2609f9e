//! Recurring jobs: entries in `<schema>.recurring`; a tick's compare-and-set and the enqueue of
//! its jobs are one statement, so each tick is enqueued exactly once across processes.

use super::failure::{retrying, Doing};
use super::{millis, unsigned, PostgresStorage};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::recurring::Misfire;
use crate::storage::Recurring;
use crate::storage::{RecurringEntry, RecurringFire};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

type Row = (
    String,
    String,
    String,
    String,
    Option<i64>,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    i64,
    Option<String>,
);

fn entry(row: Row) -> Result<RecurringEntry> {
    let (id, cron, time_zone, misfire, grace, queue, name, args, next, last, revision, headers) =
        row;
    let headers = crate::Headers::of_recurring(&id, headers.as_deref().unwrap_or(""));
    let misfire = Misfire::from_name(&misfire).ok_or_else(|| {
        Error::serialization(format!(
            "the recurring job `{id}` has a misfire policy `{misfire}` this version does not know"
        ))
    })?;
    let mut e = RecurringEntry::new(
        id,
        cron,
        time_zone,
        misfire,
        queue,
        name,
        args,
        next.map(unsigned),
    );
    e.last_run_ms = last.map(unsigned);
    e.misfire_grace = grace.map(|g| Duration::from_millis(unsigned(g)));
    e.revision = unsigned(revision);
    e.headers = headers;
    Ok(e)
}

fn signed(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

impl PostgresStorage {
    pub(super) async fn register_recurring_now(&self, e: RecurringEntry) -> Result<RecurringEntry> {
        let pool = self.ready().await?;
        let row: Row = retrying(|| {
            sqlx::query_as(&self.inner.sql.register_recurring)
                .bind(&e.id)
                .bind(&e.cron)
                .bind(&e.time_zone)
                .bind(e.misfire.as_str())
                .bind(e.misfire_grace.map(millis))
                .bind(e.queue.as_ref())
                .bind(&e.name)
                .bind(&e.args)
                .bind(e.next_run_ms.map(signed))
                .bind(super::flow::stored_headers(&e.headers))
                .fetch_one(pool)
        })
        .await
        .doing("registering a recurring job", self.schema_name())?;
        entry(row)
    }

    pub(super) async fn remove_recurring_now(&self, id: &str) -> Result<bool> {
        let pool = self.ready().await?;
        let done = sqlx::query(&self.inner.sql.remove_recurring)
            .bind(id)
            .execute(pool)
            .await
            .doing("removing a recurring job", self.schema_name())?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn recurring_now(&self) -> Result<Vec<RecurringEntry>> {
        let pool = self.ready().await?;
        let rows: Vec<Row> = sqlx::query_as(&self.inner.sql.recurring)
            .fetch_all(pool)
            .await
            .doing("listing recurring jobs", self.schema_name())?;
        rows.into_iter().map(entry).collect()
    }

    pub(super) async fn fire_recurring_now(
        &self,
        fire: &RecurringFire,
    ) -> Result<Option<Vec<JobId>>> {
        let pool = self.ready().await?;
        let ticks = i32::try_from(fire.ticks.len()).unwrap_or(i32::MAX);
        let ids: Option<Vec<i64>> = retrying(|| {
            sqlx::query_scalar(&self.inner.sql.fire_recurring)
                .bind(&fire.id)
                .bind(signed(fire.revision))
                .bind(signed(fire.expected_next_ms))
                .bind(fire.queue.as_ref())
                .bind(fire.next_run_ms.map(signed))
                .bind(fire.ticks.last().copied().map(signed))
                .bind(ticks)
                .fetch_optional(pool)
        })
        .await
        .doing("enqueueing a recurring job's tick", self.schema_name())?;
        Ok(ids.map(|ids| {
            ids.into_iter()
                .map(|id| JobId::new(fire.queue.clone(), unsigned(id)))
                .collect()
        }))
    }

    pub(super) async fn trigger_recurring_now(&self, id: &str) -> Result<Option<JobId>> {
        let pool = self.ready().await?;
        let row: Option<(String, Vec<i64>)> = retrying(|| {
            sqlx::query_as(&self.inner.sql.trigger_recurring)
                .bind(id)
                .fetch_optional(pool)
        })
        .await
        .doing("triggering a recurring job", self.schema_name())?;
        Ok(row.and_then(|(queue, ids)| {
            let queue: Arc<str> = Arc::from(queue);
            ids.first().map(|&n| JobId::new(queue, unsigned(n)))
        }))
    }
}

#[async_trait]
impl Recurring for PostgresStorage {
    async fn register_recurring(&self, entry: RecurringEntry) -> Result<RecurringEntry> {
        self.inner.payload.check_recurring(&entry)?;
        self.register_recurring_now(entry).await
    }

    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        self.remove_recurring_now(id).await
    }

    async fn recurring(&self) -> Result<Vec<RecurringEntry>> {
        self.recurring_now().await
    }

    async fn fire_recurring(&self, fire: &RecurringFire) -> Result<Option<Vec<JobId>>> {
        self.fire_recurring_now(fire).await
    }

    async fn trigger_recurring(&self, id: &str) -> Result<Option<JobId>> {
        self.trigger_recurring_now(id).await
    }
}
