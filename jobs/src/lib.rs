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
//! - [`registry`]: what a worker binary knows about; read it for jobs defined in library crates.
#![warn(missing_docs, unreachable_pub)]

extern crate self as jobs;

mod app_state;
mod client;
mod error;
pub mod filter;
mod job;
pub mod registry;
mod retry;
mod state;
pub mod storage;
mod worker;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use app_state::StateMap;
pub use client::{Client, ClientBuilder};
pub use error::{Error, Result};
pub use job::{Job, JobContext, JobId, ParseJobIdError};
pub use retry::RetryBackoff;
pub use state::{JobState, StateChange};
#[cfg(feature = "redis")]
pub use storage::redis::{RedisStorage, RedisStorageBuilder};
pub use storage::{MemoryStorage, Storage};
pub use worker::{Worker, WorkerBuilder};

pub use jobs_macros::{background_job, enqueue, job, schedule};
