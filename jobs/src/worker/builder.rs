//! [`WorkerBuilder`]: configures a [`Worker`] and checks the configuration in `build()`.

use super::queue_order::QueueOrder;
use super::{Worker, WorkerConfig};
use crate::app_state::StateMap;
use crate::error::{Error, Result};
use crate::filter::{Filter, Filters};
use crate::registry::Registry;
use crate::retry::RetryBackoff;
use crate::storage::Storage;
use std::sync::Arc;
use std::time::Duration;

/// Configures a [`Worker`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// #[derive(Clone)]
/// struct Mailer;
///
/// #[jobs::background_job(queue = "mail")]
/// async fn welcome(user_id: u64, #[state] mailer: Mailer) {}
///
/// let worker = jobs::Worker::builder(jobs::MemoryStorage::new())
///     .queues(["mail", "default"])   // highest priority first
///     .concurrency(16)
///     .state(Mailer)
///     .shutdown_timeout(Duration::from_secs(10))
///     .build()
///     .expect("valid configuration");
/// # drop(worker);
/// ```
pub struct WorkerBuilder {
    storage: Arc<dyn Storage>,
    queues: Vec<Arc<str>>,
    /// Set by `queues_weighted`: one weight per queue (0 refused by `build`).
    weights: Option<Vec<u32>>,
    concurrency: usize,
    state: StateMap,
    filters: Filters,
    shutdown_timeout: Duration,
    lease: Duration,
    fetch_batch: usize,
    backoff: RetryBackoff,
    max_crashes: u32,
    idle_wait: Duration,
    name: Option<String>,
    recurring: crate::recurring::scheduler::SchedulerConfig,
    telemetry: super::TelemetryConfig,
}

impl WorkerBuilder {
    pub(super) fn new(storage: Arc<dyn Storage>) -> Self {
        WorkerBuilder {
            storage,
            queues: vec![Arc::from("default")],
            weights: None,
            concurrency: 16,
            state: StateMap::default(),
            filters: Filters::default(),
            shutdown_timeout: Duration::from_secs(25),
            lease: Duration::from_secs(30),
            fetch_batch: 100,
            backoff: RetryBackoff::default(),
            max_crashes: DEFAULT_MAX_CRASHES,
            idle_wait: Duration::from_secs(30),
            name: None,
            recurring: Default::default(),
            telemetry: Default::default(),
        }
    }

    /// The queues to take jobs from, highest priority first. Default: `["default"]`.
    #[must_use]
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.queues = queues.into_iter().map(|q| Arc::from(q.as_ref())).collect();
        self.weights = None;
        self
    }

    /// The queues to take jobs from with a weight each, instead of in strict priority order
    /// (Sidekiq's weighted queues): every fetch takes the queues in a random order where a
    /// queue comes first with a probability proportional to its weight. While every queue has
    /// work, each one's share of the jobs performed follows its weight; a queue with nothing
    /// ready gives its turn to the others, and even the lightest queue is first in some
    /// fetches, so none starves. Works the same on every storage. Weights must be at least 1.
    ///
    /// # Examples
    ///
    /// ```
    /// // About 60 % of the jobs from `critical`, 30 % from `default`, 10 % from `low`, while all
    /// // three have work.
    /// let worker = jobs::Worker::builder(jobs::MemoryStorage::new())
    ///     .queues_weighted([("critical", 6), ("default", 3), ("low", 1)])
    ///     .build()
    ///     .expect("valid configuration");
    /// # drop(worker);
    /// ```
    #[must_use]
    pub fn queues_weighted<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = (S, u32)>,
        S: AsRef<str>,
    {
        let (queues, weights) = queues
            .into_iter()
            .map(|(q, w)| (Arc::from(q.as_ref()), w))
            .unzip();
        self.queues = queues;
        self.weights = Some(weights);
        self
    }

    /// How many jobs run at once. Default: 16.
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Registers app state: every job parameter marked `#[state]` of type `T` receives a clone.
    #[must_use]
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Adds an extension filter (see [`Filter`]).
    #[must_use]
    pub fn filter(mut self, filter: impl Filter) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// How long running jobs may take to finish once shutdown starts, before they are cancelled
    /// and handed back to their queue. Default: 25 s.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long a fetched job stays hidden from other workers without a renewal. The worker
    /// renews leases every third of this; a job whose worker died runs again after at most this
    /// long. Default: 30 s.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// At most this many jobs are fetched in one call, and held leased ahead of a free slot
    /// (prefetch). Default: 100.
    ///
    /// While jobs stream in faster than one fetch round trip (a fetch leased 8 or more and
    /// emptied the queue), the next fetch waits 1 ms so that it takes them in one call: under
    /// such a load a job may start up to about a millisecond later, for a fraction of the
    /// storage calls. A trickle of jobs is fetched as each arrives.
    #[must_use]
    pub fn fetch_batch(mut self, batch: usize) -> Self {
        self.fetch_batch = batch;
        self
    }

    /// The delay before each retry of a failed attempt. Default: [`RetryBackoff::default`].
    #[must_use]
    pub fn retry_backoff(mut self, backoff: RetryBackoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The name this worker process registers under (heartbeats, logs). Default:
    /// `<host>:<pid>:<random>`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether this worker runs a scheduler that enqueues the ticks of recurring jobs (see
    /// [`recurring`](crate::recurring)). Default: `true`. Any number of workers may run one:
    /// each tick is enqueued exactly once.
    #[must_use]
    pub fn run_recurring(mut self, enabled: bool) -> Self {
        self.recurring.enabled = enabled;
        self
    }

    /// How often the recurring-job scheduler re-reads the registry of recurring jobs; between
    /// reads it sleeps until the earliest next run. A recurring job registered or changed
    /// elsewhere is picked up within this interval. Default: 5 s.
    #[must_use]
    pub fn recurring_poll_interval(mut self, interval: Duration) -> Self {
        self.recurring.poll = interval;
        self
    }

    /// How many times a worker may die (or hang past its lease) while running a job before the
    /// job ends Failed instead of running again, for jobs without their own
    /// `#[background_job(max_crashes = N)]`. Default: 3.
    ///
    /// Only crashes count: a job that waited in a dead worker's buffer goes back to its queue
    /// charged nothing, and crashes are counted apart from the attempts that failed with an
    /// error (see the crash accounting in [`storage`](crate::storage#crash-accounting)).
    ///
    /// # Examples
    ///
    /// ```
    /// let worker = jobs::Worker::builder(jobs::MemoryStorage::new())
    ///     .max_crashes(5)
    ///     .build()
    ///     .expect("valid configuration");
    /// # drop(worker);
    /// ```
    #[must_use]
    pub fn max_crashes(mut self, crashes: u32) -> Self {
        self.max_crashes = crashes;
        self
    }

    /// How late this worker's scheduler may enqueue a tick of a recurring job before the tick
    /// counts as missed and the job's [`Misfire`](crate::recurring::Misfire) policy applies, for
    /// recurring jobs registered without a grace of their own
    /// ([`RecurringBuilder::misfire_grace`](crate::recurring::RecurringBuilder::misfire_grace)).
    /// Default: [`MISFIRE_GRACE`](crate::recurring::MISFIRE_GRACE), 10 s. Give every worker
    /// the same value: whichever scheduler gets to a tick first decides with its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // Ticks up to two minutes late (a deploy restarting every worker) still run.
    /// let worker = jobs::Worker::builder(jobs::MemoryStorage::new())
    ///     .recurring_misfire_grace(Duration::from_secs(120))
    ///     .build()
    ///     .expect("valid configuration");
    /// # drop(worker);
    /// ```
    #[must_use]
    pub fn recurring_misfire_grace(mut self, grace: Duration) -> Self {
        self.recurring.misfire_grace = grace;
        self
    }

    /// How often this worker samples the gauges of its queues (`jobs_pending`,
    /// `jobs_scheduled`, `jobs_processing`, `jobs_failed`, `jobs_oldest_pending_age_seconds`)
    /// and of its process's slots: one [`Monitoring::stats`](crate::storage::Monitoring::stats)
    /// call per queue each time. Default: 5 s. See [`telemetry`](crate::telemetry).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let worker = jobs::Worker::builder(jobs::MemoryStorage::new())
    ///     .metrics_interval(Duration::from_secs(15))
    ///     .build()
    ///     .expect("valid configuration");
    /// # drop(worker);
    /// ```
    #[cfg(feature = "metrics")]
    #[must_use]
    pub fn metrics_interval(mut self, every: Duration) -> Self {
        self.telemetry.metrics_interval = every;
        self
    }

    /// How the span of each attempt relates to the span its job was enqueued in: linked to it
    /// (the default) or its child. See [`telemetry`](crate::telemetry).
    #[cfg(feature = "opentelemetry")]
    #[must_use]
    pub fn trace_relation(mut self, relation: crate::telemetry::TraceRelation) -> Self {
        self.telemetry.trace_relation = relation;
        self
    }

    /// Checks the configuration and builds the worker.
    ///
    /// # Errors
    ///
    /// When two job functions share a name (both are named in the message), a job on one of the
    /// worker's queues takes `#[state]` that was not registered, no queue is given, a queue name
    /// is empty or has spaces, `:`, `{` or `}`, a queue is given twice or with weight 0, concurrency or batch size is 0, `max_crashes` is 0, or the
    /// lease is shorter than 100 ms.
    pub fn build(self) -> Result<Worker> {
        let registry = Registry::global()?;
        if self.queues.is_empty() {
            return Err(Error::config(
                "the worker has no queues: pass at least one to `queues`",
            ));
        }
        for queue in &self.queues {
            crate::queue_name::check(queue, "the worker's queues")?;
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = self.queues.iter().find(|q| !seen.insert(&***q)) {
            return Err(Error::config(format!(
                "the worker's queues name `{twice}` twice: give each queue once"
            )));
        }
        let order = match self.weights {
            None => QueueOrder::Priority,
            Some(weights) => {
                if let Some((q, _)) = self.queues.iter().zip(&weights).find(|(_, &w)| w == 0) {
                    return Err(Error::config(format!(
                        "queue `{q}` has weight 0 in `queues_weighted`: weights must be at least \
                         1 (leave the queue out to take nothing from it)"
                    )));
                }
                QueueOrder::Weighted(weights)
            }
        };
        if self.concurrency == 0 {
            return Err(Error::config("worker concurrency must be at least 1"));
        }
        if self.fetch_batch == 0 {
            return Err(Error::config("the fetch batch must be at least 1"));
        }
        if self.max_crashes == 0 {
            return Err(Error::config(
                "max_crashes must be at least 1 (with 0 jobs would fail before they ever ran)",
            ));
        }
        if self.recurring.poll < Duration::from_millis(10) {
            return Err(Error::config(
                "the recurring poll interval must be at least 10 ms",
            ));
        }
        if self.lease < Duration::from_millis(100) {
            return Err(Error::config("the lease must be at least 100 ms"));
        }
        #[cfg(feature = "metrics")]
        if self.telemetry.metrics_interval < Duration::from_millis(10) {
            return Err(Error::config("the metrics interval must be at least 10 ms"));
        }
        let mut missing = Vec::new();
        for job in registry.iter() {
            if !self.queues.iter().any(|q| &**q == job.queue) {
                continue;
            }
            for (type_id, type_name) in (job.states)() {
                if !self.state.contains(type_id) {
                    missing.push(format!(
                        "job `{}` ({}:{}) takes `#[state]` of type `{type_name}`, which is not \
                         registered: add `.state(value)` to the worker builder",
                        job.name, job.file, job.line
                    ));
                }
            }
        }
        if !missing.is_empty() {
            missing.sort();
            return Err(Error::config(missing.join("\n")));
        }
        let name = self.name.unwrap_or_else(default_name);
        Ok(Worker::from_config(WorkerConfig {
            storage: self.storage,
            registry,
            queues: self.queues,
            order,
            concurrency: self.concurrency,
            state: self.state,
            filters: self.filters,
            shutdown_timeout: self.shutdown_timeout,
            lease: self.lease,
            fetch_batch: self.fetch_batch,
            backoff: self.backoff,
            max_crashes: self.max_crashes,
            idle_wait: self.idle_wait,
            name,
            recurring: self.recurring,
            telemetry: self.telemetry,
        }))
    }
}

/// The crash limit of jobs that set none, unless the worker says otherwise.
const DEFAULT_MAX_CRASHES: u32 = 3;

fn default_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}
