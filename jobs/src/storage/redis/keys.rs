//! The key layout: every key of a queue carries the hash tag `{<prefix>:<queue>}`, so all of a
//! queue's keys live in one Redis Cluster slot and one script may touch them all.

/// The names of one queue's keys.
#[derive(Debug, Clone)]
pub(crate) struct QueueKeys {
    /// Counter of sequence numbers (string, `INCRBY`).
    pub(crate) seq: String,
    /// Ready jobs, in order (list of sequence numbers).
    pub(crate) pending: String,
    /// Job records by sequence number (hash).
    pub(crate) jobs: String,
    /// State histories by sequence number, written once a job leaves its first state (hash).
    pub(crate) hist: String,
    /// Delayed jobs and retries by due time (sorted set).
    pub(crate) scheduled: String,
    /// Lease groups: one member per fetch, its token, scored by the lease deadline all of the
    /// fetch's jobs share (sorted set).
    pub(crate) lease_groups: String,
    /// How many jobs of each lease group are still held, by token (hash); a group goes when
    /// none is.
    pub(crate) lease_counts: String,
    /// Leased jobs by lease deadline, as versions before lease groups kept them (sorted set):
    /// only read, to reap what such a version left behind.
    pub(crate) leases: String,
    /// The fencing token of each leased job (hash), and one field `~` that is not a job: it keeps
    /// the hash a hash table (see `scripts/lib.lua`).
    pub(crate) tokens: String,
    /// Start marks: the token of the lease each job's handler started under (hash), dropped when
    /// the lease ends; read when a lease runs out, to tell a crash from a job never started.
    pub(crate) started: String,
    /// Failed jobs by failure time (sorted set).
    pub(crate) failed: String,
    /// Succeeded jobs by completion time, trimmed by retention (sorted set).
    pub(crate) succeeded: String,
    /// Deleted jobs by deletion time, trimmed by retention (sorted set).
    pub(crate) deleted: String,
    /// Lifetime counters `succeeded`, `failed` and the token counter `token` (hash).
    pub(crate) stats: String,
    /// The signal an idle fetch blocks on (list holding at most one element).
    pub(crate) wake: String,
    /// Cancel requests of processing jobs: sequence number to request time (hash), cleared when
    /// the job's attempt completes.
    pub(crate) cancels: String,
    /// Recurring jobs whose jobs go to this queue, by id (hash; see `recurring.rs`).
    pub(crate) recurring: String,
    /// Flow data of the jobs that have any, as JSON by sequence number (hash).
    pub(crate) hooks: String,
    /// Unique keys: key -> `seq|claim expiry ms` (hash).
    pub(crate) unique: String,
    /// Ended parents whose continuations are still to be decided, `seq|end` (list).
    pub(crate) outbox: String,
    /// Continuations by parent sequence number, JSON `[[queue, seq, on], ..]` (hash).
    pub(crate) conts: String,
    /// Return values of parents with continuations, by sequence number (hash).
    pub(crate) results: String,
    /// Parent return values handed to continuations, by the continuation's number (hash).
    pub(crate) presult: String,
    /// Continuations waiting for their parent (set).
    pub(crate) awaiting: String,
    /// Decisions of continuations that came before the continuation was stored, `seq|run` by
    /// decision time (sorted set; see `scripts/continuation_decide.lua`).
    pub(crate) early: String,
    /// Batch counters: fields `<batch>:t`, `:s`, `:f`, `:c` (hash).
    pub(crate) batches: String,
    /// Finished batches by finish time, whose counters retention drops (sorted set).
    pub(crate) batches_done: String,
    /// The concurrency-slot sets of this queue by their latest grant (sorted set of key names),
    /// so that sets whose holders all ended are found and dropped (`scripts/limits_sweep.lua`).
    pub(crate) limit_keys: String,
    /// History snapshots of the lifetime counters, in ring slots `m<slot>` (minutes) and
    /// `h<slot>` (hours): `bucket_ms|succeeded|failed` (hash; see `monitor.rs`).
    pub(crate) history: String,
}

impl QueueKeys {
    pub(crate) fn new(prefix: &str, queue: &str) -> Self {
        let tag = format!("{{{prefix}:{queue}}}");
        let key = |name: &str| format!("{tag}:{name}");
        QueueKeys {
            seq: key("seq"),
            pending: key("pending"),
            jobs: key("jobs"),
            hist: key("hist"),
            scheduled: key("scheduled"),
            lease_groups: key("lease_groups"),
            lease_counts: key("lease_counts"),
            leases: key("leases"),
            tokens: key("tokens"),
            started: key("started"),
            failed: key("failed"),
            succeeded: key("succeeded"),
            deleted: key("deleted"),
            stats: key("stats"),
            wake: key("wake"),
            cancels: key("cancels"),
            recurring: key("recurring"),
            hooks: key("hooks"),
            unique: key("unique"),
            outbox: key("outbox"),
            conts: key("conts"),
            results: key("results"),
            presult: key("presult"),
            awaiting: key("awaiting"),
            early: key("early"),
            batches: key("batches"),
            batches_done: key("batches_done"),
            limit_keys: key("limit_keys"),
            history: key("history"),
        }
    }

    /// The holders of the concurrency slots of limit `key` (set of `seq|token`).
    pub(crate) fn slots(prefix: &str, queue: &str, key: &str) -> String {
        format!("{{{prefix}:{queue}}}:slots:{key}")
    }

    /// The recent starts under the rate limit `key` (sorted set by start time).
    pub(crate) fn starts(prefix: &str, queue: &str, key: &str) -> String {
        format!("{{{prefix}:{queue}}}:starts:{key}")
    }

    /// Every key, for inspection and tests.
    pub(crate) fn all(&self) -> Vec<String> {
        vec![
            self.seq.clone(),
            self.pending.clone(),
            self.jobs.clone(),
            self.hist.clone(),
            self.scheduled.clone(),
            self.lease_groups.clone(),
            self.lease_counts.clone(),
            self.leases.clone(),
            self.tokens.clone(),
            self.started.clone(),
            self.failed.clone(),
            self.succeeded.clone(),
            self.deleted.clone(),
            self.stats.clone(),
            self.wake.clone(),
            self.cancels.clone(),
            self.recurring.clone(),
            self.hooks.clone(),
            self.unique.clone(),
            self.outbox.clone(),
            self.conts.clone(),
            self.results.clone(),
            self.presult.clone(),
            self.awaiting.clone(),
            self.early.clone(),
            self.batches.clone(),
            self.batches_done.clone(),
            self.limit_keys.clone(),
            self.history.clone(),
        ]
    }
}

/// The registry of worker processes (sorted set: name by heartbeat expiry). It spans queues, so
/// it is its own slot and no script touches it.
pub(crate) fn servers(prefix: &str) -> String {
    format!("{{{prefix}}}:servers")
}

/// The index of recurring jobs (hash: id → queue). It spans queues, so it is its own slot and no
/// script touches it.
pub(crate) fn recurring_index(prefix: &str) -> String {
    format!("{{{prefix}}}:recurring")
}

/// The registry of queues (set of names): every queue jobs were enqueued on, paused or given
/// a recurring job, for listings. It spans queues, so it is its own slot and no script touches
/// it.
pub(crate) fn queues(prefix: &str) -> String {
    format!("{{{prefix}}}:queues")
}

/// The latest report of worker `name` (a JSON string that expires with its heartbeat), in the
/// slot of the servers registry.
pub(crate) fn server_report(prefix: &str, name: &str) -> String {
    format!("{{{prefix}}}:server:{name}")
}

/// The ids of the paused recurring jobs (set), in the slot of the recurring index.
pub(crate) fn recurring_paused(prefix: &str) -> String {
    format!("{{{prefix}}}:recurring_paused")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_carries_the_queue_tag() {
        let keys = QueueKeys::new("app", "mail");
        for key in keys.all() {
            assert!(key.starts_with("{app:mail}:"), "{key}");
        }
        assert_eq!(servers("app"), "{app}:servers");
        assert!(QueueKeys::slots("app", "mail", "k").starts_with("{app:mail}:"));
        assert!(QueueKeys::starts("app", "mail", "k").starts_with("{app:mail}:"));
    }
}
