//! Extension filters: the framework's middleware. A [`Filter`] sees each job when it is
//! created (and may reject it), around each attempt, and at each change of state.

use crate::headers::Headers;
use crate::job::{JobContext, JobId};
use crate::state::JobState;
use std::sync::Arc;

/// A job about to be stored, as shown to [`Filter::on_create`].
#[derive(Debug)]
#[non_exhaustive]
pub struct CreatingJob<'a> {
    /// The job's name.
    pub name: &'a str,
    /// The queue it is going to.
    pub queue: &'a str,
    /// Its JSON arguments.
    pub args: &'a str,
}

/// How an attempt ended, as shown to [`Filter::after_perform`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The job function returned `()` or `Ok`.
    Succeeded,
    /// It returned `Err`, panicked, or timed out; the message says which and why.
    Failed(String),
}

/// A change of a job's state, as shown to [`Filter::on_state_change`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StateChangeEvent {
    /// The job.
    pub id: JobId,
    /// Its name.
    pub name: Arc<str>,
    /// The state it entered.
    pub state: JobState,
    /// Why, for failures, retries and deletions.
    pub reason: Option<String>,
}

/// Hooks into the life of jobs. Every method has a default that does nothing, so implement only
/// what you need. Register a filter on the [`Client`](crate::Client) (for `on_create` and the
/// `Enqueued` state change) and on the [`Worker`](crate::Worker) (for the rest, and for
/// `on_create` and `Enqueued` of the jobs its recurring-job scheduler enqueues: see
/// [`recurring`](crate::recurring)).
///
/// Hooks run inline on the hot path: keep them fast, and hand slow work to a channel.
///
/// # Examples
///
/// ```
/// use jobs::filter::{CreatingJob, Filter};
///
/// /// Refuses jobs for a queue that is being drained.
/// struct Closed(&'static str);
///
/// impl Filter for Closed {
///     fn on_create(&self, job: &CreatingJob<'_>) -> Result<(), String> {
///         if job.queue == self.0 {
///             return Err(format!("queue `{}` is closed", job.queue));
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[jobs::background_job(queue = "legacy")]
/// async fn old_job() {}
///
/// let client = jobs::Client::builder(jobs::MemoryStorage::new())
///     .filter(Closed("legacy"))
///     .build();
/// let err = jobs::enqueue!(&client, old_job()).await.unwrap_err();
/// assert!(err.is_rejected());
/// # }
/// ```
pub trait Filter: Send + Sync + 'static {
    /// Called before a job is stored. Returning `Err(reason)` rejects it: nothing is stored and
    /// `enqueue` fails with an error for which [`Error::is_rejected`](crate::Error::is_rejected)
    /// holds. For a tick of a recurring job (a worker's filter), a rejection skips the tick: it
    /// is logged, no job is stored, and the schedule goes on with its next tick.
    ///
    /// # Errors
    ///
    /// The reason the job is rejected.
    fn on_create(&self, job: &CreatingJob<'_>) -> Result<(), String> {
        let _ = job;
        Ok(())
    }

    /// Called on the client before a job is stored, once every filter's `on_create` accepted
    /// it: adds to (or changes) the job's headers, which hold those set before (by the caller,
    /// by trace propagation, by filters registered earlier). Workers read them in
    /// [`JobContext::headers`].
    ///
    /// # Examples
    ///
    /// ```
    /// use jobs::filter::{CreatingJob, Filter};
    ///
    /// /// Tags every job with the tenant of the process that enqueued it.
    /// struct Tenant(&'static str);
    ///
    /// impl Filter for Tenant {
    ///     fn set_headers(&self, _job: &CreatingJob<'_>, headers: &mut jobs::Headers) {
    ///         headers.insert("tenant", self.0);
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// #[jobs::background_job]
    /// async fn report(ctx: jobs::JobContext) {
    ///     assert_eq!(ctx.headers().get("tenant"), Some("acme"));
    /// }
    ///
    /// let client = jobs::Client::builder(jobs::MemoryStorage::new()).filter(Tenant("acme")).build();
    /// let id = jobs::enqueue!(&client, report()).await?;
    /// assert_eq!(client.job(&id).await?.unwrap().headers.get("tenant"), Some("acme"));
    /// # Ok(()) }
    /// ```
    fn set_headers(&self, job: &CreatingJob<'_>, headers: &mut Headers) {
        let _ = (job, headers);
    }

    /// Called on the worker right before an attempt starts.
    fn before_perform(&self, ctx: &JobContext) {
        let _ = ctx;
    }

    /// Called on the worker right after an attempt ended, with how it ended.
    fn after_perform(&self, ctx: &JobContext, outcome: &AttemptOutcome) {
        let _ = (ctx, outcome);
    }

    /// Called after a job entered a new state (Enqueued on the client; Processing, Succeeded,
    /// Scheduled for a retry, Failed and Deleted on the worker).
    fn on_state_change(&self, event: &StateChangeEvent) {
        let _ = event;
    }
}

/// The filters of a client or worker, in registration order.
#[derive(Clone, Default)]
pub(crate) struct Filters(Vec<Arc<dyn Filter>>);

impl Filters {
    pub(crate) fn push(&mut self, filter: Arc<dyn Filter>) {
        self.0.push(filter);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn on_create(&self, job: &CreatingJob<'_>) -> Result<(), String> {
        self.0.iter().try_for_each(|f| f.on_create(job))
    }

    pub(crate) fn set_headers(&self, job: &CreatingJob<'_>, headers: &mut Headers) {
        self.0.iter().for_each(|f| f.set_headers(job, headers));
    }

    pub(crate) fn before_perform(&self, ctx: &JobContext) {
        self.0.iter().for_each(|f| f.before_perform(ctx));
    }

    pub(crate) fn after_perform(&self, ctx: &JobContext, outcome: &AttemptOutcome) {
        self.0.iter().for_each(|f| f.after_perform(ctx, outcome));
    }

    pub(crate) fn state_change(&self, event: impl FnOnce() -> StateChangeEvent) {
        if self.0.is_empty() {
            return;
        }
        let event = event();
        self.0.iter().for_each(|f| f.on_state_change(&event));
    }
}
