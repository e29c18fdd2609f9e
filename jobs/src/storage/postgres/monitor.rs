//! Monitoring beyond single jobs: queues and their counts, jobs by state with cursors and
//! filters, a job's detail, pauses, server reports, history snapshots and batches (schema in
//! `migrations/0006_monitoring.sql`).
//!
//! Counting rows costs what it counts, so counts stop at [`COUNT_CAP`] and beyond it are the
//! planner's estimate (labelled so, see [`Count`]). Listings walk the index of their state from
//! the cursor (named beside each statement) and join the jobs they look at, never more than the
//! query's budget.

use super::failure::Doing;
use super::inspect::JobRow;
use super::{millis, seq, unsigned, PostgresStorage};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::monitor::{
    bad_cursor, BatchInfo, BatchPage, Count, JobDetail, JobPage, JobQuery, QueueSummary,
    Resolution, ServerReport, Snapshot,
};
use crate::state::JobState;
use crate::storage::{now_ms, BatchProgress, Finish, Monitoring};
use futures::future::try_join_all;
use std::sync::Arc;
use std::time::Duration;

/// Counts are exact up to this many jobs of a state in a queue, estimated beyond.
pub(super) const COUNT_CAP: i32 = 10_000;

/// How many single-job actions of a bulk action run at once (each on a pooled connection).
const IN_FLIGHT: usize = 8;

/// The state codes of `migrations/0001_tables.sql` (2, processing, is a lease row).
fn code(state: JobState) -> i16 {
    match state {
        JobState::Enqueued => 0,
        JobState::Scheduled => 1,
        JobState::Processing => 2,
        JobState::Succeeded => 3,
        JobState::Failed => 4,
        JobState::Deleted => 5,
        _ => 6,
    }
}

fn count_of(pair: &[i64]) -> Count {
    let n = unsigned(pair.first().copied().unwrap_or(0));
    match pair.get(1) {
        Some(2) => Count::estimate(n),
        Some(1) => Count::at_least(n),
        _ => Count::exact(n),
    }
}

/// A cursor of two signed numbers `a:b` (positions in the ready table may be negative).
fn parse_cursor(cursor: Option<&str>) -> Result<Option<(i64, i64)>> {
    let Some(c) = cursor else {
        return Ok(None);
    };
    let (a, b) = c.split_once(':').ok_or_else(|| bad_cursor(c))?;
    match (a.parse(), b.parse()) {
        (Ok(a), Ok(b)) => Ok(Some((a, b))),
        _ => Err(bad_cursor(c)),
    }
}

/// The statement listing one page of a state's jobs. `idx` selects `(k1, k2, id)` from the
/// state's index, after the cursor (`$2`, `$3`) in listing order, at most `$4` rows (the budget
/// plus one, to know whether more follow); the rest filters by name (`$5`) and argument
/// substring (`$6`), stops at `$7` matches, and returns the matches plus the last row looked
/// at, each with whether it is listed, the number of rows looked at and whether more follow.
fn list_sql(s: &str, idx: &str, order: &str) -> String {
    format!(
        "WITH idx AS MATERIALIZED ({idx}), \
         w AS (SELECT idx.k1, idx.k2, idx.id, row_number() OVER (ORDER BY {order}) AS rn, \
                 (($5::text IS NULL OR j.name = $5) AND ($6::text IS NULL OR strpos(j.args, $6) > 0)) AS hit \
               FROM idx JOIN {s}.jobs j ON j.id = idx.id), \
         hits AS (SELECT rn FROM w WHERE hit AND rn < $4 ORDER BY rn LIMIT $7), \
         stop AS (SELECT CASE WHEN (SELECT count(*) FROM hits) >= $7 THEN (SELECT max(rn) FROM hits) \
                  ELSE least((SELECT count(*) FROM w), $4 - 1) END AS rn, \
                  (SELECT count(*) FROM w) AS seen) \
         SELECT w.k1, w.k2, w.id, (w.hit AND w.rn <= stop.rn) AS listed, stop.rn AS examined, \
                stop.seen > stop.rn AS more, \
                j.name, j.args, j.state, j.attempts, j.crashes, j.orphaned, j.history::text, \
                l.claimed_at \
         FROM w CROSS JOIN stop JOIN {s}.jobs j ON j.id = w.id LEFT JOIN {s}.leases l ON l.id = w.id \
         WHERE (w.hit AND w.rn <= stop.rn) OR w.rn = stop.rn ORDER BY w.rn"
    )
}

/// The index read of each state: `$1` queue, `$2`/`$3` the cursor, `$4` the row limit.
fn index_sql(s: &str, state: JobState) -> (String, &'static str) {
    match state {
        // ready_order (queue, pos); a position is unique.
        JobState::Enqueued => (
            format!(
                "SELECT r.pos AS k1, r.id AS k2, r.id FROM {s}.ready r \
                 WHERE r.queue = $1 AND r.pos > $2 ORDER BY r.pos LIMIT $4"
            ),
            "idx.k1",
        ),
        // jobs_due (queue, run_at) WHERE state = 1.
        JobState::Scheduled => (
            format!(
                "SELECT j.run_at AS k1, j.id AS k2, j.id FROM {s}.jobs j \
                 WHERE j.queue = $1 AND j.state = 1 AND (j.run_at, j.id) > ($2, $3) \
                 ORDER BY j.run_at, j.id LIMIT $4"
            ),
            "idx.k1, idx.k2",
        ),
        // The leases' primary key (leases are as many as jobs in flight).
        JobState::Processing => (
            format!(
                "SELECT l.id AS k1, l.id AS k2, l.id FROM {s}.leases l \
                 WHERE l.queue = $1 AND l.id > $3 ORDER BY l.id LIMIT $4"
            ),
            "idx.k1",
        ),
        // jobs_awaiting (queue, id) WHERE state = 6.
        JobState::Awaiting => (
            format!(
                "SELECT j.id AS k1, j.id AS k2, j.id FROM {s}.jobs j \
                 WHERE j.queue = $1 AND j.state = 6 AND j.id > $3 ORDER BY j.id LIMIT $4"
            ),
            "idx.k1",
        ),
        // jobs_finished (queue, state, finished_at, id), newest first.
        finished => {
            let c = code(finished);
            (
                format!(
                    "SELECT j.finished_at AS k1, j.id AS k2, j.id FROM {s}.jobs j \
                     WHERE j.queue = $1 AND j.state = {c} AND j.finished_at >= 0 \
                       AND (j.finished_at, j.id) < ($2, $3) \
                     ORDER BY j.finished_at DESC, j.id DESC LIMIT $4"
                ),
                "idx.k1 DESC, idx.k2 DESC",
            )
        }
    }
}

/// A batch's row: id, total, succeeded, failed, continuation and its queue.
type BatchRow = (i64, i64, i64, i64, Option<i64>, Option<String>);

/// A listed row: cursor keys, id, listed, examined, more, then a [`JobRow`].
#[allow(clippy::type_complexity)]
type ListRow = (
    i64,
    i64,
    i64,
    bool,
    i64,
    bool,
    String,
    String,
    i16,
    i32,
    i32,
    i32,
    String,
    Option<i64>,
);

impl PostgresStorage {
    fn q(&self) -> &str {
        &self.inner.names.quoted
    }

    pub(super) async fn queue_names_now(&self) -> Result<Vec<String>> {
        let pool = self.ready().await?;
        sqlx::query_scalar(&format!("SELECT * FROM {}.queue_names()", self.q()))
            .fetch_all(pool)
            .await
            .doing("listing queues", self.schema_name())
    }

    pub(super) async fn queue_summary_now(&self, queue: &str) -> Result<QueueSummary> {
        let pool = self.ready().await?;
        let s = self.q();
        // Counts by count_jobs (see the migration); the oldest pending by ready_order.
        let sql = format!(
            "SELECT {s}.count_jobs($1, 0::smallint, $2), {s}.count_jobs($1, 1::smallint, $2), \
             {s}.count_jobs($1, 2::smallint, $2), {s}.count_jobs($1, 4::smallint, $2), \
             (SELECT coalesce(sum(succeeded), 0)::bigint FROM {s}.counters WHERE queue = $1), \
             (SELECT coalesce(sum(failed), 0)::bigint FROM {s}.counters WHERE queue = $1), \
             (SELECT greatest(j.enqueued_at, j.run_at) FROM {s}.ready r \
                JOIN {s}.jobs j ON j.id = r.id WHERE r.queue = $1 ORDER BY r.pos LIMIT 1), \
             EXISTS (SELECT 1 FROM {s}.paused WHERE queue = $1)"
        );
        #[allow(clippy::type_complexity)]
        let (pending, scheduled, processing, failed, succeeded_total, failed_total, oldest, paused): (
            Vec<i64>,
            Vec<i64>,
            Vec<i64>,
            Vec<i64>,
            i64,
            i64,
            Option<i64>,
            bool,
        ) = sqlx::query_as(&sql)
            .bind(queue)
            .bind(COUNT_CAP)
            .fetch_one(pool)
            .await
            .doing("reading a queue's summary", self.schema_name())?;
        let mut q = QueueSummary::new(queue).oldest_pending(oldest.map(unsigned), now_ms());
        q.pending = count_of(&pending);
        q.scheduled = count_of(&scheduled);
        q.processing = count_of(&processing);
        q.failed = count_of(&failed);
        q.succeeded_total = unsigned(succeeded_total);
        q.failed_total = unsigned(failed_total);
        q.paused = paused;
        Ok(q)
    }

    pub(super) async fn count_now(&self, queue: &str, state: JobState) -> Result<Count> {
        let pool = self.ready().await?;
        let pair: Vec<i64> =
            sqlx::query_scalar(&format!("SELECT {}.count_jobs($1, $2, $3)", self.q()))
                .bind(queue)
                .bind(code(state))
                .bind(COUNT_CAP)
                .fetch_one(pool)
                .await
                .doing("counting jobs", self.schema_name())?;
        Ok(count_of(&pair))
    }

    pub(super) async fn list_jobs_now(&self, queue: &str, query: &JobQuery) -> Result<JobPage> {
        let after = parse_cursor(query.cursor.as_deref())?;
        let descending = matches!(
            query.state,
            JobState::Failed | JobState::Succeeded | JobState::Deleted
        );
        let (a, b) = after.unwrap_or(if descending {
            (i64::MAX, i64::MAX)
        } else {
            (i64::MIN, i64::MIN)
        });
        let (idx, order) = index_sql(self.q(), query.state);
        let sql = list_sql(self.q(), &idx, order);
        let budget = i64::try_from(query.budget()).unwrap_or(i64::MAX);
        let limit = i64::try_from(query.page_size()).unwrap_or(i64::MAX);
        let pool = self.ready().await?;
        let (rows, total) = futures::try_join!(
            async {
                sqlx::query_as::<_, ListRow>(&sql)
                    .bind(queue)
                    .bind(a)
                    .bind(b)
                    .bind(budget + 1)
                    .bind(query.name.as_deref())
                    .bind(query.search.as_deref())
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                    .doing("listing jobs", self.schema_name())
            },
            self.count_now(queue, query.state)
        )?;
        let mut jobs = Vec::with_capacity(rows.len());
        let mut examined = 0;
        let mut next = None;
        let queue_arc: Arc<str> = Arc::from(queue);
        for row in rows {
            let (k1, k2, id, listed, seen, more, name, args, state, att, cr, orph, hist, claimed) =
                row;
            examined = unsigned(seen);
            next = more.then(|| format!("{k1}:{k2}"));
            if listed {
                let row: JobRow = (name, args, state, att, cr, orph, hist, claimed, None);
                let info = self.info(JobId::new(queue_arc.clone(), unsigned(id)), row)?;
                // Processing is a lease row beside an enqueued job: list only what is in the state.
                if info.state == query.state {
                    jobs.push(info);
                }
            }
        }
        Ok(JobPage::new(jobs, next, examined, total))
    }

    pub(super) async fn job_detail_now(&self, id: &JobId) -> Result<Option<JobDetail>> {
        let Some(info) = self.job_now(id).await? else {
            return Ok(None);
        };
        let pool = self.ready().await?;
        let s = self.q();
        let (result, batch): (Option<String>, Option<i64>) = sqlx::query_as(&format!(
            "SELECT result, batch FROM {s}.jobs WHERE id = $1 AND queue = $2"
        ))
        .bind(seq(id))
        .bind(id.queue())
        .fetch_optional(pool)
        .await
        .doing("reading a job's flow data", self.schema_name())?
        .unwrap_or_default();
        // The continuations' primary key (parent, child).
        let children: Vec<(String, i64, String)> = sqlx::query_as(&format!(
            "SELECT cj.queue, c.child, c.on_end FROM {s}.continuations c \
             JOIN {s}.jobs cj ON cj.id = c.child WHERE c.parent = $1 ORDER BY c.child"
        ))
        .bind(seq(id))
        .fetch_all(pool)
        .await
        .doing("reading a job's flow data", self.schema_name())?;
        let mut detail = JobDetail::from_info(info);
        detail.result = result;
        detail.batch = batch.map(|b| JobId::new(id.queue_arc().clone(), unsigned(b)));
        detail.continuations = children
            .into_iter()
            .filter_map(|(q, child, on)| {
                Some((JobId::new(q, unsigned(child)), Finish::from_code(&on)?))
            })
            .collect();
        Ok(Some(detail))
    }

    pub(super) async fn set_queue_paused_now(&self, queue: &str, paused: bool) -> Result<()> {
        let pool = self.ready().await?;
        let s = self.q();
        let sql = if paused {
            format!(
                "INSERT INTO {s}.paused (queue, since) VALUES ($1, {s}.now_ms()) \
                 ON CONFLICT (queue) DO NOTHING"
            )
        } else {
            // Resuming wakes the workers that wait (the NOTIFY is delivered on commit).
            format!(
                "WITH gone AS (DELETE FROM {s}.paused WHERE queue = $1) \
                 SELECT pg_notify('{}', $1)",
                self.inner.names.channel
            )
        };
        sqlx::query(&sql).bind(queue).execute(pool).await.doing(
            if paused {
                "pausing a queue"
            } else {
                "resuming a queue"
            },
            self.schema_name(),
        )?;
        Ok(())
    }

    pub(super) async fn set_recurring_paused_now(&self, id: &str, paused: bool) -> Result<bool> {
        let pool = self.ready().await?;
        let s = self.q();
        let sql = format!(
            "WITH e AS (SELECT EXISTS (SELECT 1 FROM {s}.recurring WHERE id = $1) AS ok), \
             ins AS (INSERT INTO {s}.paused_recurring (id) SELECT $1 FROM e WHERE e.ok AND $2 \
                     ON CONFLICT (id) DO NOTHING), \
             del AS (DELETE FROM {s}.paused_recurring WHERE id = $1 AND NOT ($2 AND \
                     (SELECT ok FROM e))) \
             SELECT ok FROM e"
        );
        sqlx::query_scalar(&sql)
            .bind(id)
            .bind(paused)
            .fetch_one(pool)
            .await
            .doing("pausing a recurring job", self.schema_name())
    }

    pub(super) async fn paused_recurring_now(&self) -> Result<Vec<String>> {
        let pool = self.ready().await?;
        let s = self.q();
        sqlx::query_scalar(&format!(
            "SELECT p.id FROM {s}.paused_recurring p JOIN {s}.recurring r ON r.id = p.id \
             ORDER BY p.id"
        ))
        .fetch_all(pool)
        .await
        .doing("listing paused recurring jobs", self.schema_name())
    }

    pub(super) async fn report_server_now(
        &self,
        report: &ServerReport,
        ttl: Duration,
    ) -> Result<()> {
        let pool = self.ready().await?;
        let s = self.q();
        let json = serde_json::to_string(report)
            .map_err(|e| Error::serialization("encoding a server report").with_source(e))?;
        sqlx::query(&format!(
            "INSERT INTO {s}.servers (name, expires, report) VALUES ($1, {s}.now_ms() + $2, $3) \
             ON CONFLICT (name) DO UPDATE SET expires = EXCLUDED.expires, report = EXCLUDED.report"
        ))
        .bind(&report.name)
        .bind(millis(ttl))
        .bind(json)
        .execute(pool)
        .await
        .doing("recording a server report", self.schema_name())?;
        Ok(())
    }

    pub(super) async fn server_reports_now(&self) -> Result<Vec<ServerReport>> {
        let pool = self.ready().await?;
        let s = self.q();
        let reports: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT report FROM {s}.servers WHERE expires > {s}.now_ms() AND report IS NOT NULL \
             ORDER BY name"
        ))
        .fetch_all(pool)
        .await
        .doing("reading server reports", self.schema_name())?;
        Ok(reports
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    pub(super) async fn record_history_now(&self, queues: &[Arc<str>], now: u64) -> Result<()> {
        if queues.is_empty() {
            return Ok(());
        }
        let pool = self.ready().await?;
        let s = self.q();
        let names: Vec<&str> = queues.iter().map(|q| q.as_ref()).collect();
        let (m, h) = (Resolution::Minute, Resolution::Hour);
        let slot = |r: Resolution, b: u64| i32::try_from(r.slot_of(b)).unwrap_or(0);
        let (mb, hb) = (m.bucket_of(now), h.bucket_of(now));
        // The counters' deltas summed per queue (counters_queue); a slot already holding this
        // bucket is left alone (the first writer wins).
        sqlx::query(&format!(
            "INSERT INTO {s}.snapshots AS x (queue, res, slot, bucket, succeeded, failed) \
             SELECT u.q, r.res, r.slot, r.bucket, \
                    coalesce((SELECT sum(c.succeeded) FROM {s}.counters c WHERE c.queue = u.q), 0), \
                    coalesce((SELECT sum(c.failed) FROM {s}.counters c WHERE c.queue = u.q), 0) \
             FROM unnest($1::text[]) AS u(q) \
             CROSS JOIN (VALUES ('m'::\"char\", $2::integer, $3::bigint), \
                                ('h'::\"char\", $4::integer, $5::bigint)) AS r(res, slot, bucket) \
             ON CONFLICT (queue, res, slot) DO UPDATE SET bucket = EXCLUDED.bucket, \
               succeeded = EXCLUDED.succeeded, failed = EXCLUDED.failed \
             WHERE x.bucket <> EXCLUDED.bucket"
        ))
        .bind(&names)
        .bind(slot(m, mb))
        .bind(i64::try_from(mb).unwrap_or(i64::MAX))
        .bind(slot(h, hb))
        .bind(i64::try_from(hb).unwrap_or(i64::MAX))
        .execute(pool)
        .await
        .doing("recording history", self.schema_name())?;
        Ok(())
    }

    pub(super) async fn history_snapshots_now(
        &self,
        queue: &str,
        res: Resolution,
    ) -> Result<Vec<Snapshot>> {
        let pool = self.ready().await?;
        let s = self.q();
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT bucket, succeeded, failed FROM {s}.snapshots WHERE queue = $1 AND res = $2::\"char\""
        ))
        .bind(queue)
        .bind(res.code())
        .fetch_all(pool)
        .await
        .doing("reading history", self.schema_name())?;
        Ok(rows
            .into_iter()
            .map(|(b, s, f)| Snapshot::new(unsigned(b), unsigned(s), unsigned(f)))
            .collect())
    }

    pub(super) async fn batches_now(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<BatchPage> {
        let before = match cursor {
            Some(c) => c.parse::<i64>().map_err(|_| bad_cursor(c))?,
            None => i64::MAX,
        };
        let pool = self.ready().await?;
        let s = self.q();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // The batches' primary key, backwards.
        let rows: Vec<BatchRow> = sqlx::query_as(&format!(
            "SELECT b.id, b.total, b.succeeded, b.failed, b.then_id, t.queue FROM {s}.batches b \
             LEFT JOIN {s}.jobs t ON t.id = b.then_id \
             WHERE b.queue = $1 AND b.id < $2 ORDER BY b.id DESC LIMIT $3"
        ))
        .bind(queue)
        .bind(before)
        .bind(limit + 1)
        .fetch_all(pool)
        .await
        .doing("listing batches", self.schema_name())?;
        let more = rows.len() as i64 > limit;
        let batches: Vec<BatchInfo> = rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(id, total, succeeded, failed, then, then_queue)| {
                let p = BatchProgress {
                    total: unsigned(total),
                    succeeded: unsigned(succeeded),
                    failed: unsigned(failed),
                };
                let then = then
                    .zip(then_queue)
                    .map(|(t, q)| JobId::new(q, unsigned(t)));
                BatchInfo::new(JobId::new(queue, unsigned(id)), p, then)
            })
            .collect();
        let next = if more {
            batches.last().map(|b| b.id.seq().to_string())
        } else {
            None
        };
        Ok(BatchPage::new(batches, next))
    }

    pub(super) async fn requeue_many_now(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_FLIGHT) {
            out.extend(try_join_all(chunk.iter().map(|id| self.requeue(id))).await?);
        }
        Ok(out)
    }

    pub(super) async fn delete_many_now(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_FLIGHT) {
            out.extend(try_join_all(chunk.iter().map(|id| self.delete(id))).await?);
        }
        Ok(out)
    }
}
