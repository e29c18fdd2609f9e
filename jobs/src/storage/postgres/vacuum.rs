//! The storage's own vacuum: every table a queue churns, vacuumed on a timer by each worker
//! process, so dead rows are reclaimed whether or not the server's autovacuum runs or keeps up
//! (a server with autovacuum off grew to 629 MB for 1,000,000 jobs through one schema, with
//! 4,000,000 dead rows never reclaimed; see BENCHMARKS.md).
//!
//! `VACUUM (SKIP_LOCKED)` skips a table another process is vacuuming at that moment, so several
//! workers share the work instead of queueing for it. `TRUNCATE false`: giving the table's empty
//! end back to the OS takes an exclusive lock that stalls every claim; with a transaction held
//! open elsewhere (so vacuum reclaims nothing and retries each pass), drain fell from 34,000 to
//! 1,700 jobs/s with it, and to 24,500 (from 29,200) without it.
//!
//! Passes follow the work, not the clock: both the small hot tables (`ready`, `leases`,
//! `counters`) and the wide `jobs` table are vacuumed every ~5,000 jobs. On a timer (the hot
//! tables every 5 s, `jobs` every 30 s) 1,000,000 jobs at ~10,000 jobs/s left 150–170 MB, as
//! 30 s of dead `jobs` rows piled up between passes; by the count, 7.7 MB against 5.0 MB after
//! the first 10,000 (`bench/pg-bloat.sh`), each pass taking 2–8 ms (hot) and 7–25 ms (`jobs`).

use super::Names;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often the loop looks at the churn.
const TICK: Duration = Duration::from_millis(250);

/// Claims and completions (counted per job, so about two per job) after which a pass runs:
/// every ~5,000 jobs. At 10,000 jobs/s that is a pass every half second; the dead rows of
/// 5,000 jobs are what the tables carry at most between passes.
const CHURN_PER_PASS: u64 = 10_000;

/// With less churn than that, a pass still runs this long after the last one (if anything
/// moved at all), so a slow queue's dead rows do not wait for the 5,000th job.
const SLOW_PASS_EVERY: Duration = Duration::from_secs(5);

/// Vacuums the schema's tables until `alive` has no strong reference left. A pass runs when
/// `churn` (the jobs this process claimed and completed) moved by [`CHURN_PER_PASS`] since it
/// last ran, or moved at all and [`SLOW_PASS_EVERY`] has passed: an idle worker sends no
/// vacuum, and the processes doing the work vacuum after it.
pub(crate) async fn run<T>(alive: Weak<T>, churn: Arc<AtomicU64>, pool: PgPool, names: Names) {
    let s = &names.quoted;
    let hot = format!(
        "VACUUM (SKIP_LOCKED, TRUNCATE false) {s}.ready, {s}.leases, {s}.counters, {s}.limit_slots, \
         {s}.limit_starts"
    );
    let all = format!(
        "VACUUM (SKIP_LOCKED, TRUNCATE false) {s}.jobs, {s}.uniques, {s}.batches, {s}.servers"
    );
    let mut passes = [(hot, 0u64, Instant::now()), (all, 0u64, Instant::now())];
    loop {
        tokio::time::sleep(TICK).await;
        if alive.strong_count() == 0 {
            return;
        }
        let now = churn.load(Ordering::Relaxed);
        for (sql, seen, at) in passes.iter_mut() {
            let moved = now.wrapping_sub(*seen);
            if moved == 0 || (moved < CHURN_PER_PASS && at.elapsed() < SLOW_PASS_EVERY) {
                continue;
            }
            *seen = now;
            if let Err(e) = sqlx::query(sql.as_str()).execute(&pool).await {
                tracing::debug!(error = %e, "jobs: vacuuming the PostgreSQL tables failed");
            }
            *at = Instant::now();
        }
    }
}
