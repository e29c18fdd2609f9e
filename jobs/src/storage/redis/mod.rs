//! The Redis backend: the production storage.
//!
//! # Layout
//!
//! Every key of a queue carries the hash tag `{<prefix>:<queue>}` (see `keys.rs`), so each script
//! touches one Redis Cluster slot, and every key a script touches is passed in `KEYS`. A pending
//! job costs one list entry (its sequence number) and one hash field holding the compact record
//! `attempts|enqueued_ms|name|args`; its history is written only once it leaves its first state.
//!
//! # Delivery
//!
//! Fetch moves ids atomically from the pending list into the tokens hash (id to fencing token) and
//! hands out the token; complete, renew and release act only while the token matches. One token
//! serves a whole fetch, and names its lease group: one sorted-set entry scored by the deadline
//! all of the fetch's jobs share, with a count of the jobs still held, so a fetch of 64 jobs costs
//! one sorted-set insert, not 64. An expired lease is reaped back to the front of the queue by the
//! next fetch of any worker (counting an attempt): the jobs still held under an expired group's
//! token, found in one pass over the tokens hash, which holds only jobs in flight (and one pin
//! field, `~`, that keeps it a hash table; see `lib.lua`). Delivery is at least once: a job runs
//! twice only when its lease was lost (its worker died, hung, or could not renew for a whole
//! lease).
//!
//! # Connections
//!
//! Requests share one connection: on one Redis, redis-rs's connection manager, which pipelines
//! concurrent requests and reconnects; on a Redis Cluster, redis-rs's cluster connection, which
//! routes each request to the primary of its slot (`cluster.rs`); behind Sentinel, one
//! multiplexed connection to the master the sentinels name, asked again after a connection to
//! it fails (`sentinel.rs`). The connection manager
//! notices that Redis closed the connection only when a request fails on it, so requests safe
//! to send twice go once more after such a failure (`connections.rs`). On one Redis, enqueue
//! transactions have a connection of their own, which the caller writes and reads without a
//! task in between (`direct.rs`), and a fetch that waits for jobs blocks on one from a pool
//! (below).
//!
//! # Waiting
//!
//! An idle fetch blocks with `BLPOP` on the queues' wake keys (on a dedicated connection, so the
//! shared connection is never blocked) until an enqueue signals, or until the next scheduled job
//! or lease deadline is due, or the wait runs out; on a cluster, with one `BLPOP` per slot, each
//! on the primary of its slot (`idle_wait.rs`). Dropping a fetch while it waits loses nothing:
//! jobs leased by a script whose reply was lost come back when their lease expires.
//!
//! # Durability
//!
//! With `replicas_ack(n)`, enqueues and completions wait for `WAIT n` before they return
//! (`durable.rs`).

mod cancellation;
mod cluster;
mod complete;
mod config;
mod connect_errors;
mod connections;
#[cfg(unix)]
mod direct;
mod durable;
mod enqueue;
mod fetch;
mod flow;
mod idle_wait;
mod inspect;
mod keys;
mod leases;
mod monitor;
mod open;
pub(crate) mod record;
mod recurring;
pub(crate) mod replies;
mod scripts;
mod sentinel;
mod sentinel_client;
mod servers;
mod tls;

pub use config::RedisStorageBuilder;

use super::PayloadLimit;
use super::{Completion, FetchRequest, FetchedJob, Lease, NewJob, Retention};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::storage::Delivery;
use async_trait::async_trait;
use config::ReplicasAck;
use connections::Link;
use keys::QueueKeys;
use redis::{RedisError, Script};
use scripts::{ScriptCall, Scripts};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// Jobs stored in Redis. Cheap to clone: clones share connections.
///
/// Requires Redis 6.2 or newer. Run it with `maxmemory-policy noeviction` (an evicted key loses
/// jobs) and with AOF (`appendonly yes`) if jobs must survive a Redis restart.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// #[jobs::background_job]
/// async fn greet(name: String) {
///     println!("hello, {name}");
/// }
///
/// let storage = jobs::RedisStorage::connect("redis://127.0.0.1:6379").await?;
/// let client = jobs::Client::new(storage.clone());
/// jobs::enqueue!(&client, greet("ada".to_owned())).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStorage {
    inner: Arc<Inner>,
}

struct Inner {
    /// One Redis or a cluster, and the connections to it.
    link: Link,
    scripts: Scripts,
    prefix: String,
    retention: Retention,
    maintenance_batch: usize,
    /// The payload limit of enqueues and fetches.
    payload: PayloadLimit,
    /// Writes that acknowledge jobs wait for this many replicas (see `durable.rs`).
    replicas_ack: Option<ReplicasAck>,
    /// When each queue was last maintained (due jobs promoted, expired leases reaped) by a fetch.
    maintained: Mutex<HashMap<Arc<str>, std::time::Instant>>,
    /// When this storage last swept each queue's concurrency-slot sets (see `flow.rs`).
    limits_swept: Mutex<HashMap<Arc<str>, std::time::Instant>>,
    /// The key names of each queue used so far, built once (every call names a dozen keys).
    queue_keys: Mutex<HashMap<String, Arc<QueueKeys>>>,
    /// Sequence numbers reserved for this storage's enqueues, per queue: `[next, end)`.
    seq_blocks: Mutex<HashMap<Arc<str>, (u64, u64)>>,
    /// The queues this storage added to the registry of queues (see `monitor.rs`).
    registered: Mutex<foldhash::HashSet<Arc<str>>>,
    /// Where Redis is, without credentials, for error messages.
    display_url: String,
    /// The lease rounds running on tasks of their own (see `lease_round_detached`). Closed from
    /// the start: it only serves to wait until none is running (`settle`).
    rounds: TaskTracker,
}

impl fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStorage")
            .field("url", &self.inner.display_url)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// The field of the tokens hash that is not a job (`TOKENS_PIN` in `scripts/lib.lua`).
const TOKENS_PIN: &str = "~";

/// How often a busy worker's fetches promote due jobs and reap expired leases (see
/// `due_for_maintenance`); a due job waits at most this much longer while workers are busy.
const MAINTENANCE_EVERY: Duration = Duration::from_millis(20);
/// How many job numbers a storage reserves at a time for its enqueues.
const SEQ_BLOCK: u64 = 1_024;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A duration in ms that Lua's doubles hold exactly.
fn lua_millis(d: Duration) -> u64 {
    millis(d).min(1 << 52)
}

impl RedisStorage {
    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Every Redis key `queue` uses. They all share the hash tag `{<prefix>:<queue>}` and so one
    /// cluster slot; every script is called with keys from this list only.
    pub fn queue_keys(&self, queue: &str) -> Vec<String> {
        self.keys(queue).all()
    }

    /// The key of the registry of worker processes.
    pub fn servers_key(&self) -> String {
        keys::servers(&self.inner.prefix)
    }

    /// The key of the registry of queues (a set of names, for listings; see
    /// [`Monitoring::queue_names`](crate::storage::Monitoring::queue_names)).
    pub fn queues_key(&self) -> String {
        keys::queues(&self.inner.prefix)
    }

    /// Checks that Redis answers.
    ///
    /// # Errors
    ///
    /// When it does not.
    pub async fn ping(&self) -> Result<()> {
        let what = "checking the connection (PING)";
        let _: String = self
            .idempotent(what, &mut redis::cmd("PING"))
            .await
            .map_err(|e| self.ping_error(what, e))?;
        Ok(())
    }

    /// `n` consecutive sequence numbers for new jobs of `queue`, from a block this storage
    /// reserved (one `INCRBY` per `SEQ_BLOCK` jobs); returns the first.
    async fn reserve_seqs(&self, queue: &Arc<str>, k: &QueueKeys, n: usize) -> Result<u64> {
        let n = n as u64;
        {
            let mut blocks = self
                .inner
                .seq_blocks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((next, end)) = blocks.get_mut(queue) {
                if *end - *next >= n {
                    let first = *next;
                    *next += n;
                    return Ok(first);
                }
            }
        }
        let size = n.max(SEQ_BLOCK);
        // Sent again after a dropped connection, it may reserve two blocks: the first one's
        // numbers are never used, which leaves a gap and no duplicate.
        let last: u64 = self
            .idempotent(
                "enqueueing jobs (reserving job numbers)",
                redis::cmd("INCRBY").arg(&k.seq).arg(size),
            )
            .await?;
        let first = last + 1 - size;
        self.inner
            .seq_blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(queue.clone(), (first + n, last + 1));
        Ok(first)
    }

    /// Redis's job counter of `queue` is below `last`, a number this storage just used: Redis
    /// lost its data while this process held reserved numbers, so other processes may be handed
    /// the same ones. Drops the reserved block and moves the counter past `last`, so numbers
    /// handed out from now on are unique again.
    async fn counter_went_back(&self, queue: &Arc<str>, k: &QueueKeys, last: u64) -> Result<()> {
        tracing::error!(
            queue = %queue,
            "the job counter in Redis went back (was Redis flushed, or restarted without \
             persistence?); moving it past the numbers this process used"
        );
        self.inner
            .seq_blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(queue);
        let what = "enqueueing jobs (repairing the job counter)";
        loop {
            let now: Option<u64> = self.idempotent(what, redis::cmd("GET").arg(&k.seq)).await?;
            let now = now.unwrap_or(0);
            if now >= last {
                return Ok(());
            }
            // Only ever increases it, so racing repairs and reservations cannot undo each other.
            // Sent twice, it moves the counter further: a gap, no duplicate.
            let _: u64 = self
                .idempotent(what, redis::cmd("INCRBY").arg(&k.seq).arg(last - now))
                .await?;
        }
    }

    /// A call of a script that may end a job Deleted (`delete.lua`, `cancel.lua`), with the keys
    /// and arguments they share; `cancel.lua` adds its cancel-request key after them.
    fn deletion_call<'a>(
        &self,
        script: &'a Script,
        k: &'a QueueKeys,
        id: &JobId,
    ) -> ScriptCall<'a> {
        let r = &self.inner.retention;
        let mut inv = ScriptCall::new(script);
        inv.key(&k.jobs)
            .key(&k.pending)
            .key(&k.scheduled)
            .key(&k.failed)
            .key(&k.deleted)
            .key(&k.hist)
            .key(&k.tokens)
            .key(&k.succeeded);
        with_flow_keys(&mut inv, k)
            .key(&k.awaiting)
            .arg(id.seq())
            .arg(r.deleted_max.min(1 << 52))
            .arg(lua_millis(r.deleted_ttl));
        inv
    }

    fn keys(&self, queue: &str) -> Arc<QueueKeys> {
        let mut known = self
            .inner
            .queue_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = known.get(queue) {
            return k.clone();
        }
        let k = Arc::new(QueueKeys::new(&self.inner.prefix, queue));
        known.insert(queue.to_owned(), k.clone());
        k
    }

    /// The values of `fields` in the hashes `a` and `b`, read in one round trip.
    async fn hmget_both<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        a: &str,
        b: &str,
        fields: impl redis::ToRedisArgs,
    ) -> Result<(Vec<Option<T>>, Vec<Option<T>>)> {
        self.idempotent(
            what,
            redis::pipe()
                .cmd("HMGET")
                .arg(a)
                .arg(&fields)
                .cmd("HMGET")
                .arg(b)
                .arg(&fields),
        )
        .await
    }

    /// Maps a Redis error to a storage error that says what was being done and where.
    fn err(&self, what: &'static str) -> impl Fn(RedisError) -> Error + '_ {
        move |e| {
            use redis::ServerErrorKind::{BusyLoading, ClusterDown, TryAgain};
            let loading = e.kind() == redis::ErrorKind::Server(BusyLoading);
            let unreachable = e.is_connection_refusal() || e.is_io_error() || e.is_timeout();
            // A cluster without a primary for some slot (until a replica takes over).
            let failing_over = matches!(e.kind(), redis::ErrorKind::Server(ClusterDown | TryAgain));
            // No sentinel names a master of that name that is up (failing over, or a wrong name).
            let no_master = e.kind() == redis::ErrorKind::MasterNameNotFoundBySentinel;
            let problem = if unreachable {
                "Redis is unreachable"
            } else if loading {
                "Redis is loading its data"
            } else if failing_over {
                "the Redis Cluster has no primary for the slot (failing over?)"
            } else if no_master {
                "no sentinel knows a master of that name that is up (failing over, or a wrong name?)"
            } else {
                "Redis failed"
            };
            // A refused login or a failed TLS handshake, said in words that tell what to fix.
            let (problem, advice) = match connect_errors::problem(&e) {
                Some((problem, advice)) => (problem, format!(" ({advice})")),
                None => (problem, String::new()),
            };
            let err = Error::storage(format!(
                "{what}: {problem} at {}{advice}",
                self.inner.display_url
            ))
            .with_source(e);
            if unreachable || loading || failing_over || no_master {
                err.unreachable()
            } else {
                err
            }
        }
    }
}

/// Adds the keys of a queue's flow data (unique keys, continuations, results, batches), in the
/// order the scripts that settle a job's end (`complete`, `delete`, `cancel`) expect them.
fn with_flow_keys<'a, 'k>(inv: &'a mut ScriptCall<'k>, k: &'k QueueKeys) -> &'a mut ScriptCall<'k> {
    inv.key(&k.hooks)
        .key(&k.unique)
        .key(&k.outbox)
        .key(&k.results)
        .key(&k.presult)
        .key(&k.batches)
}

/// Refuses a job name the record format cannot hold.
fn check_name(name: &str) -> Result<()> {
    if name.contains('|') {
        return Err(Error::config(format!(
            "the job name `{name}` contains `|`, which the Redis backend cannot store"
        )));
    }
    Ok(())
}

/// Groups items by queue, keeping each item's position.
fn by_queue<'a, T>(items: &'a [T], queue: impl Fn(&T) -> &Arc<str>) -> Vec<(Arc<str>, Vec<usize>)> {
    // Most calls carry jobs of one queue: group them without hashing.
    if let Some(first) = items.first().map(&queue) {
        if items.iter().all(|i| queue(i) == first) {
            return vec![(first.clone(), (0..items.len()).collect())];
        }
    }
    let mut groups: Vec<(Arc<str>, Vec<usize>)> = Vec::new();
    let mut index: foldhash::HashMap<&'a str, usize> = foldhash::HashMap::default();
    for (i, item) in items.iter().enumerate() {
        let q = queue(item);
        let g = *index.entry(q.as_ref()).or_insert_with(|| {
            groups.push((q.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    groups
}

#[async_trait]
impl Delivery for RedisStorage {
    fn check(&self, job: &NewJob) -> Result<()> {
        check_name(&job.name)?;
        self.inner.payload.check(job)
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        self.enqueue_jobs(jobs).await
    }

    async fn fetch(&self, req: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        self.fetch_jobs(req).await
    }

    async fn complete(&self, completions: &[Completion]) -> Result<Vec<bool>> {
        self.complete_leases(completions).await
    }

    async fn mark_started(&self, leases: &[Lease]) -> Result<Vec<bool>> {
        self.mark_leases_started(leases).await
    }

    async fn renew(&self, leases: &[Lease], lease: Duration) -> Result<Vec<bool>> {
        self.renew_leases(leases, lease).await
    }

    async fn settle(&self) {
        self.inner.rounds.wait().await;
    }

    async fn release(&self, leases: &[Lease]) -> Result<()> {
        self.release_leases(leases).await
    }

    async fn heartbeat(&self, server: &str, ttl: Duration) -> Result<()> {
        self.heartbeat_now(server, ttl).await
    }

    async fn deregister(&self, server: &str) -> Result<()> {
        self.deregister_now(server).await
    }

    async fn cancel_requested(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        self.cancels_requested(ids).await
    }
}
