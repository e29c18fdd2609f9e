//! The monitoring API: what operators read (queues, jobs by state, a job's detail, history,
//! servers, recurring jobs, batches) and the actions they take (requeue, delete, pause), the
//! same on every storage.
//!
//! [`Monitor`] is the entry point; it is built on the primitives of the storage's
//! [`Monitoring`](crate::storage::Monitoring) capability, which every backend implements. The
//! `jobs-dashboard` and `jobs-cli` crates are built on it.
//!
//! # Cost
//!
//! Nothing here scans all jobs of a state. Counts are kept by Redis and the memory storage and
//! are exact; PostgreSQL counts up to a cap and estimates beyond it ([`Count`] says which).
//! Listings are paged by cursors ([`JobQuery`]); filtered listings look at a bounded window of
//! jobs per call and say how many they looked at.
//!
//! # History
//!
//! Succeeded and failed jobs per minute (24 hours) and per hour (7 days) come from snapshots of
//! each queue's lifetime counters that workers record at the start of every minute they were
//! busy in ([`Monitoring::record_history`](crate::storage::Monitoring::record_history)): at most
//! 1,441 + 169 small records per queue, read in one call per queue to draw a graph.
//!
//! # Pausing
//!
//! A paused queue is a stored flag that every fetch checks in the same call that leases jobs, so
//! no worker takes a job of a paused queue once the pause is stored (jobs fetched before still
//! run). Resuming wakes the workers waiting for it.

mod api;
mod batch;
mod bulk;
mod count;
mod detail;
mod history;
mod query;
mod queue;
mod recurring;
mod server;

pub use api::Monitor;
pub use batch::{BatchInfo, BatchPage};
pub use bulk::{BulkAction, BulkReport, BULK_CHUNK};
pub use count::{Count, CountKind};
pub use detail::JobDetail;
pub use history::{HistoryPoint, Resolution, Snapshot};
#[cfg(feature = "postgres")]
pub(crate) use query::bad_cursor;
pub(crate) use query::{parse_one, parse_pair};
pub use query::{JobPage, JobQuery, DEFAULT_LIMIT, DEFAULT_WINDOW, MAX_LIMIT, MAX_WINDOW};
pub use queue::QueueSummary;
pub use recurring::RecurringView;
pub use server::{ServerReport, MAX_REPORTED_JOBS};
