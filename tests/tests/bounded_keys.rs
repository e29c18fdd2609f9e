//! What flow features leave behind stays bounded: finished batches are forgotten by retention
//! (both backends), and on Redis the batch counters, the concurrency-slot sets and the rate-limit
//! start sets of many batches and limit keys do not pile up (counted with raw Redis commands).

use ::redis::Commands;
use jobs::storage::{
    now_ms, Completion, FetchRequest, FetchedJob, LimitRequest, NewJob, Outcome, Retention,
};
use jobs::storage::{Delivery, Flows};
use jobs::{JobId, RedisStorage, Storage};
use jobs_tests::backends::{backend, Kind};
use jobs_tests::TestRedis;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

jobs_tests::on_every_backend!(finished_batches_are_forgotten_by_retention);

fn plain(queue: &str, n: u64) -> NewJob {
    NewJob::new(queue, "bounded::plain", format!("{{\"n\":{n}}}"))
}

async fn fetch_all(s: &dyn Storage, queue: &str) -> HashMap<JobId, FetchedJob> {
    let queues = [Arc::<str>::from(queue)];
    s.fetch(FetchRequest::new(
        &queues,
        10_000,
        Duration::from_secs(30),
        Duration::ZERO,
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|j| (j.id.clone(), j))
    .collect()
}

async fn complete(s: &dyn Storage, jobs: &[&FetchedJob], outcome: &Outcome) {
    let done: Vec<Completion> = jobs
        .iter()
        .map(|j| Completion::new(j.lease(), now_ms(), outcome.clone()))
        .collect();
    assert!(s.complete(&done).await.unwrap().iter().all(|&ok| ok));
}

/// Stores `n` batches of two members on queue `bq` (every other one with a continuation on
/// `bt`), runs them to their end one batch after another, and returns the batches.
async fn run_batches(s: &dyn Storage, n: u64) -> Vec<jobs::storage::Batch> {
    let mut batches = Vec::new();
    for i in 0..n {
        let then = (i % 2 == 0).then(|| plain("bt", i));
        batches.push(
            s.enqueue_batch(vec![plain("bq", i), plain("bq", i)], then)
                .await
                .unwrap(),
        );
    }
    let fetched = fetch_all(s, "bq").await;
    for b in &batches {
        let members: Vec<&FetchedJob> = b.jobs.iter().map(|id| &fetched[id]).collect();
        complete(s, &members, &Outcome::Succeeded).await;
    }
    batches
}

async fn finished_batches_are_forgotten_by_retention(kind: Kind) {
    let keep = Retention::default().succeeded(3, Duration::from_secs(3600));
    let Some(b) = backend(kind, "batch-retention", keep) else {
        return;
    };
    let s = &*b.storage;
    // Never finishes: a member fails for good.
    let open = s
        .enqueue_batch(vec![plain("open", 0)], Some(plain("bt", 99)))
        .await
        .unwrap();
    let fetched = fetch_all(s, "open").await;
    let failing: Vec<&FetchedJob> = fetched.values().collect();
    let failed = Outcome::Failed {
        reason: "boom".into(),
    };
    complete(s, &failing, &failed).await;

    let batches = run_batches(s, 8).await;
    for (i, batch) in batches.iter().enumerate() {
        let progress = s.batch_progress(&batch.id).await.unwrap();
        if i < 5 {
            assert_eq!(progress, None, "batch {i} finished long ago: forgotten");
        } else {
            assert!(progress.expect("among the latest 3").is_done(), "batch {i}");
        }
        if let Some(then) = &batch.then {
            let state = s.job(then).await.unwrap().unwrap().state;
            assert_eq!(
                state,
                jobs::JobState::Enqueued,
                "batch {i}'s continuation ran"
            );
        }
    }
    let open_progress = s
        .batch_progress(&open.id)
        .await
        .unwrap()
        .expect("unfinished: kept");
    assert_eq!((open_progress.succeeded, open_progress.failed), (0, 1));

    // An empty batch (on the queue of its continuation) is finished at once, and counts among
    // the kept ones of its queue.
    let empty = s
        .enqueue_batch(Vec::new(), Some(plain("bq", 100)))
        .await
        .unwrap();
    assert!(s
        .batch_progress(&empty.id)
        .await
        .unwrap()
        .unwrap()
        .is_done());
    assert_eq!(s.batch_progress(&batches[5].id).await.unwrap(), None);
}

/// The keys of `s` on queue `q` matching `{<prefix>:<q>}:<pattern>`.
fn count_keys(raw: &mut ::redis::Connection, s: &RedisStorage, q: &str, pattern: &str) -> usize {
    let pattern = format!("{{{}:{q}}}:{pattern}", s.prefix());
    let keys: Vec<String> = raw
        .scan_match(pattern)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    keys.len()
}

fn key(s: &RedisStorage, queue: &str, name: &str) -> String {
    let suffix = format!("}}:{name}");
    s.queue_keys(queue)
        .into_iter()
        .find(|k| k.ends_with(&suffix))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_batch_counters_stay_bounded() {
    let Some(r) = TestRedis::start("bounded-batches") else {
        return;
    };
    let s = r.storage(
        "bounded-batches",
        Retention::default().succeeded(5, Duration::from_secs(3600)),
    );
    let mut raw = r.raw();
    run_batches(&s, 60).await;
    let fields: usize = raw.hlen(key(&s, "bq", "batches")).unwrap();
    let done: usize = raw.zcard(key(&s, "bq", "batches_done")).unwrap();
    assert_eq!(done, 5, "the five latest finished batches are kept");
    assert!(
        fields <= 5 * 4,
        "counters of five batches at most: {fields} fields"
    );
    let conts: usize = raw.hlen(key(&s, "bq", "conts")).unwrap();
    assert_eq!(conts, 0, "no batch continuation left attached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_limit_sets_of_many_keys_disappear() {
    let Some(r) = TestRedis::start("bounded-limits") else {
        return;
    };
    let s = r.storage("bounded-limits", Retention::default());
    let mut raw = r.raw();
    let n = 150;
    s.enqueue((0..n).map(|i| plain("lq", i)).collect())
        .await
        .unwrap();
    let got: Vec<FetchedJob> = fetch_all(&s, "lq").await.into_values().collect();
    // A distinct key per job (a per-user limit), each with a concurrency and a rate limit.
    let requests: Vec<LimitRequest> = got
        .iter()
        .enumerate()
        .map(|(i, j)| {
            LimitRequest::new(
                j.lease(),
                format!("user-{i}"),
                Some(1),
                Some((5, Duration::from_millis(200))),
            )
        })
        .collect();
    let granted = s
        .acquire_limits(&requests, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(granted.iter().all(|&g| g));
    assert_eq!(count_keys(&mut raw, &s, "lq", "slots:*"), 150);
    assert_eq!(count_keys(&mut raw, &s, "lq", "starts:*"), 150);
    let done: Vec<&FetchedJob> = got.iter().collect();
    complete(&s, &done, &Outcome::Succeeded).await;

    // Once idle for the sweep interval, the next grant on the queue sweeps the ended holders'
    // sets; the rate windows' start sets expire on their own.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let last = s.enqueue(vec![plain("lq", n)]).await.unwrap().remove(0);
    let job = fetch_all(&s, "lq").await.remove(&last).unwrap();
    let req = LimitRequest::new(job.lease(), "user-0", Some(1), None);
    assert_eq!(
        s.acquire_limits(&[req], Duration::from_secs(1))
            .await
            .unwrap(),
        [true],
        "the ended holder of user-0's slot does not count"
    );
    assert_eq!(
        count_keys(&mut raw, &s, "lq", "slots:*"),
        1,
        "only the live holder's set is left"
    );
    assert_eq!(count_keys(&mut raw, &s, "lq", "starts:*"), 0);
    let indexed: usize = raw.zcard(key(&s, "lq", "limit_keys")).unwrap();
    assert_eq!(indexed, 1);

    // A set whose holder is still live survives a sweep.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let other = s.enqueue(vec![plain("lq", n + 1)]).await.unwrap().remove(0);
    let job2 = fetch_all(&s, "lq").await.remove(&other).unwrap();
    let req = LimitRequest::new(job2.lease(), "user-0", Some(1), None);
    assert_eq!(
        s.acquire_limits(&[req], Duration::from_secs(1))
            .await
            .unwrap(),
        [false],
        "user-0's slot is held"
    );
    assert_eq!(count_keys(&mut raw, &s, "lq", "slots:*"), 1);
}
