//! When a failed attempt is tried again: [`RetryBackoff`], and what happens once no attempt is
//! left: [`OnExhausted`].

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
    pub const fn exponential(base: Duration) -> Self {
        RetryBackoff::Exponential {
            base,
            max: Duration::from_secs(3600),
        }
    }

    /// Hangfire's polynomial backoff, at most one day.
    pub const fn polynomial() -> Self {
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

/// What becomes of a job whose attempts are used up (or whose error is
/// [permanent](crate::Permanent)). Set per job with `#[background_job(on_exhausted = "...")]`.
///
/// # Examples
///
/// ```
/// use jobs::{Job, OnExhausted};
///
/// // Failed jobs are kept for inspection; a best-effort job can be dropped instead.
/// #[jobs::background_job(retries = 2, on_exhausted = "delete")]
/// async fn refresh_cache(key: String) -> Result<(), String> {
///     Err(format!("{key}: backend down"))
/// }
///
/// assert_eq!(<refresh_cache as Job>::ON_EXHAUSTED, OnExhausted::Delete);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnExhausted {
    /// The job moves to Failed and is kept until requeued or deleted (`on_exhausted = "fail"`,
    /// the default).
    #[default]
    Fail,
    /// The job moves to Deleted and is kept only for the retention period
    /// (`on_exhausted = "delete"`).
    Delete,
}
