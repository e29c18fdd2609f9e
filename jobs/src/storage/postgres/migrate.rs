//! Versioned migrations: the SQL files under `migrations/`, applied in order by
//! [`PostgresStorage::migrate`](super::PostgresStorage::migrate) and recorded in
//! `<schema>.migrations`.
//!
//! Written here rather than with `sqlx::migrate!` because the files are templates: the schema
//! name (and the NOTIFY channel and advisory-lock namespace derived from it) is chosen by the
//! application at run time, and sqlx's migrator keeps one history per database, not per schema.

use super::failure::Doing;
use super::{Db, Names};
use crate::error::{Error, Result};
use sqlx::{Executor, PgConnection};

/// The migrations, in order: (version, name, SQL template).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "tables", include_str!("migrations/0001_tables.sql")),
    (2, "delivery", include_str!("migrations/0002_delivery.sql")),
    (3, "flow", include_str!("migrations/0003_flow.sql")),
    (
        4,
        "restart grace",
        include_str!("migrations/0004_restart_grace.sql"),
    ),
    (
        5,
        "no vacuum truncate",
        include_str!("migrations/0005_no_vacuum_truncate.sql"),
    ),
    (6, "headers", include_str!("migrations/0006_headers.sql")),
    (
        7,
        "monitoring",
        include_str!("migrations/0007_monitoring.sql"),
    ),
    (
        8,
        "idle poll",
        include_str!("migrations/0008_idle_poll.sql"),
    ),
    (
        9,
        "recurring headers",
        include_str!("migrations/0009_recurring_headers.sql"),
    ),
    (10, "no jit", include_str!("migrations/0010_no_jit.sql")),
    (
        11,
        "lean hot path",
        include_str!("migrations/0011_lean_hot_path.sql"),
    ),
];

/// The schema version this code needs.
pub(super) const LATEST: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Applies the migrations the schema lacks, in one transaction, one process at a time.
/// Returns the versions applied.
///
/// Boxed as a `Send` future: written as a plain `async fn`, the compiler cannot prove the
/// future `Send` for every lifetime of the connection it borrows (rust-lang/rust#102211), and
/// callers spawn it.
pub(super) fn migrate<'a>(
    db: &'a Db,
    names: &'a Names,
) -> futures::future::BoxFuture<'a, Result<Vec<i32>>> {
    Box::pin(migrate_now(db, names))
}

async fn migrate_now(db: &Db, names: &Names) -> Result<Vec<i32>> {
    let doing = "migrating the jobs schema";
    let schema = &names.schema;
    // Behind a transaction-mode pooler, no named statement may outlive the transaction.
    let persistent = !db.pooled;
    let mut tx = db.pool.begin().await.doing(doing, schema)?;
    let conn: &mut PgConnection = &mut tx;
    // Concurrent migrations of one schema (several processes starting) wait for each other.
    sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
        .persistent(persistent)
        .bind(names.lock_namespace)
        .execute(&mut *conn)
        .await
        .doing(doing, schema)?;
    let create = format!(
        "CREATE SCHEMA IF NOT EXISTS {s}; CREATE TABLE IF NOT EXISTS {s}.migrations \
         (version integer PRIMARY KEY, name text NOT NULL, \
          applied_at timestamptz NOT NULL DEFAULT now())",
        s = names.quoted
    );
    conn.execute(create.as_str()).await.doing(doing, schema)?;
    let current: Option<i32> = sqlx::query_scalar(&format!(
        "SELECT max(version) FROM {}.migrations",
        names.quoted
    ))
    .persistent(persistent)
    .fetch_one(&mut *conn)
    .await
    .doing(doing, schema)?;
    let current = current.unwrap_or(0);
    if current > LATEST {
        return Err(newer(schema, current));
    }
    let pending: Vec<(i32, &str, String)> = MIGRATIONS
        .iter()
        .filter(|m| m.0 > current)
        .map(|&(version, name, template)| (version, name, names.expand(template)))
        .collect();
    let record = format!(
        "INSERT INTO {}.migrations (version, name) VALUES ($1, $2)",
        names.quoted
    );
    let mut applied = Vec::new();
    for (version, name, sql) in pending {
        let applying = format!("applying migration {version} ({name})");
        conn.execute(sql.as_str()).await.doing(&applying, schema)?;
        sqlx::query(&record)
            .persistent(persistent)
            .bind(version)
            .bind(name)
            .execute(&mut *conn)
            .await
            .doing(doing, schema)?;
        applied.push(version);
    }
    tx.commit().await.doing(doing, schema)?;
    Ok(applied)
}

/// Checks that the schema is at the version this code needs.
pub(super) async fn check(db: &Db, names: &Names) -> Result<()> {
    let schema = &names.schema;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("{}.migrations", names.quoted))
        .fetch_one(db)
        .await
        .doing("checking the jobs schema", schema)?;
    if !exists {
        return Err(Error::config(format!(
            "the jobs schema `{schema}` does not exist in this database: run \
             `PostgresStorage::migrate()` once to create it"
        )));
    }
    let current: Option<i32> = sqlx::query_scalar(&format!(
        "SELECT max(version) FROM {}.migrations",
        names.quoted
    ))
    .fetch_one(db)
    .await
    .doing("checking the jobs schema", schema)?;
    let current = current.unwrap_or(0);
    match current.cmp(&LATEST) {
        std::cmp::Ordering::Less => Err(Error::config(format!(
            "the jobs schema `{schema}` is at version {current}, older than the version \
             {LATEST} this version of jobs needs: run `PostgresStorage::migrate()` to upgrade it"
        ))),
        std::cmp::Ordering::Greater => Err(newer(schema, current)),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

fn newer(schema: &str, current: i32) -> Error {
    Error::config(format!(
        "the jobs schema `{schema}` is at version {current}, newer than the version {LATEST} \
         this version of jobs knows: upgrade jobs in this program"
    ))
}
