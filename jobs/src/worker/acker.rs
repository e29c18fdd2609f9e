//! The acker: coalesces the completions of many jobs into batched storage calls, and retries
//! them while the storage is unreachable, so no finished job is forgotten.
//!
//! It also carries the start marks of jobs (see the crash accounting in `storage`). A mark is
//! held for one batch (a linger, 1–5 ms), then sent only if its job is still running: a job
//! that finished meanwhile needs none, whether or not its completion was stored yet. So a busy
//! worker of short jobs sends almost no marks, and a long job's mark reaches the storage within
//! two batches. (Dropping only the marks of jobs whose completions came in the same batch sent
//! a call of marks per batch once the acker fell behind: `jobs-bench drain` lost a third.)

use super::ack_queue::AckReceiver;
use super::Shared;
use crate::error::{Error, Result};
use crate::filter::StateChangeEvent;
use crate::state::JobState;
use crate::storage::{Completion, Lease, Outcome};
use crate::telemetry::{AttemptMetrics, AttemptReport};
use std::sync::Arc;
use std::time::Duration;

/// The most completions sent in one storage call.
pub(super) const MAX_BATCH: usize = 1_000;
/// How long the first completion of a batch waits for others to join it.
const LINGER: Duration = Duration::from_millis(1);
/// The wait once the last batch held at least `BUSY_BATCH` messages: under load, fewer and
/// larger storage calls (measured in `jobs-bench e2e`: about 15 % more jobs/s than with 1 ms),
/// at the price of recording a finished job up to this much later.
const BUSY_LINGER: Duration = Duration::from_millis(5);
const BUSY_BATCH: usize = 64;
/// How often a batch is tried once the worker is shutting down, before giving up on it.
const FINAL_TRIES: u32 = 5;

pub(super) enum AckMsg {
    Complete {
        completion: Completion,
        name: Arc<str>,
        /// The attempt's timings, for the `metrics` feature (empty without it).
        report: AttemptReport,
    },
    Release(Vec<Lease>),
}

pub(super) async fn run(shared: Arc<Shared>, mut rx: AckReceiver) -> Result<()> {
    let storage = &shared.config.storage;
    let filters = &shared.config.filters;
    let mut completions = Vec::new();
    let mut names = Vec::new();
    let mut reports = Vec::new();
    let mut metrics = AttemptMetrics::new();
    let mut releases = Vec::new();
    // Marks that arrived with the last batch (held one more), and with this one.
    let mut held: Vec<Lease> = Vec::new();
    let mut fresh: Vec<Lease> = Vec::new();
    let mut batch = Vec::new();
    let mut open = true;
    let mut linger = LINGER;
    while open {
        // Coalesce: after the first message, keep collecting for up to `linger` (or
        // `MAX_BATCH` messages), so a busy worker acknowledges hundreds of jobs per storage
        // call instead of a few.
        // While marks are held, a quiet worker still sends them after one more linger.
        let wait = (!held.is_empty()).then_some(linger);
        open = rx.recv_batch(&mut batch, &mut fresh, linger, wait).await;
        linger = if batch.len() >= BUSY_BATCH {
            BUSY_LINGER
        } else {
            LINGER
        };
        for msg in batch.drain(..) {
            match msg {
                AckMsg::Complete {
                    completion,
                    name,
                    report,
                } => {
                    completions.push(completion);
                    names.push(name);
                    reports.push(report);
                }
                AckMsg::Release(leases) => releases.extend(leases),
            }
        }
        if !held.is_empty() {
            let in_flight = shared.in_flight();
            held.retain(|l| in_flight.get(&l.id).is_some_and(|f| f.token == l.token));
        }
        if !held.is_empty() {
            persist(open, "marking jobs started", || storage.mark_started(&held)).await?;
            held.clear();
        }
        std::mem::swap(&mut held, &mut fresh);
        // The vectors are cleared, not replaced, so a busy acker does not grow new ones per batch.
        if !releases.is_empty() {
            persist(open, "handing jobs back", || storage.release(&releases)).await?;
            releases.clear();
        }
        if !completions.is_empty() {
            let applied = persist(open, "acknowledging jobs", || {
                storage.complete(&completions)
            })
            .await?;
            for (((c, name), held), report) in completions
                .drain(..)
                .zip(names.drain(..))
                .zip(applied)
                .zip(reports.drain(..))
            {
                metrics.ended(c.lease.id.queue_arc(), &name, &c.outcome, held, &report);
                if held {
                    filters.state_change(|| event(&c, name));
                } else {
                    tracing::warn!(
                        job = %c.lease.id,
                        "the lease was lost before the job finished; another worker may run it again"
                    );
                }
            }
            metrics.flush();
        }
    }
    Ok(())
}

fn event(c: &Completion, name: Arc<str>) -> StateChangeEvent {
    let (state, reason) = match &c.outcome {
        Outcome::Succeeded => (JobState::Succeeded, None),
        Outcome::Retry { reason, .. } => (JobState::Scheduled, Some(reason.clone())),
        Outcome::Failed { reason } => (JobState::Failed, Some(reason.clone())),
        Outcome::Deleted { reason } => (JobState::Deleted, Some(reason.clone())),
    };
    StateChangeEvent {
        id: c.lease.id.clone(),
        name,
        state,
        reason,
    }
}

/// Runs `call` until it succeeds. While the worker runs that is forever (with backoff): an
/// unacknowledged job would run again. Once it is shutting down, a few tries, then the error.
async fn persist<T, F, Fut>(running: bool, what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0u32;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                tries += 1;
                if !running && tries >= FINAL_TRIES {
                    return Err(
                        Error::storage(format!("{what} failed {tries} times")).with_source(e)
                    );
                }
                // While running, an unreachable storage is probed as the fetch loop does: a
                // finished job is no longer renewed, so a pause longer than its lease would
                // let it run again once the storage is back.
                let probe = running && e.is_unreachable();
                let pause = if probe {
                    super::fetch_backoff::PROBE_EVERY
                } else {
                    Duration::from_millis(50u64.saturating_mul(1 << tries.min(6)))
                };
                if probe && tries > 1 {
                    tracing::debug!(error = %e, retry_in = ?pause, "{what} failed");
                } else {
                    tracing::warn!(error = %e, retry_in = ?pause, "{what} failed");
                }
                tokio::time::sleep(pause).await;
            }
        }
    }
}
