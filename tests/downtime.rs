//! Simulated scheduler downtime for recurring-job tests: an entry whose next run lies days in
//! the past (as if every worker had been down since), and a worker run until its scheduler
//! caught up.

use crate::eventually;
use jobs::recurring::{Misfire, RecurringEntry};
use jobs::storage::now_ms;
use jobs::{Storage, WorkerBuilder};
use std::sync::Arc;
use std::time::Duration;

/// An hour in milliseconds.
pub const HOUR: u64 = 3_600_000;
/// A day in milliseconds.
pub const DAY: u64 = 24 * HOUR;

/// The stored recurring job `id`, if any.
pub async fn entry(s: &dyn Storage, id: &str) -> Option<RecurringEntry> {
    s.recurring()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.id == id)
}

/// An entry for `id` on queue `rq` with a next run of the caller's choice.
pub fn entry_at(id: &str, cron: &str, misfire: Misfire, next_run_ms: u64) -> RecurringEntry {
    RecurringEntry::new(
        id,
        cron,
        "UTC",
        misfire,
        "rq",
        "recurring-tests::job",
        "{}".to_owned(),
        Some(next_run_ms),
    )
}

/// Registers `id` directly in the storage with a next run of the caller's choice (as if the
/// workers had been down since then).
pub async fn register_at(
    s: &dyn Storage,
    id: &str,
    cron: &str,
    misfire: Misfire,
    next_run_ms: u64,
) -> RecurringEntry {
    s.register_recurring(entry_at(id, cron, misfire, next_run_ms))
        .await
        .unwrap()
}

/// A daily UTC cron about 12 hours away from now (so no tick is near now), and its first tick
/// after `now - 3 days`: three ticks lie between that and now, all missed.
pub fn three_missed_daily_ticks(now: u64) -> (String, u64) {
    let hour = ((now % DAY) / HOUR + 12) % 24;
    let offset = hour * HOUR;
    let from = now - 3 * DAY;
    let mut first = (from - offset) / DAY * DAY + offset;
    if first <= from {
        first += DAY;
    }
    (format!("0 0 {hour} * * *"), first)
}

/// A worker on `s` that performs nothing from `rq` (it takes from queue `unused`) and re-reads
/// the recurring jobs every 50 ms.
pub fn scheduler_only(s: &Arc<dyn Storage>) -> WorkerBuilder {
    jobs::Worker::builder_shared(s.clone())
        .queues(["unused"])
        .recurring_poll_interval(Duration::from_millis(50))
}

/// Runs a [`scheduler_only`] worker until `id`'s next run is in the future, and returns the
/// entry then.
pub async fn catch_up(s: &Arc<dyn Storage>, id: &str) -> RecurringEntry {
    catch_up_with(s, id, scheduler_only(s)).await
}

/// Runs the worker `builder` makes until `id`'s next run is in the future, and returns the
/// entry then.
///
/// # Panics
///
/// When the worker does not build, or its scheduler does not catch up within a minute.
pub async fn catch_up_with(
    s: &Arc<dyn Storage>,
    id: &str,
    builder: WorkerBuilder,
) -> RecurringEntry {
    let worker = builder.build().unwrap();
    let probe = s.clone();
    let id2 = id.to_owned();
    worker
        .run_until(async move {
            let caught_up = eventually(Duration::from_secs(60), || async {
                entry(&*probe, &id2)
                    .await
                    .and_then(|e| e.next_run_ms)
                    .is_some_and(|n| n > now_ms())
            })
            .await;
            assert!(caught_up, "the scheduler caught up");
        })
        .await
        .unwrap();
    entry(&**s, id).await.unwrap()
}
