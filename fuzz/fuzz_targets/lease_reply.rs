//! Decoding the one-flag-per-lease replies of the lease scripts (mark started, renew), the
//! complete script and the limits script into `Vec<bool>`: no panic on any reply, and a decoded
//! reply has exactly one flag per lease asked about (a short reply read as "lease lost" would
//! cancel jobs the worker still holds).
#![no_main]

use arbitrary::Arbitrary;
use jobs::__fuzz::redis::Value;
use jobs::__fuzz::{completions_reply, grants_reply, marks_reply, renewals_reply};
use jobs_fuzz::redis_value::ArbValue;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Reply {
    /// One character per lease, the form of mark-started and complete.
    Chars(Vec<u8>),
    /// One integer per lease, the form of renew and limits.
    Ints(Vec<i64>),
    Any(ArbValue),
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// How many leases were asked about.
    leases: u16,
    reply: Reply,
}

fuzz_target!(|input: Input| {
    let n = usize::from(input.leases);
    let reply = match &input.reply {
        Reply::Chars(c) => Value::BulkString(c.clone()),
        Reply::Ints(i) => Value::Array(i.iter().map(|&i| Value::Int(i)).collect()),
        Reply::Any(v) => v.to_value(),
    };
    for decode in [marks_reply, renewals_reply, grants_reply] {
        if let Ok(flags) = decode(reply.clone(), n) {
            assert_eq!(flags.len(), n);
        }
    }
    if let Ok((applied, fired)) = completions_reply(reply, n) {
        assert_eq!(applied.len(), n);
        assert!(
            !fired || applied.iter().any(|&a| a),
            "continuations fire only for an applied completion"
        );
    }
});
