//! The migrated schema's functions: every one that turns sequential scans off (the hot paths and
//! the monitoring counts) turns JIT compilation off too. Without it, the planner's 10^10 cost
//! for a scan it cannot avoid crosses `jit_above_cost` and PostgreSQL compiles the statement
//! with LLVM at every call (650-800 ms for `queue_names()` at a million jobs). A migration that
//! replaces such a function without `SET jit = off` fails here.

use jobs::storage::Retention;
use jobs_tests::postgres::TestPostgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_without_sequential_scans_are_never_jit_compiled() {
    let Some(pg) = TestPostgres::start("pg-schema") else {
        return;
    };
    let storage = pg.storage(Retention::default());
    storage.migrate().await.unwrap();
    let functions: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT p.oid::regprocedure::text, p.proconfig FROM pg_proc p \
         WHERE p.pronamespace = $1::regnamespace AND p.proconfig @> ARRAY['enable_seqscan=off']",
    )
    .bind(format!("\"{}\"", pg.schema()))
    .fetch_all(storage.pool())
    .await
    .unwrap();
    assert!(
        functions.len() >= 8,
        "fetch, maintain, complete, mark_started, renew, release, count_jobs, queue_names: {functions:?}"
    );
    for (function, settings) in &functions {
        assert!(
            settings.iter().any(|s| s == "jit=off"),
            "{function} turns sequential scans off but not JIT: {settings:?}"
        );
    }
}
