//! Reading script replies: the fetch script's reply turned into leased jobs (and the leased jobs
//! that cannot be performed), and the one-flag-per-lease replies of the lease, completion and
//! limit scripts. A reply that is not what the script returns is an error, never a panic or a
//! guess: these decoders are fuzzed (`fuzz/`).

use super::record;
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::storage::{Completion, FetchedJob, Lease, LeaseToken, Outcome, PayloadLimit};
use redis::Value;
use std::sync::Arc;

/// What one fetch script call returned, decoded.
#[derive(Debug)]
pub(crate) struct FetchReply {
    /// The Redis server's clock, in milliseconds.
    pub(crate) now: u64,
    /// When (server clock) the earliest scheduled job or lease deadline of the queue comes due.
    pub(crate) next: Option<u64>,
    /// The leased jobs to perform.
    pub(crate) jobs: Vec<FetchedJob>,
    /// Leased jobs that cannot be performed (malformed records, arguments over the payload
    /// limit), as failed completions: failed through the normal path, so each is kept for
    /// inspection and its continuations are decided.
    pub(crate) refused: Vec<Completion>,
}

/// Decodes the reply of `fetch.lua` on `queue`: `now`, `next` (negative: none), the lease token,
/// then (when it took jobs) their ids as one string `1,2,3` and their records, each a string, nil
/// (deleted behind the queue's back: dropped, not leased) or the length of arguments over the
/// payload limit.
pub(crate) fn fetch(
    queue: &Arc<str>,
    reply: Vec<Value>,
    payload: PayloadLimit,
) -> Result<FetchReply> {
    let bad = || Error::storage("fetching jobs: the fetch script returned an unexpected reply");
    let mut it = reply.into_iter();
    let mut int = || -> Result<i64> {
        it.next()
            .and_then(|v| redis::from_redis_value(v).ok())
            .ok_or_else(bad)
    };
    let (now, next, token) = (int()?, int()?, int()?);
    let token = LeaseToken(u64::try_from(token).map_err(|_| bad())?);
    let ids: Vec<u64> = match it.next() {
        None => Vec::new(),
        Some(Value::BulkString(ids)) => parse_ids(&ids).ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    let recs: Vec<Value> = it
        .next()
        .map(redis::from_redis_value)
        .transpose()
        .map_err(|_| bad())?
        .unwrap_or_default();
    if ids.len() != recs.len() || it.next().is_some() {
        return Err(bad());
    }
    let now = u64::try_from(now).unwrap_or(0);
    let mut out = FetchReply {
        now,
        next: u64::try_from(next).ok(),
        jobs: Vec::with_capacity(ids.len()),
        refused: Vec::new(),
    };
    // Jobs of one batch mostly share a name: one allocation for each run of them.
    let mut last_name: Option<Arc<str>> = None;
    for (seq, rec) in ids.into_iter().zip(recs) {
        let id = JobId::new(queue.clone(), seq);
        let rec = match rec {
            Value::BulkString(rec) => rec,
            Value::Nil => continue,
            // Arguments over the payload limit: the script sent their length instead.
            Value::Int(len) => {
                let len = u64::try_from(len).map_err(|_| bad())?;
                let reason = payload.refusal(len);
                out.refused.push(failed(id, token, now, reason));
                continue;
            }
            _ => return Err(bad()),
        };
        let decoded = std::str::from_utf8(&rec)
            .ok()
            .and_then(record::decode)
            .and_then(|r| Some((r.headers()?, r)));
        match decoded {
            Some((headers, r)) => out.jobs.push(FetchedJob {
                id,
                name: match &last_name {
                    Some(n) if **n == *r.name => n.clone(),
                    _ => last_name.insert(Arc::from(r.name)).clone(),
                },
                args: Arc::from(r.args),
                attempt: r.attempts.saturating_add(1),
                enqueued_at_ms: r.enqueued_at_ms,
                // One time per record: for a delayed job or a retry, its due time.
                ready_at_ms: r.enqueued_at_ms,
                headers,
                token,
                crashes: r.crashes,
                orphaned: r.orphaned,
            }),
            None => {
                let reason = record::malformed_reason(&rec);
                out.refused.push(failed(id, token, now, reason));
            }
        }
    }
    Ok(out)
}

fn failed(id: JobId, token: LeaseToken, now: u64, reason: String) -> Completion {
    Completion::new(Lease { id, token }, now, Outcome::Failed { reason })
}

/// The ids of a fetch reply, `1,2,3` (none when empty); `None` when one is not a number.
fn parse_ids(ids: &[u8]) -> Option<Vec<u64>> {
    if ids.is_empty() {
        return Some(Vec::new());
    }
    ids.split(|&b| b == b',')
        .map(|id| std::str::from_utf8(id).ok()?.parse().ok())
        .collect()
}

/// The reply of `mark_started.lua` for `leases` leases: one character per lease, `1` marked (the
/// lease is held) or `0` not.
pub(crate) fn marks(reply: Value, leases: usize) -> Result<Vec<bool>> {
    let bad = || Error::storage("marking jobs started: the script returned an unexpected reply");
    let res: Vec<u8> = redis::from_redis_value(reply).map_err(|_| bad())?;
    if res.len() != leases {
        return Err(bad());
    }
    Ok(res.into_iter().map(|c| c == b'1').collect())
}

/// The reply of `renew.lua` for `leases` leases: one integer per lease, 1 renewed (held) or 0
/// not. A reply of another length is an error, not lost leases: the worker would cancel jobs
/// whose leases it still holds.
pub(crate) fn renewals(reply: Value, leases: usize) -> Result<Vec<bool>> {
    flags(reply, leases, "renewing leases")
}

/// The reply of `acquire_limits.lua` for `requests` requests: one integer per request, 1
/// granted or 0 not.
pub(crate) fn grants(reply: Value, requests: usize) -> Result<Vec<bool>> {
    flags(reply, requests, "acquiring limit slots")
}

fn flags(reply: Value, n: usize, what: &str) -> Result<Vec<bool>> {
    let bad = || Error::storage(format!("{what}: the script returned an unexpected reply"));
    let res: Vec<i64> = redis::from_redis_value(reply).map_err(|_| bad())?;
    if res.len() != n {
        return Err(bad());
    }
    Ok(res.into_iter().map(|ok| ok == 1).collect())
}

/// What `complete.lua` said about `completions` completions.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CompleteReply {
    /// Per completion, whether it was applied (its lease was still held).
    pub(crate) applied: Vec<bool>,
    /// Whether some completion made continuations ready to be dispatched.
    pub(crate) fired: bool,
}

/// The reply of `complete.lua`: one character per completion, `0` not applied, `1` applied, `2`
/// applied and continuations to dispatch; the empty string when every completion was applied
/// with nothing to decide.
pub(crate) fn completions(reply: Value, completions: usize) -> Result<CompleteReply> {
    let bad =
        || Error::storage("acknowledging jobs: the complete script returned an unexpected reply");
    let res: Vec<u8> = redis::from_redis_value(reply).map_err(|_| bad())?;
    if res.is_empty() {
        return Ok(CompleteReply {
            applied: vec![true; completions],
            fired: false,
        });
    }
    if res.len() != completions {
        return Err(bad());
    }
    Ok(CompleteReply {
        fired: res.contains(&b'2'),
        applied: res.into_iter().map(|ok| ok != b'0').collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn fetch_reply_ids_parse_from_one_string() {
        assert_eq!(parse_ids(b"7,12,3"), Some(vec![7, 12, 3]));
        assert_eq!(parse_ids(b"42"), Some(vec![42]));
        assert_eq!(parse_ids(b""), Some(vec![]));
        assert_eq!(parse_ids(b"7,,3"), None, "an empty id is malformed");
        assert_eq!(parse_ids(b"7,x"), None, "so is one that is not a number");
    }

    #[test]
    fn a_fetch_reply_decodes_into_jobs_and_refusals() {
        let q: Arc<str> = Arc::from("mail");
        let reply = vec![
            Value::Int(1_000),
            Value::Int(-1),
            Value::Int(9),
            bulk("1,2,3,4"),
            Value::Array(vec![
                bulk("0|5|send|{}"),
                Value::Nil,
                Value::Int(600 * 1024),
                bulk("not a record"),
            ]),
        ];
        let r = fetch(&q, reply, PayloadLimit::default()).unwrap();
        assert_eq!((r.now, r.next), (1_000, None));
        assert_eq!(r.jobs.len(), 1);
        assert_eq!(r.jobs[0].id, JobId::new("mail", 1));
        assert_eq!(r.jobs[0].token, LeaseToken(9));
        assert_eq!((&*r.jobs[0].name, &*r.jobs[0].args), ("send", "{}"));
        let refused: Vec<u64> = r.refused.iter().map(|c| c.lease.id.seq()).collect();
        assert_eq!(refused, [3, 4], "the deleted job 2 is dropped");
        let empty = fetch(
            &q,
            vec![Value::Int(5), Value::Int(7), Value::Int(1)],
            PayloadLimit(1),
        );
        let empty = empty.unwrap();
        assert_eq!((empty.now, empty.next, empty.jobs.len()), (5, Some(7), 0));
    }

    #[test]
    fn malformed_fetch_replies_are_errors() {
        let q: Arc<str> = Arc::from("q");
        let head = || vec![Value::Int(1), Value::Int(2), Value::Int(3)];
        let cases: Vec<Vec<Value>> = vec![
            vec![],
            vec![Value::Int(1), Value::Int(2)],
            vec![Value::Int(1), Value::Int(2), Value::Int(-3)],
            [head(), vec![Value::Int(4)]].concat(),
            [
                head(),
                vec![bulk("1,2"), Value::Array(vec![bulk("0|1|n|{}")])],
            ]
            .concat(),
            [head(), vec![bulk("1"), Value::Array(vec![Value::Int(-1)])]].concat(),
            [head(), vec![bulk("1"), Value::Array(vec![Value::Okay])]].concat(),
            [head(), vec![bulk(""), Value::Array(vec![]), Value::Nil]].concat(),
        ];
        for reply in cases {
            let shown = format!("{reply:?}");
            let err = fetch(&q, reply, PayloadLimit::default()).unwrap_err();
            assert!(
                err.to_string().contains("unexpected reply"),
                "{shown}: {err}"
            );
        }
    }

    #[test]
    fn flag_replies_have_one_flag_per_lease() {
        assert_eq!(marks(bulk("101"), 3).unwrap(), [true, false, true]);
        assert!(marks(bulk("10"), 3).is_err());
        let ints = |v: &[i64]| Value::Array(v.iter().map(|&i| Value::Int(i)).collect());
        assert_eq!(renewals(ints(&[1, 0]), 2).unwrap(), [true, false]);
        // Read as two lost leases before: the worker cancelled jobs it still held.
        assert!(renewals(ints(&[1]), 2).is_err());
        assert!(renewals(ints(&[1, 1, 1]), 2).is_err());
        assert!(grants(ints(&[0]), 2).is_err());
        assert!(grants(bulk("x"), 1).is_err());
        let all = completions(bulk(""), 2).unwrap();
        assert_eq!((all.applied, all.fired), (vec![true, true], false));
        let some = completions(bulk("021"), 3).unwrap();
        assert_eq!((some.applied, some.fired), (vec![false, true, true], true));
        assert!(completions(bulk("11"), 3).is_err());
    }
}
