//! The embedded in-memory backend: the default for the quick start and for tests.
//!
//! It keeps the same semantics as the Redis backend (leases with fencing tokens, reaping of
//! expired leases, scheduled jobs, retention), so code that works here works there. Jobs live
//! only as long as the process: use it for development, tests and jobs you can afford to lose.

mod builder;
mod complete;
mod flow;
mod inspect;
mod leases;
mod limits;
mod monitor;
mod queue;
mod recurring;

use super::PayloadLimit;
use super::{now_ms, Completion, FetchRequest, FetchedJob, Lease, LeaseToken, NewJob, Retention};
use crate::error::Result;
use crate::job::JobId;
use crate::state::JobState;
use crate::storage::Delivery;
use async_trait::async_trait;
use foldhash::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

pub use builder::MemoryStorageBuilder;
use queue::{info, Queue, Record};

/// Reaping and promotion handle at most this many jobs per fetch, so no call grows with the backlog.
const MAINTENANCE_BATCH: usize = 1_000;

/// Jobs kept in process memory. Cheap to clone: clones share the same jobs.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// #[jobs::background_job]
/// async fn greet(name: String) {
///     println!("hello, {name}");
/// }
///
/// let storage = jobs::MemoryStorage::new();
/// let client = jobs::Client::new(storage.clone());
/// let id = jobs::enqueue!(&client, greet("ada".to_owned())).await?;
/// assert_eq!(client.storage().stats("default").await?.enqueued, 1);
/// # let _ = id; Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStorage {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
    /// Woken on every enqueue, release and requeue, so a waiting fetch returns at once.
    ready: Notify,
    /// Fixed when the storage is built, and checked by every write: no stored job is over it,
    /// so fetches need not check again.
    payload: PayloadLimit,
}

#[derive(Default)]
struct Inner {
    queues: HashMap<Arc<str>, Queue>,
    next_token: u64,
    retention: Retention,
    servers: HashMap<String, u64>,
    recurring: recurring::Registry,
    /// Concurrency and rate limit state, only for jobs that have limits.
    limits: limits::Limits,
    /// Batches by id.
    batches: flow::Batches,
    /// Server reports by name, with their expiry (ms).
    reports: HashMap<String, (crate::monitor::ServerReport, u64)>,
    /// Ids of paused recurring jobs.
    paused_recurring: std::collections::BTreeSet<String>,
}

impl MemoryStorage {
    /// An empty storage with the default [`Retention`].
    pub fn new() -> Self {
        MemoryStorage::default()
    }

    /// An empty storage that keeps finished jobs as `retention` says.
    pub fn with_retention(retention: Retention) -> Self {
        MemoryStorage::builder().retention(retention).build()
    }

    /// A builder, to set the retention and the payload limit.
    pub fn builder() -> MemoryStorageBuilder {
        MemoryStorageBuilder::default()
    }

    fn with_payload_limit(payload: PayloadLimit) -> Self {
        MemoryStorage {
            shared: Arc::new(Shared {
                payload,
                ..Shared::default()
            }),
        }
    }

    /// After a deletion: frees the job's unique key and decides its continuations, if it has
    /// any, waking fetches for the continuations that became ready.
    fn deletion_ended(&self, mut inner: MutexGuard<'_, Inner>, id: &JobId, hooked: bool, now: u64) {
        if hooked {
            flow::ended(&mut inner, vec![(id.clone(), 'D', None)], now);
            drop(inner);
            self.shared.ready.notify_waiters();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a record half-written in a way later
        // calls misread (every mutation is a few field writes), so keep going on poison.
        self.shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl Delivery for MemoryStorage {
    fn check(&self, job: &NewJob) -> Result<()> {
        self.shared.payload.check(job)
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        for job in &jobs {
            self.check(job)?;
        }
        let now = now_ms();
        let mut ids = Vec::with_capacity(jobs.len());
        let mut woke = false;
        {
            let mut inner = self.lock();
            for job in jobs {
                let queue = inner.queues.entry(job.queue.clone()).or_default();
                if let Some(existing) = job.unique.as_ref().and_then(|u| queue.live_unique(u, now))
                {
                    ids.push(JobId::new(job.queue, existing));
                    continue;
                }
                queue.seq += 1;
                let seq = queue.seq;
                let due = job.run_at_ms.filter(|&t| t > now);
                let state = if due.is_some() {
                    JobState::Scheduled
                } else {
                    JobState::Enqueued
                };
                let name = queue.intern(&job.name);
                queue.jobs.insert(
                    seq,
                    Record::new(name, job.args, state, None, now, due.unwrap_or(0))
                        .with_headers(job.headers),
                );
                if let Some(u) = &job.unique {
                    queue.claim_unique(u, seq, now);
                }
                match due {
                    Some(t) => {
                        queue.scheduled.insert((t, seq));
                    }
                    None => queue.pending.push_back(seq),
                }
                woke = true;
                ids.push(JobId::new(job.queue, seq));
            }
        }
        if woke {
            // A scheduled job changes when the next wake-up is due, so wake waiters either way.
            self.shared.ready.notify_waiters();
        }
        Ok(ids)
    }

    async fn fetch(&self, req: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        let give_up_at = tokio::time::Instant::now() + req.wait;
        loop {
            let notified = self.shared.ready.notified();
            tokio::pin!(notified);
            // Register interest before looking, so an enqueue in between is not missed.
            notified.as_mut().enable();
            let next_event = {
                let mut inner = self.lock();
                let now = now_ms();
                limits::maintain(&mut inner, now);
                let lease_ms = millis(req.lease);
                let mut out = Vec::with_capacity(req.max.min(MAINTENANCE_BATCH));
                let mut next_event: Option<u64> = None;
                for name in req.queues {
                    if out.len() >= req.max {
                        break;
                    }
                    let mut token = inner.next_token;
                    let Some(queue) = inner.queues.get_mut(name) else {
                        continue;
                    };
                    queue.maintain(now);
                    while out.len() < req.max && !queue.paused {
                        let Some(seq) = queue.pending.pop_front() else {
                            break;
                        };
                        let Some(rec) = queue.jobs.get_mut(&seq) else {
                            continue;
                        };
                        token += 1;
                        let ready_at_ms = rec.ready_at_ms();
                        let deadline = now.saturating_add(lease_ms);
                        rec.lease = Some((LeaseToken(token), deadline));
                        rec.started = false;
                        rec.enter(JobState::Processing, now, None);
                        queue.leases.insert(deadline, seq);
                        out.push(FetchedJob {
                            id: JobId::new(name.clone(), seq),
                            name: rec.name.clone(),
                            args: rec.args.clone(),
                            attempt: rec.attempts + 1,
                            enqueued_at_ms: rec.enqueued_at_ms,
                            ready_at_ms,
                            headers: rec.headers.clone(),
                            token: LeaseToken(token),
                            crashes: rec.crashes,
                            orphaned: rec.orphaned,
                        });
                    }
                    if let Some(t) = queue.next_event() {
                        next_event = Some(next_event.map_or(t, |n: u64| n.min(t)));
                    }
                    inner.next_token = token;
                }
                if !out.is_empty() {
                    return Ok(out);
                }
                next_event
            };
            let now = tokio::time::Instant::now();
            if now >= give_up_at {
                return Ok(Vec::new());
            }
            let mut wake_at = give_up_at;
            if let Some(t) = next_event {
                let in_ms = t.saturating_sub(now_ms());
                wake_at = wake_at.min(now + Duration::from_millis(in_ms));
            }
            let _ = tokio::time::timeout_at(wake_at, notified).await;
        }
    }

    async fn complete(&self, completions: &[Completion]) -> Result<Vec<bool>> {
        self.complete_now(completions).await
    }

    async fn mark_started(&self, leases: &[Lease]) -> Result<Vec<bool>> {
        let mut inner = self.lock();
        Ok(leases
            .iter()
            .map(|l| {
                let rec = inner
                    .queues
                    .get_mut(l.id.queue())
                    .and_then(|q| q.jobs.get_mut(&l.id.seq()))
                    .filter(|rec| {
                        rec.state == JobState::Processing
                            && rec.lease.is_some_and(|(token, _)| token == l.token)
                    });
                rec.map(|rec| rec.started = true).is_some()
            })
            .collect())
    }

    async fn renew(&self, leases: &[Lease], lease: Duration) -> Result<Vec<bool>> {
        let now = now_ms();
        let mut inner = self.lock();
        let held = leases
            .iter()
            .map(|l| {
                let Some(queue) = inner.queues.get_mut(l.id.queue()) else {
                    return false;
                };
                let seq = l.id.seq();
                let Some(rec) = queue.jobs.get_mut(&seq) else {
                    return false;
                };
                match rec.lease {
                    Some((token, _)) if token == l.token && rec.state == JobState::Processing => {
                        let new_deadline = now.saturating_add(millis(lease));
                        queue.leases.remove();
                        queue.leases.insert(new_deadline, seq);
                        rec.lease = Some((token, new_deadline));
                        true
                    }
                    _ => false,
                }
            })
            .collect();
        // A renewal leaves the old deadline's entry behind.
        for queue in inner.queues.values_mut() {
            queue.compact_leases();
        }
        Ok(held)
    }

    async fn release(&self, leases: &[Lease]) -> Result<()> {
        let now = now_ms();
        {
            let mut inner = self.lock();
            for l in leases {
                let Some(queue) = inner.queues.get_mut(l.id.queue()) else {
                    continue;
                };
                let seq = l.id.seq();
                let Some(rec) = queue.jobs.get_mut(&seq) else {
                    continue;
                };
                let Some((token, _)) = rec.lease else {
                    continue;
                };
                if token != l.token {
                    continue;
                }
                queue.leases.remove();
                rec.lease = None;
                rec.started = false;
                rec.enter(
                    JobState::Enqueued,
                    now,
                    Some("handed back by a worker shutting down".to_owned()),
                );
                queue.pending.push_front(seq);
            }
            for queue in inner.queues.values_mut() {
                queue.compact_leases();
            }
        }
        self.shared.ready.notify_waiters();
        Ok(())
    }

    async fn heartbeat(&self, server: &str, ttl: Duration) -> Result<()> {
        let expires = now_ms().saturating_add(millis(ttl));
        self.lock().servers.insert(server.to_owned(), expires);
        Ok(())
    }

    async fn deregister(&self, server: &str) -> Result<()> {
        self.lock().servers.remove(server);
        Ok(())
    }

    async fn cancel_requested(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        let inner = self.lock();
        Ok(ids
            .iter()
            .map(|id| {
                inner
                    .queues
                    .get(id.queue())
                    .is_some_and(|q| q.cancels.contains(&id.seq()))
            })
            .collect())
    }
}
