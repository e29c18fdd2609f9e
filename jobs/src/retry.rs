//! When a failed attempt is tried again: [`RetryBackoff`].

use rand::Rng;
use std::time::Duration;

/// The delay before each retry. Every delay is jittered (±25 %) so jobs that failed together do
/// not retry together.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use jobs::RetryBackoff;
///
/// let backoff = RetryBackoff::exponential(Duration::from_secs(1)).max(Duration::from_secs(60));
/// let third = backoff.delay(3); // about 4 s (1 s · 2²), jittered
/// assert!(third >= Duration::from_secs(3) && third <= Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryBackoff {
    /// `base · 2^(retry-1)`, at most `max`.
    Exponential {
        /// The first delay.
        base: Duration,
        /// The longest delay.
        max: Duration,
    },
    /// Hangfire's and Sidekiq's `retry⁴ + 15 s`, at most `max`.
    Polynomial {
        /// The longest delay.
        max: Duration,
    },
}

impl Default for RetryBackoff {
    /// Exponential from 2 s, at most one hour.
    fn default() -> Self {
        RetryBackoff::exponential(Duration::from_secs(2))
    }
}

impl RetryBackoff {
    /// Exponential from `base`, at most one hour.
    pub fn exponential(base: Duration) -> Self {
        RetryBackoff::Exponential {
            base,
            max: Duration::from_secs(3600),
        }
    }

    /// Hangfire's polynomial backoff, at most one day.
    pub fn polynomial() -> Self {
        RetryBackoff::Polynomial {
            max: Duration::from_secs(24 * 3600),
        }
    }

    /// The same backoff with another longest delay.
    #[must_use]
    pub fn max(self, longest: Duration) -> Self {
        match self {
            RetryBackoff::Exponential { base, .. } => {
                RetryBackoff::Exponential { base, max: longest }
            }
            RetryBackoff::Polynomial { .. } => RetryBackoff::Polynomial { max: longest },
        }
    }

    /// The jittered delay before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let retry = retry.max(1);
        let (nominal, max) = match *self {
            RetryBackoff::Exponential { base, max } => {
                let factor = 2u32.saturating_pow(retry - 1);
                (base.saturating_mul(factor), max)
            }
            RetryBackoff::Polynomial { max } => {
                let secs = u64::from(retry).saturating_pow(4).saturating_add(15);
                (Duration::from_secs(secs), max)
            }
        };
        let nominal = nominal.min(max);
        let jitter = rand::thread_rng().gen_range(0.75..=1.25);
        nominal.mul_f64(jitter)
    }
}
