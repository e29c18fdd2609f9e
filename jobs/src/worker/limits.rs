//! Concurrency and rate limits: after a fetch, jobs whose function has `concurrency` or `rate`
//! ask the storage for a slot; those that get none were moved back to *Scheduled* a moment later
//! by the storage (not counting an attempt) and are dropped here. Jobs without limits skip all of
//! this: one check of a flag computed once per process.

use super::ack_queue::AckSender;
use super::acker::AckMsg;
use super::Shared;
use crate::registry::Registry;
use crate::storage::{FetchedJob, LimitRequest};
use std::sync::OnceLock;
use std::time::Duration;

/// How long a job that found its limit full waits before it is tried again. Slots are freed by
/// completions at any time, so this is a polling interval; it is short so a mutex-like job
/// (`concurrency = 1`) is not left idle for long, and each wait adds two history entries.
const RETRY_IN: Duration = Duration::from_millis(200);

fn any_limited(registry: &'static Registry) -> bool {
    static ANY: OnceLock<bool> = OnceLock::new();
    *ANY.get_or_init(|| registry.iter().any(|d| d.flow.is_limited()))
}

/// The jobs of `jobs` that may start now.
pub(super) async fn admit(
    shared: &Shared,
    jobs: Vec<FetchedJob>,
    ack_tx: &AckSender,
) -> Vec<FetchedJob> {
    let registry = shared.config.registry;
    if jobs.is_empty() || !any_limited(registry) {
        return jobs;
    }
    let mut requests = Vec::new();
    let mut limited = Vec::new();
    let mut free = Vec::with_capacity(jobs.len());
    for job in jobs {
        match registry.get(&job.name).filter(|d| d.flow.is_limited()) {
            Some(d) => {
                requests.push(LimitRequest::new(
                    job.lease(),
                    d.limit_key(&job.args),
                    d.flow.concurrency,
                    d.flow.rate.map(|(n, ms)| (n, Duration::from_millis(ms))),
                ));
                limited.push(job);
            }
            None => free.push(job),
        }
    }
    if requests.is_empty() {
        return free;
    }
    match shared
        .config
        .storage
        .acquire_limits(&requests, RETRY_IN)
        .await
    {
        // Refused jobs were already moved back to Scheduled by the storage.
        Ok(granted) => free.extend(
            limited
                .into_iter()
                .zip(granted)
                .filter_map(|(job, ok)| ok.then_some(job)),
        ),
        Err(e) => {
            // Without a slot the job must not run; hand it back without spending an attempt.
            tracing::warn!(error = %e, "acquiring limit slots failed; handing the jobs back");
            let leases = limited.iter().map(FetchedJob::lease).collect();
            ack_tx.send(AckMsg::Release(leases));
        }
    }
    free
}
