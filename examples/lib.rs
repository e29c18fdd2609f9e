//! Helpers shared by the examples: which storage to run on.

use std::sync::Arc;

/// The in-memory storage, or Redis when `REDIS_URL` is set.
///
/// # Errors
///
/// When `REDIS_URL` is set but Redis cannot be reached.
pub async fn storage_from_env() -> jobs::Result<Arc<dyn jobs::Storage>> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => redis_storage(&url).await,
        _ => Ok(Arc::new(jobs::MemoryStorage::new())),
    }
}

async fn redis_storage(url: &str) -> jobs::Result<Arc<dyn jobs::Storage>> {
    let prefix = std::env::var("JOBS_PREFIX").unwrap_or_else(|_| "jobs-examples".to_owned());
    let storage = jobs::RedisStorage::builder(url)
        .prefix(prefix)
        .connect()
        .await?;
    Ok(Arc::new(storage))
}
