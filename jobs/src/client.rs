//! The [`Client`]: stores jobs in a [`Storage`]. `enqueue!` uses an explicit client or the one
//! installed with [`Client::install`].

use crate::error::{Error, Kind, Result};
use crate::filter::{CreatingJob, Filter, Filters, StateChangeEvent};
use crate::group_commit::GroupCommit;
use crate::headers::Headers;
use crate::job::{Job, JobId};
use crate::state::JobState;
use crate::storage::{now_ms, Cancellation, JobInfo, NewJob, QueueStats, Storage};
use std::borrow::Cow;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Stores jobs. Cheap to clone; clones share the storage and filters.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// #[jobs::background_job]
/// async fn send_email(user_id: u64) {}
///
/// let client = jobs::Client::new(jobs::MemoryStorage::new());
/// let id = jobs::enqueue!(&client, send_email(7)).await?;
///
/// // Or install it once at start-up and leave it out:
/// client.install();
/// let other = jobs::enqueue!(send_email(8)).await?;
/// assert_ne!(id, other);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    storage: Arc<dyn Storage>,
    filters: Filters,
    group_commit: GroupCommit,
}

static INSTALLED: RwLock<Option<Client>> = RwLock::new(None);

/// Builds a [`Client`] with filters.
pub struct ClientBuilder {
    storage: Arc<dyn Storage>,
    filters: Filters,
}

impl ClientBuilder {
    /// Adds an extension filter; its `on_create` hook sees (and may reject) every job.
    #[must_use]
    pub fn filter(mut self, filter: impl Filter) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        Client {
            inner: Arc::new(ClientInner {
                storage: self.storage,
                filters: self.filters,
                group_commit: GroupCommit::default(),
            }),
        }
    }
}

impl Client {
    /// A client that stores jobs in `storage`.
    pub fn new(storage: impl Storage) -> Client {
        Client::builder(storage).build()
    }

    /// A client on a storage already shared with others (e.g. a worker).
    pub fn from_shared(storage: Arc<dyn Storage>) -> Client {
        Client::builder_shared(storage).build()
    }

    /// A builder, to add filters.
    pub fn builder(storage: impl Storage) -> ClientBuilder {
        Client::builder_shared(Arc::new(storage))
    }

    /// A builder on a storage already shared with others (e.g. a worker), to add filters.
    pub fn builder_shared(storage: Arc<dyn Storage>) -> ClientBuilder {
        ClientBuilder {
            storage,
            filters: Filters::default(),
        }
    }

    /// Makes this the client `enqueue!(f(..))` uses when given none. Call it once at start-up;
    /// a later call replaces the client installed before.
    pub fn install(&self) {
        let mut slot = INSTALLED
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(self.clone());
    }

    /// The client installed with [`Client::install`].
    ///
    /// # Errors
    ///
    /// When none is installed; the message says how to install one.
    pub fn installed() -> Result<Client> {
        INSTALLED
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                Error::new(
                    Kind::NoClient,
                    "no jobs client is installed: call `jobs::Client::new(storage).install()` once \
                     at start-up, or pass a client explicitly: `enqueue!(&client, f(..))`",
                )
            })
    }

    /// The storage this client writes to.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// Stores one job on its default queue and returns its id once it is stored.
    ///
    /// The arguments are serialized (and filters run) when this is called, not when the future
    /// is first polled, so the job reflects the values at the call.
    pub fn enqueue<J: Job>(&self, job: J) -> impl Future<Output = Result<JobId>> + Send + 'static {
        let prepared = self.prepare(&job, None);
        self.store_one(prepared)
    }

    /// Stores one job on `queue` instead of the one its `#[background_job]` names, and returns
    /// its id once it is stored. Workers find the job by its name, whichever queue it is on.
    ///
    /// # Errors
    ///
    /// A configuration error, before anything is stored, when `queue` is empty or has spaces,
    /// `:`, `{` or `}` (the rule `#[background_job(queue = ...)]` checks at compile time); as
    /// [`Client::enqueue`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// #[jobs::background_job(queue = "mail")]
    /// async fn send(to: u64) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// let id = client.enqueue_on("mail-eu", jobs::job!(send(7))).await?;
    /// assert_eq!(id.queue(), "mail-eu");
    /// # Ok(()) }
    /// ```
    pub fn enqueue_on<J: Job>(
        &self,
        queue: impl Into<Arc<str>>,
        job: J,
    ) -> impl Future<Output = Result<JobId>> + Send + 'static {
        let queue = queue.into();
        let prepared = crate::queue_name::check(&queue, "enqueue_on")
            .and_then(|()| self.prepare_on(Some(queue), &job, None, Traced::Yes));
        self.store_one(prepared)
    }

    /// Stores one job to run not before `at`.
    pub fn schedule_at<J: Job>(
        &self,
        job: J,
        at: SystemTime,
    ) -> impl Future<Output = Result<JobId>> + Send + 'static {
        let at_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let prepared = self.prepare(&job, Some(at_ms));
        self.store_one(prepared)
    }

    /// Stores one job to run once `delay` has passed.
    pub fn schedule_in<J: Job>(
        &self,
        job: J,
        delay: Duration,
    ) -> impl Future<Output = Result<JobId>> + Send + 'static {
        let at_ms = now_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        let prepared = self.prepare(&job, Some(at_ms));
        self.store_one(prepared)
    }

    /// Stores many jobs in one call to the storage, all or none, and returns their ids in order.
    ///
    /// # Errors
    ///
    /// When an argument does not serialize, a filter rejects a job, or the storage fails; in each
    /// case nothing is stored.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// #[jobs::background_job]
    /// async fn index(doc: u64) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// let ids = client.enqueue_many((0..100).map(|doc| jobs::job!(index(doc)))).await?;
    /// assert_eq!(ids.len(), 100);
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_many<J: Job>(
        &self,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<Vec<JobId>> {
        let new_jobs = jobs
            .into_iter()
            .map(|job| self.prepare(&job, None))
            .collect::<Result<Vec<_>>>()?;
        self.store(new_jobs).await
    }

    /// Like [`enqueue_many`](Self::enqueue_many), every job on `queue` instead of the one its
    /// `#[background_job]` names.
    ///
    /// # Errors
    ///
    /// As [`enqueue_many`](Self::enqueue_many), and the queue-name error of [`enqueue_on`](Self::enqueue_on).
    pub async fn enqueue_many_on<J: Job>(
        &self,
        queue: impl Into<Arc<str>>,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<Vec<JobId>> {
        let queue = queue.into();
        crate::queue_name::check(&queue, "enqueue_many_on")?;
        let new_jobs = jobs
            .into_iter()
            .map(|job| self.prepare_on(Some(queue.clone()), &job, None, Traced::Yes))
            .collect::<Result<Vec<_>>>()?;
        self.store(new_jobs).await
    }

    /// What the storage knows of a job.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn job(&self, id: &JobId) -> Result<Option<JobInfo>> {
        self.inner.storage.job(id).await
    }

    /// Deletes a job that is enqueued, scheduled, failed or awaiting (a continuation waiting for
    /// its parent), so it does not run (again). Returns
    /// whether it was found in such a state; a running job is not touched (use
    /// [`Client::cancel`]).
    ///
    /// # Errors
    ///
    /// When the storage fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// use std::time::Duration;
    ///
    /// #[jobs::background_job]
    /// async fn remind(user_id: u64) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// let id = jobs::schedule!(&client, remind(7), in = Duration::from_secs(3600)).await?;
    /// assert!(client.delete(&id).await?);
    /// assert_eq!(client.job(&id).await?.expect("kept").state, jobs::JobState::Deleted);
    /// assert!(!client.delete(&id).await?, "already deleted");
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, id: &JobId) -> Result<bool> {
        self.inner.storage.delete(id).await
    }

    /// Cancels a job wherever it is. An enqueued, scheduled or awaiting job (a continuation
    /// waiting for its parent) is deleted at once, and never runs. A running
    /// job's worker — in this process or another — finds the request within about half a
    /// second, fires the job's [`JobContext`](crate::JobContext) token, and the attempt ends
    /// Deleted (reason `cancelled`) whatever the job returns; a job that ignores its token runs
    /// to its end first. See [`Cancellation`] for the answers.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// use jobs::storage::Cancellation;
    ///
    /// #[jobs::background_job]
    /// async fn export(account: u64) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// let id = jobs::enqueue!(&client, export(7)).await?;
    /// assert_eq!(client.cancel(&id).await?, Cancellation::Deleted);
    /// let info = client.job(&id).await?.expect("kept");
    /// assert_eq!(info.last_reason(), Some("cancelled"));
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self, id: &JobId) -> Result<Cancellation> {
        self.inner.storage.cancel(id).await
    }

    /// Counts of one queue's jobs.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats> {
        self.inner.storage.stats(queue).await
    }

    /// The stored form of `job` (serialized, filters run), not stored yet.
    pub(crate) fn new_job<J: Job>(&self, job: &J) -> Result<NewJob> {
        self.prepare(job, None)
    }

    /// Whether this client has filters.
    pub(crate) fn has_filters(&self) -> bool {
        !self.inner.filters.is_empty()
    }

    /// Runs the `on_create` hooks of this client's filters on a job about to be stored.
    ///
    /// # Errors
    ///
    /// A [rejected](Error::is_rejected) error naming the job and the filter's reason.
    pub(crate) fn run_create_filters(&self, name: &str, queue: &str, args: &str) -> Result<()> {
        if self.inner.filters.is_empty() {
            return Ok(());
        }
        let creating = CreatingJob { name, queue, args };
        self.inner.filters.on_create(&creating).map_err(|reason| {
            Error::new(
                Kind::Rejected,
                format!("job `{name}` was rejected by a filter: {reason}"),
            )
        })
    }

    pub(crate) fn prepare<J: Job>(&self, job: &J, run_at_ms: Option<u64>) -> Result<NewJob> {
        self.prepare_on(None, job, run_at_ms, Traced::Yes)
    }

    /// Like [`prepare`](Self::prepare), for the job a recurring entry enqueues at every tick:
    /// its headers are the filters' alone, with no trace context (each tick is a new root).
    pub(crate) fn prepare_recurring<J: Job>(&self, job: &J) -> Result<NewJob> {
        self.prepare_on(None, job, None, Traced::No)
    }

    /// Like [`prepare`](Self::prepare), on `queue` instead of the job's own when given.
    fn prepare_on<J: Job>(
        &self,
        queue: Option<Arc<str>>,
        job: &J,
        run_at_ms: Option<u64>,
        traced: Traced,
    ) -> Result<NewJob> {
        let queue = queue.unwrap_or_else(|| queue_name(J::QUEUE));
        let args = serde_json::to_string(job).map_err(|e| {
            Error::serialization(format!(
                "the arguments of job `{}` do not serialize",
                J::NAME
            ))
            .with_source(e)
        })?;
        self.run_create_filters(J::NAME, &queue, &args)?;
        let headers = self.headers_for(J::NAME, &queue, &args, traced);
        if J::UNIQUE {
            let key = crate::unique::identical_key(J::NAME, &args);
            let mut new_job = NewJob::new(queue, J::NAME, args);
            new_job.run_at_ms = run_at_ms;
            new_job.unique = Some(crate::storage::UniqueKey::new(key, J::UNIQUE_FOR));
            new_job.headers = headers;
            return Ok(new_job);
        }
        let mut new_job = NewJob::new(queue, J::NAME, args);
        new_job.run_at_ms = run_at_ms;
        new_job.headers = headers;
        Ok(new_job)
    }

    /// The headers of a job about to be stored: the trace context of the current span (with
    /// the `opentelemetry` feature, when `traced`), then what the filters' `set_headers` add.
    fn headers_for(&self, name: &str, queue: &str, args: &str, traced: Traced) -> Headers {
        let mut headers = Headers::new();
        if traced == Traced::Yes {
            crate::telemetry::inject(&mut headers, queue, name);
        }
        if !self.inner.filters.is_empty() {
            let creating = CreatingJob { name, queue, args };
            self.inner.filters.set_headers(&creating, &mut headers);
        }
        headers
    }

    pub(crate) fn store_one(
        &self,
        prepared: Result<NewJob>,
    ) -> impl Future<Output = Result<JobId>> + Send + 'static {
        let client = self.clone();
        async move {
            let job = prepared?;
            let inner = &client.inner;
            let scheduled = job.run_at_ms.is_some();
            let name = job.name.clone();
            // Concurrent enqueues share storage calls (see `group_commit`).
            let id = inner.group_commit.enqueue(&inner.storage, job).await?;
            crate::telemetry::enqueued([(id.queue(), name.as_ref())]);
            inner.filters.state_change(|| StateChangeEvent {
                id: id.clone(),
                name: name.as_ref().into(),
                state: if scheduled {
                    JobState::Scheduled
                } else {
                    JobState::Enqueued
                },
                reason: None,
            });
            Ok(id)
        }
    }

    async fn store(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        let names: Vec<_> = if self.inner.filters.is_empty() && !cfg!(feature = "metrics") {
            Vec::new()
        } else {
            jobs.iter()
                .map(|j| (j.name.clone(), j.run_at_ms.is_some()))
                .collect()
        };
        let ids = self.inner.storage.enqueue(jobs).await?;
        crate::telemetry::enqueued(
            ids.iter()
                .zip(&names)
                .map(|(id, (name, _))| (id.queue(), name.as_ref())),
        );
        self.stored(&ids, names);
        Ok(ids)
    }

    /// Tells the state-change filters that the jobs `ids` were stored; `meta` holds each job's
    /// name and whether it was scheduled (empty when there are no filters).
    pub(crate) fn stored(&self, ids: &[JobId], meta: Vec<(Cow<'static, str>, bool)>) {
        if self.inner.filters.is_empty() {
            return;
        }
        for (id, (name, scheduled)) in ids.iter().zip(meta) {
            self.inner.filters.state_change(|| StateChangeEvent {
                id: id.clone(),
                name: name.as_ref().into(),
                state: if scheduled {
                    JobState::Scheduled
                } else {
                    JobState::Enqueued
                },
                reason: None,
            });
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// The shared name of a job type's queue: one allocation per queue and thread, not one per job.
/// Whether a job about to be stored gets the current trace context.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Traced {
    Yes,
    No,
}

fn queue_name(queue: &'static str) -> Arc<str> {
    thread_local! {
        static NAMES: std::cell::RefCell<Vec<(&'static str, Arc<str>)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some((_, arc)) = names.iter().find(|(q, _)| *q == queue) {
            return arc.clone();
        }
        let arc: Arc<str> = Arc::from(queue);
        names.push((queue, arc.clone()));
        arc
    })
}
