//! The history recorder: at the start of each minute this worker was busy in, records its
//! queues' lifetime counters as that minute's (and hour's) snapshot (see
//! [History](crate::monitor#history)). An idle worker sends nothing.

use super::Shared;
use crate::monitor::Resolution;
use crate::storage::now_ms;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    // The minute it started in gets a snapshot, so its first jobs have one before them.
    let mut due = true;
    loop {
        let held = !shared.in_flight().is_empty();
        // Jobs fetched since the last snapshot, or held now (they complete in this minute), make
        // the minute busy; a minute in which jobs were held makes the next one busy too.
        let busy = shared.fetched.swap(false, Ordering::Relaxed) || held;
        if std::mem::replace(&mut due, busy) || busy {
            if let Err(e) = config
                .storage
                .record_history(&config.queues, now_ms())
                .await
            {
                tracing::warn!(error = %e, "recording history failed");
            }
        }
        let width = Resolution::Minute.bucket_ms();
        let now = now_ms();
        // Just past the next minute's start.
        let wait = width - now % width + 20;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(wait)) => {}
            () = stop.cancelled() => return,
        }
    }
}
