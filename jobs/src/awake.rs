//! Staying awake for a reply that is expected soon, instead of putting the thread to sleep.
//!
//! A runtime thread with nothing to run parks, and waking it when the reply arrives takes tens
//! of microseconds on a virtual machine, whose virtual CPU halts with it. A caller that waits on
//! short round trips back to back (the group committer under a stream of enqueues) does better
//! polling for a bounded time: yielding lets the thread run its other tasks and poll for I/O
//! without blocking. Staying awake does not pay when replies hardly ever come within the window
//! (a distant Redis), so [`Awake`] keeps track of how often they did and stops trying when few
//! do, short of a probe now and then.

use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Every this many waits, one stays awake even when recent ones did not pay, to notice when
/// replies become fast again.
const PROBE_EVERY: u32 = 16;

/// The share of replies caught within the window below which staying awake stops.
const MIN_CAUGHT: f32 = 0.25;

/// Waits on round trips, staying awake for up to a window while that catches their replies.
pub(crate) struct Awake {
    window: Duration,
    /// The share of recent awake waits whose reply came within the window (a moving average).
    caught: f32,
    waits: u32,
}

impl Awake {
    /// Stays awake for up to `window` per wait (while that pays).
    pub(crate) fn new(window: Duration) -> Self {
        Awake {
            window,
            caught: 1.0,
            waits: 0,
        }
    }

    /// Awaits `fut`, polling it between yields for up to the window before parking on it, unless
    /// recent replies mostly took longer than the window.
    pub(crate) async fn wait<F: Future>(&mut self, fut: F) -> F::Output {
        self.waits = self.waits.wrapping_add(1);
        if !self.pays() && self.waits % PROBE_EVERY != 0 {
            return fut.await;
        }
        let mut fut = std::pin::pin!(fut);
        let until = Instant::now() + self.window;
        loop {
            if let Poll::Ready(out) = futures::poll!(fut.as_mut()) {
                self.record(true);
                return out;
            }
            if Instant::now() >= until {
                self.record(false);
                return fut.await;
            }
            tokio::task::yield_now().await;
        }
    }

    fn record(&mut self, caught: bool) {
        self.caught = self.caught * 0.875 + if caught { 0.125 } else { 0.0 };
    }

    /// Whether staying awake still pays. A wait that stays awake but misses its reply is not
    /// wasted: the thread was awake for the tasks the reply wakes, and measured in `jobs-bench
    /// e2e` staying awake always did better than stopping once half the replies came late
    /// (88k against 78k jobs/s). So only a large share of late replies (a distant Redis)
    /// stops it.
    fn pays(&self) -> bool {
        self.caught >= MIN_CAUGHT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ready_reply_is_returned_and_counts_as_caught() {
        let mut awake = Awake::new(Duration::from_millis(1));
        assert_eq!(awake.wait(async { 7 }).await, 7);
        assert!(awake.pays());
    }

    #[tokio::test]
    async fn replies_slower_than_the_window_stop_the_spinning_and_fast_ones_resume_it() {
        let mut awake = Awake::new(Duration::from_micros(50));
        for _ in 0..12 {
            let slow = tokio::time::sleep(Duration::from_millis(2));
            awake.wait(slow).await;
        }
        assert!(
            !awake.pays(),
            "twelve slow replies in a row: stop staying awake"
        );
        // Probes (every PROBE_EVERY waits) see fast replies again and win the odds back.
        for _ in 0..(PROBE_EVERY * 8) {
            awake.wait(async {}).await;
        }
        assert!(awake.pays(), "fast replies again: stay awake again");
    }

    #[tokio::test]
    async fn a_reply_after_the_window_still_arrives() {
        let mut awake = Awake::new(Duration::from_micros(10));
        let late = async {
            tokio::time::sleep(Duration::from_millis(3)).await;
            "late"
        };
        assert_eq!(awake.wait(late).await, "late");
    }
}
