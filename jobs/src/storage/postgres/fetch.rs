//! Fetching: one statement claims ready jobs (after a maintenance pass when one is due); when
//! none is ready, the fetch sleeps until a NOTIFY, the next due time, or the fallback poll.

use super::failure::Doing;
use super::{millis, unsigned, PostgresStorage};
use crate::error::Result;
use crate::job::JobId;
use crate::storage::{
    now_ms, Completion, Delivery, FetchRequest, FetchedJob, Lease, LeaseToken, Outcome,
};
use std::sync::Arc;
use std::time::Duration;

/// A busy worker runs a maintenance pass (promotion of due jobs, reaping of lost leases) at
/// most this often.
const MAINTENANCE_EVERY_MS: u64 = 250;

/// An idle fetch queries again this often while another worker's session holds leases on its
/// queues: the pass that reaps them the moment that worker dies (a job back without a NOTIFY),
/// and the poll of a worker without a session (no LISTEN: `.listen(false)`, a transaction
/// pooler, or the session being re-opened).
const POLL: Duration = Duration::from_secs(1);

/// An idle fetch with a live session, when no other session holds a lease on its queues, queries
/// again this often: nothing can become ready there without a NOTIFY (enqueues, releases,
/// requeues and resumes send one) or a due time (scheduled jobs, retries and lease deadlines
/// wake the fetch when they fall due), so this is only a safety net. An idle worker in a quiet
/// system then sends about 0.6 statements a second in all (this poll, its heartbeat and report
/// every 10 s, its recurring scheduler every 5 s), against 1.4 with the one-second poll.
const QUIET_POLL: Duration = Duration::from_secs(5);

/// How long a worker's first fetch waits for its session to hold its lock.
const SESSION_START: Duration = Duration::from_secs(2);

type Row = (
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

impl PostgresStorage {
    pub(super) async fn fetch_now(&self, req: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        let pool = self.ready().await?;
        if !self
            .inner
            .vacuuming
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            tokio::spawn(super::vacuum::run(
                Arc::downgrade(&self.inner),
                self.inner.churn.clone(),
                pool.pool.clone(),
                self.inner.names.clone(),
            ));
        }
        if self.inner.listen
            && self.inner.session.start(
                Arc::downgrade(&self.inner),
                Arc::downgrade(&self.inner.session),
                &pool.pool,
                &self.inner.names,
            )
        {
            // The first claims wait for the session, so they are tied to it too.
            self.inner.session.established(SESSION_START).await;
        }
        let give_up_at = tokio::time::Instant::now() + req.wait;
        let queues: Vec<&str> = req.queues.iter().map(|q| q.as_ref()).collect();
        let max = i32::try_from(req.max).unwrap_or(i32::MAX);
        loop {
            let notified = self.inner.session.wake.notified();
            tokio::pin!(notified);
            // Registered before the query, so a NOTIFY during it is not missed.
            notified.as_mut().enable();
            let now = now_ms();
            let maintain = now.saturating_sub(
                self.inner
                    .last_maintenance
                    .load(std::sync::atomic::Ordering::Relaxed),
            ) >= MAINTENANCE_EVERY_MS;
            if maintain {
                self.inner
                    .last_maintenance
                    .store(now, std::sync::atomic::Ordering::Relaxed);
            }
            let rows: Vec<Row> = sqlx::query_as(&self.inner.sql.fetch)
                .bind(&queues)
                .bind(max)
                .bind(millis(req.lease))
                .bind(self.inner.session.owner())
                .bind(maintain)
                .bind(self.inner.maintenance_batch)
                .bind(i64::try_from(self.inner.payload.0).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await
                .doing("fetching jobs", self.schema_name())?;
            let mut next_event = None;
            let mut others_hold_leases = true;
            let mut out = Vec::with_capacity(rows.len());
            let mut refused = Vec::new();
            for row in rows {
                let (id, queue, name, args, attempts, crashes, orphaned, enqueued_at, token) = (
                    row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8,
                );
                let (over, headers, ready_at) = (row.9, row.10, row.11);
                let (Some(id), Some(queue), Some(name)) = (id, queue, name) else {
                    // The row saying when the next event is due, and (schema version 8 on)
                    // whether another session holds leases here.
                    next_event = token.map(unsigned);
                    others_hold_leases = crashes != Some(0);
                    continue;
                };
                let queue = req
                    .queues
                    .iter()
                    .find(|q| q.as_ref() == queue)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(queue));
                let lease = Lease {
                    id: JobId::new(queue.clone(), unsigned(id)),
                    token: LeaseToken(unsigned(token.unwrap_or(0))),
                };
                let Some(args) = args else {
                    // Over this worker's payload limit (written by a process with a higher
                    // one, or behind the storage's back): failed through the normal path, so
                    // it is kept for inspection and its continuations are decided.
                    let len = unsigned(over.unwrap_or(0));
                    let reason = self.inner.payload.refusal(len);
                    refused.push(Completion::new(lease, now_ms(), Outcome::Failed { reason }));
                    continue;
                };
                // Undecodable headers (written behind the storage's back) are dropped, not a
                // reason to stop fetching: the job still runs.
                let headers = super::inspect::decode_headers(&lease.id, headers.as_deref())
                    .unwrap_or_else(|e| {
                        tracing::warn!(job = %lease.id, error = %e, "ignoring the job's headers");
                        crate::Headers::new()
                    });
                out.push(FetchedJob {
                    id: lease.id,
                    name: self.intern(name),
                    args: Arc::from(args),
                    attempt: u32::try_from(attempts.unwrap_or(0)).unwrap_or(0) + 1,
                    enqueued_at_ms: unsigned(enqueued_at.unwrap_or(0)),
                    token: lease.token,
                    ready_at_ms: unsigned(ready_at.or(enqueued_at).unwrap_or(0)),
                    headers,
                    crashes: u32::try_from(crashes.unwrap_or(0)).unwrap_or(0),
                    orphaned: u32::try_from(orphaned.unwrap_or(0)).unwrap_or(0),
                });
            }
            self.inner.churn.fetch_add(
                (out.len() + refused.len()) as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            if !refused.is_empty() {
                tracing::warn!(
                    jobs = refused.len(),
                    "failing stored jobs over this worker's payload limit"
                );
                self.complete(&refused).await?;
                if out.is_empty() {
                    // The claim took only refused jobs; others may be ready behind them.
                    continue;
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
            let now = tokio::time::Instant::now();
            if now >= give_up_at {
                return Ok(Vec::new());
            }
            let poll = if others_hold_leases || self.inner.session.owner() == 0 {
                POLL
            } else {
                QUIET_POLL
            };
            let mut wake_at = give_up_at.min(now + poll);
            if let Some(t) = next_event {
                let in_ms = t.saturating_sub(now_ms());
                wake_at = wake_at.min(now + Duration::from_millis(in_ms));
            }
            if tokio::time::timeout_at(wake_at, notified).await.is_err() {
                // Woken by time: a due job or a lease to reap, so maintain now.
                self.inner
                    .last_maintenance
                    .store(0, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}
