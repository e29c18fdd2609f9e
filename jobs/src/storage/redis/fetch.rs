//! Fetching: lease rounds over a worker's queues, and the blocking wait between them.
//!
//! A lease round runs on a task of its own and hands its jobs over through a channel: if the
//! fetch that asked for it is dropped meanwhile (its worker is shutting down), the round hands
//! the jobs it leased straight back to their queues instead of leaving them leased until their
//! lease runs out.

use super::scripts::ScriptCall;
use super::{lua_millis, replies, RedisStorage, MAINTENANCE_EVERY};
use crate::error::{Error, Result};
use crate::storage::{Delivery, FetchRequest, FetchedJob, Lease};
use redis::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// What one lease round over a worker's queues found.
struct Round {
    jobs: Vec<FetchedJob>,
    /// In how many milliseconds the earliest scheduled job or lease deadline comes due.
    next_in: Option<u64>,
    /// Whether some queue skipped its maintenance (see `due_for_maintenance`).
    skipped_maintenance: bool,
}

impl RedisStorage {
    /// Leases up to `req.max` jobs over `req.queues`, waiting up to `req.wait` for some.
    pub(super) async fn fetch_jobs(&self, req: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        let give_up_at = tokio::time::Instant::now() + req.wait;
        let max = req.max.max(1);
        let mut force_maintenance = false;
        loop {
            let round = self
                .lease_round_detached(req.queues, max, req.lease, force_maintenance)
                .await?;
            if !round.jobs.is_empty() || req.queues.is_empty() {
                return Ok(round.jobs);
            }
            if round.skipped_maintenance {
                // Nothing ready: promote and reap before deciding how long to wait.
                force_maintenance = true;
                continue;
            }
            let now = tokio::time::Instant::now();
            if now >= give_up_at {
                return Ok(Vec::new());
            }
            let mut timeout = give_up_at - now;
            let mut due_in = None;
            if let Some(ms) = round.next_in {
                // A little past the event, so the next script sees it due.
                let until = Duration::from_millis(ms.saturating_add(2));
                if until < timeout {
                    timeout = until;
                    due_in = Some(until);
                }
            }
            match due_in {
                // Redis checks blocking timeouts only every 1/hz (100 ms by default), so a job
                // coming due is waited for with a local timer (the `BLPOP` still returns early
                // on an enqueue). Dropping the wait drops its connection: one reconnect per due
                // event while idle.
                Some(due_in) => tokio::select! {
                    r = self.wait(req.queues, timeout) => r?,
                    () = tokio::time::sleep(due_in) => {}
                },
                None => self.wait(req.queues, timeout).await?,
            }
        }
    }

    /// Runs [`lease_round`](Self::lease_round) on its own task, so that dropping this future
    /// never strands leased jobs: whatever the round leased after its caller went away is
    /// handed back at once (and `settle` waits for that).
    async fn lease_round_detached(
        &self,
        queues: &[Arc<str>],
        max: usize,
        lease: Duration,
        force_maintenance: bool,
    ) -> Result<Round> {
        let this = self.clone();
        let queues = queues.to_vec();
        let (tx, rx) = oneshot::channel();
        self.inner.rounds.spawn(async move {
            let round = this
                .lease_round(&queues, max, lease, force_maintenance)
                .await;
            // Refused when the caller went away before the round ended.
            if let Err(Ok(round)) = tx.send(round) {
                this.hand_back(&round.jobs).await;
            }
        });
        let mut pending = PendingRound {
            rx,
            storage: self.clone(),
        };
        (&mut pending.rx).await.map_err(|_| {
            Error::storage("fetching jobs: the fetch task stopped (its runtime shut down)")
        })?
    }

    /// Hands back the jobs of a round nobody took.
    async fn hand_back(&self, jobs: &[FetchedJob]) {
        let leases: Vec<Lease> = jobs.iter().map(FetchedJob::lease).collect();
        if leases.is_empty() {
            return;
        }
        tracing::debug!(
            jobs = leases.len(),
            "the fetch was dropped after leasing jobs: handing them back"
        );
        if let Err(e) = self.release(&leases).await {
            tracing::warn!(error = %e, "could not hand back jobs of a dropped fetch; they run again once their lease runs out");
        }
    }

    /// One pass over the queues in order, leasing up to `max` jobs in all. A queue that fails is
    /// passed over (the next fetch tries it again); the pass fails when it leased nothing and a
    /// queue failed.
    async fn lease_round(
        &self,
        queues: &[Arc<str>],
        max: usize,
        lease: Duration,
        force_maintenance: bool,
    ) -> Result<Round> {
        let mut round = Round {
            jobs: Vec::new(),
            next_in: None,
            skipped_maintenance: false,
        };
        let mut failed = None;
        for queue in queues {
            if round.jobs.len() >= max {
                break;
            }
            let maintain = force_maintenance || self.due_for_maintenance(queue);
            round.skipped_maintenance |= !maintain;
            let want = max - round.jobs.len();
            match self
                .fetch_queue(queue, want, lease, maintain, &mut round.jobs)
                .await
            {
                Ok((now, next)) => {
                    if let Some(t) = next {
                        let wait = t.saturating_sub(now);
                        round.next_in = Some(round.next_in.map_or(wait, |n| n.min(wait)));
                    }
                }
                Err(e) => {
                    // The other queues may be fine (on a cluster, a queue whose primary fails
                    // over is unreachable while the others are not): go on with them.
                    tracing::warn!(error = %e, queue = %queue, "fetching from a queue failed; going on with the other queues");
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            // Nothing leased: the failure is the fetch's (the worker backs off and retries).
            Some(e) if round.jobs.is_empty() => Err(e),
            _ => Ok(round),
        }
    }

    /// Whether a fetch on `queue` should promote due jobs and reap expired leases: at most every
    /// `MAINTENANCE_EVERY` while a worker fetches back to back (the maintenance is a fixed cost
    /// per call that small batches would pay again and again), and always before waiting.
    fn due_for_maintenance(&self, queue: &Arc<str>) -> bool {
        let mut maintained = self
            .inner
            .maintained
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        match maintained.get_mut(queue) {
            Some(at) if now.duration_since(*at) < MAINTENANCE_EVERY => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                maintained.insert(queue.clone(), now);
                true
            }
        }
    }

    async fn fetch_queue(
        &self,
        queue: &Arc<str>,
        max: usize,
        lease: Duration,
        maintain: bool,
        out: &mut Vec<FetchedJob>,
    ) -> Result<(u64, Option<u64>)> {
        let k = self.keys(queue);
        let mut inv = ScriptCall::new(&self.inner.scripts.fetch);
        inv.key(&k.pending)
            .key(&k.jobs)
            .key(&k.lease_groups)
            .key(&k.tokens)
            .key(&k.scheduled)
            .key(&k.hist)
            .key(&k.stats)
            .key(&k.wake)
            .key(&k.lease_counts)
            .key(&k.leases)
            .key(&k.started)
            .arg(max)
            .arg(lua_millis(lease))
            .arg(self.inner.maintenance_batch)
            .arg(if maintain { "1" } else { "0" })
            .arg(self.inner.payload.0);
        let reply: Vec<Value> = inv
            .invoke(&mut self.conn())
            .await
            .map_err(self.err("fetching jobs"))?;
        let mut reply = replies::fetch(queue, reply, self.inner.payload)?;
        out.append(&mut reply.jobs);
        let malformed = reply.refused;
        if !malformed.is_empty() {
            // Leased but impossible to perform (malformed, or over the payload limit): failed
            // through the normal path, so the job is kept for inspection and its continuations
            // are decided.
            tracing::warn!(jobs = malformed.len(), queue = %queue, "failing job records that cannot be performed");
            self.complete(&malformed).await?;
        }
        Ok((reply.now, reply.next))
    }
}

/// The caller's end of a detached lease round. Dropped after the round was sent but before it
/// was taken (the caller was cancelled between the two), it hands the round's jobs back.
struct PendingRound {
    rx: oneshot::Receiver<Result<Round>>,
    storage: RedisStorage,
}

impl Drop for PendingRound {
    fn drop(&mut self) {
        let Ok(Ok(round)) = self.rx.try_recv() else {
            return;
        };
        if round.jobs.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::warn!(
                jobs = round.jobs.len(),
                "a fetch was dropped outside a runtime after leasing jobs; they run again once their lease runs out"
            );
            return;
        }
        let storage = self.storage.clone();
        self.storage
            .inner
            .rounds
            .spawn(async move { storage.hand_back(&round.jobs).await });
    }
}
