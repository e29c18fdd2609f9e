//! The scheduler a worker runs: enqueues the ticks of recurring jobs as they come due.
//!
//! It reads the registry, sleeps until the earliest next run (at most one poll interval, so
//! registrations made elsewhere are seen), and enqueues due ticks through
//! [`Recurring::fire_recurring`], the compare-and-set that makes a tick enqueue exactly once
//! however many schedulers race on it. A scheduler that loses a race re-reads the registry.
//!
//! Before enqueueing, it runs its worker's filters' `on_create` hooks on the job, as a client
//! does for the jobs it stores. A rejected job is not stored: the tick is skipped (logged) and
//! the schedule advances past it all the same, so a filter that keeps rejecting does not make
//! the scheduler retry the tick in a loop. The due ticks of a paused recurring job pass the
//! same way.

use super::misfire::{plan, MISFIRE_GRACE};
use super::schedule::Schedule;
use crate::filter::{CreatingJob, Filters, StateChangeEvent};
use crate::state::JobState;
use crate::storage::{now_ms, RecurringEntry, RecurringFire, Storage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a worker's scheduler runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SchedulerConfig {
    pub(crate) enabled: bool,
    pub(crate) poll: Duration,
    /// The misfire grace of entries that have none of their own.
    pub(crate) misfire_grace: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            enabled: true,
            poll: Duration::from_secs(5),
            misfire_grace: MISFIRE_GRACE,
        }
    }
}

/// Parsed schedules by (cron, time zone), so a tick does not re-parse.
#[derive(Default)]
struct Schedules(HashMap<(String, String), Option<Schedule>>);

impl Schedules {
    fn get(&mut self, e: &RecurringEntry) -> Option<&Schedule> {
        self.0
            .entry((e.cron.clone(), e.time_zone.clone()))
            .or_insert_with(|| match Schedule::parse(&e.cron, &e.time_zone) {
                Ok(s) => Some(s),
                Err(err) => {
                    tracing::error!(recurring = %e.id, error = %err, "cannot schedule a recurring job");
                    None
                }
            })
            .as_ref()
    }
}

pub(crate) async fn run(
    storage: Arc<dyn Storage>,
    config: SchedulerConfig,
    filters: Filters,
    stop: CancellationToken,
) {
    let mut schedules = Schedules::default();
    let mut failures = 0u32;
    loop {
        let listed = tokio::select! {
            r = storage.recurring() => r,
            () = stop.cancelled() => return,
        };
        let mut entries = match listed {
            Ok(entries) => {
                failures = 0;
                entries
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let pause = config
                    .poll
                    .min(Duration::from_millis(100u64 << failures.min(6)));
                tracing::warn!(error = %e, retry_in = ?pause, "reading recurring jobs failed");
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        let relist_at = tokio::time::Instant::now() + config.poll;
        // Work from this copy until the poll interval is up or a race was lost.
        'pass: loop {
            let now = now_ms();
            let mut earliest: Option<u64> = None;
            for entry in &mut entries {
                let Some(next) = entry.next_run_ms else {
                    continue;
                };
                let Some(schedule) = schedules.get(entry) else {
                    continue;
                };
                let grace = entry.misfire_grace.unwrap_or(config.misfire_grace);
                let Some(p) = plan(schedule, next, now, entry.misfire, grace) else {
                    earliest = Some(earliest.map_or(next, |e: u64| e.min(next)));
                    continue;
                };
                let ticks = if p.fire.is_empty()
                    || (admitted(&filters, entry) && !paused(&*storage, entry).await)
                {
                    p.fire.clone()
                } else {
                    Vec::new()
                };
                let fire = RecurringFire::new(entry, ticks, p.next_run_ms);
                match storage.fire_recurring(&fire).await {
                    Ok(Some(ids)) => {
                        crate::telemetry::enqueued(
                            ids.iter().map(|id| (id.queue(), entry.name.as_str())),
                        );
                        for id in &ids {
                            filters.state_change(|| StateChangeEvent {
                                id: id.clone(),
                                name: Arc::from(entry.name.as_str()),
                                state: JobState::Enqueued,
                                reason: None,
                            });
                        }
                        for (tick, id) in p.fire.iter().zip(&ids) {
                            tracing::info!(
                                target: "jobs::recurring",
                                recurring = %entry.id,
                                tick_ms = tick,
                                job = %id,
                                "enqueued a tick of a recurring job"
                            );
                        }
                        entry.next_run_ms = p.next_run_ms;
                        if let Some(&last) = fire.ticks.last() {
                            entry.last_run_ms = Some(last);
                        }
                        if let Some(n) = p.next_run_ms {
                            earliest = Some(earliest.map_or(n, |e: u64| e.min(n)));
                        }
                    }
                    // Another scheduler enqueued it, or the entry changed: read them again.
                    Ok(None) => break 'pass,
                    Err(e) => {
                        tracing::warn!(recurring = %entry.id, error = %e, "enqueueing a recurring job failed");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => break 'pass,
                            () = stop.cancelled() => return,
                        }
                    }
                }
            }
            let until_relist = relist_at.saturating_duration_since(tokio::time::Instant::now());
            if until_relist.is_zero() {
                break 'pass;
            }
            let mut sleep = until_relist;
            if let Some(t) = earliest {
                sleep = sleep.min(Duration::from_millis(t.saturating_sub(now_ms())));
            }
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}

/// Whether recurring job `entry` is paused (asked only when a tick is due): its due ticks then
/// pass without a job and the schedule goes on. A failed read counts as not paused.
async fn paused(storage: &dyn Storage, entry: &RecurringEntry) -> bool {
    match storage.paused_recurring().await {
        Ok(ids) if ids.contains(&entry.id) => {
            tracing::info!(
                target: "jobs::recurring",
                recurring = %entry.id,
                "a paused recurring job's due tick is skipped"
            );
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(recurring = %entry.id, error = %e, "reading paused recurring jobs failed");
            false
        }
    }
}

/// Whether the worker's filters let the job of `entry` be stored. A rejection is logged: the
/// caller then skips the due ticks and advances the schedule.
fn admitted(filters: &Filters, entry: &RecurringEntry) -> bool {
    if filters.is_empty() {
        return true;
    }
    let job = CreatingJob {
        name: &entry.name,
        queue: &entry.queue,
        args: &entry.args,
    };
    match filters.on_create(&job) {
        Ok(()) => true,
        Err(reason) => {
            tracing::warn!(
                target: "jobs::recurring",
                recurring = %entry.id,
                job = %entry.name,
                %reason,
                "a filter rejected the job of a recurring job: its due tick is skipped and the \
                 schedule goes on"
            );
            false
        }
    }
}
