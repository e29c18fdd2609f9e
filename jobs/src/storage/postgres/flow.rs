//! Deleting, cancelling and requeueing jobs, and the flows: continuations, limits, batches.

use super::failure::{retrying, Doing};
use super::{millis, seq, unsigned, PostgresStorage};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::storage::{Batch, BatchProgress, Cancellation, Finish, LimitRequest, NewJob};
use crate::storage::{Delivery, Flows};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

impl PostgresStorage {
    /// Deletes (or, with `cancel`, cancels) a job as `Monitoring::delete` / `Monitoring::cancel` say.
    pub(super) async fn remove(&self, id: &JobId, cancel: bool) -> Result<Cancellation> {
        let pool = self.ready().await?;
        let [keep_s, ttl_s, keep_d, ttl_d] = self.retention_params();
        let code: String = retrying(|| {
            sqlx::query_scalar(&self.inner.sql.remove)
                .bind(seq(id))
                .bind(id.queue())
                .bind(cancel)
                .bind(keep_d)
                .bind(ttl_d)
                .bind(keep_s)
                .bind(ttl_s)
                .fetch_one(pool)
        })
        .await
        .doing(
            if cancel {
                "cancelling a job"
            } else {
                "deleting a job"
            },
            self.schema_name(),
        )?;
        Ok(match code.as_str() {
            "D" => Cancellation::Deleted,
            "R" => Cancellation::Requested,
            "N" => Cancellation::NotFound,
            _ => Cancellation::Finished,
        })
    }

    pub(super) async fn requeue_now(&self, id: &JobId) -> Result<bool> {
        let pool = self.ready().await?;
        retrying(|| {
            sqlx::query_scalar(&self.inner.sql.requeue)
                .bind(seq(id))
                .bind(id.queue())
                .fetch_one(pool)
        })
        .await
        .doing("requeueing a job", self.schema_name())
    }

    pub(super) async fn cancel_requested_now(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let pool = self.ready().await?;
        let seqs: Vec<i64> = ids.iter().map(seq).collect();
        let requested: Vec<i64> = sqlx::query_scalar(&self.inner.sql.cancel_requested)
            .bind(&seqs)
            .fetch_all(pool)
            .await
            .doing("reading cancel requests", self.schema_name())?;
        Ok(seqs.iter().map(|s| requested.contains(s)).collect())
    }

    pub(super) async fn continue_with_now(
        &self,
        parent: &JobId,
        child: NewJob,
        on: Finish,
    ) -> Result<Option<JobId>> {
        let pool = self.ready().await?;
        let reason = format!("waiting for {parent}");
        let id: Option<i64> = retrying(|| {
            sqlx::query_scalar(&self.inner.sql.continue_with)
                .bind(seq(parent))
                .bind(parent.queue())
                .bind(child.queue.as_ref())
                .bind(child.name.as_ref())
                .bind(&child.args)
                .bind(on.code())
                .bind(&reason)
                .bind(stored_headers(&child.headers))
                .fetch_one(pool)
        })
        .await
        .doing("storing a continuation", self.schema_name())?;
        Ok(id.map(|id| JobId::new(child.queue.clone(), unsigned(id))))
    }

    pub(super) async fn parent_result_now(&self, id: &JobId) -> Result<Option<String>> {
        let pool = self.ready().await?;
        let result: Option<Option<String>> = sqlx::query_scalar(&self.inner.sql.parent_result)
            .bind(seq(id))
            .bind(id.queue())
            .fetch_optional(pool)
            .await
            .doing("reading a parent's result", self.schema_name())?;
        Ok(result.flatten())
    }

    pub(super) async fn acquire_limits_now(
        &self,
        requests: &[LimitRequest],
        retry_in: Duration,
    ) -> Result<Vec<bool>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let pool = self.ready().await?;
        let ids: Vec<i64> = requests.iter().map(|r| seq(&r.lease.id)).collect();
        let tokens: Vec<i64> = requests
            .iter()
            .map(|r| i64::try_from(r.lease.token.0).unwrap_or(i64::MAX))
            .collect();
        let keys: Vec<&str> = requests.iter().map(|r| r.key.as_str()).collect();
        let concurrency: Vec<Option<i32>> = requests
            .iter()
            .map(|r| r.concurrency.map(|c| i32::try_from(c).unwrap_or(i32::MAX)))
            .collect();
        let rate_count: Vec<Option<i32>> = requests
            .iter()
            .map(|r| r.rate.map(|(c, _)| i32::try_from(c).unwrap_or(i32::MAX)))
            .collect();
        let rate_per: Vec<Option<i64>> = requests
            .iter()
            .map(|r| r.rate.map(|(_, per)| millis(per)))
            .collect();
        let granted: Vec<bool> = retrying(|| {
            sqlx::query_scalar(&self.inner.sql.acquire_limits)
                .bind(&ids)
                .bind(&tokens)
                .bind(&keys)
                .bind(&concurrency)
                .bind(&rate_count)
                .bind(&rate_per)
                .bind(millis(retry_in))
                .fetch_one(pool)
        })
        .await
        .doing("acquiring limit slots", self.schema_name())?;
        Ok(granted)
    }

    pub(super) async fn enqueue_batch_now(
        &self,
        jobs: Vec<NewJob>,
        then: Option<NewJob>,
    ) -> Result<Batch> {
        let queue: Arc<str> = match jobs.first() {
            Some(j) => j.queue.clone(),
            None => then
                .as_ref()
                .map_or_else(|| Arc::from("default"), |t| t.queue.clone()),
        };
        if jobs.iter().any(|j| j.queue != queue) {
            return Err(Error::config(
                "the jobs of a batch must all be on one queue (a batch is stored atomically, \
                 and its members share one queue)",
            ));
        }
        let pool = self.ready().await?;
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_ref()).collect();
        let args: Vec<&str> = jobs.iter().map(|j| j.args.as_str()).collect();
        let reason = format!("waiting for batch {queue}:");
        let headers: Option<Vec<Option<String>>> = jobs
            .iter()
            .any(|j| !j.headers.is_empty())
            .then(|| jobs.iter().map(|j| stored_headers(&j.headers)).collect());
        let then_headers = then.as_ref().and_then(|t| stored_headers(&t.headers));
        let [keep_s, ttl_s, _, _] = self.retention_params();
        let ids: Vec<Option<i64>> = retrying(|| {
            sqlx::query_scalar(&self.inner.sql.enqueue_batch)
                .bind(queue.as_ref())
                .bind(&names)
                .bind(&args)
                .bind(then.as_ref().map(|t| t.queue.as_ref()))
                .bind(then.as_ref().map(|t| t.name.as_ref()))
                .bind(then.as_ref().map(|t| t.args.as_str()))
                .bind(&reason)
                .bind(keep_s)
                .bind(ttl_s)
                .bind(&headers)
                .bind(&then_headers)
                .fetch_one(pool)
        })
        .await
        .doing("enqueueing a batch", self.schema_name())?;
        let id = |n: Option<i64>, q: &Arc<str>| JobId::new(q.clone(), unsigned(n.unwrap_or(0)));
        let batch = id(ids.first().copied().flatten(), &queue);
        let members = ids
            .iter()
            .skip(1)
            .take(jobs.len())
            .map(|&n| id(n, &queue))
            .collect();
        let then = then.and_then(|t| {
            ids.get(jobs.len() + 1)
                .copied()
                .flatten()
                .map(|n| JobId::new(t.queue, unsigned(n)))
        });
        Ok(Batch {
            id: batch,
            jobs: members,
            then,
        })
    }

    pub(super) async fn batch_progress_now(&self, id: &JobId) -> Result<Option<BatchProgress>> {
        let pool = self.ready().await?;
        let row: Option<(i64, i64, i64)> = sqlx::query_as(&self.inner.sql.batch_progress)
            .bind(seq(id))
            .bind(id.queue())
            .fetch_optional(pool)
            .await
            .doing("reading a batch's progress", self.schema_name())?;
        Ok(row.map(|(total, succeeded, failed)| BatchProgress {
            total: unsigned(total),
            succeeded: unsigned(succeeded),
            failed: unsigned(failed),
        }))
    }
}

#[async_trait]
impl Flows for PostgresStorage {
    async fn continue_with(
        &self,
        parent: &JobId,
        child: NewJob,
        on: Finish,
    ) -> Result<Option<JobId>> {
        self.check(&child)?;
        self.continue_with_now(parent, child, on).await
    }

    async fn parent_result(&self, id: &JobId) -> Result<Option<String>> {
        self.parent_result_now(id).await
    }

    async fn acquire_limits(
        &self,
        requests: &[LimitRequest],
        retry_in: Duration,
    ) -> Result<Vec<bool>> {
        self.acquire_limits_now(requests, retry_in).await
    }

    async fn enqueue_batch(&self, jobs: Vec<NewJob>, then: Option<NewJob>) -> Result<Batch> {
        for job in jobs.iter().chain(&then) {
            self.check(job)?;
        }
        self.enqueue_batch_now(jobs, then).await
    }

    async fn batch_progress(&self, id: &JobId) -> Result<Option<BatchProgress>> {
        self.batch_progress_now(id).await
    }
}

/// A job's headers as the `headers` column stores them: NULL for none.
pub(super) fn stored_headers(headers: &crate::headers::Headers) -> Option<String> {
    (!headers.is_empty()).then(|| headers.to_json())
}
