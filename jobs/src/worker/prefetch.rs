//! The prefetch buffer: jobs leased ahead of time, waiting for a free slot.
//!
//! The fetch loop pushes whole batches; slot tasks take one job at a time. A take that leaves the
//! buffer at or below its refill mark (half the fetch batch) wakes the fetch loop, so the next
//! batch is leased while the slots still have work. Closing the buffer (at shutdown) makes every
//! waiting and later take return `None`; what is left is drained and handed back.

use crate::attempt_signals::AttemptSignals;
use crate::storage::FetchedJob;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::{Notify, Semaphore};

/// A leased job with what cancels its attempt.
pub(super) struct Prefetched {
    pub(super) job: FetchedJob,
    pub(super) cancel: AttemptSignals,
}

pub(super) struct Prefetch {
    jobs: Mutex<VecDeque<Prefetched>>,
    /// One permit per buffered job, so a slot waits without polling; closed at shutdown.
    available: Semaphore,
    /// Signalled when a take leaves at most `refill_at` jobs.
    low: Notify,
    refill_at: usize,
}

impl Prefetch {
    /// A buffer for batches of up to `capacity` jobs, refilled once half of them started.
    pub(super) fn new(capacity: usize) -> Self {
        Prefetch {
            jobs: Mutex::new(VecDeque::with_capacity(capacity)),
            available: Semaphore::new(0),
            low: Notify::new(),
            refill_at: capacity / 2,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Prefetched>> {
        // Every mutation is a single push or pop: nothing is left half-done by a panic.
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many jobs wait for a slot.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Adds jobs and wakes as many waiting slots.
    pub(super) fn push(&self, jobs: impl IntoIterator<Item = Prefetched>) {
        let added = {
            let mut buffer = self.lock();
            let before = buffer.len();
            buffer.extend(jobs);
            buffer.len() - before
        };
        self.available.add_permits(added);
    }

    /// The next job, waiting for one if the buffer is empty; `None` once the buffer is closed.
    pub(super) async fn take(&self) -> Option<Prefetched> {
        loop {
            let permit = match self.available.try_acquire() {
                Ok(permit) => permit,
                Err(tokio::sync::TryAcquireError::Closed) => return None,
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    self.available.acquire().await.ok()?
                }
            };
            permit.forget();
            let (job, left) = {
                let mut buffer = self.lock();
                (buffer.pop_front(), buffer.len())
            };
            if left <= self.refill_at {
                self.low.notify_one();
            }
            // Empty only when a drain at shutdown took the job this permit stood for.
            if job.is_some() {
                return job;
            }
        }
    }

    /// Completes once a take left the buffer at or below the refill mark (at once if one did
    /// since the last call).
    pub(super) async fn drained_to_refill_mark(&self) {
        self.low.notified().await;
    }

    /// Stops handing out jobs and returns those not started.
    pub(super) fn close(&self) -> Vec<Prefetched> {
        self.available.close();
        self.lock().drain(..).collect()
    }
}
