//! The jobs a worker holds a lease on (buffered or running): their lease token and what cancels
//! them.
//!
//! Keyed by the position of the job's queue plus its sequence number, not by `JobId`: a key
//! holding an id would clone the queue name, whose reference count every job on every thread
//! shares. Ids are rebuilt only by the periodic tasks that need them (renewal, cancel checks,
//! hand-back at shutdown).

use crate::attempt_signals::AttemptSignals;
use crate::job::JobId;
use crate::storage::LeaseToken;
use foldhash::HashMap;
use std::sync::Arc;

/// One held job.
pub(super) struct InFlight {
    /// The token of its lease.
    pub(super) token: LeaseToken,
    pub(super) cancel: AttemptSignals,
    /// Set by the cancel watcher: the job was cancelled, so its attempt ends Deleted.
    pub(super) cancel_requested: bool,
}

pub(super) struct InFlightJobs {
    /// The queue names keys point into: the worker's queues, then any other a storage named.
    queues: Vec<Arc<str>>,
    jobs: HashMap<(usize, u64), InFlight>,
}

impl InFlightJobs {
    pub(super) fn new(queues: &[Arc<str>]) -> Self {
        InFlightJobs {
            queues: queues.to_vec(),
            jobs: HashMap::default(),
        }
    }

    /// The position of `id`'s queue, if known.
    fn position(&self, id: &JobId) -> Option<usize> {
        let queue = id.queue_arc();
        self.queues
            .iter()
            .position(|q| Arc::ptr_eq(q, queue))
            .or_else(|| self.queues.iter().position(|q| **q == **queue))
    }

    fn key(&self, id: &JobId) -> Option<(usize, u64)> {
        self.position(id).map(|at| (at, id.seq()))
    }

    pub(super) fn insert(&mut self, id: &JobId, job: InFlight) {
        let at = self.position(id).unwrap_or_else(|| {
            self.queues.push(id.queue_arc().clone());
            self.queues.len() - 1
        });
        self.jobs.insert((at, id.seq()), job);
    }

    /// How many jobs are held.
    #[cfg(feature = "metrics")]
    pub(super) fn len(&self) -> usize {
        self.jobs.len()
    }

    pub(super) fn get(&self, id: &JobId) -> Option<&InFlight> {
        self.key(id).and_then(|key| self.jobs.get(&key))
    }

    pub(super) fn get_mut(&mut self, id: &JobId) -> Option<&mut InFlight> {
        self.key(id).and_then(|key| self.jobs.get_mut(&key))
    }

    pub(super) fn remove(&mut self, id: &JobId) -> Option<InFlight> {
        self.key(id).and_then(|key| self.jobs.remove(&key))
    }

    /// Whether no job is held.
    pub(super) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Every held job with its id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (JobId, &InFlight)> + '_ {
        self.jobs
            .iter()
            .map(|(&(at, seq), job)| (JobId::new(self.queues[at].clone(), seq), job))
    }
}
