//! [`RecurringBuilder`] and the [`Client`] methods that register, trigger, list and remove
//! recurring jobs.

use super::misfire::Misfire;
use super::schedule::Schedule;
use crate::client::Client;
use crate::error::{Error, Kind, Result};
use crate::job::{Job, JobId};
use crate::storage::{now_ms, NewJob, RecurringEntry};
use std::sync::Arc;

/// Configures a recurring job before [`register`](RecurringBuilder::register) stores it; made by
/// [`Client::recurring`].
#[must_use = "a recurring job is stored only by `.register().await`"]
pub struct RecurringBuilder {
    client: Client,
    id: String,
    cron: String,
    time_zone: String,
    misfire: Misfire,
    queue: Option<Arc<str>>,
    job: Result<NewJob>,
}

impl std::fmt::Debug for RecurringBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecurringBuilder")
            .field("id", &self.id)
            .field("cron", &self.cron)
            .field("time_zone", &self.time_zone)
            .field("misfire", &self.misfire)
            .finish_non_exhaustive()
    }
}

impl RecurringBuilder {
    /// The IANA time zone the cron expression is read in, e.g. `Europe/Berlin`. Default: `UTC`.
    pub fn time_zone(mut self, tz: impl Into<String>) -> Self {
        self.time_zone = tz.into();
        self
    }

    /// What to do about ticks missed while no worker ran. Default: [`Misfire::RunOnce`].
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = misfire;
        self
    }

    /// The queue the jobs go to. Default: the job's own queue.
    pub fn queue(mut self, queue: impl AsRef<str>) -> Self {
        self.queue = Some(Arc::from(queue.as_ref()));
        self
    }

    /// Stores the recurring job, replacing one registered under the same id. When the cron
    /// expression and time zone are unchanged, the stored next run is kept. Returns the entry
    /// as stored.
    ///
    /// # Errors
    ///
    /// When the id is empty, the cron expression or time zone is invalid (the message names the
    /// bad field or zone), the schedule has no future tick, the arguments do not serialize, a
    /// filter rejects the job, or the storage fails. Nothing is stored then.
    pub async fn register(self) -> Result<RecurringEntry> {
        if self.id.is_empty() {
            return Err(Error::config("a recurring job needs a non-empty id"));
        }
        let schedule = Schedule::parse(&self.cron, &self.time_zone)
            .map_err(|e| Error::config(format!("recurring job `{}`: {e}", self.id)))?;
        let Some(next) = schedule.next_after(now_ms()) else {
            return Err(Error::config(format!(
                "recurring job `{}`: the cron expression `{}` never matches a future time",
                self.id, self.cron
            )));
        };
        let job = self.job?;
        let queue = self.queue.unwrap_or(job.queue);
        let entry = RecurringEntry::new(
            self.id,
            self.cron.trim(),
            self.time_zone,
            self.misfire,
            queue,
            job.name,
            job.args,
            Some(next),
        );
        self.client.storage().register_recurring(entry).await
    }
}

impl Client {
    /// Starts registering a recurring job: `job` (built with [`job!`](crate::job)) is enqueued
    /// at every tick of `cron` under the id `id`. Finish with
    /// [`.register().await`](RecurringBuilder::register). See [`recurring`](crate::recurring)
    /// for the semantics.
    ///
    /// The cron expression has 5 fields (`minute hour day-of-month month day-of-week`) or 6
    /// (seconds first), with `*`, lists `1,2`, ranges `1-5`, steps `*/15`, month and weekday
    /// names (`JAN`, `MON`), and `L`, `W`, `#` in the day fields.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// #[jobs::background_job]
    /// async fn cleanup(days: u32) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// let entry = client
    ///     .recurring("cleanup", "30 4 * * MON-FRI", jobs::job!(cleanup(30)))
    ///     .time_zone("America/New_York")
    ///     .register()
    ///     .await?;
    /// assert_eq!(entry.cron, "30 4 * * MON-FRI");
    ///
    /// // A bad expression is refused with the field at fault, and nothing is stored.
    /// let err = client
    ///     .recurring("broken", "0 0 25 * * *", jobs::job!(cleanup(1)))
    ///     .register()
    ///     .await
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("hour field `25`"), "{err}");
    /// assert_eq!(client.recurring_jobs().await?.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn recurring<J: Job>(
        &self,
        id: impl Into<String>,
        cron: impl Into<String>,
        job: J,
    ) -> RecurringBuilder {
        RecurringBuilder {
            client: self.clone(),
            id: id.into(),
            cron: cron.into(),
            time_zone: "UTC".to_owned(),
            misfire: Misfire::default(),
            queue: None,
            job: self.prepare(&job, None),
        }
    }

    /// Removes the recurring job `id`; jobs it already enqueued stay. Returns whether it existed.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn remove_recurring(&self, id: &str) -> Result<bool> {
        self.storage().remove_recurring(id).await
    }

    /// Enqueues one job of the recurring job `id` now, out of schedule; its schedule is left
    /// alone. Returns the job's id.
    ///
    /// # Errors
    ///
    /// [`Error::is_not_found`] when there is no recurring job `id`; or the storage fails.
    pub async fn trigger_recurring(&self, id: &str) -> Result<JobId> {
        self.storage().trigger_recurring(id).await?.ok_or_else(|| {
            Error::new(
                Kind::NotFound,
                format!("there is no recurring job `{id}` to trigger"),
            )
        })
    }

    /// Every recurring job, ordered by id: its cron expression, time zone, next and last run.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn recurring_jobs(&self) -> Result<Vec<RecurringEntry>> {
        self.storage().recurring().await
    }
}
