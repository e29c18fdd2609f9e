//! The Lua scripts, each prefixed with the shared helpers of `scripts/lib.lua`. They run with
//! `EVALSHA` and are loaded again after a `NOSCRIPT` reply (e.g. after a Redis restart).

use redis::Script;

macro_rules! script {
    ($file:literal) => {
        concat!(include_str!("scripts/lib.lua"), include_str!($file))
    };
}

/// A script that also uses the flow helpers of `scripts/flow_lib.lua`.
macro_rules! flow_script {
    ($file:literal) => {
        concat!(
            include_str!("scripts/lib.lua"),
            include_str!("scripts/flow_lib.lua"),
            include_str!($file)
        )
    };
}

/// Every script of the backend, compiled once per storage.
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) fetch: Script,
    pub(crate) complete: Script,
    pub(crate) renew: Script,
    pub(crate) release: Script,
    pub(crate) requeue: Script,
    pub(crate) delete: Script,
    pub(crate) cancel: Script,
    pub(crate) recurring_put: Script,
    pub(crate) recurring_fire: Script,
    // --- continuations, batches, unique jobs, limits ---
    pub(crate) enqueue_unique: Script,
    pub(crate) continuation_create: Script,
    pub(crate) continuation_attach: Script,
    pub(crate) continuation_decide: Script,
    pub(crate) continuation_commit: Script,
    pub(crate) acquire_limits: Script,
    pub(crate) enqueue_batch: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            enqueue: Script::new(script!("scripts/enqueue.lua")),
            fetch: Script::new(script!("scripts/fetch.lua")),
            complete: Script::new(flow_script!("scripts/complete.lua")),
            renew: Script::new(script!("scripts/renew.lua")),
            release: Script::new(script!("scripts/release.lua")),
            requeue: Script::new(script!("scripts/requeue.lua")),
            delete: Script::new(flow_script!("scripts/delete.lua")),
            cancel: Script::new(flow_script!("scripts/cancel.lua")),
            recurring_put: Script::new(script!("scripts/recurring_put.lua")),
            recurring_fire: Script::new(script!("scripts/recurring_fire.lua")),
            enqueue_unique: Script::new(script!("scripts/enqueue_unique.lua")),
            continuation_create: Script::new(script!("scripts/continuation_create.lua")),
            continuation_attach: Script::new(flow_script!("scripts/continuation_attach.lua")),
            continuation_decide: Script::new(script!("scripts/continuation_decide.lua")),
            continuation_commit: Script::new(flow_script!("scripts/continuation_commit.lua")),
            acquire_limits: Script::new(script!("scripts/acquire_limits.lua")),
            enqueue_batch: Script::new(script!("scripts/enqueue_batch.lua")),
        }
    }
}
