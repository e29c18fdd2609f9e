//! What a PostgreSQL error means for the caller: unreachable (worth retrying soon), a missing or
//! old schema (run `migrate()`), or another storage error; and the retry of serialization
//! failures and deadlocks, which PostgreSQL asks the client to repeat and which must never
//! surface as a lost job.

use crate::error::{Error, Result};
use std::future::Future;
use std::time::Duration;

/// SQLSTATEs of a transaction PostgreSQL rolled back and asks the client to run again.
const RETRYABLE: [&str; 2] = ["40001", "40P01"];

/// SQLSTATEs of a statement that names something the schema lacks.
const SCHEMA_MISSING: [&str; 3] = ["3F000", "42P01", "42883"];

/// How many times a serialization failure or deadlock is tried again.
const RETRIES: u32 = 8;

/// A jobs error for `err`, which happened while `doing` (e.g. "fetching jobs").
pub(super) fn failed(err: sqlx::Error, doing: &str, schema: &str) -> Error {
    let code = err
        .as_database_error()
        .and_then(|d| d.code().map(|c| c.into_owned()));
    if code.as_deref().is_some_and(|c| SCHEMA_MISSING.contains(&c)) {
        return Error::config(format!(
            "{doing}: the jobs schema `{schema}` is missing or older than this version of jobs; \
             run `PostgresStorage::migrate()` (or `jobs-bench`'s set-up) first"
        ))
        .with_source(err);
    }
    let unreachable = matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    ) || code.as_deref().is_some_and(|c| {
        // admin shutdown, crash shutdown, cannot connect now, too many connections
        c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300")
    });
    let error = if matches!(err, sqlx::Error::PoolTimedOut) {
        // The pool keeps trying to connect until its acquire timeout and then says only that
        // it timed out; say what that means.
        Error::storage(format!(
            "PostgreSQL failed while {doing}: no connection within the acquire timeout; the \
             server is down or unreachable (or every pooled connection stayed busy)"
        ))
    } else {
        Error::storage(format!("PostgreSQL failed while {doing}"))
    }
    .with_source(err);
    if unreachable {
        error.unreachable()
    } else {
        error
    }
}

/// Whether PostgreSQL rolled the statement back and asks for it to be run again.
fn retryable(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| RETRYABLE.contains(&c.as_ref()))
}

/// Runs `call` again after serialization failures and deadlocks (a short, growing pause
/// between tries), so callers see them only when they keep happening.
pub(super) async fn retrying<T, F, Fut>(mut call: F) -> std::result::Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, sqlx::Error>>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Err(e) if retryable(&e) && tries < RETRIES => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(u64::from(tries) * 5)).await;
            }
            other => return other,
        }
    }
}

/// Turns a driver result into a jobs result.
pub(super) trait Doing<T> {
    /// The result, with an error that says it happened while `doing`.
    fn doing(self, doing: &str, schema: &str) -> Result<T>;
}

impl<T> Doing<T> for std::result::Result<T, sqlx::Error> {
    fn doing(self, doing: &str, schema: &str) -> Result<T> {
        self.map_err(|e| failed(e, doing, schema))
    }
}
