//! [`RecurringBuilder`] and the [`Client`] methods that register, trigger, list and remove
//! recurring jobs.

use super::misfire::Misfire;
use super::schedule::Schedule;
use crate::client::Client;
use crate::error::{Error, Kind, Result};
use crate::job::{Job, JobId};
use crate::storage::{now_ms, NewJob, RecurringEntry};
use std::sync::Arc;
use std::time::Duration;

/// Configures a recurring job before [`register`](RecurringBuilder::register) stores it; made by
/// [`Client::recurring`].
#[must_use = "a recurring job is stored only by `.register().await`"]
pub struct RecurringBuilder {
    client: Client,
    id: String,
    cron: String,
    time_zone: String,
    misfire: Misfire,
    misfire_grace: Option<Duration>,
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
            .field("misfire_grace", &self.misfire_grace)
            .finish_non_exhaustive()
    }
}

impl RecurringBuilder {
    /// Adds a header to every job this recurring job enqueues (see [`Headers`](crate::Headers)),
    /// beside those the client's filters set at registration; this one wins over theirs.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// #[jobs::background_job]
    /// async fn digest(team: u64) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// client
    ///     .recurring("digest-7", "0 8 * * MON", jobs::job!(digest(7)))
    ///     .header("tenant", "acme")
    ///     .register()
    ///     .await?;
    /// let tick = client.trigger_recurring("digest-7").await?;
    /// let info = client.job(&tick).await?.unwrap();
    /// assert_eq!(info.headers.get("tenant"), Some("acme"));
    /// # Ok(()) }
    /// ```
    pub fn header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if let Ok(job) = &mut self.job {
            job.headers.insert(key, value);
        }
        self
    }

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

    /// How late a tick of this job may be enqueued before it counts as missed and the
    /// [`misfire`](Self::misfire) policy applies. Default: the grace of the scheduler that gets
    /// to the tick ([`WorkerBuilder::recurring_misfire_grace`](crate::WorkerBuilder::recurring_misfire_grace),
    /// itself [`MISFIRE_GRACE`](super::MISFIRE_GRACE), 10 s, unless set).
    ///
    /// A long grace suits a job whose ticks must not be skipped after a short outage (a deploy
    /// that stops every worker for a minute); a short one suits a frequent job whose late
    /// ticks are worthless.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// use jobs::recurring::Misfire;
    /// use std::time::Duration;
    ///
    /// #[jobs::background_job]
    /// async fn invoice(day: u32) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// // Skip ticks missed by more than an hour; up to an hour late, still run each.
    /// let entry = client
    ///     .recurring("invoices", "0 0 6 * * *", jobs::job!(invoice(1)))
    ///     .misfire(Misfire::Skip)
    ///     .misfire_grace(Duration::from_secs(3600))
    ///     .register()
    ///     .await?;
    /// assert_eq!(entry.misfire_grace, Some(Duration::from_secs(3600)));
    /// # Ok(()) }
    /// ```
    pub fn misfire_grace(mut self, grace: Duration) -> Self {
        self.misfire_grace = Some(grace);
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
        let mut entry = RecurringEntry::new(
            self.id,
            self.cron.trim(),
            self.time_zone,
            self.misfire,
            queue,
            job.name,
            job.args,
            Some(next),
        );
        entry.misfire_grace = self.misfire_grace;
        entry.headers = job.headers;
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
            misfire_grace: None,
            queue: None,
            job: self.prepare_recurring(&job),
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
    /// alone. Returns the job's id. This client's filters see the job first, as for any job it
    /// stores.
    ///
    /// # Errors
    ///
    /// [`Error::is_not_found`] when there is no recurring job `id`;
    /// [`Error::is_rejected`] when a filter rejects its job (nothing is stored); or the storage
    /// fails.
    pub async fn trigger_recurring(&self, id: &str) -> Result<JobId> {
        if self.has_filters() {
            let listed = self.storage().recurring().await?;
            if let Some(e) = listed.iter().find(|e| e.id == id) {
                self.run_create_filters(&e.name, &e.queue, &e.args)?;
            }
        }
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
