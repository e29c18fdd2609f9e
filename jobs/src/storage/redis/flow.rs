//! Flow features of the Redis backend: unique jobs, continuations and limits.
//!
//! Everything a script touches is a key of one queue (one hash tag). A continuation crosses
//! queues, so it is decided in idempotent steps: the parent's completion appends `seq|end` to its
//! queue's outbox in the same script that records the end; then the outbox entries are read,
//! each child queue decides its children (a child no longer awaiting is left alone), and the
//! outbox entries are removed. A crash between steps leaves the entries in the outbox, where the
//! next dispatch of that queue (after any completion or deletion of a job with continuations)
//! picks them up.
//!
//! Adding a continuation crosses queues too, so it is two steps, ordered so that a process dying
//! between them leaves nothing behind that anyone sees: the child's number is reserved, the child
//! is attached to its parent (or its batch is stored naming it), and only then is the child
//! stored. A process that dies after the attach leaves a number its parent's end decides in vain
//! (the decision is kept a day for a store that never comes, then dropped), never a stored child
//! that nothing would decide. When the parent ends between the two steps, its decision comes
//! before the child: it is kept for the child, and storing the child applies it.

use super::scripts::ScriptCall;
use super::{by_queue, lua_millis, record, replies, RedisStorage};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::storage::Flows;
use crate::storage::{now_ms, Batch, BatchProgress, Delivery, Finish, LimitRequest, NewJob};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Outbox entries handled per round of a dispatch.
const DISPATCH_BATCH: isize = 100;
/// How often a storage sweeps a queue's concurrency-slot sets, and how long a set must have gone
/// without a grant to be checked.
const LIMITS_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// At most this many slot sets are checked per sweep.
const LIMITS_SWEEP_BATCH: usize = 200;

impl RedisStorage {
    /// Stores the jobs at `positions` (all of `queue`), honouring their unique keys.
    pub(super) async fn enqueue_unique(
        &self,
        queue: &Arc<str>,
        jobs: &[NewJob],
        positions: &[usize],
        now: u64,
    ) -> Result<Vec<JobId>> {
        let k = self.keys(queue);
        let mut inv = ScriptCall::new(&self.inner.scripts.enqueue_unique);
        inv.key(&k.seq)
            .key(&k.pending)
            .key(&k.jobs)
            .key(&k.scheduled)
            .key(&k.hist)
            .key(&k.wake)
            .key(&k.unique)
            .key(&k.hooks)
            .key(&k.succeeded)
            .key(&k.failed)
            .key(&k.deleted)
            .arg(now);
        for &i in positions {
            let job = &jobs[i];
            let (key, window) = job.unique.as_ref().map_or(("", 0), |u| {
                (u.key.as_str(), u.window.map_or(0, |w| lua_millis(w).max(1)))
            });
            inv.arg(job.run_at_ms.unwrap_or(0).min(1 << 52))
                .arg(record::encode(
                    job.run_at_ms.map_or(now, |t| t.max(now)),
                    &job.name,
                    &job.args,
                    &job.headers,
                ))
                .arg(key)
                .arg(window);
        }
        let seqs: Vec<u64> = self
            .invoke_acknowledged(&inv, "enqueueing unique jobs")
            .await?;
        Ok(seqs
            .into_iter()
            .map(|seq| JobId::new(queue.clone(), seq))
            .collect())
    }

    /// Decides the continuations of the parents in `queue`'s outbox.
    pub(super) async fn dispatch_continuations(&self, queue: &Arc<str>) -> Result<()> {
        let k = self.keys(queue);
        loop {
            let entries: Vec<String> = self
                .idempotent(
                    "dispatching continuations",
                    redis::cmd("LRANGE")
                        .arg(&k.outbox)
                        .arg(0)
                        .arg(DISPATCH_BATCH - 1),
                )
                .await?;
            if entries.is_empty() {
                return Ok(());
            }
            let parents: Vec<&str> = entries
                .iter()
                .map(|e| e.split('|').next().unwrap_or(""))
                .collect();
            let (conts, results) = self
                .hmget_both::<String>("dispatching continuations", &k.conts, &k.results, &parents)
                .await?;
            // (child queue, child seq, run, parent result)
            let mut decisions: Vec<(Arc<str>, String, bool, String)> = Vec::new();
            for ((entry, cont), result) in entries.iter().zip(conts).zip(results) {
                let end = entry.rsplit('|').next().and_then(|e| e.chars().next());
                let (Some(end), Some(cont)) = (end, cont) else {
                    continue;
                };
                let children: Vec<(String, String, String)> =
                    serde_json::from_str(&cont).unwrap_or_default();
                for (cq, cseq, on) in children {
                    let Some(run) = Finish::from_code(&on).and_then(|on| on.decide(end)) else {
                        continue;
                    };
                    let result = if run && end == 'O' {
                        result.clone().unwrap_or_default()
                    } else {
                        String::new()
                    };
                    decisions.push((Arc::from(cq), cseq, run, result));
                }
            }
            for (cq, positions) in by_queue(&decisions, |d| &d.0) {
                let items: Vec<(&str, bool, &str)> = positions
                    .iter()
                    .map(|&i| {
                        let d = &decisions[i];
                        (d.1.as_str(), d.2, d.3.as_str())
                    })
                    .collect();
                self.decide_children(&cq, &items).await?;
            }
            let r = &self.inner.retention;
            let mut inv = ScriptCall::new(&self.inner.scripts.continuation_commit);
            inv.key(&k.outbox)
                .key(&k.conts)
                .key(&k.hooks)
                .key(&k.results)
                .key(&k.batches)
                .key(&k.batches_done)
                .arg(r.succeeded_max.min(1 << 52))
                .arg(lua_millis(r.succeeded_ttl));
            for e in &entries {
                inv.arg(e);
            }
            let _: i64 = inv
                .invoke(&mut self.conn())
                .await
                .map_err(self.err("dispatching continuations"))?;
            if entries.len() < DISPATCH_BATCH as usize {
                return Ok(());
            }
        }
    }

    /// Makes awaiting children of `queue` ready or deletes them: (seq, run, parent result).
    async fn decide_children(&self, queue: &str, items: &[(&str, bool, &str)]) -> Result<()> {
        let k = self.keys(queue);
        let mut inv = ScriptCall::new(&self.inner.scripts.continuation_decide);
        inv.key(&k.awaiting)
            .key(&k.pending)
            .key(&k.jobs)
            .key(&k.hist)
            .key(&k.wake)
            .key(&k.deleted)
            .key(&k.presult)
            .key(&k.hooks)
            .key(&k.early);
        for &(seq, run, result) in items {
            inv.arg(seq).arg(if run { "1" } else { "0" }).arg(result);
        }
        let _: i64 = inv
            .invoke(&mut self.conn())
            .await
            .map_err(self.err("deciding continuations"))?;
        Ok(())
    }

    pub(super) async fn continue_with_impl(
        &self,
        parent: &JobId,
        child: NewJob,
        on: Finish,
    ) -> Result<Option<JobId>> {
        self.check(&child)?;
        self.register_queue(&child.queue).await?;
        let pk = self.keys(parent.queue());
        let ck = self.keys(&child.queue);
        let seq = self.reserve_seqs(&child.queue, &ck, 1).await?;
        // Step 1: attach the child to its parent, unless the parent's end already decides it.
        let mut inv = ScriptCall::new(&self.inner.scripts.continuation_attach);
        inv.key(&pk.jobs)
            .key(&pk.hooks)
            .key(&pk.conts)
            .key(&pk.succeeded)
            .key(&pk.failed)
            .key(&pk.deleted)
            .key(&pk.results)
            .arg(parent.seq())
            .arg(&*child.queue)
            .arg(seq)
            .arg(on.code());
        let reply: Vec<String> = self
            .invoke_acknowledged(&inv, "adding a continuation")
            .await?;
        let decision = match reply.first().map_or("", String::as_str) {
            "" => None,
            // The parent is unknown (never stored, or trimmed): nothing is stored.
            "-" => return Ok(None),
            e => {
                let run = e.chars().next().and_then(|c| on.decide(c)).unwrap_or(false);
                let result = if run && e == "O" {
                    reply.get(1).map_or("", String::as_str)
                } else {
                    ""
                };
                Some((run, result))
            }
        };
        // Step 2: store it.
        self.store_continuation(&child, seq, &format!("waiting for {parent}"), decision)
            .await?;
        Ok(Some(JobId::new(child.queue.clone(), seq)))
    }

    /// Stores continuation `job` as number `seq` (reserved by the caller) once it is attached:
    /// awaiting, or decided as `decision` says (run?, parent result), or as a decision that came
    /// before it says.
    async fn store_continuation(
        &self,
        job: &NewJob,
        seq: u64,
        reason: &str,
        decision: Option<(bool, &str)>,
    ) -> Result<()> {
        let k = self.keys(&job.queue);
        let now = now_ms();
        let (run, result) = match decision {
            None => ("", ""),
            Some((run, result)) => (if run { "1" } else { "0" }, result),
        };
        let mut inv = ScriptCall::new(&self.inner.scripts.continuation_create);
        inv.key(&k.awaiting)
            .key(&k.pending)
            .key(&k.jobs)
            .key(&k.hist)
            .key(&k.wake)
            .key(&k.deleted)
            .key(&k.presult)
            .key(&k.hooks)
            .key(&k.early)
            .arg(seq)
            .arg(now)
            .arg(record::encode(now, &job.name, &job.args, &job.headers))
            .arg(reason)
            .arg(run)
            .arg(result);
        let stored: i64 = self
            .invoke_acknowledged(&inv, "adding a continuation")
            .await?;
        if stored != 1 {
            return Err(Error::storage(format!(
                "adding a continuation: job number {seq} of queue `{}` is taken already (was \
                 Redis flushed or restored while this process ran?)",
                job.queue
            )));
        }
        Ok(())
    }

    pub(super) async fn parent_result_impl(&self, id: &JobId) -> Result<Option<String>> {
        let k = self.keys(id.queue());
        self.idempotent(
            "reading a parent's result",
            redis::cmd("HGET").arg(&k.presult).arg(id.seq()),
        )
        .await
    }

    pub(super) async fn acquire_limits_impl(
        &self,
        requests: &[LimitRequest],
        retry_in: Duration,
    ) -> Result<Vec<bool>> {
        let mut granted = vec![false; requests.len()];
        for (queue, positions) in by_queue(requests, |r| r.lease.id.queue_arc()) {
            let k = self.keys(&queue);
            let prefix = &self.inner.prefix;
            let mut inv = ScriptCall::new(&self.inner.scripts.acquire_limits);
            inv.key(&k.lease_groups)
                .key(&k.tokens)
                .key(&k.scheduled)
                .key(&k.jobs)
                .key(&k.hist)
                .key(&k.wake)
                .key(&k.lease_counts)
                .key(&k.limit_keys);
            for &i in &positions {
                let r = &requests[i];
                inv.key(super::keys::QueueKeys::slots(prefix, &queue, &r.key))
                    .key(super::keys::QueueKeys::starts(prefix, &queue, &r.key));
            }
            inv.arg(lua_millis(retry_in));
            for &i in &positions {
                let r = &requests[i];
                let (count, per) = r.rate.map_or((0, 0), |(c, p)| (c, lua_millis(p).max(1)));
                inv.arg(r.lease.id.seq())
                    .arg(r.lease.token.0)
                    .arg(r.concurrency.unwrap_or(0))
                    .arg(count)
                    .arg(per);
            }
            let res = inv
                .invoke(&mut self.conn())
                .await
                .map_err(self.err("acquiring limit slots"))?;
            for (&i, ok) in positions.iter().zip(replies::grants(res, positions.len())?) {
                granted[i] = ok;
            }
            if self.due_for_limits_sweep(&queue) {
                self.sweep_limits(&k).await?;
            }
        }
        Ok(granted)
    }

    /// Whether this storage last swept `queue`'s concurrency-slot sets `LIMITS_SWEEP_EVERY` ago
    /// or more (and so sweeps now).
    fn due_for_limits_sweep(&self, queue: &Arc<str>) -> bool {
        let mut swept = self
            .inner
            .limits_swept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        match swept.get(queue) {
            Some(&at) if now.duration_since(at) < LIMITS_SWEEP_EVERY => false,
            _ => {
                swept.insert(queue.clone(), now);
                true
            }
        }
    }

    /// Drops the concurrency-slot sets of a queue whose holders all ended, among those no job was
    /// granted a slot of for `LIMITS_SWEEP_EVERY` (a distinct limit key per user would otherwise
    /// leave a set behind per user), at most `LIMITS_SWEEP_BATCH` a call.
    async fn sweep_limits(&self, k: &super::keys::QueueKeys) -> Result<()> {
        let idle_since = now_ms().saturating_sub(super::millis(LIMITS_SWEEP_EVERY));
        let stale: Vec<String> = self
            .idempotent(
                "sweeping limit slots",
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&k.limit_keys)
                    .arg("-inf")
                    .arg(idle_since)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(LIMITS_SWEEP_BATCH),
            )
            .await?;
        if stale.is_empty() {
            return Ok(());
        }
        let mut inv = ScriptCall::new(&self.inner.scripts.limits_sweep);
        inv.key(&k.lease_groups).key(&k.tokens).key(&k.limit_keys);
        for key in &stale {
            inv.key(key.as_str());
        }
        let _: i64 = inv
            .invoke(&mut self.conn())
            .await
            .map_err(self.err("sweeping limit slots"))?;
        Ok(())
    }

    pub(super) async fn enqueue_batch_impl(
        &self,
        jobs: Vec<NewJob>,
        then: Option<NewJob>,
    ) -> Result<Batch> {
        for job in jobs.iter().chain(&then) {
            self.check(job)?;
        }
        let queue: Arc<str> = match jobs.first() {
            Some(j) => j.queue.clone(),
            None => then
                .as_ref()
                .map_or_else(|| Arc::from("default"), |t| t.queue.clone()),
        };
        self.register_queue(&queue).await?;
        if let Some(t) = &then {
            self.register_queue(&t.queue).await?;
        }
        if jobs.iter().any(|j| j.queue != queue) {
            return Err(Error::config(
                "the jobs of a batch must all be on one queue (a batch is stored atomically, \
                 and atomicity spans one queue)",
            ));
        }
        let now = now_ms();
        // The continuation's number first: the batch names it, and it is stored after the batch
        // (see the module docs), so a crash in between leaves no continuation nothing decides.
        let then_id = match &then {
            Some(t) => {
                let ck = self.keys(&t.queue);
                let seq = self.reserve_seqs(&t.queue, &ck, 1).await?;
                Some(JobId::new(t.queue.clone(), seq))
            }
            None => None,
        };
        // Step 1: the batch and its members, atomically.
        let k = self.keys(&queue);
        let mut inv = ScriptCall::new(&self.inner.scripts.enqueue_batch);
        inv.key(&k.seq)
            .key(&k.pending)
            .key(&k.jobs)
            .key(&k.wake)
            .key(&k.hooks)
            .key(&k.batches)
            .key(&k.conts)
            .key(&k.outbox)
            .arg(then_id.as_ref().map_or("", JobId::queue))
            .arg(then_id.as_ref().map_or(0, JobId::seq));
        for job in &jobs {
            inv.arg(record::encode(now, &job.name, &job.args, &job.headers));
        }
        let (batch, first, fired): (u64, u64, i64) =
            self.invoke_acknowledged(&inv, "enqueueing a batch").await?;
        // Step 2: the continuation.
        if let (Some(t), Some(id)) = (&then, &then_id) {
            self.store_continuation(t, id.seq(), "waiting for a batch", None)
                .await?;
        }
        if fired == 1 {
            self.dispatch_continuations(&queue).await?;
        }
        Ok(Batch {
            id: JobId::new(queue.clone(), batch),
            jobs: (0..jobs.len() as u64)
                .map(|i| JobId::new(queue.clone(), first + i))
                .collect(),
            then: then_id,
        })
    }

    pub(super) async fn batch_progress_impl(&self, id: &JobId) -> Result<Option<BatchProgress>> {
        let k = self.keys(id.queue());
        let b = id.seq();
        let (total, succeeded, failed): (Option<u64>, Option<u64>, Option<u64>) = self
            .idempotent(
                "reading a batch",
                redis::cmd("HMGET")
                    .arg(&k.batches)
                    .arg(format!("{b}:t"))
                    .arg(format!("{b}:s"))
                    .arg(format!("{b}:f")),
            )
            .await?;
        Ok(total.map(|total| BatchProgress {
            total,
            succeeded: succeeded.unwrap_or(0),
            failed: failed.unwrap_or(0),
        }))
    }
}

#[async_trait]
impl Flows for RedisStorage {
    async fn continue_with(
        &self,
        parent: &JobId,
        child: NewJob,
        on: Finish,
    ) -> Result<Option<JobId>> {
        self.continue_with_impl(parent, child, on).await
    }

    async fn parent_result(&self, id: &JobId) -> Result<Option<String>> {
        self.parent_result_impl(id).await
    }

    async fn acquire_limits(
        &self,
        requests: &[LimitRequest],
        retry_in: Duration,
    ) -> Result<Vec<bool>> {
        self.acquire_limits_impl(requests, retry_in).await
    }

    async fn enqueue_batch(&self, jobs: Vec<NewJob>, then: Option<NewJob>) -> Result<Batch> {
        self.enqueue_batch_impl(jobs, then).await
    }

    async fn batch_progress(&self, id: &JobId) -> Result<Option<BatchProgress>> {
        self.batch_progress_impl(id).await
    }
}
