//! Performs one fetched job: finds its handler, marks it started (see the crash accounting in
//! `storage`), runs it under its timeout and filters, decides the outcome (success, retry,
//! failure, deletion when cancelled or as the job's `on_exhausted` policy says) and hands it to
//! the acker. A job that reached its crash limit fails without running.

use super::ack_queue::AckSender;
use super::acker::AckMsg;
use super::{panic_message, Shared};
use crate::attempt_signals::AttemptSignals;
use crate::filter::{AttemptOutcome, StateChangeEvent};
use crate::job::JobContext;
use crate::retry::OnExhausted;
use crate::state::JobState;
use crate::storage::{crash_limit_reason, now_ms, Completion, FetchedJob, Lease, Outcome};
use crate::telemetry::AttemptClock;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

pub(super) async fn run(
    shared: &Shared,
    job: FetchedJob,
    cancel: AttemptSignals,
    ack_tx: &AckSender,
) {
    let started_at_ms = now_ms();
    let clock = AttemptClock::start(&job, started_at_ms);
    let span = attempt_span(shared, &job);
    let cancelled_before_start = cancel.is_cancelled()
        && shared
            .in_flight()
            .get(&job.id)
            .is_some_and(|f| f.cancel_requested);
    let mut returned = None;
    let mut timed_out = false;
    let outcome = if cancelled_before_start {
        Some(cancelled())
    } else if span.is_disabled() {
        // No subscriber wants the span: skip entering and leaving it at every poll.
        attempt(shared, &job, cancel, ack_tx, &mut returned, &mut timed_out).await
    } else {
        attempt(shared, &job, cancel, ack_tx, &mut returned, &mut timed_out)
            .instrument(span.clone())
            .await
    };
    let was_cancelled = shared
        .in_flight()
        .remove(&job.id)
        .is_some_and(|f| f.cancel_requested);
    // Not started: the lease was lost, or is being handed back.
    let Some(outcome) = outcome else { return };
    // A cancelled job ends Deleted whatever the attempt returned (it may have finished its
    // work, failed because its token fired, or been cut short by shutdown).
    let outcome = if was_cancelled { cancelled() } else { outcome };
    // Moved, not cloned: every clone of an id or a name bumps a count shared by all jobs.
    let FetchedJob {
        id, name, token, ..
    } = job;
    let lease = Lease { id, token };
    let msg = match outcome {
        // The grace period ran out while this attempt ran: it was cancelled, so its failure says
        // nothing about the job. Hand it back instead of spending an attempt.
        Outcome::Retry { .. } | Outcome::Failed { .. }
            if shared.hard_stop.load(Ordering::SeqCst) =>
        {
            AckMsg::Release(vec![lease])
        }
        outcome => {
            span.in_scope(|| match &outcome {
                Outcome::Succeeded => tracing::debug!("job succeeded"),
                Outcome::Retry { reason, .. } => tracing::warn!(%reason, "job failed, will retry"),
                Outcome::Failed { reason } => tracing::error!(%reason, "job failed for good"),
                Outcome::Deleted { reason } => tracing::info!(%reason, "job deleted"),
            });
            AckMsg::Complete {
                completion: Completion::new(lease, started_at_ms, outcome).with_result(returned),
                name,
                report: clock.finish(timed_out),
            }
        }
    };
    ack_tx.send(msg);
}

/// The span of one attempt: the job's id, name, queue and attempt, and with the
/// `opentelemetry` feature the messaging attributes and the relation to the enqueueing span
/// (see [`telemetry`](crate::telemetry)).
fn attempt_span(shared: &Shared, job: &FetchedJob) -> tracing::Span {
    #[cfg(not(feature = "opentelemetry"))]
    {
        let _ = shared;
        tracing::info_span!(
            "job",
            id = %job.id,
            name = %job.name,
            queue = %job.id.queue(),
            attempt = job.attempt
        )
    }
    #[cfg(feature = "opentelemetry")]
    {
        let span = tracing::info_span!(
            "job",
            id = %job.id,
            name = %job.name,
            queue = %job.id.queue(),
            attempt = job.attempt,
            otel.name = %format_args!("perform {}", job.name),
            otel.kind = "consumer",
            messaging.system = "jobs",
            messaging.operation.type = "process",
            messaging.operation.name = "perform",
            messaging.destination.name = %job.id.queue(),
            messaging.message.id = %job.id,
            // As an integer attribute (tracing-opentelemetry records unsigned values as text).
            jobs.attempt = i64::from(job.attempt),
        );
        if !span.is_disabled() {
            crate::telemetry::relate(&span, &job.headers, shared.config.telemetry.trace_relation);
        }
        span
    }
}

fn cancelled() -> Outcome {
    Outcome::Deleted {
        reason: "cancelled".to_owned(),
    }
}

/// Where a job goes once it has no attempt left, as its `on_exhausted` policy says.
fn exhausted(policy: OnExhausted, reason: String) -> Outcome {
    match policy {
        OnExhausted::Delete => Outcome::Deleted { reason },
        _ => Outcome::Failed { reason },
    }
}

/// Marks the job started and runs it. `None` when it did not start: its lease was lost, or its
/// start could not be recorded (then it is handed back).
async fn attempt(
    shared: &Shared,
    job: &FetchedJob,
    cancel: AttemptSignals,
    ack_tx: &AckSender,
    returned: &mut Option<String>,
    timed_out: &mut bool,
) -> Option<Outcome> {
    let config = &shared.config;
    let Some(descriptor) = config.registry.get(&job.name) else {
        return Some(Outcome::Failed {
            reason: format!(
                "no handler registered for job `{}`: no `#[background_job]` function with that \
                 name is linked into this worker",
                job.name
            ),
        });
    };
    let max_attempts = descriptor.max_attempts();
    if job.attempt > max_attempts {
        // Only when its retries were lowered after it failed: expired leases count no attempt.
        return Some(exhausted(
            descriptor.on_exhausted,
            format!(
                "gave up after {} attempts: the job now allows {max_attempts}",
                job.attempt - 1
            ),
        ));
    }
    let max_crashes = descriptor.max_crashes.unwrap_or(config.max_crashes);
    if job.crashes >= max_crashes {
        return Some(exhausted(
            descriptor.on_exhausted,
            crash_limit_reason(job.crashes),
        ));
    }
    if job.crashes > 0 || job.orphaned > 0 {
        // Its worker died before: maybe by running it. Store the mark before it runs, so a job
        // that kills its worker at once is counted.
        mark_before_start(shared, job, ack_tx).await?;
    } else {
        // Sent with the acknowledgements, and dropped if the job completes before.
        ack_tx.started(job.lease());
    }
    Some(perform(shared, descriptor, job, cancel, returned, timed_out).await)
}

/// Records the start of `job` before it runs. `None` when its lease was lost (someone else may
/// run it), or the storage could not be reached (the job is handed back).
async fn mark_before_start(shared: &Shared, job: &FetchedJob, ack_tx: &AckSender) -> Option<()> {
    const TRIES: u32 = 4;
    let lease = job.lease();
    for tries in 1..=TRIES {
        match shared
            .config
            .storage
            .mark_started(std::slice::from_ref(&lease))
            .await
        {
            Ok(held) if held.first() == Some(&true) => return Some(()),
            Ok(_) => {
                tracing::warn!("lease lost before the job started; not running it here");
                return None;
            }
            Err(e) if tries < TRIES => {
                let pause = Duration::from_millis(50u64 << tries);
                tracing::warn!(error = %e, retry_in = ?pause, "marking a job started failed");
                tokio::time::sleep(pause).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not mark the job started; handing it back unstarted");
                ack_tx.send(AckMsg::Release(vec![lease]));
                return None;
            }
        }
    }
    None
}

/// Runs one attempt of a started job under its timeout and filters.
async fn perform(
    shared: &Shared,
    descriptor: &crate::registry::JobDescriptor,
    job: &FetchedJob,
    cancel: AttemptSignals,
    returned: &mut Option<String>,
    timed_out: &mut bool,
) -> Outcome {
    let config = &shared.config;
    let max_attempts = descriptor.max_attempts();
    let ctx = JobContext::new(
        job.id.clone(),
        job.name.clone(),
        job.attempt,
        max_attempts,
        job.headers.clone(),
        cancel.clone(),
        Some(crate::continuation::ContextFlow {
            storage: config.storage.clone(),
            result: descriptor
                .flow
                .returns_value
                .then(|| Arc::new(std::sync::OnceLock::new())),
        }),
    );
    config.filters.before_perform(&ctx);
    config.filters.state_change(|| StateChangeEvent {
        id: job.id.clone(),
        name: job.name.clone(),
        state: JobState::Processing,
        reason: None,
    });
    let result = match (descriptor.perform)(&job.args, ctx.clone(), &config.state) {
        // The stored job cannot be run by this code at all: retrying would not help.
        Err(reason) => {
            let outcome = AttemptOutcome::Failed(reason.clone());
            config.filters.after_perform(&ctx, &outcome);
            return Outcome::Failed { reason };
        }
        Ok(future) => {
            let guarded = AssertUnwindSafe(future).catch_unwind();
            let caught = match descriptor.timeout() {
                None => guarded.await,
                Some(limit) => match tokio::time::timeout(limit, guarded).await {
                    Ok(caught) => caught,
                    Err(_) => {
                        cancel.cancel();
                        *timed_out = true;
                        Ok(Err(format!("the job timed out after {limit:?}")))
                    }
                },
            };
            caught.unwrap_or_else(|panic| Err(panic_message(&*panic)))
        }
    };
    let shown = match &result {
        Ok(()) => AttemptOutcome::Succeeded,
        Err(reason) => AttemptOutcome::Failed(reason.clone()),
    };
    config.filters.after_perform(&ctx, &shown);
    match result {
        Ok(()) => {
            *returned = ctx.take_result();
            Outcome::Succeeded
        }
        Err(reason) if ctx.failed_permanently() => exhausted(
            descriptor.on_exhausted,
            format!(
                "attempt {} of {max_attempts} failed with a permanent error (not retried): \
                 {reason}",
                job.attempt
            ),
        ),
        Err(reason) if job.attempt < max_attempts => {
            let backoff = descriptor.backoff.unwrap_or(config.backoff);
            let delay = backoff.delay(job.attempt);
            let at_ms =
                now_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
            Outcome::Retry {
                at_ms,
                reason: format!("attempt {} of {max_attempts} failed: {reason}", job.attempt),
            }
        }
        Err(reason) => exhausted(
            descriptor.on_exhausted,
            format!("attempt {} of {max_attempts} failed: {reason}", job.attempt),
        ),
    }
}
