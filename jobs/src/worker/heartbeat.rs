//! The heartbeat: registers the worker process with the storage while it runs.

use super::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A worker counts as dead this long after its last heartbeat.
const TTL: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_secs(10);

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        if let Err(e) = shared
            .config
            .storage
            .heartbeat(&shared.config.name, TTL)
            .await
        {
            tracing::warn!(error = %e, "heartbeat failed; will try again");
        }
    }
}
