//! [`MemoryStorageBuilder`]: how the in-memory backend keeps jobs.

use super::MemoryStorage;
use crate::storage::{PayloadLimit, Retention};

/// Configures a [`MemoryStorage`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// use std::time::Duration;
///
/// #[jobs::background_job]
/// async fn import(rows: Vec<u64>) {}
///
/// let storage = jobs::MemoryStorage::builder()
///     .retention(jobs::storage::Retention::default().succeeded(100, Duration::from_secs(60)))
///     .max_payload(1024)
///     .build();
/// let client = jobs::Client::new(storage);
/// let err = jobs::enqueue!(&client, import((0..1_000).collect())).await.unwrap_err();
/// assert!(err.is_too_large(), "{err}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStorageBuilder {
    retention: Retention,
    payload: PayloadLimit,
}

impl MemoryStorageBuilder {
    /// How many succeeded and deleted jobs are kept, and for how long.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The most bytes a job's arguments may take once serialized (headers will count too).
    /// A larger job is refused when it is enqueued, with an error that names it and both
    /// sizes ([`Error::is_too_large`](crate::Error::is_too_large)); nothing is stored.
    /// Default: [`DEFAULT_MAX_PAYLOAD`](crate::storage::DEFAULT_MAX_PAYLOAD), 512 KiB.
    #[must_use]
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.payload = PayloadLimit(bytes);
        self
    }

    /// The storage, empty.
    pub fn build(self) -> MemoryStorage {
        let storage = MemoryStorage::with_payload_limit(self.payload);
        storage.lock().retention = self.retention;
        storage
    }
}
