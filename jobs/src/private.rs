//! Items the macros' expansions use. Not public API: names and signatures may change in any
//! release.

pub use futures;
pub use inventory;
pub use serde;
pub use serde_json;

pub use crate::app_state::StateMap;
pub use crate::registry::{AttemptResult, JobDescriptor};

use crate::client::Client;
use crate::error::Result;
use crate::job::{Job, JobId};
use futures::future::BoxFuture;
use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, SystemTime};

/// Holds for every type a job can take as a serialized argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a job argument: job arguments are stored, so they must be owned \
               and implement `Serialize + DeserializeOwned + Send + 'static`",
    label = "this argument cannot be serialized into the job",
    note = "derive `serde::Serialize` and `serde::Deserialize` for your own types, or mark \
            values the worker provides with `#[state]`"
)]
pub trait JobArgument: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}
impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> JobArgument for T {}

/// Holds for every type a job can take as `#[state]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be app state: `#[state]` parameters must be `Clone + Send + Sync + 'static`",
    label = "the worker hands each job a clone of this value",
    note = "wrap it in an `Arc` to share it"
)]
pub trait StateArgument: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> StateArgument for T {}

/// What a job function may return: `()`, or `Result<T, E>` with `E: Display`.
#[diagnostic::on_unimplemented(
    message = "a job function must return `()` or `Result<T, E>` where `E: Display`, not `{Self}`",
    label = "the worker cannot tell from this type whether the job succeeded"
)]
pub trait IntoAttemptResult {
    /// `Ok` on success, else the error as displayed.
    fn into_attempt_result(self) -> AttemptResult;
}

impl IntoAttemptResult for () {
    fn into_attempt_result(self) -> AttemptResult {
        Ok(())
    }
}

impl<T, E: Display> IntoAttemptResult for std::result::Result<T, E> {
    fn into_attempt_result(self) -> AttemptResult {
        // `{:#}` prints an anyhow error with its whole chain of causes.
        self.map(|_| ()).map_err(|e| format!("{e:#}"))
    }
}

/// Compile-time check helpers: calling these with a type fails to compile, on that type, when
/// it does not fit.
pub const fn assert_job_argument<T: JobArgument>() {}
/// See [`assert_job_argument`].
pub const fn assert_state_argument<T: StateArgument>() {}
/// See [`assert_job_argument`].
pub const fn assert_job_output<T: IntoAttemptResult>() {}

/// Decodes stored arguments, naming the job in the error.
pub fn decode_args<T: serde::de::DeserializeOwned>(
    name: &str,
    args: &str,
) -> std::result::Result<T, String> {
    serde_json::from_str(args).map_err(|e| {
        format!(
            "the stored arguments of job `{name}` do not match its function (did its \
             parameters change while jobs were queued?): {e}"
        )
    })
}

/// Boxes the future of one async attempt.
pub fn boxed<F>(future: F) -> BoxFuture<'static, AttemptResult>
where
    F: Future<Output = AttemptResult> + Send + 'static,
{
    Box::pin(future)
}

/// Runs a sync job function on tokio's blocking pool.
pub fn blocking<F>(f: F) -> BoxFuture<'static, AttemptResult>
where
    F: FnOnce() -> AttemptResult + Send + 'static,
{
    Box::pin(async move {
        match tokio::task::spawn_blocking(f).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(crate::worker::panic_message(&e.into_panic())),
            Err(e) => Err(format!("the blocking task was stopped: {e}")),
        }
    })
}

/// What `enqueue!(f(args))` without a client expands to.
pub fn enqueue_ambient<J: Job>(job: J) -> impl Future<Output = Result<JobId>> + Send + 'static {
    let stored = Client::installed().map(|c| c.enqueue(job));
    async move { stored?.await }
}

/// What `schedule!(f(args), in = d)` without a client expands to.
pub fn schedule_ambient_in<J: Job>(
    job: J,
    delay: Duration,
) -> impl Future<Output = Result<JobId>> + Send + 'static {
    let stored = Client::installed().map(|c| c.schedule_in(job, delay));
    async move { stored?.await }
}

/// What `schedule!(f(args), at = t)` without a client expands to.
pub fn schedule_ambient_at<J: Job>(
    job: J,
    at: SystemTime,
) -> impl Future<Output = Result<JobId>> + Send + 'static {
    let stored = Client::installed().map(|c| c.schedule_at(job, at));
    async move { stored?.await }
}
