//! The lease index of a memory queue: which leases run out first.
//!
//! A min-heap of (deadline, seq) with lazy removal: ending a lease (ack, release, renewal) only
//! counts it, and its entry is dropped when it reaches the top or at the next compaction. Leases
//! are handed out with deadlines that mostly grow, so an insert rarely moves an entry, and the
//! per-job cost is far below a balanced tree's insert and remove. The record stays the truth:
//! an entry is live only while its job is Processing under a lease with that deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Compaction runs once the heap holds this many entries more than `SPARE` times the live
/// leases: each compaction looks up every entry, so the more stale ones it drops per pass, the
/// fewer lookups per ended lease.
const SLACK: usize = 1_024;
const SPARE: usize = 4;

#[derive(Default)]
pub(super) struct LeaseIndex {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    /// Leases started and not yet ended.
    live: usize,
}

impl LeaseIndex {
    /// Records a lease of job `seq` running out at `deadline` ms.
    pub(super) fn insert(&mut self, deadline: u64, seq: u64) {
        self.heap.push(Reverse((deadline, seq)));
        self.live += 1;
    }

    /// Records that a lease ended; its entry goes later.
    pub(super) fn remove(&mut self) {
        self.live = self.live.saturating_sub(1);
    }

    /// How many leases are held.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// The earliest deadline, possibly of a lease that already ended (then a wake-up comes
    /// early and finds nothing, never late).
    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((deadline, _))| *deadline)
    }

    /// Takes the earliest entry if its deadline is at or before `now`. The caller checks whether
    /// it is live and, if so, ends it with [`LeaseIndex::remove`].
    pub(super) fn pop_due(&mut self, now: u64) -> Option<(u64, u64)> {
        match self.heap.peek() {
            Some(Reverse((deadline, _))) if *deadline <= now => {
                self.heap.pop().map(|Reverse(entry)| entry)
            }
            _ => None,
        }
    }

    /// Drops the entries of ended leases once they outnumber the live ones, keeping the heap
    /// proportional to the leases held. `live` says whether an entry is still held.
    pub(super) fn compact(&mut self, mut live: impl FnMut(u64, u64) -> bool) {
        if self.heap.len() > self.live.saturating_mul(SPARE).saturating_add(SLACK) {
            self.heap
                .retain(|Reverse((deadline, seq))| live(*deadline, *seq));
        }
    }

    /// Every entry, (deadline, seq), live or not, in no order.
    pub(super) fn entries(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.heap.iter().map(|Reverse(entry)| *entry)
    }
}
