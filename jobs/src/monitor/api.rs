//! [`Monitor`]: the monitoring API over any storage, for dashboards, the CLI and your own tools.

use super::history::{add, points};
use super::{
    BatchPage, BulkAction, BulkReport, Count, HistoryPoint, JobDetail, JobPage, JobQuery,
    QueueSummary, RecurringView, Resolution, ServerReport, BULK_CHUNK,
};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::storage::{now_ms, Cancellation, Storage};
use futures::future::try_join_all;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The monitoring API over a storage: queues, jobs by state, a job's detail, history, servers,
/// recurring jobs and batches, and the actions operators take on them. Cheap to clone.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// use jobs::monitor::{JobQuery, Monitor};
/// use jobs::JobState;
///
/// #[jobs::background_job(queue = "mail")]
/// async fn send(to: String) {}
///
/// let storage = jobs::MemoryStorage::new();
/// let client = jobs::Client::new(storage.clone());
/// jobs::enqueue!(&client, send("ada@example.com".into())).await?;
///
/// let monitor = Monitor::new(storage);
/// let queues = monitor.queues().await?;
/// assert_eq!((queues[0].name.as_str(), queues[0].pending.value), ("mail", 1));
///
/// let page = monitor.jobs(&JobQuery::new(JobState::Enqueued).search("ada@")).await?;
/// assert_eq!(page.jobs.len(), 1);
///
/// monitor.pause("mail").await?;
/// assert!(monitor.queue("mail").await?.paused);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Monitor {
    storage: Arc<dyn Storage>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

/// A cursor of a listing over several queues: the queue it is in, then that queue's cursor.
fn wrap_cursor(queue: &str, inner: &str) -> String {
    format!("{}.{queue}{inner}", queue.len())
}

fn unwrap_cursor(cursor: &str) -> Result<(&str, Option<&str>)> {
    let bad = || super::query::bad_cursor(cursor);
    let (len, rest) = cursor.split_once('.').ok_or_else(bad)?;
    let len: usize = len.parse().map_err(|_| bad())?;
    if !rest.is_char_boundary(len.min(rest.len())) || rest.len() < len {
        return Err(bad());
    }
    let (queue, inner) = rest.split_at(len);
    Ok((queue, (!inner.is_empty()).then_some(inner)))
}

impl Monitor {
    /// The monitoring API over `storage`.
    pub fn new(storage: impl Storage) -> Monitor {
        Monitor {
            storage: Arc::new(storage),
        }
    }

    /// The monitoring API over a storage shared with others (a client, a worker).
    pub fn from_shared(storage: Arc<dyn Storage>) -> Monitor {
        Monitor { storage }
    }

    /// The storage underneath.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Every queue with its counts, by name.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn queues(&self) -> Result<Vec<QueueSummary>> {
        let names = self.storage.queue_names().await?;
        try_join_all(names.iter().map(|q| self.storage.queue_summary(q))).await
    }

    /// One queue's counts (all zero for a queue never used).
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn queue(&self, name: &str) -> Result<QueueSummary> {
        self.storage.queue_summary(name).await
    }

    /// One page of jobs in a state, on one queue or on all of them (by queue name).
    ///
    /// # Errors
    ///
    /// When the storage fails, or for a cursor no listing of this kind made.
    pub async fn jobs(&self, query: &JobQuery) -> Result<JobPage> {
        if let Some(id) = &query.id {
            return self.one_job(query, id).await;
        }
        if let Some(queue) = &query.queue {
            return self.storage.list_jobs(queue, query).await;
        }
        let names = self.storage.queue_names().await?;
        let (first, mut inner) = match &query.cursor {
            Some(c) => {
                let (q, inner) = unwrap_cursor(c)?;
                (q.to_owned(), inner.map(str::to_owned))
            }
            None => (String::new(), None),
        };
        let start = names.partition_point(|n| *n < first);
        let totals = try_join_all(names.iter().map(|q| self.storage.count(q, query.state))).await?;
        let total = totals.into_iter().fold(Count::exact(0), Count::plus);
        let limit = query.page_size();
        let mut budget = query.budget() as u64;
        let mut jobs = Vec::new();
        let mut examined = 0u64;
        for (i, queue) in names.iter().enumerate().skip(start) {
            let mut sub = query.clone();
            sub.queue = None;
            sub.cursor = inner.take();
            sub.limit = limit - jobs.len();
            sub.window = usize::try_from(budget).unwrap_or(usize::MAX).max(1);
            let page = self.storage.list_jobs(queue, &sub).await?;
            examined += page.examined;
            budget = budget.saturating_sub(page.examined);
            jobs.extend(page.jobs);
            if let Some(next) = page.next {
                return Ok(JobPage::new(
                    jobs,
                    Some(wrap_cursor(queue, &next)),
                    examined,
                    total,
                ));
            }
            let full = jobs.len() >= limit || (query.is_filtered() && budget == 0);
            if full {
                let next = names.get(i + 1).map(|q| wrap_cursor(q, ""));
                return Ok(JobPage::new(jobs, next, examined, total));
            }
        }
        Ok(JobPage::new(jobs, None, examined, total))
    }

    async fn one_job(&self, query: &JobQuery, id: &JobId) -> Result<JobPage> {
        let info = self.storage.job(id).await?;
        let hit = info.filter(|i| {
            i.state == query.state
                && query.queue.as_deref().map_or(true, |q| q == id.queue())
                && query.matches(&i.name, &i.args)
        });
        let n = u64::from(hit.is_some());
        Ok(JobPage::new(
            hit.into_iter().collect(),
            None,
            1,
            Count::exact(n),
        ))
    }

    /// A job with everything its page shows, if the storage still has it.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn job(&self, id: &JobId) -> Result<Option<JobDetail>> {
        self.storage.job_detail(id).await
    }

    /// Succeeded and failed jobs per bucket over the last day (per minute) or week (per hour),
    /// oldest first, of one queue or of all of them.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn history(
        &self,
        queue: Option<&str>,
        resolution: Resolution,
    ) -> Result<Vec<HistoryPoint>> {
        let names = match queue {
            Some(q) => vec![q.to_owned()],
            None => self.storage.queue_names().await?,
        };
        let now = now_ms();
        let per_queue = try_join_all(names.iter().map(|q| async move {
            // The summary, not `stats`: only its lifetime counters are needed, and `stats`
            // counts every job of each state exactly (seconds at millions of jobs).
            let (snaps, summary) = futures::try_join!(
                self.storage.history_snapshots(q, resolution),
                self.storage.queue_summary(q)
            )?;
            Ok::<_, Error>(points(
                snaps,
                (summary.succeeded_total, summary.failed_total),
                now,
                resolution,
            ))
        }))
        .await?;
        let mut sum = points(Vec::new(), (0, 0), now, resolution);
        for p in &per_queue {
            add(&mut sum, p);
        }
        Ok(sum)
    }

    /// The live worker processes, by name, as each last reported itself (a live worker without
    /// a report is listed by name alone).
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn servers(&self) -> Result<Vec<ServerReport>> {
        let (names, reports) =
            futures::try_join!(self.storage.servers(), self.storage.server_reports())?;
        let mut out: Vec<ServerReport> = names
            .iter()
            .map(|n| {
                reports
                    .iter()
                    .find(|r| &r.name == n)
                    .cloned()
                    .unwrap_or_else(|| ServerReport::named(n.clone()))
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Every recurring job, by id, with whether it is paused.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn recurring(&self) -> Result<Vec<RecurringView>> {
        let (entries, paused) =
            futures::try_join!(self.storage.recurring(), self.storage.paused_recurring())?;
        let paused: BTreeSet<String> = paused.into_iter().collect();
        Ok(entries
            .into_iter()
            .map(|entry| RecurringView {
                paused: paused.contains(&entry.id),
                entry,
            })
            .collect())
    }

    /// Enqueues a job of recurring job `id` now; `None` when there is no such recurring job.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn trigger_recurring(&self, id: &str) -> Result<Option<JobId>> {
        self.storage.trigger_recurring(id).await
    }

    /// Pauses recurring job `id`; returns whether it exists.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn pause_recurring(&self, id: &str) -> Result<bool> {
        self.storage.set_recurring_paused(id, true).await
    }

    /// Resumes recurring job `id`; returns whether it exists.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn resume_recurring(&self, id: &str) -> Result<bool> {
        self.storage.set_recurring_paused(id, false).await
    }

    /// Removes recurring job `id`; returns whether it existed.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn remove_recurring(&self, id: &str) -> Result<bool> {
        let removed = self.storage.remove_recurring(id).await?;
        if removed {
            self.storage.set_recurring_paused(id, false).await?;
        }
        Ok(removed)
    }

    /// One page of batches, of one queue or of all (by queue name).
    ///
    /// # Errors
    ///
    /// When the storage fails, or for a cursor no listing of batches made.
    pub async fn batches(
        &self,
        queue: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<BatchPage> {
        let limit = limit.clamp(1, super::MAX_LIMIT);
        if let Some(q) = queue {
            return self.storage.batches(q, cursor, limit).await;
        }
        let names = self.storage.queue_names().await?;
        let (first, mut inner) = match cursor {
            Some(c) => {
                let (q, inner) = unwrap_cursor(c)?;
                (q.to_owned(), inner.map(str::to_owned))
            }
            None => (String::new(), None),
        };
        let start = names.partition_point(|n| *n < first);
        let mut out = Vec::new();
        for (i, queue) in names.iter().enumerate().skip(start) {
            let page = self
                .storage
                .batches(queue, inner.take().as_deref(), limit - out.len())
                .await?;
            out.extend(page.batches);
            if let Some(next) = page.next {
                return Ok(BatchPage::new(out, Some(wrap_cursor(queue, &next))));
            }
            if out.len() >= limit {
                let next = names.get(i + 1).map(|q| wrap_cursor(q, ""));
                return Ok(BatchPage::new(out, next));
            }
        }
        Ok(BatchPage::new(out, None))
    }

    /// Puts a failed or deleted job back on its queue; returns whether it could.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn requeue(&self, id: &JobId) -> Result<bool> {
        self.storage.requeue(id).await
    }

    /// Deletes an enqueued, scheduled, failed or awaiting job; returns whether it could.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn delete(&self, id: &JobId) -> Result<bool> {
        self.storage.delete(id).await
    }

    /// Cancels a job (see [`Monitoring::cancel`](crate::storage::Monitoring::cancel)).
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn cancel(&self, id: &JobId) -> Result<Cancellation> {
        self.storage.cancel(id).await
    }

    /// Applies `action` to every job `query` matches, in chunks of at most [`BULK_CHUNK`], and
    /// stops once it acted on `max` jobs (the report's `next` then says where to go on).
    ///
    /// # Errors
    ///
    /// When the storage fails (the jobs of the chunks before were acted on), or for a bad
    /// cursor.
    pub async fn bulk(&self, action: BulkAction, query: &JobQuery, max: u64) -> Result<BulkReport> {
        let mut q = query.clone();
        let mut report = BulkReport::default();
        if max == 0 {
            report.next = q.cursor;
            return Ok(report);
        }
        loop {
            // Never more than `max` in all: the last chunk is cut to what is left.
            let left = usize::try_from(max - report.acted).unwrap_or(usize::MAX);
            q = q.limit(left.min(BULK_CHUNK));
            let page = self.jobs(&q).await?;
            report.examined += page.examined;
            let ids: Vec<JobId> = page.jobs.into_iter().map(|j| j.id).collect();
            if !ids.is_empty() {
                let done = match action {
                    BulkAction::Requeue => self.storage.requeue_many(&ids).await?,
                    BulkAction::Delete => self.storage.delete_many(&ids).await?,
                };
                report.acted += done.iter().filter(|&&d| d).count() as u64;
            }
            match page.next {
                Some(next) if report.acted < max => q.cursor = Some(next),
                next => {
                    report.next = next;
                    return Ok(report);
                }
            }
        }
    }

    /// Pauses a queue: no worker fetches from it until it is resumed.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn pause(&self, queue: &str) -> Result<()> {
        self.storage.set_queue_paused(queue, true).await
    }

    /// Resumes a paused queue, waking the workers that wait for it.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn resume(&self, queue: &str) -> Result<()> {
        self.storage.set_queue_paused(queue, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_over_queues_round_trip() {
        assert_eq!(
            unwrap_cursor(&wrap_cursor("a.b", "5:6")).unwrap(),
            ("a.b", Some("5:6"))
        );
        assert_eq!(
            unwrap_cursor(&wrap_cursor("mail", "")).unwrap(),
            ("mail", None)
        );
        for bad in ["", "x", "9.ab", "a.b"] {
            assert!(unwrap_cursor(bad).unwrap_err().is_config(), "{bad}");
        }
    }
}
