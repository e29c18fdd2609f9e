//! The lease keeper: renews the leases of all jobs in flight in one storage call, every third
//! of the lease, and cancels jobs whose lease was lost.

use super::Shared;
use crate::storage::Lease;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let lease = shared.config.lease;
    let mut tick = tokio::time::interval(lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let leases: Vec<Lease> = shared
            .in_flight()
            .iter()
            .map(|(id, f)| Lease { id, token: f.token })
            .collect();
        if leases.is_empty() {
            continue;
        }
        match shared.config.storage.renew(&leases, lease).await {
            Ok(held) => {
                let in_flight = shared.in_flight();
                for (l, held) in leases.iter().zip(held) {
                    if held {
                        continue;
                    }
                    if let Some(f) = in_flight.get(&l.id).filter(|f| f.token == l.token) {
                        tracing::warn!(job = %l.id, "lease lost (it ran out before renewal); cancelling the job here");
                        f.cancel.cancel();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "renewing leases failed; will try again"),
        }
    }
}
