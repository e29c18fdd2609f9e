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
        Backend::Postgres => {
            let storage = jobs::PostgresStorage::builder(&args.postgres_url)
                .schema(schema(prefix))
                .max_connections(32)
                .build()?;
            storage.migrate().await?;
            Ok((Arc::new(storage), "postgres"))
        }
    }
}

/// The PostgreSQL schema for `prefix`: lower-case letters, digits and `_` only.
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

/// Drops what a run made for itself: the fresh schema of a PostgreSQL run without `--prefix`
/// (a run with `--prefix` keeps its jobs, for `work` and `stats` to go on with).
pub(crate) async fn clean_up(args: &Args, storage: &Arc<dyn jobs::Storage>) -> anyhow::Result<()> {
    if args.prefix.is_some() {
        return Ok(());
    }
    if let Some(pg) = storage
        .as_any()
        .and_then(|any| any.downcast_ref::<jobs::PostgresStorage>())
    {
        sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", pg.schema()))
            .execute(pg.pool())
            .await?;
    }
    Ok(())
}
