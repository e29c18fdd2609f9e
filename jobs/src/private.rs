//! Items the macros' expansions use. Not public API: names and signatures may change in any
//! release.

pub use futures;
pub use inventory;
pub use serde;
pub use serde_json;

pub use crate::app_state::StateMap;
pub use crate::registry::{AttemptResult, JobDescriptor, JobFlow};

use crate::client::Client;
use crate::error::Result;
use crate::job::JobContext;
use crate::job::{Job, JobId};
use futures::future::BoxFuture;
use std::any::TypeId;
use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

/// Holds for every type a job can take as a serialized argument.
///
/// Generated impls assume it in `where for<'__jobs> Arg: JobArgument` clauses (the binder keeps
/// the bound from being checked at the impl), so a bad argument type is reported once, by
/// the [`CheckOk`] probe, instead of by every derive and impl that uses the type.
pub trait JobArgument:
    serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static
{
}
impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static> JobArgument for T {}

/// No type implements this: requiring it is how a non-serializable argument is reported.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a job argument: it does not implement `serde::Serialize` and \
               `serde::Deserialize`",
    label = "job arguments are stored as JSON with the job, so this type must be serializable",
    note = "derive `serde::Serialize` and `serde::Deserialize` for your own types (with serde's \
            `derive` feature), pass an owned serializable value instead, or mark a value the \
            worker provides with `#[state]`"
)]
pub trait MustBeSerializable {}

/// No type implements this: requiring it is how an argument that cannot cross threads is
/// reported.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a job argument: it is not `Send + Sync + 'static`",
    label = "the job is sent to a worker thread, so its arguments must be `Send + Sync + 'static`",
    note = "use thread-safe owned types inside it, e.g. `Arc` instead of `Rc`, or an atomic or \
            `Mutex` instead of `Cell`/`RefCell`"
)]
pub trait MustBeSendSync {}

/// The type a generated check or registration asks about; see [`CheckOk`].
pub struct Probe<T>(PhantomData<T>);

impl<T> Probe<T> {
    /// A probe for `T`.
    #[must_use]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

impl<T> Default for Probe<T> {
    fn default() -> Self {
        Probe::new()
    }
}

/// `(&&&Probe::<T>::new()).check_argument()` resolves (autoref specialization) to the first of
/// [`CheckOk`], [`CheckSendSync`], [`CheckSerde`] whose impl applies, so exactly one error
/// names exactly what is missing.
pub trait CheckOk<T> {
    /// Compiles.
    fn check_argument(&self) {}
}
impl<T: JobArgument> CheckOk<T> for &&Probe<T> {}

/// See [`CheckOk`]: serializable, but not thread-safe.
pub trait CheckSendSync<T> {
    /// Fails to compile, naming the type.
    fn check_argument(&self)
    where
        T: MustBeSendSync,
    {
    }
}
impl<T: serde::Serialize + serde::de::DeserializeOwned> CheckSendSync<T> for &Probe<T> {}

/// See [`CheckOk`]: not serializable.
pub trait CheckSerde<T> {
    /// Fails to compile, naming the type.
    fn check_argument(&self)
    where
        T: MustBeSerializable,
    {
    }
}
impl<T> CheckSerde<T> for Probe<T> {}

/// How a worker performs one job function: implemented by `#[background_job]` for its struct,
/// under the same `where` clauses as its `Job` impl.
pub trait Perform {
    /// The app state types the function takes.
    fn states() -> Vec<(TypeId, &'static str)>;
    /// Decodes the arguments and starts one attempt.
    ///
    /// # Errors
    ///
    /// When the arguments do not decode or a state value is missing.
    fn perform(
        args: &str,
        ctx: JobContext,
        state: &StateMap,
    ) -> std::result::Result<BoxFuture<'static, AttemptResult>, String>;
}

/// The registration reaches [`Perform`] through this, so a job whose types are wrong (already
/// reported by the checks) does not add a second error where it is registered.
pub trait ViaPerform {
    /// [`Perform::states`].
    fn states(&self) -> Vec<(TypeId, &'static str)>;
    /// [`Perform::perform`].
    ///
    /// # Errors
    ///
    /// See [`Perform::perform`].
    fn perform(
        &self,
        args: &str,
        ctx: JobContext,
        state: &StateMap,
    ) -> std::result::Result<BoxFuture<'static, AttemptResult>, String>;
}

impl<T: Perform> ViaPerform for &Probe<T> {
    fn states(&self) -> Vec<(TypeId, &'static str)> {
        T::states()
    }

    fn perform(
        &self,
        args: &str,
        ctx: JobContext,
        state: &StateMap,
    ) -> std::result::Result<BoxFuture<'static, AttemptResult>, String> {
        T::perform(args, ctx, state)
    }
}

/// See [`ViaPerform`]: only chosen in a crate that does not compile anyway.
pub trait ViaUncompiled {
    /// Nothing.
    fn states(&self) -> Vec<(TypeId, &'static str)> {
        Vec::new()
    }

    /// Refuses.
    ///
    /// # Errors
    ///
    /// Always.
    fn perform(
        &self,
        _args: &str,
        _ctx: JobContext,
        _state: &StateMap,
    ) -> std::result::Result<BoxFuture<'static, AttemptResult>, String> {
        Err("this job's types did not compile".to_owned())
    }
}
impl<T> ViaUncompiled for Probe<T> {}

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

    /// Whether this is an error that retrying cannot fix (see [`crate::Permanent`]).
    fn is_permanent_error(&self) -> bool {
        false
    }
}

impl IntoAttemptResult for () {
    fn into_attempt_result(self) -> AttemptResult {
        Ok(())
    }
}

impl<T, E: Display + 'static> IntoAttemptResult for std::result::Result<T, E> {
    fn into_attempt_result(self) -> AttemptResult {
        // `{:#}` prints an anyhow error with its whole chain of causes.
        self.map(|_| ()).map_err(|e| format!("{e:#}"))
    }

    fn is_permanent_error(&self) -> bool {
        self.as_ref()
            .err()
            .is_some_and(crate::permanent::is_permanent)
    }
}

/// What the generated code turns a job function's return value into: the attempt's result,
/// with a permanent error recorded on the context.
pub fn attempt_result<R: IntoAttemptResult>(ctx: &JobContext, returned: R) -> AttemptResult {
    if returned.is_permanent_error() {
        ctx.mark_permanent();
    }
    returned.into_attempt_result()
}

/// What generated code wraps a job's return value in to keep it for continuations; see
/// [`CaptureSerialized`].
pub struct Capture<'a, T>(pub &'a T);

/// `(&Capture(&r)).capture(&ctx)` resolves (autoref specialization) to this when `r` is a
/// `Result<T, E>` with `T: Serialize`, storing the `Ok` value; else to [`CaptureNothing`].
pub trait CaptureSerialized {
    /// Keeps the value.
    fn capture(&self, ctx: &JobContext);
}
impl<T: serde::Serialize, E> CaptureSerialized for Capture<'_, std::result::Result<T, E>> {
    fn capture(&self, ctx: &JobContext) {
        if let Ok(value) = self.0 {
            ctx.store_result(value);
        }
    }
}

/// See [`CaptureSerialized`]: a return value that is not kept.
pub trait CaptureNothing {
    /// Nothing.
    fn capture(&self, _ctx: &JobContext) {}
}
impl<T> CaptureNothing for &Capture<'_, T> {}

/// Compile-time check helpers: calling these with a type fails to compile, on that type, when
/// it does not fit. (Arguments are checked through [`CheckOk`].)
pub const fn assert_state_argument<T: StateArgument>() {}
/// See [`assert_state_argument`].
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
