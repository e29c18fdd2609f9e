//! Opens the storage a run measures.

use crate::{Args, Backend};
use std::sync::Arc;

/// The storage of this run, and its name for the report.
pub(crate) async fn open(
    args: &Args,
    prefix: &str,
) -> anyhow::Result<(Arc<dyn jobs::Storage>, &'static str)> {
    match args.backend {
        Backend::Memory => Ok((Arc::new(jobs::MemoryStorage::new()), "memory")),
        Backend::Redis => {
            let _ = prefix;
            anyhow::bail!("the redis backend is not available in this build yet")
        }
    }
}
