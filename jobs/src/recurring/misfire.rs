//! What a recurring job does about ticks missed while no scheduler ran ([`Misfire`]), and the
//! computation of which ticks to enqueue now ([`plan`]), with `now` as a parameter so tests can
//! simulate any downtime.

use super::schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What to do about ticks that were missed, e.g. while every worker was down.
///
/// A tick counts as *missed* when the scheduler gets to it more than its grace after its time:
/// the recurring job's own ([`RecurringBuilder::misfire_grace`](super::RecurringBuilder::misfire_grace)),
/// else the scheduler's ([`WorkerBuilder::recurring_misfire_grace`](crate::WorkerBuilder::recurring_misfire_grace)),
/// [`MISFIRE_GRACE`] unless set. A tick that is merely a little late (a busy process, a short
/// Redis hiccup) is enqueued as usual whatever the policy.
///
/// # Examples
///
/// ```
/// use jobs::recurring::Misfire;
///
/// assert_eq!(Misfire::default(), Misfire::RunOnce);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Misfire {
    /// Enqueue one job for all the missed ticks together, then go on with the schedule.
    #[default]
    RunOnce,
    /// Enqueue one job for every missed tick (at most [`MAX_TICKS_PER_CALL`] per storage call;
    /// a long backlog is caught up over several calls).
    RunAll,
    /// Enqueue nothing for missed ticks; go on with the next tick.
    Skip,
}

/// The names a stored schedule keeps its policy under.
#[cfg(any(feature = "redis", feature = "postgres"))]
impl Misfire {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Misfire::RunOnce => "run_once",
            Misfire::RunAll => "run_all",
            Misfire::Skip => "skip",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<Misfire> {
        Some(match s {
            "run_once" => Misfire::RunOnce,
            "run_all" => Misfire::RunAll,
            "skip" => Misfire::Skip,
            _ => return None,
        })
    }
}

/// The default of how late a tick may be enqueued before it counts as missed: 10 seconds.
pub const MISFIRE_GRACE: Duration = Duration::from_secs(10);

/// At most this many ticks of one recurring job are enqueued by one storage call.
pub const MAX_TICKS_PER_CALL: usize = 100;

/// What to do for one recurring job now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The ticks to enqueue a job for, oldest first (one job each).
    pub(crate) fire: Vec<u64>,
    /// The next run to store; `None` when the schedule has no further tick.
    pub(crate) next_run_ms: Option<u64>,
}

/// Which ticks to enqueue when the stored next run is `next_run_ms` and the time is `now_ms`;
/// `None` when nothing is due yet.
pub(crate) fn plan(
    schedule: &Schedule,
    next_run_ms: u64,
    now_ms: u64,
    misfire: Misfire,
    grace: Duration,
) -> Option<Plan> {
    if next_run_ms > now_ms {
        return None;
    }
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    // Ticks at or after this are on time.
    let on_time_from = now_ms.saturating_sub(grace_ms);
    let mut fire = Vec::new();
    let mut cursor = Some(next_run_ms);
    if next_run_ms < on_time_from && misfire != Misfire::RunAll {
        if misfire == Misfire::RunOnce {
            fire.push(next_run_ms);
        }
        // Jump over the missed ticks without walking them (a per-second schedule after a day
        // down would be 86,400 of them).
        cursor = schedule.next_after(on_time_from.saturating_sub(1).max(next_run_ms));
    }
    while let Some(t) = cursor {
        if t > now_ms || fire.len() >= MAX_TICKS_PER_CALL {
            break;
        }
        fire.push(t);
        cursor = schedule.next_after(t);
    }
    Some(Plan {
        fire,
        next_run_ms: cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(10);
    const MIN: u64 = 60_000;
    // 2026-01-01 00:00:00 UTC
    const T0: u64 = 1_767_225_600_000;

    fn every_minute() -> Schedule {
        Schedule::parse("0 * * * * *", "UTC").unwrap()
    }

    #[test]
    fn nothing_before_the_next_run() {
        assert_eq!(
            plan(&every_minute(), T0, T0 - 1, Misfire::RunOnce, GRACE),
            None
        );
    }

    #[test]
    fn an_on_time_tick_fires_under_every_policy() {
        for misfire in [Misfire::RunOnce, Misfire::RunAll, Misfire::Skip] {
            let p = plan(&every_minute(), T0, T0 + 3_000, misfire, GRACE).unwrap();
            assert_eq!(p.fire, [T0], "{misfire:?}");
            assert_eq!(p.next_run_ms, Some(T0 + MIN), "{misfire:?}");
        }
    }

    // Simulated downtime: the stored next run is T0, the scheduler comes back at T0 + 5m30s.
    // Missed ticks: T0 .. T0+5m (6 of them); the next is T0+6m.
    const BACK: u64 = T0 + 5 * MIN + 30_000;

    #[test]
    fn run_once_enqueues_one_job_for_the_downtime() {
        let p = plan(&every_minute(), T0, BACK, Misfire::RunOnce, GRACE).unwrap();
        assert_eq!(p.fire, [T0]);
        assert_eq!(p.next_run_ms, Some(T0 + 6 * MIN));
    }

    #[test]
    fn run_all_enqueues_every_missed_tick() {
        let p = plan(&every_minute(), T0, BACK, Misfire::RunAll, GRACE).unwrap();
        assert_eq!(p.fire, (0..6).map(|i| T0 + i * MIN).collect::<Vec<_>>());
        assert_eq!(p.next_run_ms, Some(T0 + 6 * MIN));
    }

    #[test]
    fn skip_enqueues_nothing_for_the_downtime() {
        let p = plan(&every_minute(), T0, BACK, Misfire::Skip, GRACE).unwrap();
        assert!(p.fire.is_empty());
        assert_eq!(p.next_run_ms, Some(T0 + 6 * MIN));
    }

    #[test]
    fn a_tick_within_the_grace_still_fires_after_a_skip() {
        // Back 5 s after the 5-minute tick: that one is on time, the 5 before it were missed.
        let back = T0 + 5 * MIN + 5_000;
        let p = plan(&every_minute(), T0, back, Misfire::Skip, GRACE).unwrap();
        assert_eq!(p.fire, [T0 + 5 * MIN]);
        let p = plan(&every_minute(), T0, back, Misfire::RunOnce, GRACE).unwrap();
        assert_eq!(p.fire, [T0, T0 + 5 * MIN]);
        assert_eq!(p.next_run_ms, Some(T0 + 6 * MIN));
    }

    #[test]
    fn run_all_is_bounded_per_call_and_resumes() {
        let every_second = Schedule::parse("* * * * * *", "UTC").unwrap();
        let back = T0 + 250_000; // 251 ticks due
        let p = plan(&every_second, T0, back, Misfire::RunAll, GRACE).unwrap();
        assert_eq!(p.fire.len(), MAX_TICKS_PER_CALL);
        let resume = p.next_run_ms.unwrap();
        assert_eq!(resume, T0 + 100_000);
        let p2 = plan(&every_second, resume, back, Misfire::RunAll, GRACE).unwrap();
        assert_eq!(p2.fire[0], resume);
        assert_eq!(p2.fire.len(), MAX_TICKS_PER_CALL);
    }

    #[test]
    fn run_once_after_a_long_downtime_does_not_walk_every_tick() {
        let every_second = Schedule::parse("* * * * * *", "UTC").unwrap();
        let back = T0 + 86_400_000; // a day of per-second ticks
        let p = plan(&every_second, T0, back, Misfire::RunOnce, GRACE).unwrap();
        // The missed day as one job, then the ticks of the grace window, which are on time.
        assert_eq!(p.fire[0], T0);
        assert_eq!(p.fire[1], back - 10_000);
        assert_eq!(p.fire.len(), 12);
        assert_eq!(p.next_run_ms, Some(back + 1_000));
    }
}
