//! A slot: one long-lived task per unit of concurrency, performing prefetched jobs one after
//! another until the buffer is closed at shutdown.
//!
//! Reusing the task saves a task allocation, a spawn and a semaphore permit per job. Jobs still
//! run concurrently with each other (one per slot, each slot its own task, so the runtime can
//! move a slot to another thread while a job blocks this one), and a panic escaping a job's
//! attempt is caught here, so a slot is never lost.

use super::ack_queue::AckSender;
use super::prefetch::Prefetch;
use super::{execute, panic_message, Shared};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

pub(super) async fn run(shared: Arc<Shared>, prefetch: Arc<Prefetch>, ack_tx: AckSender) {
    while let Some(next) = prefetch.take().await {
        // Not the id: cloning it per job costs a shared reference count.
        let seq = next.job.id.seq();
        let performed = AssertUnwindSafe(execute::run(&shared, next.job, next.cancel, &ack_tx))
            .catch_unwind()
            .await;
        if let Err(panic) = performed {
            // The attempt itself runs under its own catch; this is a filter or the worker's own
            // bookkeeping. The job stays in flight (its lease kept) as a task dying here did.
            tracing::error!(job_seq = seq, error = %panic_message(&*panic), "performing a job panicked");
        }
        // Jobs that finish without waiting would otherwise keep this task from ever yielding.
        tokio::task::coop::consume_budget().await;
    }
}
