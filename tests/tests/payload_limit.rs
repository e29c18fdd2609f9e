//! The payload limit on both backends: a job whose arguments are over it is refused at every
//! entry point (single, concurrent, bulk, scheduled, batch, continuation, recurring) with an
//! error naming it and both sizes, and nothing is stored; on Redis and PostgreSQL, a worker
//! fails a stored job over its limit without running it or reading its arguments (enqueued by a
//! process with a higher limit, or, on Redis, written behind the storage's back) and goes on
//! with the others.

use ::redis::Commands;
use jobs::storage::Monitoring;
use jobs::storage::{Retention, DEFAULT_MAX_PAYLOAD};
use jobs::{Client, JobId, JobState, Storage, Worker};
use jobs_tests::backends::{backend, backend_with_payload_limit, Kind};
use jobs_tests::postgres::TestPostgres;
use jobs_tests::{eventually, until_state, TestRedis};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

jobs_tests::on_every_backend!(
    an_oversized_job_is_refused_and_nothing_is_stored,
    only_the_oversized_caller_fails_among_concurrent_enqueues,
    an_oversized_job_fails_its_whole_bulk_enqueue,
    an_oversized_scheduled_job_is_refused,
    an_oversized_batch_member_or_continuation_is_refused,
    an_oversized_continuation_is_refused,
    an_oversized_recurring_job_is_not_registered,
    the_limit_is_configurable_and_the_limit_itself_fits,
);

/// The jobs' arguments: `{"blob":"…"}`, 11 bytes plus the blob.
const ENVELOPE: usize = r#"{"blob":""}"#.len();

/// The blobs each `carry` run saw (by length), to tell what ran.
static RAN: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A job whose arguments are as large as its blob.
#[jobs::background_job(queue = "pl")]
async fn carry(blob: String) {
    RAN.lock().unwrap().push(blob.len());
}

/// A blob that makes `carry`'s arguments exactly `bytes` long.
fn blob(bytes: usize) -> String {
    "x".repeat(bytes - ENVELOPE)
}

/// 600 KiB of arguments: over the default limit.
fn oversized() -> String {
    blob(600 * 1024)
}

/// The error says which job, both sizes, and how to raise the limit.
fn assert_refusal(err: &jobs::Error, size: &str, limit: &str) {
    assert!(err.is_too_large(), "{err:?}");
    let text = err.to_string();
    let expected = format!(
        "job `{}` has {size} of arguments, over the limit of {limit}",
        <carry as jobs::Job>::NAME
    );
    assert!(text.starts_with(&expected), "{text}");
    assert!(text.contains("max_payload"), "{text}");
}

/// Nothing is stored on queue `queue`.
async fn assert_empty(s: &dyn Storage, queue: &str) {
    let st = s.stats(queue).await.unwrap();
    assert_eq!(
        (st.enqueued, st.scheduled, st.processing, st.failed),
        (0, 0, 0, 0),
        "{st:?}"
    );
}

async fn an_oversized_job_is_refused_and_nothing_is_stored(kind: Kind) {
    let Some(b) = backend(kind, "pl-single", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let err = jobs::enqueue!(&client, carry(oversized()))
        .await
        .unwrap_err();
    assert_refusal(&err, "600 KiB", "512 KiB");
    assert_empty(&*b.storage, "pl").await;
    // The client and storage go on as before.
    let id = jobs::enqueue!(&client, carry(blob(100))).await.unwrap();
    assert_eq!(b.storage.stats("pl").await.unwrap().enqueued, 1);
    let info = b.storage.job(&id).await.unwrap().expect("stored");
    assert_eq!(info.args.len(), 100);
}

async fn only_the_oversized_caller_fails_among_concurrent_enqueues(kind: Kind) {
    let Some(b) = backend(kind, "pl-concurrent", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let calls: Vec<_> = (0..40usize)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move {
                let size = if n % 10 == 3 { 600 * 1024 } else { 100 + n };
                (n, jobs::enqueue!(&client, carry(blob(size))).await)
            })
        })
        .collect();
    let mut stored = HashSet::new();
    for call in calls {
        let (n, result) = call.await.unwrap();
        match result {
            Ok(id) => {
                assert_ne!(n % 10, 3, "job {n} is over the limit, yet was stored");
                assert!(stored.insert(id));
            }
            Err(e) => {
                assert_eq!(n % 10, 3, "job {n} failed: {e}");
                assert_refusal(&e, "600 KiB", "512 KiB");
            }
        }
    }
    assert_eq!(stored.len(), 36);
    assert_eq!(b.storage.stats("pl").await.unwrap().enqueued, 36);
}

async fn an_oversized_job_fails_its_whole_bulk_enqueue(kind: Kind) {
    let Some(b) = backend(kind, "pl-bulk", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let sizes = [100, 200, 600 * 1024, 300];
    let err = client
        .enqueue_many(sizes.map(|n| jobs::job!(carry(blob(n)))))
        .await
        .unwrap_err();
    assert_refusal(&err, "600 KiB", "512 KiB");
    assert_empty(&*b.storage, "pl").await;
}

async fn an_oversized_scheduled_job_is_refused(kind: Kind) {
    let Some(b) = backend(kind, "pl-schedule", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let err = jobs::schedule!(&client, carry(oversized()), in = Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_refusal(&err, "600 KiB", "512 KiB");
    let at = std::time::SystemTime::now() + Duration::from_secs(60);
    let err = client
        .schedule_at(jobs::job!(carry(oversized())), at)
        .await
        .unwrap_err();
    assert_refusal(&err, "600 KiB", "512 KiB");
    assert_empty(&*b.storage, "pl").await;
}

/// Continuations of batches go to their own queue, to see that nothing lands there either.
#[jobs::background_job(queue = "pl-then")]
async fn carry_then(blob: String) {
    let _ = blob;
}

async fn an_oversized_batch_member_or_continuation_is_refused(kind: Kind) {
    let Some(b) = backend(kind, "pl-batch", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let err = client
        .batch([100, 600 * 1024].map(|n| jobs::job!(carry(blob(n)))))
        .then(jobs::job!(carry_then(String::new())))
        .await
        .unwrap_err();
    assert_refusal(&err, "600 KiB", "512 KiB");
    let err = client
        .batch([100, 200].map(|n| jobs::job!(carry(blob(n)))))
        .then(jobs::job!(carry_then("x".repeat(600 * 1024))))
        .await
        .unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
    assert!(
        err.to_string().contains(<carry_then as jobs::Job>::NAME),
        "names the continuation: {err}"
    );
    assert_empty(&*b.storage, "pl").await;
    assert_empty(&*b.storage, "pl-then").await;
}

async fn an_oversized_continuation_is_refused(kind: Kind) {
    let Some(b) = backend(kind, "pl-continuation", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let parent: JobId = jobs::enqueue!(&client, carry(blob(100))).await.unwrap();
    let err = client
        .continue_with(&parent, jobs::job!(carry_then("x".repeat(600 * 1024))))
        .await
        .unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
    assert_empty(&*b.storage, "pl-then").await;
    // The parent is untouched and a continuation that fits is still taken.
    let child = client
        .continue_with(&parent, jobs::job!(carry_then("ok".into())))
        .await
        .unwrap();
    let info = b.storage.job(&child).await.unwrap().expect("stored");
    assert_eq!(info.state, JobState::Awaiting);
    assert_eq!(
        b.storage.job(&parent).await.unwrap().unwrap().state,
        JobState::Enqueued
    );
}

async fn an_oversized_recurring_job_is_not_registered(kind: Kind) {
    let Some(b) = backend(kind, "pl-recurring", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let err = client
        .recurring("big", "0 * * * *", jobs::job!(carry(oversized())))
        .register()
        .await
        .unwrap_err();
    assert_refusal(&err, "600 KiB", "512 KiB");
    assert!(client.recurring_jobs().await.unwrap().is_empty());
    // Nor can an entry already registered be replaced by an oversized one.
    client
        .recurring("big", "0 * * * *", jobs::job!(carry(blob(100))))
        .register()
        .await
        .unwrap();
    let err = client
        .recurring("big", "0 * * * *", jobs::job!(carry(oversized())))
        .register()
        .await
        .unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
    let listed = client.recurring_jobs().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].args.len(), 100, "the registered entry is kept");
}

async fn the_limit_is_configurable_and_the_limit_itself_fits(kind: Kind) {
    let Some(b) = backend_with_payload_limit(kind, "pl-custom", Retention::default(), 1024) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    jobs::enqueue!(&client, carry(blob(1024))).await.unwrap();
    let err = jobs::enqueue!(&client, carry(blob(1025)))
        .await
        .unwrap_err();
    assert_refusal(&err, "1025 bytes (1.0 KiB)", "1 KiB");
    assert_eq!(b.storage.stats("pl").await.unwrap().enqueued, 1);

    let Some(big) = backend_with_payload_limit(kind, "pl-raised", Retention::default(), 1 << 20)
    else {
        return;
    };
    let client = Client::from_shared(big.storage.clone());
    let id = jobs::enqueue!(&client, carry(oversized())).await.unwrap();
    let info = big.storage.job(&id).await.unwrap().expect("stored");
    assert_eq!(
        info.args.len(),
        600 * 1024,
        "a raised limit takes what the default refuses"
    );
}

// ---- The worker side (Redis and PostgreSQL: the storages that read records back) ----

/// Runs a worker on `storage` (queue `pl`) until each of `ids` is Succeeded or Failed.
async fn work_until_final<S: Storage + Clone>(storage: S, ids: &[JobId]) {
    let probe = storage.clone();
    let ids = ids.to_vec();
    Worker::builder(storage)
        .queues(["pl"])
        .build()
        .unwrap()
        .run_until(async move {
            for id in &ids {
                let ended = eventually(Duration::from_secs(30), || async {
                    let state = probe.job(id).await.unwrap().expect("kept").state;
                    matches!(state, JobState::Succeeded | JobState::Failed)
                })
                .await;
                assert!(ended, "{id} did not finish");
            }
        })
        .await
        .unwrap();
}

/// Waits for `id` to be Failed, then returns its reason.
async fn failed_reason(s: &dyn Storage, id: &JobId) -> String {
    assert!(
        until_state(s, id, JobState::Failed).await,
        "{id} did not fail"
    );
    let info = s.job(id).await.unwrap().unwrap();
    info.last_reason().expect("a reason").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_fails_a_job_over_its_limit_enqueued_by_a_process_with_a_higher_one() {
    let Some(r) = TestRedis::start("pl-two-limits") else {
        return;
    };
    let prefix = jobs_tests::unique_prefix("pl-two-limits");
    fails_a_job_over_its_limit(|limit: usize| {
        jobs::RedisStorage::builder(r.url())
            .prefix(prefix.clone())
            .max_payload(limit)
            .build()
            .unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_worker_fails_a_job_over_its_limit_enqueued_by_a_process_with_a_higher_one() {
    let Some(pg) = TestPostgres::start("pl-two-limits") else {
        return;
    };
    fails_a_job_over_its_limit(|limit: usize| {
        pg.storage_builder(Retention::default())
            .max_payload(limit)
            .build()
            .unwrap()
    })
    .await;
}

/// Jobs enqueued through a storage with a 1 MiB limit, performed by a worker whose storage has
/// the default: the one over 512 KiB fails with the reason, unperformed; the others succeed.
async fn fails_a_job_over_its_limit<S: Storage + Clone>(storage: impl Fn(usize) -> S) {
    let enqueuer = Client::new(storage(1 << 20));
    let mut ids = Vec::new();
    for size in [101, 600 * 1024, 102, 512 * 1024, 103] {
        ids.push(jobs::enqueue!(&enqueuer, carry(blob(size))).await.unwrap());
    }
    let worker_side = storage(DEFAULT_MAX_PAYLOAD);
    work_until_final(worker_side.clone(), &ids).await;
    let reason = failed_reason(&worker_side, &ids[1]).await;
    assert!(
        reason.starts_with(
            "its stored arguments are 600 KiB, over this worker's payload limit of 512 KiB: \
             not performed"
        ),
        "{reason}"
    );
    for i in [0, 2, 3, 4] {
        assert_eq!(
            worker_side.job(&ids[i]).await.unwrap().unwrap().state,
            JobState::Succeeded,
            "job {i} is within the limit (the limit itself included)"
        );
    }
    let ran = RAN.lock().unwrap().clone();
    assert!(
        !ran.contains(&(600 * 1024 - ENVELOPE)),
        "the oversized job never ran"
    );
    // It is kept as Failed for inspection, with its arguments.
    let info = worker_side.job(&ids[1]).await.unwrap().unwrap();
    assert_eq!(info.args.len(), 600 * 1024);
    assert_eq!(worker_side.stats("pl").await.unwrap().failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_fails_an_oversized_record_written_directly_into_redis() {
    let Some(r) = TestRedis::start("pl-raw") else {
        return;
    };
    // A low limit whose records are longer than it even when their arguments fit: the script
    // must measure the arguments, not the record.
    let s = r
        .storage_builder("pl-raw", Retention::default())
        .max_payload(1024)
        .build()
        .unwrap();
    let client = Client::new(s.clone());
    let mut ids = Vec::new();
    for size in [1024, 20, 30, 1000] {
        ids.push(jobs::enqueue!(&client, carry(blob(size))).await.unwrap());
    }
    let jobs_key = s
        .queue_keys("pl")
        .into_iter()
        .find(|k| k.ends_with(":jobs"))
        .unwrap();
    let mut raw = r.raw();
    // Replace the arguments of job 1 (keeping the record's other fields, whatever their form)
    // by 2 MiB, and of job 2 by one byte over the limit.
    for (i, size) in [(1, 2 << 20), (2, 1025)] {
        let rec: Vec<u8> = raw.hget(&jobs_key, ids[i].seq()).unwrap();
        let bars: Vec<usize> = rec
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'|')
            .map(|(at, _)| at)
            .collect();
        let mut big = rec[..=bars[2]].to_vec();
        big.extend_from_slice(format!(r#"{{"blob":"{}"}}"#, blob(size)).as_bytes());
        let _: () = raw.hset(&jobs_key, ids[i].seq(), big).unwrap();
    }
    work_until_final(s.clone(), &ids).await;
    let reason = failed_reason(&s, &ids[1]).await;
    assert!(
        reason.starts_with(
            "its stored arguments are 2 MiB, over this worker's payload limit of 1 KiB"
        ),
        "{reason}"
    );
    let reason = failed_reason(&s, &ids[2]).await;
    assert!(
        reason.starts_with("its stored arguments are 1025 bytes (1.0 KiB), over"),
        "{reason}"
    );
    for i in [0, 3] {
        assert_eq!(
            s.job(&ids[i]).await.unwrap().unwrap().state,
            JobState::Succeeded,
            "job {i} fits"
        );
    }
    let ran = RAN.lock().unwrap().clone();
    assert!(!ran.contains(&((2 << 20) - ENVELOPE)) && !ran.contains(&(1025 - ENVELOPE)));
    let st = s.stats("pl").await.unwrap();
    assert_eq!((st.failed, st.processing, st.enqueued), (2, 0, 0));
}
