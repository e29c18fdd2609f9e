//! The storage's own vacuum: every table a queue churns, vacuumed on a timer by each worker
//! process, so dead rows are reclaimed whether or not the server's autovacuum runs or keeps up
//! (a server with autovacuum off grew to 629 MB for 1,000,000 jobs through one schema, with
//! 4,000,000 dead rows never reclaimed; see BENCHMARKS.md).
//!
//! `VACUUM (SKIP_LOCKED)` skips a table another process is vacuuming at that moment, so several
//! workers share the work instead of queueing for it. `TRUNCATE false`: giving the table's empty
//! end back to the OS takes an exclusive lock that stalls every claim; with a transaction held
//! open elsewhere (so vacuum reclaims nothing and retries each pass), drain fell from 34,000 to
//! 1,700 jobs/s with it, and to 24,500 (from 29,200) without it. The small hot tables (`ready`, `leases`,
//! `counters`) are cheap to vacuum and go often; the wide `jobs` table less often.

use super::Names;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the hot tables are vacuumed.
const HOT_EVERY: Duration = Duration::from_secs(5);

/// Every this many hot passes, the `jobs` table too (every 30 s).
const JOBS_EVERY: u32 = 6;

/// Vacuums the schema's tables until `alive` has no strong reference left. A pass runs only
/// when `churn` (claims and completions of this process) moved since the same pass last ran:
/// an idle worker sends no vacuum, and the processes doing the work vacuum after it.
pub(crate) async fn run<T>(alive: Weak<T>, churn: Arc<AtomicU64>, pool: PgPool, names: Names) {
    let s = &names.quoted;
    let hot = format!(
        "VACUUM (SKIP_LOCKED, TRUNCATE false) {s}.ready, {s}.leases, {s}.counters, {s}.limit_slots, \
         {s}.limit_starts"
    );
    let all = format!(
        "VACUUM (SKIP_LOCKED, TRUNCATE false) {s}.jobs, {s}.uniques, {s}.batches, {s}.servers"
    );
    let mut passes: u32 = 0;
    let (mut hot_seen, mut all_seen) = (0, 0);
    loop {
        tokio::time::sleep(HOT_EVERY).await;
        if alive.strong_count() == 0 {
            return;
        }
        passes = passes.wrapping_add(1);
        let now = churn.load(Ordering::Relaxed);
        let (sql, seen) = if passes % JOBS_EVERY == 0 {
            (&all, &mut all_seen)
        } else {
            (&hot, &mut hot_seen)
        };
        if *seen == now {
            continue;
        }
        *seen = now;
        if let Err(e) = sqlx::query(sql).execute(&pool).await {
            tracing::debug!(error = %e, "jobs: vacuuming the PostgreSQL tables failed");
        }
    }
}
