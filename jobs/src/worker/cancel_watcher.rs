//! The cancel watcher: while jobs are in flight, asks the storage about every half second, in
//! one batched call, whether any of them was cancelled (`Client::cancel`, possibly from another
//! process), and fires their tokens. An idle worker makes no call at all.

use super::Shared;
use crate::job::JobId;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often in-flight jobs are checked: a cancelled job's token fires within about this long
/// (plus one storage round trip).
const EVERY: Duration = Duration::from_millis(500);

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let ids: Vec<JobId> = shared
            .in_flight()
            .iter()
            .filter(|(_, f)| !f.cancel_requested)
            .map(|(id, _)| id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        match shared.config.storage.cancel_requested(&ids).await {
            Ok(requested) => {
                let mut in_flight = shared.in_flight();
                for (id, requested) in ids.iter().zip(requested) {
                    if !requested {
                        continue;
                    }
                    if let Some(f) = in_flight.get_mut(id) {
                        tracing::info!(job = %id, "job cancelled: firing its token");
                        f.cancel_requested = true;
                        f.cancel.cancel();
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "checking for cancel requests failed; will try again")
            }
        }
    }
}
