//! Opens the storage a run measures.

use crate::{Args, Backend};
use std::sync::Arc;

/// Refuses options that do not fit together, before anything is connected.
pub(crate) fn check(args: &Args) -> anyhow::Result<()> {
    if args.backend != Backend::Redis {
        let name = match args.backend {
            Backend::Postgres => "postgres",
            _ => "memory",
        };
        if args.cluster {
            anyhow::bail!("--cluster is for a Redis Cluster: it needs --backend redis, not {name}");
        }
        if args.redis_ca.is_some() {
            anyhow::bail!(
                "--redis-ca is for a rediss:// Redis: it needs --backend redis, not {name}"
            );
        }
        if args.replicas_ack.is_some() {
            anyhow::bail!(
                "--replicas-ack is Redis's durable acknowledgement: it needs --backend redis, \
                 not {name}"
            );
        }
    }
    if args.backend == Backend::Redis && !args.cluster && args.redis_url.contains(',') {
        anyhow::bail!(
            "--redis-url `{}` lists several nodes: add --cluster to connect to a Redis Cluster \
             (one Redis takes one URL)",
            args.redis_url
        );
    }
    if args.queues == Some(0) {
        anyhow::bail!("--queues must be at least 1");
    }
    Ok(())
}

/// The storage of this run, and its name for the report.
pub(crate) async fn open(
    args: &Args,
    prefix: &str,
) -> anyhow::Result<(Arc<dyn jobs::Storage>, &'static str)> {
    match args.backend {
        Backend::Memory => Ok((Arc::new(jobs::MemoryStorage::new()), "memory")),
        Backend::Redis => {
            let (builder, name) = if args.cluster {
                let nodes: Vec<&str> = args
                    .redis_url
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .collect();
                (jobs::RedisStorage::cluster_builder(nodes), "redis-cluster")
            } else {
                (jobs::RedisStorage::builder(&args.redis_url), "redis")
            };
            let builder = match &args.redis_ca {
                Some(file) => builder.tls_ca_pem(std::fs::read(file).map_err(|e| {
                    anyhow::anyhow!("cannot read the --redis-ca file {}: {e}", file.display())
                })?),
                None => builder,
            };
            let storage = builder
                .prefix(prefix)
                .replicas_ack(args.replicas_ack.unwrap_or(0))
                .connect()
                .await?;
            Ok((Arc::new(storage), name))
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
