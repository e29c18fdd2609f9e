//! Succeeded and failed jobs over time: per minute for the last 24 hours, per hour for the last
//! 7 days.
//!
//! The storage keeps no per-job log for this. Workers record each queue's lifetime counters at
//! the start of every minute (and hour) in which they were busy, into a ring of
//! [`Snapshot`]s per queue (1,441 minutes and 169 hours, the first writer of a bucket wins), and
//! a point is the difference between two snapshots: a graph costs one read of a ring per queue,
//! whatever the number of jobs. A minute in which no worker completed anything has no snapshot
//! of its own and shows nothing, which is what happened in it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The width of the buckets of a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Resolution {
    /// One point per minute, for the last 24 hours.
    Minute,
    /// One point per hour, for the last 7 days.
    Hour,
}

impl Resolution {
    /// The width of one bucket in milliseconds.
    pub fn bucket_ms(self) -> u64 {
        match self {
            Resolution::Minute => 60_000,
            Resolution::Hour => 3_600_000,
        }
    }

    /// How many points a history has.
    pub fn points(self) -> u64 {
        match self {
            Resolution::Minute => 24 * 60,
            Resolution::Hour => 7 * 24,
        }
    }

    /// How many snapshots a storage keeps per queue: one more than the points, since a point is
    /// the difference of two.
    pub fn ring(self) -> u64 {
        self.points() + 1
    }

    /// The start of the bucket `at_ms` falls in.
    pub fn bucket_of(self, at_ms: u64) -> u64 {
        at_ms - at_ms % self.bucket_ms()
    }

    /// The ring slot of the bucket starting at `bucket_ms`.
    pub fn slot_of(self, bucket_ms: u64) -> u64 {
        (bucket_ms / self.bucket_ms()) % self.ring()
    }

    /// The one-letter code backends store (`m`, `h`).
    pub fn code(self) -> &'static str {
        match self {
            Resolution::Minute => "m",
            Resolution::Hour => "h",
        }
    }
}

/// A queue's lifetime counters as recorded at the start of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The start of the bucket, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Lifetime successful completions then.
    pub succeeded_total: u64,
    /// Lifetime failures then.
    pub failed_total: u64,
}

impl Snapshot {
    /// The counters `succeeded_total` and `failed_total` at the start of the bucket `at_ms`.
    pub fn new(at_ms: u64, succeeded_total: u64, failed_total: u64) -> Snapshot {
        Snapshot {
            at_ms,
            succeeded_total,
            failed_total,
        }
    }
}

/// How many jobs succeeded and failed in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct HistoryPoint {
    /// The start of the bucket, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Jobs that succeeded in it.
    pub succeeded: u64,
    /// Jobs that failed for good in it.
    pub failed: u64,
}

/// The points of the last [`Resolution::points`] buckets up to the one `now_ms` is in, oldest
/// first, from a queue's snapshots and its counters now (`live`: succeeded, failed).
///
/// Consecutive snapshots `a`, `b` give the bucket before `b` what happened between them (the
/// bucket of `a` when `b` is the next bucket; when buckets in between have none, nothing
/// happened in those, as every busy minute has a snapshot after it). The counters now close the
/// last pair, in the current bucket.
pub(crate) fn points(
    mut snapshots: Vec<Snapshot>,
    live: (u64, u64),
    now_ms: u64,
    res: Resolution,
) -> Vec<HistoryPoint> {
    let width = res.bucket_ms();
    let current = res.bucket_of(now_ms);
    let first = current.saturating_sub((res.points() - 1) * width);
    snapshots.retain(|s| s.at_ms <= current);
    snapshots.sort_by_key(|s| s.at_ms);
    snapshots.dedup_by_key(|s| s.at_ms);
    snapshots.push(Snapshot::new(current + width, live.0, live.1));
    let mut by_bucket: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for pair in snapshots.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let bucket = b.at_ms - width;
        let slot = by_bucket.entry(bucket).or_default();
        slot.0 += b.succeeded_total.saturating_sub(a.succeeded_total);
        slot.1 += b.failed_total.saturating_sub(a.failed_total);
    }
    (0..res.points())
        .map(|i| {
            let at_ms = first + i * width;
            let (succeeded, failed) = by_bucket.get(&at_ms).copied().unwrap_or_default();
            HistoryPoint {
                at_ms,
                succeeded,
                failed,
            }
        })
        .collect()
}

/// Adds `other`'s points into `into`, bucket by bucket (both from [`points`] at the same time).
pub(crate) fn add(into: &mut [HistoryPoint], other: &[HistoryPoint]) {
    for (a, b) in into.iter_mut().zip(other) {
        a.succeeded += b.succeeded;
        a.failed += b.failed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 60_000;
    /// A minute in 2027.
    const T: u64 = 29_000_000 * M;

    #[test]
    fn points_are_differences_of_snapshots() {
        let now = T + 1_000 * M + 30_000;
        let snaps = vec![
            Snapshot::new(T + 997 * M, 10, 1),
            Snapshot::new(T + 998 * M, 15, 1),
            // No snapshot at 999 (no worker was busy in 998); 1000 is the current minute.
            Snapshot::new(T + 1_000 * M, 15, 3),
        ];
        let pts = points(snaps, (20, 3), now, Resolution::Minute);
        assert_eq!(pts.len(), 1_440);
        let last = &pts[pts.len() - 4..];
        assert_eq!(
            last.iter()
                .map(|p| (p.succeeded, p.failed))
                .collect::<Vec<_>>(),
            [(5, 0), (0, 0), (0, 2), (5, 0)]
        );
        assert_eq!(last[3].at_ms, T + 1_000 * M);
        let total: u64 = pts.iter().map(|p| p.succeeded).sum();
        assert_eq!(total, 10);
    }

    #[test]
    fn counters_that_went_back_count_nothing() {
        let pts = points(
            vec![Snapshot::new(T + 5 * M, 100, 100)],
            (3, 0),
            T + 5 * M + 1,
            Resolution::Minute,
        );
        assert!(pts.iter().all(|p| p.succeeded == 0 && p.failed == 0));
    }

    #[test]
    fn slots_wrap_around_the_ring() {
        let r = Resolution::Hour;
        assert_eq!(r.slot_of(0), 0);
        assert_eq!(r.slot_of(169 * 3_600_000), 0);
        assert_eq!(r.bucket_of(3_600_000 + 5), 3_600_000);
    }
}
