//! [`RedisStorageBuilder`]: where the Redis backend connects and how it keeps jobs.

use super::tls::TlsOptions;
use super::RedisStorage;
use crate::error::{Error, Result};
use crate::storage::{PayloadLimit, Retention};
use std::time::Duration;

/// Configures a [`RedisStorage`].
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// use std::time::Duration;
/// let storage = jobs::RedisStorage::builder("redis://127.0.0.1:6379")
///     .prefix("myapp")
///     .retention(jobs::storage::Retention::default().succeeded(10_000, Duration::from_secs(3600)))
///     .connect()
///     .await?;
/// # drop(storage); Ok(()) }
/// ```
///
/// # TLS and ACL users
///
/// A `rediss://` URL connects over TLS (feature `tls`; a private CA and a client certificate
/// are given with `tls_ca_pem` and `tls_client_cert_pem`; they apply to one Redis, to every
/// node of a cluster, and behind Sentinel to the sentinels and the master), and the user and password of a URL
/// (`redis://user:password@host`) log every connection of the storage in as that ACL user.
/// Under TLS, enqueue transactions go through the shared connection: the enqueue connection of
/// plain TCP, which the caller reads itself (faster enqueues), does not speak TLS. The README's
/// TLS section says what that costs.
#[derive(Debug, Clone)]
pub struct RedisStorageBuilder {
    pub(super) target: Target,
    pub(super) prefix: String,
    pub(super) retention: Retention,
    pub(super) maintenance_batch: usize,
    pub(super) response_timeout: Duration,
    pub(super) payload: PayloadLimit,
    pub(super) replicas_ack: u32,
    pub(super) replicas_ack_timeout: Duration,
    /// The certificates of `rediss://` connections (`tls.rs`).
    pub(super) tls: TlsOptions,
}

/// Where the storage connects.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// One Redis (a primary, or a proxy in front of one).
    Node(String),
    /// A Redis Cluster, from the URLs of some of its nodes.
    Cluster(Vec<String>),
    /// The master a Sentinel deployment monitors under a name (see `sentinel.rs`).
    Sentinel {
        sentinels: Vec<String>,
        master: String,
    },
}

/// The durable acknowledgement (`replicas_ack`): writes that acknowledge a job (enqueues, completions) wait until
/// this many replicas confirm them (`WAIT`), for at most `timeout`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicasAck {
    pub(crate) replicas: u32,
    pub(crate) timeout: Duration,
}

/// How long a durable acknowledgement waits for its replicas unless told otherwise.
const REPLICAS_ACK_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisStorageBuilder {
    pub(super) fn new(target: Target) -> Self {
        RedisStorageBuilder {
            target,
            prefix: "jobs".to_owned(),
            retention: Retention::default(),
            maintenance_batch: 1_000,
            response_timeout: Duration::from_secs(30),
            payload: PayloadLimit::default(),
            replicas_ack: 0,
            replicas_ack_timeout: REPLICAS_ACK_TIMEOUT,
            tls: TlsOptions::default(),
        }
    }

    /// The prefix of every key, so several applications can share one Redis. Default: `jobs`.
    /// Must not contain `{` or `}` (they delimit the hash tag).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many succeeded and deleted jobs are kept, and for how long.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// At most this many due scheduled jobs are promoted, and this many expired leases reaped,
    /// per queue and fetch. Default: 1,000.
    #[must_use]
    pub fn maintenance_batch(mut self, batch: usize) -> Self {
        self.maintenance_batch = batch.max(1);
        self
    }

    /// How long a command may take before it fails (a large enqueue runs as one script).
    /// Default: 30 s.
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The most bytes a job's arguments may take once serialized (headers will count too).
    /// Default: [`DEFAULT_MAX_PAYLOAD`](crate::storage::DEFAULT_MAX_PAYLOAD), 512 KiB.
    ///
    /// Both sides use it, so set the same value on every process that shares this Redis:
    /// - an enqueue of a larger job (single, bulk, scheduled, batch, continuation, recurring
    ///   registration) fails with an error that names the job and both sizes
    ///   ([`Error::is_too_large`](crate::Error::is_too_large)), and nothing is stored;
    /// - a worker that fetches a stored job over its limit (enqueued by a process with a
    ///   higher limit, or written behind the storage's back) does not load it: the fetch
    ///   script returns only its size, and the job ends Failed with a reason saying so,
    ///   without running. Raise the limit and requeue it to run it.
    #[must_use]
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.payload = PayloadLimit(bytes);
        self
    }

    /// Durable acknowledgements: an enqueue (of any kind: single, bulk, scheduled, unique, batch,
    /// continuation, recurring tick) and a job's completion return only once `replicas` replicas
    /// of the primary that holds the queue confirmed the write (`WAIT`), so a failover that
    /// promotes one of them loses no acknowledged job. Default: off (0), the acknowledgement
    /// comes when the primary applied the write, and a failover may lose the writes of the last
    /// moments before it (Redis replicates asynchronously).
    ///
    /// It costs a wait for the replicas on every such write (a round trip from the primary to
    /// its replicas, usually well under a millisecond on one network; see BENCHMARKS.md). When
    /// fewer replicas confirm within [`replicas_ack_timeout`](Self::replicas_ack_timeout), the
    /// call fails with an error saying so: the write was applied on the primary but may not
    /// survive a failover (an enqueue retried after that error may store the job twice).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// let storage = jobs::RedisStorage::cluster_builder(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
    ///     .replicas_ack(1)
    ///     .connect()
    ///     .await?;
    /// # drop(storage); Ok(()) }
    /// ```
    #[must_use]
    pub fn replicas_ack(mut self, replicas: u32) -> Self {
        self.replicas_ack = replicas;
        self
    }

    /// How long a durable acknowledgement ([`replicas_ack`](Self::replicas_ack)) waits for its
    /// replicas before the call fails. Default: 5 s.
    #[must_use]
    pub fn replicas_ack_timeout(mut self, timeout: Duration) -> Self {
        self.replicas_ack_timeout = timeout;
        self
    }

    /// Builds the storage without contacting Redis: it connects on first use and reconnects
    /// after a connection is lost. Must be called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// When a URL is not a valid Redis URL, a cluster is given no node, or the prefix contains
    /// `{` or `}`.
    pub fn build(self) -> Result<RedisStorage> {
        if self.prefix.contains(['{', '}']) {
            return Err(Error::config(format!(
                "the Redis key prefix `{}` must not contain `{{` or `}}`",
                self.prefix
            )));
        }
        RedisStorage::from_builder(self)
    }

    /// Builds the storage and checks that Redis answers.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build), and when Redis cannot be reached.
    pub async fn connect(self) -> Result<RedisStorage> {
        let storage = self.build()?;
        storage.ping().await?;
        Ok(storage)
    }
}
