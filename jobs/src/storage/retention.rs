//! How long finished jobs are kept for inspection.

use std::time::Duration;

/// How many succeeded and deleted jobs a storage keeps, and for how long. Failed jobs are not
/// subject to retention: they are kept until requeued or deleted.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let keep = jobs::storage::Retention::default()
///     .succeeded(10_000, Duration::from_secs(3600));
/// assert_eq!(keep.succeeded_max, 10_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// At most this many succeeded jobs are kept (the oldest go first). 0 keeps none.
    pub succeeded_max: usize,
    /// A succeeded job is removed once it is older than this.
    pub succeeded_ttl: Duration,
    /// At most this many deleted jobs are kept.
    pub deleted_max: usize,
    /// A deleted job is removed once it is older than this.
    pub deleted_ttl: Duration,
}

impl Default for Retention {
    /// 1,000 succeeded and 1,000 deleted jobs, each for at most a day.
    fn default() -> Self {
        Retention {
            succeeded_max: 1_000,
            succeeded_ttl: Duration::from_secs(24 * 3600),
            deleted_max: 1_000,
            deleted_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl Retention {
    /// Keeps at most `max` succeeded jobs, each for at most `ttl`.
    #[must_use]
    pub fn succeeded(mut self, max: usize, ttl: Duration) -> Self {
        self.succeeded_max = max;
        self.succeeded_ttl = ttl;
        self
    }

    /// Keeps at most `max` deleted jobs, each for at most `ttl`.
    #[must_use]
    pub fn deleted(mut self, max: usize, ttl: Duration) -> Self {
        self.deleted_max = max;
        self.deleted_ttl = ttl;
        self
    }
}
