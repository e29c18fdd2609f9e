//! A library of jobs, defined away from the worker binary that performs them.
//!
//! The worker finds these jobs only if this crate is linked into it; see `jobs::registry`.

use std::sync::atomic::{AtomicU64, Ordering};

/// The sum of every `library_add` performed in this process.
pub static TOTAL: AtomicU64 = AtomicU64::new(0);

/// Adds `n` to [`TOTAL`].
#[jobs::background_job(name = "library.add")]
pub async fn library_add(n: u64) {
    TOTAL.fetch_add(n, Ordering::SeqCst);
}
