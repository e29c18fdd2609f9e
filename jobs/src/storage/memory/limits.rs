//! Concurrency and rate limits of the in-memory backend, and what keeps their state bounded: a
//! limit key (a per-user `limit_key` makes one per user) is kept only while it has a live slot
//! holder or a start within its rate window. A key is dropped when a request for it finds it
//! empty, and a sweep over the keys in the order they appeared drops the others: a bounded part
//! of it on every limits request, and at most every `SWEEP_EVERY` on a fetch (so an idle storage
//! empties too), as the Redis backend sweeps its slot sets and lets its start sets expire.

use super::{Inner, Queue};
use crate::state::JobState;
use crate::storage::LimitRequest;
use foldhash::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// A limit: (queue, key).
type LimitId = (Arc<str>, String);

/// At least this many keys are checked per sweep (as many as the Redis backend checks).
const SWEEP_BATCH: usize = 200;
/// How often a fetch sweeps, when there are keys.
const SWEEP_EVERY_MS: u64 = 1_000;

/// Concurrency slots and rate windows by (queue, key).
#[derive(Default)]
pub(super) struct Limits {
    /// Holders of concurrency slots: (seq, lease token). Never empty.
    slots: HashMap<LimitId, Vec<(u64, u64)>>,
    /// Rate windows. Never empty.
    windows: HashMap<LimitId, RateWindow>,
    /// Every key of `slots` and `windows`, in the order they appeared, the order sweeps check
    /// them in; also keys since dropped, and (dropped and back) some twice, until a sweep comes
    /// by. Rebuilt when those would make it more than twice as long as the keys.
    sweep: VecDeque<LimitId>,
    /// When a fetch last swept.
    swept_at_ms: u64,
}

/// The starts of one rate limit within its window.
struct RateWindow {
    /// The window, as the latest request said.
    per_ms: u64,
    /// Start times, oldest first.
    starts: VecDeque<u64>,
}

impl RateWindow {
    /// Forgets the starts no longer within the window.
    fn prune(&mut self, now: u64) {
        while self
            .starts
            .front()
            .is_some_and(|&t| t.saturating_add(self.per_ms) <= now)
        {
            self.starts.pop_front();
        }
    }
}

/// Keeps the holders whose lease is held and unexpired: completion, release and lease expiry all
/// free a slot, so a crashed holder cannot block the key.
fn keep_live(holders: &mut Vec<(u64, u64)>, queue: Option<&Queue>, now: u64) {
    holders.retain(|&(seq, token)| {
        queue.and_then(|q| q.jobs.get(&seq)).is_some_and(|r| {
            r.state == JobState::Processing
                && r.lease
                    .is_some_and(|(t, deadline)| t.0 == token && deadline > now)
        })
    });
}

impl Limits {
    /// Drops `key`'s slots and window if nothing in them is live any more; whether some is.
    fn prune(&mut self, key: &LimitId, queues: &HashMap<Arc<str>, Queue>, now: u64) -> bool {
        if let Some(holders) = self.slots.get_mut(key) {
            keep_live(holders, queues.get(&key.0), now);
            if holders.is_empty() {
                self.slots.remove(key);
            }
        }
        if let Some(window) = self.windows.get_mut(key) {
            window.prune(now);
            if window.starts.is_empty() {
                self.windows.remove(key);
            }
        }
        self.slots.contains_key(key) || self.windows.contains_key(key)
    }

    /// Checks up to `budget` keys, oldest first, dropping those with nothing live.
    fn sweep(&mut self, budget: usize, queues: &HashMap<Arc<str>, Queue>, now: u64) {
        for _ in 0..budget.min(self.sweep.len()) {
            let Some(key) = self.sweep.pop_front() else {
                break;
            };
            if self.prune(&key, queues, now) {
                self.sweep.push_back(key);
            }
        }
        let keys = self.slots.len() + self.windows.len();
        if self.sweep.len() > 2 * keys + SWEEP_BATCH {
            let mut seen = foldhash::HashSet::default();
            self.sweep.retain(|k| {
                (self.slots.contains_key(k) || self.windows.contains_key(k))
                    && seen.insert(k.clone())
            });
        }
    }

    /// A grant of a slot and/or a start under `key`.
    fn grant(&mut self, key: LimitId, holder: Option<(u64, u64)>, start: Option<(u64, u64)>) {
        if !self.slots.contains_key(&key) && !self.windows.contains_key(&key) {
            self.sweep.push_back(key.clone());
        }
        if let Some(holder) = holder {
            self.slots.entry(key.clone()).or_default().push(holder);
        }
        if let Some((per_ms, at)) = start {
            self.windows
                .entry(key)
                .or_insert_with(|| RateWindow {
                    per_ms,
                    starts: VecDeque::new(),
                })
                .starts
                .push_back(at);
        }
    }

    /// How many limit keys hold slots, and how many rate windows.
    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.slots.len(), self.windows.len())
    }
}

/// On a fetch: sweeps the limit keys if they were not swept for `SWEEP_EVERY_MS`.
pub(super) fn maintain(inner: &mut Inner, now: u64) {
    let limits = &mut inner.limits;
    if limits.sweep.is_empty() || now < limits.swept_at_ms.saturating_add(SWEEP_EVERY_MS) {
        return;
    }
    limits.swept_at_ms = now;
    limits.sweep(SWEEP_BATCH, &inner.queues, now);
}

pub(super) fn acquire_limits(
    inner: &mut Inner,
    requests: &[LimitRequest],
    retry_in: std::time::Duration,
    now: u64,
) -> Vec<bool> {
    let retry_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
    let mut granted = Vec::with_capacity(requests.len());
    for req in requests {
        let queue_name = req.lease.id.queue_arc().clone();
        let seq = req.lease.id.seq();
        let held = inner
            .queues
            .get(&queue_name)
            .and_then(|q| q.jobs.get(&seq))
            .is_some_and(|r| {
                r.state == JobState::Processing
                    && r.lease.is_some_and(|(t, _)| t == req.lease.token)
            });
        if !held {
            granted.push(false);
            continue;
        }
        let key = (queue_name.clone(), req.key.clone());
        let limits = &mut inner.limits;
        let mut wait_until = None;
        if let Some(window) = limits.windows.get_mut(&key) {
            if let Some((_, per)) = req.rate {
                window.per_ms = u64::try_from(per.as_millis()).unwrap_or(u64::MAX);
            }
        }
        limits.prune(&key, &inner.queues, now);
        if let Some(max) = req.concurrency {
            let holders = limits.slots.get(&key).map_or(0, Vec::len);
            if holders >= max as usize {
                wait_until = Some(now.saturating_add(retry_ms));
            }
        }
        let per = req
            .rate
            .map(|(_, per)| u64::try_from(per.as_millis()).unwrap_or(u64::MAX));
        if let (Some((count, _)), Some(per)) = (req.rate, per) {
            let starts = limits.windows.get(&key).map(|w| &w.starts);
            if starts.map_or(0, VecDeque::len) >= count as usize {
                let free_at = starts
                    .and_then(VecDeque::front)
                    .map_or(now, |&t| t.saturating_add(per));
                let at = free_at.max(now.saturating_add(retry_ms.min(per)));
                wait_until = Some(wait_until.map_or(at, |w: u64| w.max(at)));
            }
        }
        match wait_until {
            None => {
                limits.grant(
                    key,
                    req.concurrency.map(|_| (seq, req.lease.token.0)),
                    per.map(|per| (per, now)),
                );
                granted.push(true);
            }
            Some(at) => {
                if let Some(queue) = inner.queues.get_mut(&queue_name) {
                    postpone(queue, seq, at, now);
                }
                granted.push(false);
            }
        }
    }
    // Each request adds at most one key: checking twice as many keeps up with any rate of new
    // ones (a key per user), however many there are.
    let budget = SWEEP_BATCH.max(2 * requests.len());
    inner.limits.sweep(budget, &inner.queues, now);
    granted
}

/// Moves a leased job back to Scheduled at `at` without counting an attempt.
fn postpone(queue: &mut Queue, seq: u64, at: u64, now: u64) {
    let Some(rec) = queue.jobs.get_mut(&seq) else {
        return;
    };
    if rec.lease.take().is_some() {
        queue.leases.remove();
    }
    rec.enter(
        JobState::Scheduled,
        now,
        Some("waiting for a concurrency or rate limit slot".to_owned()),
    );
    rec.score = at;
    queue.scheduled.insert((at, seq));
}

#[cfg(test)]
mod tests {
    use crate::storage::{
        Completion, Delivery, FetchRequest, FetchedJob, Flows, LimitRequest, NewJob, Outcome,
    };
    use crate::MemoryStorage;
    use std::sync::Arc;
    use std::time::Duration;

    async fn fetch(s: &MemoryStorage, n: usize) -> Vec<FetchedJob> {
        let queues = [Arc::<str>::from("lq")];
        let req = FetchRequest::new(&queues, n, Duration::from_secs(30), Duration::ZERO);
        s.fetch(req).await.unwrap()
    }

    async fn enqueue(s: &MemoryStorage, n: usize) {
        let jobs = (0..n).map(|i| NewJob::new("lq", "limited", format!("{{\"i\":{i}}}")));
        s.enqueue(jobs.collect()).await.unwrap();
    }

    fn per_user(jobs: &[FetchedJob], first_user: usize) -> Vec<LimitRequest> {
        let rate = Some((5, Duration::from_secs(1)));
        jobs.iter()
            .enumerate()
            .map(|(i, j)| {
                LimitRequest::new(j.lease(), format!("user-{}", first_user + i), Some(1), rate)
            })
            .collect()
    }

    async fn complete(s: &MemoryStorage, jobs: &[FetchedJob]) {
        let done: Vec<Completion> = jobs
            .iter()
            .map(|j| Completion::new(j.lease(), 0, Outcome::Succeeded))
            .collect();
        assert!(s.complete(&done).await.unwrap().iter().all(|&ok| ok));
    }

    #[tokio::test]
    async fn limit_keys_that_came_and_went_leave_nothing_behind() {
        let s = MemoryStorage::new();
        let counts = || s.lock().limits.counts();
        let to_sweep = || s.lock().limits.sweep.len();
        // 1,000 users, each with a concurrency and a rate limit of its own, 250 at a time.
        for batch in 0..4 {
            enqueue(&s, 250).await;
            let jobs = fetch(&s, 250).await;
            let granted = s
                .acquire_limits(&per_user(&jobs, batch * 250), Duration::from_secs(1))
                .await
                .unwrap();
            assert!(granted.iter().all(|&g| g));
            let (slots, windows) = counts();
            assert!(
                slots >= 250 && windows >= 250,
                "{slots} slots, {windows} windows"
            );
            complete(&s, &jobs).await;
        }

        // Once their rate windows have passed, new users' requests sweep the old keys (their
        // holders ended, their starts are over) as they come.
        tokio::time::sleep(Duration::from_millis(1_050)).await;
        enqueue(&s, 6).await;
        let late = fetch(&s, 6).await;
        for (i, job) in late.iter().enumerate() {
            let req = [LimitRequest::new(
                job.lease(),
                format!("late-{i}"),
                Some(1),
                None,
            )];
            let granted = s.acquire_limits(&req, Duration::from_secs(1)).await;
            assert_eq!(granted.unwrap(), [true]);
        }
        assert_eq!(counts(), (6, 0), "only the live holders' slots are left");
        assert_eq!(to_sweep(), 6);

        // Their holders end: the next fetch a sweep interval later drops them too.
        complete(&s, &late).await;
        tokio::time::sleep(Duration::from_millis(1_050)).await;
        assert!(fetch(&s, 1).await.is_empty());
        assert_eq!(counts(), (0, 0));
        assert_eq!(to_sweep(), 0);
    }

    #[tokio::test]
    async fn a_full_limit_is_still_full_after_pruning() {
        let s = MemoryStorage::new();
        enqueue(&s, 3).await;
        let jobs = fetch(&s, 3).await;
        let req = |j: &FetchedJob| LimitRequest::new(j.lease(), "shared", Some(2), None);
        let granted = s
            .acquire_limits(
                &jobs.iter().map(req).collect::<Vec<_>>(),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(granted, [true, true, false]);
        assert_eq!(s.lock().limits.counts(), (1, 0));
        // A refused request on a key nobody holds leaves no key behind.
        enqueue(&s, 1).await;
        let more = fetch(&s, 1).await;
        let none = [LimitRequest::new(more[0].lease(), "nobody", Some(0), None)];
        assert_eq!(
            s.acquire_limits(&none, Duration::from_secs(1))
                .await
                .unwrap(),
            [false]
        );
        assert_eq!(s.lock().limits.counts(), (1, 0));
    }
}
