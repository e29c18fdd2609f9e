//! Background jobs for Rust: annotate a function, enqueue a call of it, and a worker performs it.
//!
//! ```
//! use std::time::Duration;
//!
//! #[jobs::background_job]
//! async fn send_email(user_id: u64, subject: String) -> Result<(), std::io::Error> {
//!     println!("mail to user {user_id}: {subject}");
//!     Ok(())
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), jobs::Error> {
//! // Storage: in memory here; `jobs::storage::redis::RedisStorage` in production.
//! let storage = jobs::MemoryStorage::new();
//! jobs::Client::new(storage.clone()).install();
//!
//! // Mirrors a plain call; returns the job id once the job is stored.
//! let id = jobs::enqueue!(send_email(7, "Welcome".into())).await?;
//!
//! // A worker performs it (a real one runs until ctrl-c).
//! let worker = jobs::Worker::builder(storage.clone()).build()?;
//! worker.run_until(tokio::time::sleep(Duration::from_millis(200))).await?;
//!
//! let info = jobs::Client::installed()?.job(&id).await?.expect("kept after success");
//! assert_eq!(info.state, jobs::JobState::Succeeded);
//! # Ok(()) }
//! ```
//!
//! # Delivery
//!
//! Delivery is **at least once**. A job leaves storage only after an attempt finished. A fetched
//! job is leased, not removed: if its worker dies (or stalls past its lease), the lease runs out
//! and another worker performs the job again. So a job can *run* twice, when its worker died
//! after doing the work but before recording it, or lost its lease; write jobs so that running
//! one twice does no harm (idempotent), e.g. by checking whether the email was already sent.
//!
//! # Pieces
//!
//! - [`background_job`] turns a function into a job; [`enqueue!`], [`job!`] call it.
//! - [`Client`] stores jobs; [`Worker`] performs them; both talk to a [`Storage`]
//!   ([`MemoryStorage`], or the Redis backend with the `redis` feature).
//! - [`filter::Filter`] hooks into creation, performance and state changes.
//! - [`monitor`]: what operators see and do: queues, jobs by state, history, servers, pauses.
//! - [`recurring`]: jobs enqueued on a cron schedule.
//! - [`registry`]: what a worker binary knows about; read it for jobs defined in library crates.
#![warn(missing_docs, unreachable_pub)]

extern crate self as jobs;

mod app_state;
mod attempt_signals;
mod awake;
mod batch;
mod client;
mod continuation;
mod error;
pub mod filter;

mod group_commit;
pub mod headers;
mod job;
pub mod monitor;
mod permanent;
mod queue_name;
pub mod recurring;
pub mod registry;
mod retry;
mod state;
pub mod storage;
pub mod telemetry;
mod unique;
mod worker;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

// The decoders the fuzz targets in `fuzz/` exercise; not public API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;

pub use app_state::StateMap;
pub use batch::BatchBuilder;
pub use client::{Client, ClientBuilder};
pub use continuation::ContinueWith;
pub use error::{Error, Result};
pub use headers::Headers;
pub use job::{Job, JobContext, JobId, ParseJobIdError};
pub use permanent::{permanent, Permanent};
pub use retry::{OnExhausted, RetryBackoff};
pub use state::{JobState, StateChange};
#[cfg(feature = "postgres")]
pub use storage::postgres::{InTransaction, PostgresStorage, PostgresStorageBuilder};
#[cfg(feature = "redis")]
pub use storage::redis::{RedisStorage, RedisStorageBuilder};
pub use storage::Finish;
pub use storage::{MemoryStorage, MemoryStorageBuilder, Storage};
pub use unique::Submit;
pub use worker::{Worker, WorkerBuilder};

/// Turns a function into a background job.
///
/// The function stays exactly as written: code and unit tests can still call it directly.
/// Next to it the attribute defines a struct **with the same name** (in the type namespace)
/// holding one call's arguments; [`job!`], [`enqueue!`] and [`schedule!`] build it from a call
/// written like a plain function call, so each argument is type-checked against its parameter.
/// The job is registered under a stable name and found by any [`Worker`] it is linked into.
///
/// # Options
///
/// `#[background_job(name = "..", queue = "..", retries = N, timeout = "..")]`, all optional:
///
/// | key | default | meaning |
/// |-----|---------|---------|
/// | `name` | the function's name | the name stored with each job; keep it stable while jobs are queued |
/// | `queue` | `"default"` | the queue its jobs go to (no spaces, `:`, `{` or `}`) |
/// | `retries` | `3` | how many times a failed attempt is retried |
/// | `timeout` | none | how long one attempt may run: `"30s"`, `"500ms"`, `"1h 30m"` |
///
/// # Parameters
///
/// - **Arguments** are stored with the job as JSON, so they must be owned and
///   `Serialize + DeserializeOwned + Send + Sync + 'static`: numbers, `String`, `Vec<_>`,
///   `Option<_>`, `HashMap<_, _>`, tuples, and your own types deriving `serde::Serialize` and
///   `serde::Deserialize`. `&str`, `impl Trait`, generic functions and `self` are compile errors.
/// - **`#[state]` parameters** are not stored: the worker hands each job a clone of the value of
///   that type registered with [`WorkerBuilder::state`], so the type must be
///   `Clone + Send + Sync + 'static` (wrap shared things such as pools in an `Arc`).
/// - **A [`JobContext`] parameter** receives the running job's id, attempt and cancellation.
///
/// # Return type, async and sync
///
/// Return `()` (the attempt always succeeds) or `Result<T, E>` with `E: Display`, e.g.
/// `anyhow::Result<()>` or `Result<(), String>`: an `Err` fails the attempt, which is retried.
/// An `async fn` runs on the worker's runtime; a plain `fn` runs on tokio's blocking pool.
///
/// # Examples
///
/// ```
/// use jobs::{background_job, enqueue, Client, JobContext, JobState, MemoryStorage, Worker};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// /// App state: registered once on the worker, handed to `#[state]` parameters.
/// #[derive(Clone, Default)]
/// struct Ledger(Arc<AtomicU64>);
///
/// #[background_job(queue = "billing", retries = 5, timeout = "30s", name = "billing.charge")]
/// async fn charge(
///     order_id: u64,
///     cents: u64,
///     #[state] ledger: Ledger,
///     ctx: JobContext,
/// ) -> anyhow::Result<()> {
///     anyhow::ensure!(cents > 0, "order {order_id}: nothing to charge");
///     println!("charging order {order_id}, attempt {}", ctx.attempt());
///     ledger.0.fetch_add(cents, Ordering::SeqCst);
///     Ok(())
/// }
///
/// /// A plain `fn`: runs on the blocking pool.
/// #[background_job]
/// fn write_receipt(order_id: u64, #[state] ledger: Ledger) {
///     println!("receipt for order {order_id}: {} cents so far", ledger.0.load(Ordering::SeqCst));
/// }
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), jobs::Error> {
/// // Still an ordinary function: call it directly in a unit test.
/// write_receipt(1, Ledger::default());
///
/// let storage = MemoryStorage::new();
/// let client = Client::new(storage.clone());
/// let id = enqueue!(&client, charge(7, 250)).await?;
/// assert_eq!(id.queue(), "billing");
/// let receipt = enqueue!(&client, write_receipt(7)).await?;
///
/// let ledger = Ledger::default();
/// let worker = Worker::builder(storage)
///     .queues(["billing", "default"])
///     .state(ledger.clone())
///     .build()?;
/// worker.run_until(tokio::time::sleep(Duration::from_millis(300))).await?;
///
/// assert_eq!(ledger.0.load(Ordering::SeqCst), 250);
/// let info = client.job(&id).await?.expect("kept after success");
/// assert_eq!((info.name.as_str(), info.state), ("billing.charge", JobState::Succeeded));
/// assert_eq!(client.job(&receipt).await?.expect("kept").state, JobState::Succeeded);
/// # Ok(()) }
/// ```
pub use jobs_macros::background_job;

/// Stores a call of a job function and returns a future of its [`JobId`].
///
/// Write the call as you would call the function, minus injected (`#[state]`,
/// [`JobContext`]) parameters: `enqueue!(send_email(user_id, subject))`. The arguments are
/// type-checked against the function's parameters, evaluated and serialized right away; the
/// returned future resolves once the job is stored.
///
/// - `enqueue!(f(..))` uses the *ambient* client, installed once with [`Client::install`];
/// - `enqueue!(&client, f(..))` uses the given [`Client`] (any expression of type `Client` or
///   `&Client`).
///
/// # Errors
///
/// The future fails when no client is installed (ambient form), an argument fails to
/// serialize, a filter rejects the job, or the storage fails.
///
/// # Examples
///
/// ```
/// use jobs::{background_job, enqueue, Client, JobState, MemoryStorage};
///
/// #[background_job]
/// async fn send_email(user_id: u64, subject: String) -> Result<(), std::io::Error> {
///     println!("mail to {user_id}: {subject}");
///     Ok(())
/// }
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), jobs::Error> {
/// let client = Client::new(MemoryStorage::new());
///
/// // Explicit client.
/// let id = enqueue!(&client, send_email(7, "Welcome".into())).await?;
///
/// // Ambient client: install one at start-up, then enqueue from anywhere.
/// client.install();
/// let other = enqueue!(send_email(8, "Welcome".into())).await?;
///
/// assert_ne!(id, other);
/// assert_eq!(client.job(&id).await?.expect("stored").state, JobState::Enqueued);
/// # Ok(()) }
/// ```
pub use jobs_macros::enqueue;

/// Builds one call of a job function without storing it: `job!(f(args))` is a value that
/// implements [`Job`], for [`Client::enqueue`], [`Client::enqueue_many`] and friends.
///
/// The arguments are type-checked against the function's parameters, like a plain call.
///
/// # Examples
///
/// ```
/// use jobs::{background_job, job, Client, Job, MemoryStorage};
///
/// #[background_job(queue = "search")]
/// async fn index(doc: u64) {}
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), jobs::Error> {
/// let batch: Vec<_> = (0..10).map(|doc| job!(index(doc))).collect();
/// assert_eq!(<index as Job>::QUEUE, "search");
///
/// let client = Client::new(MemoryStorage::new());
/// let ids = client.enqueue_many(batch).await?;
/// assert_eq!(ids.len(), 10);
/// # Ok(()) }
/// ```
pub use jobs_macros::job;

/// Stores a call of a job function to run later, and returns a future of its [`JobId`].
///
/// Like [`enqueue!`] plus when the job is due, after the call:
///
/// - `schedule!(f(..), in = duration)` with a [`Duration`](std::time::Duration) from now;
/// - `schedule!(f(..), at = time)` with a [`SystemTime`](std::time::SystemTime).
///
/// Both take an explicit client first too: `schedule!(&client, f(..), in = duration)`.
/// Until it is due the job is [`JobState::Scheduled`]; then a worker performs it like any other.
///
/// # Errors
///
/// As for [`enqueue!`].
///
/// # Examples
///
/// ```
/// use jobs::{background_job, schedule, Client, JobState, MemoryStorage};
/// use std::time::{Duration, SystemTime};
///
/// #[background_job]
/// async fn remind(user_id: u64) {}
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), jobs::Error> {
/// let client = Client::new(MemoryStorage::new());
/// let in_an_hour = schedule!(&client, remind(7), in = Duration::from_secs(3600)).await?;
///
/// client.install();
/// let tomorrow = SystemTime::now() + Duration::from_secs(24 * 3600);
/// let later = schedule!(remind(8), at = tomorrow).await?;
///
/// for id in [in_an_hour, later] {
///     assert_eq!(client.job(&id).await?.expect("stored").state, JobState::Scheduled);
/// }
/// # Ok(()) }
/// ```
pub use jobs_macros::schedule;
