//! What a worker process reports about itself with its heartbeat: [`ServerReport`].

use crate::job::JobId;
use serde::{Deserialize, Serialize};

/// The most held jobs a report lists (it says how many there are in all).
pub const MAX_REPORTED_JOBS: usize = 100;

/// A worker process as it last described itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerReport {
    /// The name it registers under.
    pub name: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The queues it takes jobs from, highest priority first.
    pub queues: Vec<String>,
    /// How many jobs it runs at once.
    pub concurrency: usize,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// When it sent this report.
    pub heartbeat_at_ms: u64,
    /// Jobs it holds a lease on: running, or fetched ahead and about to start (at most
    /// [`MAX_REPORTED_JOBS`]).
    pub jobs: Vec<JobId>,
    /// How many jobs it holds in all.
    pub jobs_total: usize,
}

impl ServerReport {
    /// A report of the worker `name` with nothing else known (a worker that registered
    /// without a report).
    pub fn named(name: impl Into<String>) -> ServerReport {
        ServerReport {
            name: name.into(),
            host: String::new(),
            pid: 0,
            queues: Vec::new(),
            concurrency: 0,
            started_at_ms: 0,
            heartbeat_at_ms: 0,
            jobs: Vec::new(),
            jobs_total: 0,
        }
    }

    /// The same report from host `host`, process `pid`.
    #[must_use]
    pub fn process(mut self, host: impl Into<String>, pid: u32) -> ServerReport {
        self.host = host.into();
        self.pid = pid;
        self
    }

    /// The same report taking from `queues` with `concurrency` slots, started at `started_at_ms`.
    #[must_use]
    pub fn serving(
        mut self,
        queues: Vec<String>,
        concurrency: usize,
        started_at_ms: u64,
    ) -> ServerReport {
        self.queues = queues;
        self.concurrency = concurrency;
        self.started_at_ms = started_at_ms;
        self
    }

    /// The same report sent at `heartbeat_at_ms`, holding `jobs` (of `total`).
    #[must_use]
    pub fn holding(mut self, heartbeat_at_ms: u64, jobs: Vec<JobId>, total: usize) -> ServerReport {
        self.heartbeat_at_ms = heartbeat_at_ms;
        self.jobs = jobs;
        self.jobs_total = total;
        self
    }
}
