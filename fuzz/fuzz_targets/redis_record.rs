//! Decoding a stored Redis job record (`counts|enqueued_ms|name|[headers]args`) and state history, as a
//! worker's fetch and inspection (`Storage::job`) do: no panic, a bounded reason for a record
//! that does not decode, and what enqueueing writes decodes back to what was written.
#![no_main]

use arbitrary::Arbitrary;
use jobs::__fuzz::{decode_history, decode_record, encode_record, job_info, Record};
use jobs::{JobId, JobState};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    record: &'a [u8],
    history: Option<&'a [u8]>,
    state: u8,
    /// A new job's parts, for the round trip.
    enqueued_at_ms: u64,
    name: &'a str,
    args: &'a str,
    headers: Vec<(&'a str, &'a str)>,
}

const STATES: [JobState; 7] = [
    JobState::Enqueued,
    JobState::Scheduled,
    JobState::Processing,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Deleted,
    JobState::Awaiting,
];

fuzz_target!(|input: Input<'_>| {
    match decode_record(input.record) {
        Ok(r) => {
            assert!(!r.name.contains('|'), "{r:?}");
            // Written again as a new job, it reads back the same but for its counts.
            let again = encode_record(r.enqueued_at_ms, r.name, r.args, &r.headers);
            let back = decode_record(&again).expect("an encoded record decodes");
            assert_eq!(
                (back.enqueued_at_ms, back.name, back.args, &back.headers),
                (r.enqueued_at_ms, r.name, r.args, &r.headers)
            );
        }
        // The reason quotes the record's start only, however long it is.
        Err(reason) => assert!(reason.len() <= 120 + 80 * 4, "{} bytes", reason.len()),
    }

    let history = input.history.map(decode_history).unwrap_or_default();
    // An entry takes at least 5 bytes (`E0,0:`), and its reason no more than is there.
    let len = input.history.map_or(0, <[u8]>::len);
    assert!(
        history.len() * 5 <= len,
        "{} entries from {len} bytes",
        history.len()
    );

    let state = STATES[usize::from(input.state) % STATES.len()];
    let id = JobId::new("fuzz", 7);
    let rec = input.record.to_vec();
    let info = job_info(
        id.clone(),
        Some(rec),
        input.history.map(<[u8]>::to_vec),
        state,
    )
    .expect("a job with a record is shown");
    assert_eq!((info.id, info.state), (id.clone(), state));
    assert!(!info.history.is_empty(), "its first state is always shown");
    assert!(job_info(id, None, input.history.map(<[u8]>::to_vec), state).is_none());

    if !input.name.contains('|') {
        let headers: jobs::Headers = input.headers.iter().copied().collect();
        let rec = encode_record(input.enqueued_at_ms, input.name, input.args, &headers);
        let expected = Record {
            attempts: 0,
            crashes: 0,
            orphaned: 0,
            enqueued_at_ms: input.enqueued_at_ms,
            name: input.name,
            args: input.args,
            headers,
        };
        assert_eq!(decode_record(&rec), Ok(expected));
    }
});
