//! The heartbeat: registers the worker process with the storage while it runs, with a report
//! of what it is (host, pid, queues, concurrency) and which jobs it holds.

use super::Shared;
use crate::monitor::{ServerReport, MAX_REPORTED_JOBS};
use crate::storage::now_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A worker counts as dead this long after its last heartbeat.
const TTL: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_secs(10);

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken, started_at_ms: u64) {
    let config = &shared.config;
    let base = ServerReport::named(config.name.clone())
        .process(host_name(), std::process::id())
        .serving(
            config.queues.iter().map(|q| q.to_string()).collect(),
            config.concurrency,
            started_at_ms,
        );
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        if let Err(e) = config.storage.heartbeat(&config.name, TTL).await {
            tracing::warn!(error = %e, "heartbeat failed; will try again");
            continue;
        }
        let (jobs, total) = {
            let in_flight = shared.in_flight();
            let mut ids: Vec<_> = in_flight.iter().map(|(id, _)| id).collect();
            let total = ids.len();
            ids.sort();
            ids.truncate(MAX_REPORTED_JOBS);
            (ids, total)
        };
        let report = base.clone().holding(now_ms(), jobs, total);
        if let Err(e) = config.storage.report_server(&report, TTL).await {
            tracing::warn!(error = %e, "sending the worker's report failed; will try again");
        }
    }
}

/// The host name: `HOSTNAME`, or the kernel's, or `unknown`.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
