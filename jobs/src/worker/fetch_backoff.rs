//! How long the fetch loop pauses after a failed fetch, and what it logs about it.
//!
//! A storage that cannot be reached (Redis restarting, a partition) is probed every
//! [`PROBE_EVERY`], so that an idle worker takes a new job within 100 ms of the storage being
//! back: a doubling backoff would leave it asleep for seconds after a long outage. A probe of a
//! server that is down costs one refused connection attempt; where an attempt hangs instead (a
//! black-holed network), the storage's connection timeout paces the probes. The outage is
//! logged once when it begins and once when it ends, not per probe. Any other failure (the
//! storage answers, with an error) backs off exponentially, as retrying it at once would fail
//! the same way.

use crate::error::Error;
use std::time::{Duration, Instant};

/// The pause between fetches while the storage is unreachable. A worker sees a server that came
/// back within two of these (the storage's reconnect is started by one call and used by the
/// next).
pub(super) const PROBE_EVERY: Duration = Duration::from_millis(25);
/// The first pause after a fetch the storage refused; it doubles up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_millis(6_400);

/// The failures of the fetches since the last one that worked.
#[derive(Default)]
pub(super) struct FetchBackoff {
    failures: u32,
    /// When the storage became unreachable, while it is.
    outage: Option<Instant>,
}

impl FetchBackoff {
    /// A fetch worked: ends an outage (logging how long it lasted).
    pub(super) fn succeeded(&mut self) {
        if let Some(since) = self.outage.take() {
            tracing::info!(
                after = ?since.elapsed(),
                failed_fetches = self.failures,
                "the storage is reachable again; fetching jobs"
            );
        }
        self.failures = 0;
    }

    /// A fetch failed with `e`: how long to pause before the next one.
    pub(super) fn failed(&mut self, e: &Error) -> Duration {
        self.failures = self.failures.saturating_add(1);
        if e.is_unreachable() {
            if self.outage.is_none() {
                self.outage = Some(Instant::now());
                tracing::warn!(
                    error = %e,
                    retry_every = ?PROBE_EVERY,
                    "fetching jobs failed: the storage is unreachable; trying again until it answers"
                );
            } else {
                tracing::debug!(error = %e, "fetching jobs failed: the storage is still unreachable");
            }
            return PROBE_EVERY;
        }
        let pause = FIRST_PAUSE
            .saturating_mul(1 << (self.failures - 1).min(5))
            .min(MAX_PAUSE);
        tracing::warn!(error = %e, retry_in = ?pause, "fetching jobs failed");
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_storage_is_probed_at_a_steady_pace() {
        let mut b = FetchBackoff::default();
        let down = Error::storage("fetching jobs: Redis is unreachable").unreachable();
        for _ in 0..20 {
            assert_eq!(b.failed(&down), PROBE_EVERY);
        }
        assert!(b.outage.is_some());
        b.succeeded();
        assert!(b.outage.is_none());
        assert_eq!(b.failures, 0);
    }

    #[test]
    fn other_failures_back_off_exponentially_up_to_a_cap() {
        let mut b = FetchBackoff::default();
        let failed = Error::storage("fetching jobs: Redis failed");
        let pauses: Vec<u64> = (0..8)
            .map(|_| u64::try_from(b.failed(&failed).as_millis()).unwrap())
            .collect();
        assert_eq!(pauses, [200, 400, 800, 1_600, 3_200, 6_400, 6_400, 6_400]);
        b.succeeded();
        assert_eq!(b.failed(&failed), FIRST_PAUSE, "a success starts over");
    }
}
