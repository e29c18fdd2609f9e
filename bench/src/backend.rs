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
            let storage = jobs::RedisStorage::builder(&args.redis_url)
                .prefix(prefix)
                .connect()
                .await?;
            Ok((Arc::new(storage), "redis"))
        }
    }
}
