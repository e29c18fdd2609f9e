//! What a job is: its id, the [`Job`] trait the macro implements, and the [`JobContext`] a
//! running job can ask for.

use crate::attempt_signals::AttemptSignals;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The id of a stored job, unique within one storage: the queue it lives on and a sequence
/// number the storage assigned. Displayed (and parsed) as `queue:number`, e.g. `default:42`.
///
/// # Examples
///
/// ```
/// let id: jobs::JobId = "mail:42".parse().unwrap();
/// assert_eq!(id.queue(), "mail");
/// assert_eq!(id.seq(), 42);
/// assert_eq!(id.to_string(), "mail:42");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId {
    queue: Arc<str>,
    seq: u64,
}

impl JobId {
    /// An id from its parts. Storages call this; users get ids from `enqueue!`.
    pub fn new(queue: impl Into<Arc<str>>, seq: u64) -> Self {
        JobId {
            queue: queue.into(),
            seq,
        }
    }

    /// The queue the job was enqueued on.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The queue as a shared string (cheap to clone).
    pub fn queue_arc(&self) -> &Arc<str> {
        &self.queue
    }

    /// The number the storage gave the job within its queue.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.queue, self.seq)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

/// The error of parsing a [`JobId`] from a string that is not `queue:number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseJobIdError(String);

impl fmt::Display for ParseJobIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a job id: expected `queue:number`, e.g. `default:42`",
            self.0
        )
    }
}

impl std::error::Error for ParseJobIdError {}

impl FromStr for JobId {
    type Err = ParseJobIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseJobIdError(s.to_owned());
        let (queue, seq) = s.rsplit_once(':').ok_or_else(err)?;
        if queue.is_empty() {
            return Err(err());
        }
        let seq = seq.parse().map_err(|_| err())?;
        Ok(JobId::new(queue, seq))
    }
}

impl Serialize for JobId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for JobId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A job invocation: the arguments of one call of a `#[background_job]` function.
///
/// `#[background_job]` implements this for the struct it generates; you do not implement it by
/// hand. Build one with [`job!`](crate::job) and enqueue it with
/// [`Client::enqueue`](crate::Client::enqueue), or do both at once with
/// [`enqueue!`](crate::enqueue).
pub trait Job: Serialize + Send + Sync + 'static {
    /// The stable name the job is stored under.
    const NAME: &'static str;
    /// The queue the job goes to unless told otherwise.
    const QUEUE: &'static str;
    /// How many times a failed attempt is retried.
    const RETRIES: u32;
    /// How long one attempt may run before it is failed as timed out.
    const TIMEOUT: Option<Duration>;
    /// The delay before each retry (`backoff = "exponential" | "polynomial"`); `None` uses the
    /// worker's [`retry_backoff`](crate::WorkerBuilder::retry_backoff).
    const BACKOFF: Option<crate::RetryBackoff> = None;
    /// What becomes of the job once its attempts are used up (`on_exhausted = "fail" | "delete"`).
    const ON_EXHAUSTED: crate::OnExhausted = crate::OnExhausted::Fail;
    /// Whether an identical job (same name and arguments) that is still enqueued, scheduled or
    /// running makes enqueueing this one return the existing job's id (`#[background_job(unique)]`).
    const UNIQUE: bool = false;
    /// How long at most a unique job's claim lasts (`unique_for = "10m"`); `None`: until it ends.
    const UNIQUE_FOR: Option<Duration> = None;
}

/// What a running job can know about itself; add a `ctx: jobs::JobContext` parameter to a job
/// function to receive it (it is not serialized).
///
/// # Examples
///
/// ```
/// #[jobs::background_job]
/// async fn crawl(url: String, ctx: jobs::JobContext) -> Result<(), String> {
///     for _page in 0..3 {
///         if ctx.is_cancelled() {
///             return Err(format!("crawl of {url} cancelled on attempt {}", ctx.attempt()));
///         }
///     }
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct JobContext {
    /// Shared by the clones: cloning a context (the worker keeps one, the job gets one) bumps
    /// one count of this attempt instead of the counts every job shares (queue and job names,
    /// the storage).
    inner: Arc<ContextInner>,
}

#[derive(Debug)]
struct ContextInner {
    id: JobId,
    name: Arc<str>,
    attempt: u32,
    max_attempts: u32,
    headers: crate::headers::Headers,
    /// Cancellation, and whether the attempt failed with a [`Permanent`](crate::Permanent) error.
    signals: AttemptSignals,
    flow: Option<crate::continuation::ContextFlow>,
}

impl JobContext {
    /// The context of one attempt; `flow` is what continuations need (the storage, a slot for
    /// the return value).
    pub(crate) fn new(
        id: JobId,
        name: Arc<str>,
        attempt: u32,
        max_attempts: u32,
        headers: crate::headers::Headers,
        signals: AttemptSignals,
        flow: Option<crate::continuation::ContextFlow>,
    ) -> Self {
        JobContext {
            inner: Arc::new(ContextInner {
                id,
                name,
                attempt,
                max_attempts,
                headers,
                signals,
                flow,
            }),
        }
    }

    /// Records that this attempt failed with a permanent error (so it is not retried).
    pub(crate) fn mark_permanent(&self) {
        self.inner.signals.mark_permanent();
    }

    /// Whether the attempt failed with a permanent error.
    pub(crate) fn failed_permanently(&self) -> bool {
        self.inner.signals.failed_permanently()
    }

    pub(crate) fn flow(&self) -> Option<&crate::continuation::ContextFlow> {
        self.inner.flow.as_ref()
    }

    /// The id of the job being performed.
    pub fn id(&self) -> &JobId {
        &self.inner.id
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The queue the job came from.
    pub fn queue(&self) -> &str {
        self.inner.id.queue()
    }

    /// Which attempt this is: 1 for the first run, 2 for the first retry, ...
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// How many attempts the job gets in all.
    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    /// The headers the job was enqueued with (see [`Headers`](crate::Headers)).
    pub fn headers(&self) -> &crate::headers::Headers {
        &self.inner.headers
    }

    /// Whether the job was asked to stop: it was cancelled ([`Client::cancel`](crate::Client::cancel)),
    /// timed out, or the worker is shutting down and its grace period ran out.
    pub fn is_cancelled(&self) -> bool {
        self.inner.signals.is_cancelled()
    }

    /// Completes when the job is asked to stop; `select!` on it in long jobs.
    pub async fn cancelled(&self) {
        if !self.inner.signals.is_cancelled() {
            self.inner.signals.token().cancelled().await;
        }
    }

    /// The cancellation token itself, to hand to libraries that take one.
    pub fn cancellation_token(&self) -> &CancellationToken {
        self.inner.signals.token()
    }
}
