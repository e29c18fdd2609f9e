//! The stored forms of a job: the record `counts|enqueued_ms|name|args` (compact, and cheap for
//! Lua to bump the attempt count), and the history string the scripts append to.
//!
//! `counts` is the number of attempts that ended, followed, once a lease of the job ran out, by
//! its crashes and orphaned leases: `attempts` or `attempts:crashes:orphaned` (see the crash
//! accounting in `storage`). A job whose leases never ran out pays nothing for them.
//!
//! A job with [headers](crate::Headers) stores them at the start of the last field, before its
//! arguments: `H<length>:<headers as a JSON object>`, e.g.
//! `0|1700000000000|mail|H14:{"tenant":"a"}{"user":7}`. Arguments are JSON, which never starts
//! with `H`, so a record without headers (every record written before headers existed) reads
//! as it always did; arguments that do start with `H` (written through `NewJob` by hand) get an
//! empty section, `H0:`. Headers thus count toward the payload limit the fetch script checks
//! (the length of the last field).

use crate::headers::Headers;
use crate::state::{JobState, StateChange};
use redis::{RedisWrite, ToRedisArgs};
use std::io::Write;

/// A decoded job record, borrowing from the stored text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub(crate) attempts: u32,
    pub(crate) crashes: u32,
    pub(crate) orphaned: u32,
    pub(crate) enqueued_at_ms: u64,
    pub(crate) name: &'a str,
    pub(crate) args: &'a str,
    /// The JSON object of its headers (empty without).
    pub(crate) headers: &'a str,
}

impl Record<'_> {
    /// Its headers; `None` when the stored section is not a JSON object of strings.
    pub(crate) fn headers(&self) -> Option<Headers> {
        Headers::from_json(self.headers)
    }
}

/// Marks a header section at the start of the last field.
const HEADERS_MARK: u8 = b'H';

/// The record of a new job: `0|enqueued_ms|name|args`, written straight into a command's next
/// argument (or turned into bytes with [`ToRedisArgs::to_redis_args`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewRecord<'a> {
    enqueued_at_ms: u64,
    name: &'a str,
    args: &'a str,
    headers: &'a Headers,
}

/// The record of a new job.
pub(crate) fn encode<'a>(
    enqueued_at_ms: u64,
    name: &'a str,
    args: &'a str,
    headers: &'a Headers,
) -> NewRecord<'a> {
    NewRecord {
        enqueued_at_ms,
        name,
        args,
        headers,
    }
}

impl ToRedisArgs for NewRecord<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut at = itoa::Buffer::new();
        let mut w = out.writer_for_next_arg();
        // Writing into a command buffer cannot fail.
        let _ = w
            .write_all(b"0|")
            .and_then(|()| w.write_all(at.format(self.enqueued_at_ms).as_bytes()))
            .and_then(|()| w.write_all(b"|"))
            .and_then(|()| w.write_all(self.name.as_bytes()))
            .and_then(|()| w.write_all(b"|"));
        if !self.headers.is_empty() || self.args.as_bytes().first() == Some(&HEADERS_MARK) {
            let json = self.headers.to_json();
            let _ = w
                .write_all(&[HEADERS_MARK])
                .and_then(|()| w.write_all(at.format(json.len()).as_bytes()))
                .and_then(|()| w.write_all(b":"))
                .and_then(|()| w.write_all(json.as_bytes()));
        }
        let _ = w.write_all(self.args.as_bytes());
    }
}

/// Decodes a record; `None` when it is not `counts|enqueued_ms|name|args`.
pub(crate) fn decode(rec: &str) -> Option<Record<'_>> {
    let mut parts = rec.splitn(4, '|');
    let (attempts, crashes, orphaned) = decode_counts(parts.next()?)?;
    let enqueued_at_ms = parts.next()?.parse().ok()?;
    let name = parts.next()?;
    let (headers, args) = split_headers(parts.next()?)?;
    Some(Record {
        attempts,
        crashes,
        orphaned,
        enqueued_at_ms,
        name,
        args,
        headers,
    })
}

/// The header section (`H<length>:<json>`) and the arguments of a record's last field.
fn split_headers(last: &str) -> Option<(&str, &str)> {
    let Some(rest) = last.strip_prefix(char::from(HEADERS_MARK)) else {
        return Some(("", last));
    };
    let (len, rest) = rest.split_once(':')?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: usize = len.parse().ok()?;
    let headers = rest.get(..len)?;
    Some((headers, &rest[len..]))
}

/// `attempts` or `attempts:crashes:orphaned`.
fn decode_counts(counts: &str) -> Option<(u32, u32, u32)> {
    let Some((attempts, rest)) = counts.split_once(':') else {
        return Some((counts.parse().ok()?, 0, 0));
    };
    let (crashes, orphaned) = rest.split_once(':')?;
    Some((
        attempts.parse().ok()?,
        crashes.parse().ok()?,
        orphaned.parse().ok()?,
    ))
}

/// Why a stored record that [`decode`] refuses cannot be performed, quoting its start.
pub(crate) fn malformed_reason(rec: &[u8]) -> String {
    let text = String::from_utf8_lossy(rec);
    let start: String = text.chars().take(80).collect();
    format!("malformed job record: expected `attempts|enqueued_ms|name|args`, found `{start}`")
}

/// Each state and the character history entries write for it (the scripts use the same).
const STATE_CHARS: [(JobState, u8); 7] = [
    (JobState::Enqueued, b'E'),
    (JobState::Scheduled, b'S'),
    (JobState::Processing, b'P'),
    (JobState::Succeeded, b'O'),
    (JobState::Failed, b'F'),
    (JobState::Deleted, b'D'),
    (JobState::Awaiting, b'A'),
];

fn state_of(c: u8) -> Option<JobState> {
    STATE_CHARS
        .iter()
        .find(|&&(_, ch)| ch == c)
        .map(|&(s, _)| s)
}

/// A history entry without a reason, as the scripts write them: `<state char><at_ms>,0:`.
pub(crate) fn entry_at(state: JobState, at_ms: u64) -> String {
    let c = STATE_CHARS
        .iter()
        .find(|&&(s, _)| s == state)
        .map_or('?', |&(_, ch)| char::from(ch));
    format!("{c}{at_ms},0:")
}

/// Decodes a history string: entries `<state char><at_ms>,<reason length>:<reason>`. Stops at the
/// first malformed entry.
pub(crate) fn decode_history(h: &[u8]) -> Vec<StateChange> {
    let mut out = Vec::new();
    let mut rest = h;
    while let Some((&c, tail)) = rest.split_first() {
        let Some(state) = state_of(c) else { break };
        let Some(comma) = tail.iter().position(|&b| b == b',') else {
            break;
        };
        let Some(at_ms) = std::str::from_utf8(&tail[..comma])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        else {
            break;
        };
        let tail = &tail[comma + 1..];
        let Some(colon) = tail.iter().position(|&b| b == b':') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&tail[..colon])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        let tail = &tail[colon + 1..];
        if tail.len() < len {
            break;
        }
        let reason = (len > 0).then(|| String::from_utf8_lossy(&tail[..len]).into_owned());
        out.push(StateChange::new(state, at_ms, reason));
        rest = &tail[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No headers.
    static NO_HEADERS: Headers = Headers::new();

    #[test]
    fn headers_round_trip_and_old_records_read_without() {
        let headers: Headers = [("traceparent", "00-1-2-01"), ("q", "a|b:c")]
            .into_iter()
            .collect();
        let rec = encode(5, "n", r#"{"a":1}"#, &headers)
            .to_redis_args()
            .concat();
        let rec = String::from_utf8(rec).unwrap();
        assert_eq!(
            rec,
            r#"0|5|n|H39:{"traceparent":"00-1-2-01","q":"a|b:c"}{"a":1}"#
        );
        let d = decode(&rec).unwrap();
        assert_eq!((d.args, d.headers().unwrap()), (r#"{"a":1}"#, headers));
        let old = decode(r#"3|5|n|{"a":1}"#).unwrap();
        assert_eq!(
            (old.args, old.headers().unwrap()),
            (r#"{"a":1}"#, Headers::new())
        );
        // Arguments that start with the mark get an empty section.
        let odd = encode(5, "n", "H3:abc", &NO_HEADERS)
            .to_redis_args()
            .concat();
        let odd = String::from_utf8(odd).unwrap();
        assert_eq!(odd, "0|5|n|H0:H3:abc");
        let d = decode(&odd).unwrap();
        assert_eq!((d.args, d.headers), ("H3:abc", ""));
        for bad in [
            "0|5|n|H",
            "0|5|n|H9:{}",
            "0|5|n|Hx:{}",
            "0|5|n|H+1:{}",
            "0|5|n|H:{}",
        ] {
            assert!(decode(bad).is_none(), "{bad}");
        }
        assert!(decode(r#"0|5|n|H5:[1,2]{}"#).unwrap().headers().is_none());
    }

    #[test]
    fn records_round_trip_with_bars_in_args() {
        let rec = encode(
            1_700_000_000_000,
            "mail::send",
            r#"{"s":"a|b"}"#,
            &NO_HEADERS,
        )
        .to_redis_args();
        let rec = String::from_utf8(rec.concat()).unwrap();
        assert_eq!(rec, r#"0|1700000000000|mail::send|{"s":"a|b"}"#);
        let d = decode(&rec).unwrap();
        assert_eq!(d.attempts, 0);
        assert_eq!(d.enqueued_at_ms, 1_700_000_000_000);
        assert_eq!(d.name, "mail::send");
        assert_eq!(d.args, r#"{"s":"a|b"}"#);
        assert!(decode("garbage").is_none());
        assert!(decode("x|1|n|{}").is_none());
    }

    #[test]
    fn crash_counts_follow_the_attempts_once_a_lease_ran_out() {
        let d = decode("2:1:3|5|n|{}").unwrap();
        assert_eq!((d.attempts, d.crashes, d.orphaned), (2, 1, 3));
        assert_eq!((d.enqueued_at_ms, d.name, d.args), (5, "n", "{}"));
        let plain = decode("2|5|n|{}").unwrap();
        assert_eq!((plain.attempts, plain.crashes, plain.orphaned), (2, 0, 0));
        for bad in [
            "2:1|5|n|{}",
            "2::1|5|n|{}",
            "2:1:x|5|n|{}",
            ":1:1|5|n|{}",
            "2:1:1:1|5|n|{}",
        ] {
            assert!(decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn entries_decode_to_what_they_say() {
        for (state, _) in STATE_CHARS {
            let h = decode_history(entry_at(state, 42).as_bytes());
            assert_eq!(h, vec![StateChange::new(state, 42, None)]);
        }
    }

    #[test]
    fn histories_decode() {
        let h = b"E10,0:P20,0:S30,5:a,b:cF40,0:";
        let d = decode_history(h);
        assert_eq!(d.len(), 4);
        assert_eq!(d[2].state, JobState::Scheduled);
        assert_eq!(d[2].at_ms, 30);
        assert_eq!(d[2].reason.as_deref(), Some("a,b:c"));
        assert_eq!(d[3].reason, None);
    }
}
