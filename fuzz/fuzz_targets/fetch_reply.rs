//! Decoding the fetch script's reply into leased jobs (`FetchedJob`) and the leased jobs a worker
//! fails without running: no panic on any reply, and on success every job and refusal is one of
//! the reply's ids, on the fetched queue, under the reply's lease token.
#![no_main]

use arbitrary::Arbitrary;
use jobs::__fuzz::redis::Value;
use jobs::__fuzz::{encode_record, fetch_reply};
use jobs_fuzz::redis_value::ArbValue;
use libfuzzer_sys::fuzz_target;

/// A reply shaped like the script's (so the fuzzer reaches the records), or any reply at all.
#[derive(Arbitrary, Debug)]
enum Reply {
    Shaped {
        now: i64,
        next: i64,
        token: i64,
        ids: Vec<Id>,
        records: Vec<Rec>,
        extra: Vec<ArbValue>,
    },
    Any(Vec<ArbValue>),
}

#[derive(Arbitrary, Debug)]
enum Id {
    Seq(u64),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Rec {
    New {
        enqueued_at_ms: u64,
        name: String,
        args: String,
        headers: Vec<(String, String)>,
    },
    Counted {
        counts: String,
        rest: String,
    },
    Raw(Vec<u8>),
    /// An id whose record is gone.
    Gone,
    /// Arguments over the payload limit: their length.
    TooLong(i64),
    Other(ArbValue),
}

#[derive(Arbitrary, Debug)]
struct Input {
    queue: String,
    max_payload: usize,
    reply: Reply,
}

fn bulk(s: impl Into<Vec<u8>>) -> Value {
    Value::BulkString(s.into())
}

fn build(reply: &Reply) -> Vec<Value> {
    match reply {
        Reply::Any(values) => values.iter().map(ArbValue::to_value).collect(),
        Reply::Shaped {
            now,
            next,
            token,
            ids,
            records,
            extra,
        } => {
            let ids: Vec<String> = ids
                .iter()
                .map(|id| match id {
                    Id::Seq(n) => n.to_string(),
                    Id::Text(s) => s.clone(),
                })
                .collect();
            let records: Vec<Value> = records
                .iter()
                .map(|r| match r {
                    Rec::New {
                        enqueued_at_ms,
                        name,
                        args,
                        headers,
                    } => {
                        let headers: jobs::Headers = headers.iter().cloned().collect();
                        bulk(encode_record(*enqueued_at_ms, name, args, &headers))
                    }
                    Rec::Counted { counts, rest } => bulk(format!("{counts}|{rest}")),
                    Rec::Raw(b) => bulk(b.clone()),
                    Rec::Gone => Value::Nil,
                    Rec::TooLong(n) => Value::Int(*n),
                    Rec::Other(v) => v.to_value(),
                })
                .collect();
            let mut out = vec![Value::Int(*now), Value::Int(*next), Value::Int(*token)];
            if !ids.is_empty() || !records.is_empty() {
                out.push(bulk(ids.join(",")));
                out.push(Value::Array(records));
            }
            out.extend(extra.iter().map(ArbValue::to_value));
            out
        }
    }
}

fuzz_target!(|input: Input| {
    let reply = build(&input.reply);
    let ids: Option<Vec<u64>> = match reply.get(3) {
        Some(Value::BulkString(b)) => std::str::from_utf8(b)
            .ok()
            .map(|s| s.split(',').filter_map(|id| id.parse().ok()).collect()),
        _ => None,
    };
    let Ok(r) = fetch_reply(&input.queue, reply, input.max_payload) else {
        return;
    };
    let ids = ids.unwrap_or_default();
    assert!(r.jobs.len() + r.refused.len() <= ids.len());
    let leases = r
        .jobs
        .iter()
        .map(|j| (&j.id, j.token))
        .chain(r.refused.iter().map(|c| (&c.lease.id, c.lease.token)));
    let mut token = None;
    for (id, t) in leases {
        assert_eq!(id.queue(), input.queue);
        assert!(ids.contains(&id.seq()), "{id} is not in the reply");
        assert_eq!(*token.get_or_insert(t), t, "one token per fetch");
    }
    for job in &r.jobs {
        assert!(job.attempt >= 1);
        assert!(!job.name.contains('|'));
    }
});
