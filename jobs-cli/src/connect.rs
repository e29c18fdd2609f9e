//! Opening the storage `--url` names: Redis (`redis://`, `rediss://`, `redis+unix://`) or
//! PostgreSQL (`postgres://`, `postgresql://`), with `--prefix` as the Redis key prefix or the
//! PostgreSQL schema.

use jobs::monitor::Monitor;
use jobs::Storage;
use std::sync::Arc;

/// The storage at `url`, checked to answer.
pub(crate) async fn open(url: &str, prefix: Option<&str>) -> Result<Monitor, String> {
    let storage: Arc<dyn Storage> = if url.starts_with("redis://")
        || url.starts_with("rediss://")
        || url.starts_with("redis+unix://")
        || url.starts_with("unix://")
    {
        let mut b = jobs::RedisStorage::builder(url);
        if let Some(p) = prefix {
            b = b.prefix(p);
        }
        Arc::new(b.connect().await.map_err(|e| e.to_string())?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let schema = schema(prefix.unwrap_or("jobs"));
        let storage = jobs::PostgresStorage::builder(url)
            .schema(&schema)
            .max_connections(8)
            .build()
            .map_err(|e| e.to_string())?;
        // Any read checks the connection and that the schema exists and is current.
        jobs::storage::Monitoring::queue_names(&storage)
            .await
            .map_err(|e| e.to_string())?;
        Arc::new(storage)
    } else {
        return Err(format!(
            "`{url}` is not a storage URL: use redis://host:port or postgres://user@host/db"
        ));
    };
    Ok(Monitor::from_shared(storage))
}

/// The PostgreSQL schema for `prefix`: lower-case letters, digits and `_` only (as jobs-bench
/// names its schemas).
pub(crate) fn schema(prefix: &str) -> String {
    let mut schema: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if schema.starts_with(|c: char| c.is_ascii_digit()) {
        schema.insert(0, '_');
    }
    schema.truncate(40);
    schema
}
