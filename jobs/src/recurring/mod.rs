//! Recurring jobs: a job enqueued on a cron schedule, registered by id.
//!
//! Register one with [`Client::recurring`](crate::Client::recurring); every [`Worker`](crate::Worker)
//! runs a scheduler that enqueues its ticks. However many workers run, **each tick is enqueued
//! exactly once**: enqueueing a tick is a compare-and-set in the storage (the job is stored only
//! if the recurring job's next run is still the tick the scheduler computed, and the next run
//! advances in the same step), so schedulers racing on a tick produce one job and no leader is
//! elected. The job itself is then delivered at least once, like any other.
//!
//! - **Schedule**: a cron expression of 5 fields (`minute hour day-of-month month day-of-week`)
//!   or 6 (seconds first), read in an IANA time zone (`UTC` unless told otherwise).
//!   Daylight-saving transitions neither double-fire nor skip: a time in the hour skipped when
//!   clocks go forward runs once at the first instant after the gap (a daily 02:30 runs at 03:00
//!   that day); a fixed time in the hour repeated when clocks go back runs once, in the first
//!   occurrence; an hourly schedule runs once per real hour.
//! - **Misfires**: ticks missed while no worker ran are handled by the [`Misfire`] policy when a
//!   scheduler is back: one job for all of them (default), one per tick, or none. A tick is
//!   *missed* when it is more than a grace late: 10 s ([`MISFIRE_GRACE`]) unless the worker
//!   ([`WorkerBuilder::recurring_misfire_grace`](crate::WorkerBuilder::recurring_misfire_grace))
//!   or the recurring job ([`RecurringBuilder::misfire_grace`]) says otherwise; a tick less late
//!   than that is enqueued as usual.
//! - **Filters**: a scheduler runs the `on_create` hooks of its worker's filters
//!   ([`Filter`](crate::filter::Filter)) on each job it is about to enqueue, as a client does. A
//!   filter that rejects it skips the tick (logged as a warning): no job is stored, and the
//!   schedule advances to its next tick as if the tick had been enqueued.
//! - **Updates**: registering an id again replaces it (upsert). If its cron and time zone are
//!   unchanged its next run is kept, so every process may register its recurring jobs at start-up
//!   without skipping or repeating a tick.
//! - **Latency**: a scheduler sleeps until the earliest next run and re-reads the registry every
//!   few seconds ([`WorkerBuilder::recurring_poll_interval`](crate::WorkerBuilder::recurring_poll_interval)),
//!   so a new or changed recurring job is picked up within that interval.
//!
//! # Examples
//!
//! ```
//! use jobs::recurring::Misfire;
//! use std::time::Duration;
//!
//! #[jobs::background_job]
//! async fn report(kind: String) {
//!     println!("{kind} report");
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), jobs::Error> {
//! let storage = jobs::MemoryStorage::new();
//! let client = jobs::Client::new(storage.clone());
//!
//! // Every day at 03:00 Berlin time.
//! client
//!     .recurring("nightly-report", "0 0 3 * * *", jobs::job!(report("nightly".into())))
//!     .time_zone("Europe/Berlin")
//!     .misfire(Misfire::RunOnce)
//!     .register()
//!     .await?;
//!
//! // Every second (6 fields: seconds first).
//! client
//!     .recurring("heartbeat", "* * * * * *", jobs::job!(report("tick".into())))
//!     .register()
//!     .await?;
//!
//! let listed = client.recurring_jobs().await?;
//! assert_eq!(listed.len(), 2);
//! assert_eq!(listed[1].id, "nightly-report");
//! assert_eq!(listed[1].time_zone, "Europe/Berlin");
//! assert!(listed[1].next_run().is_some());
//!
//! // Run one now, out of schedule.
//! let id = client.trigger_recurring("nightly-report").await?;
//!
//! // A worker enqueues the per-second ticks and performs the jobs; run it until the
//! // triggered job and two ticks are done.
//! let worker = jobs::Worker::builder(storage).build()?;
//! let stats = client.clone();
//! worker
//!     .run_until(async move {
//!         while stats.stats("default").await.unwrap().succeeded_total < 3 {
//!             tokio::time::sleep(Duration::from_millis(50)).await;
//!         }
//!     })
//!     .await?;
//! assert_eq!(client.job(&id).await?.expect("kept").state, jobs::JobState::Succeeded);
//! let heartbeat = &client.recurring_jobs().await?[0];
//! assert!(heartbeat.last_run().is_some());
//!
//! assert!(client.remove_recurring("heartbeat").await?);
//! assert!(!client.remove_recurring("heartbeat").await?);
//! # Ok(()) }
//! ```

mod builder;
mod misfire;
mod schedule;
pub(crate) mod scheduler;

pub use crate::storage::RecurringEntry;
pub use builder::RecurringBuilder;
pub use misfire::{Misfire, MAX_TICKS_PER_CALL, MISFIRE_GRACE};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn to_system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl RecurringEntry {
    /// When its next tick is due; `None` when the schedule has no further tick.
    pub fn next_run(&self) -> Option<SystemTime> {
        self.next_run_ms.map(to_system_time)
    }

    /// When a job was last enqueued for it (a tick's time, or the time of a manual trigger).
    pub fn last_run(&self) -> Option<SystemTime> {
        self.last_run_ms.map(to_system_time)
    }
}
