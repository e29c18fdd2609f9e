//! What the fuzz targets in `fuzz/` call (feature `fuzzing`): thin wrappers around the
//! crate-private decoders of what a worker reads back from storage. Not public API: names and
//! signatures change whenever the decoders do.

use crate::app_state::StateMap;
use crate::attempt_signals::AttemptSignals;
use crate::error::Result;
use crate::job::{JobContext, JobId};
use crate::registry::{AttemptResult, Registry};
use crate::state::{JobState, StateChange};
use crate::storage::redis::{record, replies, RedisStorage};
use crate::storage::{Completion, FetchedJob, JobInfo, PayloadLimit};
use futures::future::BoxFuture;
use std::sync::Arc;

pub use redis;

/// A stored Redis job record `counts|enqueued_ms|name|args`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Attempts that ended.
    pub attempts: u32,
    /// Crashes of its workers while running it.
    pub crashes: u32,
    /// Leases that ran out before it started.
    pub orphaned: u32,
    /// When it was enqueued.
    pub enqueued_at_ms: u64,
    /// Its job name.
    pub name: &'a str,
    /// Its JSON arguments.
    pub args: &'a str,
    /// Its headers.
    pub headers: crate::Headers,
}

/// Decodes a stored record as a worker does; `Err` with the reason the worker fails it with.
///
/// # Errors
///
/// When the record is not UTF-8 or not `counts|enqueued_ms|name|args`.
pub fn decode_record(rec: &[u8]) -> std::result::Result<Record<'_>, String> {
    let decoded = std::str::from_utf8(rec)
        .ok()
        .and_then(record::decode)
        .and_then(|r| Some((r.headers()?, r)));
    match decoded {
        Some((headers, r)) => Ok(Record {
            attempts: r.attempts,
            crashes: r.crashes,
            orphaned: r.orphaned,
            enqueued_at_ms: r.enqueued_at_ms,
            name: r.name,
            args: r.args,
            headers,
        }),
        None => Err(record::malformed_reason(rec)),
    }
}

/// The record of a new job, as enqueueing stores it.
pub fn encode_record(
    enqueued_at_ms: u64,
    name: &str,
    args: &str,
    headers: &crate::Headers,
) -> Vec<u8> {
    redis::ToRedisArgs::to_redis_args(&record::encode(enqueued_at_ms, name, args, headers)).concat()
}

/// Decodes a stored state history.
pub fn decode_history(history: &[u8]) -> Vec<StateChange> {
    record::decode_history(history)
}

/// Job `queue:seq` as inspection (`Monitoring::job`, failed-job lists) shows it, from a stored
/// record and history and the state its keys put it in.
pub fn job_info(
    id: JobId,
    rec: Option<Vec<u8>>,
    history: Option<Vec<u8>>,
    state: JobState,
) -> Option<JobInfo> {
    RedisStorage::info(id, rec, history, state)
}

/// A fetch script's reply, decoded as a worker does.
#[derive(Debug)]
pub struct FetchReply {
    /// The server's clock.
    pub now: u64,
    /// When the next scheduled job or lease deadline is due.
    pub next: Option<u64>,
    /// The jobs to perform.
    pub jobs: Vec<FetchedJob>,
    /// The leased jobs failed without running.
    pub refused: Vec<Completion>,
}

/// Decodes the reply of the fetch script on `queue`, under a payload limit of `max_payload`.
///
/// # Errors
///
/// When it is not what the script returns.
pub fn fetch_reply(
    queue: &str,
    reply: Vec<redis::Value>,
    max_payload: usize,
) -> Result<FetchReply> {
    let r = replies::fetch(&Arc::from(queue), reply, PayloadLimit(max_payload))?;
    Ok(FetchReply {
        now: r.now,
        next: r.next,
        jobs: r.jobs,
        refused: r.refused,
    })
}

/// Decodes the reply of the mark-started script for `leases` leases.
///
/// # Errors
///
/// When it is not one flag per lease.
pub fn marks_reply(reply: redis::Value, leases: usize) -> Result<Vec<bool>> {
    replies::marks(reply, leases)
}

/// Decodes the reply of the renewal script for `leases` leases.
///
/// # Errors
///
/// When it is not one flag per lease.
pub fn renewals_reply(reply: redis::Value, leases: usize) -> Result<Vec<bool>> {
    replies::renewals(reply, leases)
}

/// Decodes the reply of the limits script for `requests` requests.
///
/// # Errors
///
/// When it is not one flag per request.
pub fn grants_reply(reply: redis::Value, requests: usize) -> Result<Vec<bool>> {
    replies::grants(reply, requests)
}

/// Decodes the reply of the complete script for `completions` completions: per completion
/// whether it was applied, and whether continuations are to be dispatched.
///
/// # Errors
///
/// When it is not one flag per completion (or the empty string).
pub fn completions_reply(reply: redis::Value, completions: usize) -> Result<(Vec<bool>, bool)> {
    replies::completions(reply, completions).map(|r| (r.applied, r.fired))
}

/// A job's stored arguments decoded as a worker does before running it.
pub struct DecodedArgs {
    /// The key its limits are counted under, when its function has limits.
    pub limit_key: Option<String>,
    /// The attempt the decoded arguments start (unpolled, without app state).
    pub attempt: BoxFuture<'static, AttemptResult>,
}

/// Decodes the stored arguments of a job named `name` as a worker does before running it: the
/// registered function's limit key (when it has limits), then its arguments, which start an
/// attempt.
///
/// # Errors
///
/// When no function is registered under `name`, or the arguments do not decode (the reason the
/// worker fails the job with).
pub fn decode_args(name: &str, args: &str) -> std::result::Result<DecodedArgs, String> {
    let registry = Registry::global().map_err(|e| e.to_string())?;
    let d = registry
        .get(name)
        .ok_or_else(|| format!("no job function is registered as `{name}`"))?;
    let limit_key = d.flow.is_limited().then(|| d.limit_key(args));
    let ctx = JobContext::new(
        JobId::new("fuzz", 1),
        Arc::from(name),
        1,
        d.max_attempts(),
        crate::Headers::new(),
        AttemptSignals::new(),
        None,
    );
    let attempt = (d.perform)(args, ctx, &StateMap::default())?;
    Ok(DecodedArgs { limit_key, attempt })
}
