//! Flow features on both backends: unique jobs, continuations (with the parent's result), and
//! concurrency / rate limits across several workers, including a crashed slot holder.

use jobs::storage::{
    now_ms, Completion, FetchRequest, FetchedJob, Finish, LimitRequest, NewJob, Outcome, Retention,
    UniqueKey,
};
use jobs::{Client, JobState, Storage, Worker};
use jobs_tests::backends::{backend, Kind};
use jobs_tests::eventually;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

jobs_tests::on_every_backend!(
    cancelling_a_parent_decides_its_continuations,
    identical_unique_jobs_share_one_id_while_live,
    unique_keys_and_windows,
    continuations_follow_their_condition,
    continuation_of_an_ended_parent_is_decided_at_once,
    continuation_runs_with_the_parent_result,
    concurrency_limit_holds_across_workers,
    expired_lease_frees_its_slot,
    limit_keys_and_rates,
    batches_run_their_continuation_once_all_succeeded,
);

const LIMIT: Duration = Duration::from_secs(60);

fn queues(names: &[&str]) -> Vec<Arc<str>> {
    names.iter().map(|&q| Arc::from(q)).collect()
}

async fn fetch(s: &dyn Storage, q: &str, lease: Duration) -> Vec<FetchedJob> {
    s.fetch(FetchRequest::new(&queues(&[q]), 10, lease, Duration::ZERO))
        .await
        .expect("fetch")
}

async fn finish(s: &dyn Storage, j: &FetchedJob, outcome: Outcome, result: Option<&str>) {
    let c = Completion::new(j.lease(), now_ms(), outcome).with_result(result.map(str::to_owned));
    assert_eq!(s.complete(&[c]).await.unwrap(), vec![true]);
}

async fn state(s: &dyn Storage, id: &jobs::JobId) -> JobState {
    s.job(id).await.unwrap().expect("job known").state
}

fn plain(queue: &str, n: u64) -> NewJob {
    NewJob::new(queue, "flow::plain", format!("{{\"n\":{n}}}"))
}

// ---- unique jobs ----

#[jobs::background_job(queue = "uq", unique)]
async fn refresh(account: u64) {
    let _ = account;
}

async fn identical_unique_jobs_share_one_id_while_live(kind: Kind) {
    let Some(b) = backend(kind, "unique", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let client = Client::from_shared(b.storage.clone());
    let a = jobs::enqueue!(&client, refresh(1)).await.unwrap();
    let again = jobs::enqueue!(&client, refresh(1)).await.unwrap();
    let other = jobs::enqueue!(&client, refresh(2)).await.unwrap();
    assert_eq!(a, again, "an identical live job returns the existing id");
    assert_ne!(a, other, "other arguments make another job");
    assert_eq!(s.stats("uq").await.unwrap().enqueued, 2);

    // Still unique while it runs.
    let got = fetch(s, "uq", Duration::from_secs(30)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(jobs::enqueue!(&client, refresh(1)).await.unwrap(), a);

    // Finished: the key is free again.
    let first = got.iter().find(|j| j.id == a).unwrap();
    finish(s, first, Outcome::Succeeded, None).await;
    let fresh = jobs::enqueue!(&client, refresh(1)).await.unwrap();
    assert_ne!(fresh, a);

    // A job that failed for good frees its key too.
    let second = got.iter().find(|j| j.id == other).unwrap();
    finish(s, second, Outcome::Failed { reason: "x".into() }, None).await;
    assert_ne!(jobs::enqueue!(&client, refresh(2)).await.unwrap(), other);
}

async fn unique_keys_and_windows(kind: Kind) {
    let Some(b) = backend(kind, "unique-keys", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let client = Client::from_shared(b.storage.clone());
    // A user key makes jobs with different arguments duplicates.
    let a = client
        .submit(jobs::job!(refresh(10)))
        .unique_key("acct")
        .await
        .unwrap();
    let b2 = client
        .submit(jobs::job!(refresh(11)))
        .unique_key("acct")
        .await
        .unwrap();
    assert_eq!(a, b2);

    // Within one enqueue batch the second claim sees the first.
    let mut one = plain("uk", 1);
    one.unique = Some(UniqueKey::new("k", None));
    let mut two = plain("uk", 2);
    two.unique = Some(UniqueKey::new("k", None));
    let ids = s.enqueue(vec![one, two, plain("uk", 3)]).await.unwrap();
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_eq!(s.stats("uk").await.unwrap().enqueued, 2);

    // A window lapses even while the job is still enqueued.
    let w1 = client
        .submit(jobs::job!(refresh(20)))
        .unique_for(Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let w2 = client
        .submit(jobs::job!(refresh(20)))
        .unique_for(Duration::from_millis(50))
        .await
        .unwrap();
    assert_ne!(w1, w2, "the claim lapsed after its window");
    assert_eq!(state(s, &w1).await, JobState::Enqueued);
}

// ---- continuations ----

async fn continuations_follow_their_condition(kind: Kind) {
    let Some(b) = backend(kind, "continuations", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let lease = Duration::from_secs(30);
    // Parents on queue `p`, children on queue `c` (crossing queues).
    let ids = s
        .enqueue(vec![plain("p", 1), plain("p", 2), plain("p", 3)])
        .await
        .unwrap();
    let (ok_parent, failing_parent, deleted_parent) = (&ids[0], &ids[1], &ids[2]);
    let mut kids = HashMap::new();
    for (name, parent, on) in [
        ("ok-success", ok_parent, Finish::Success),
        ("ok-deleted", ok_parent, Finish::Deleted),
        ("fail-success", failing_parent, Finish::Success),
        ("fail-any", failing_parent, Finish::Any),
        ("del-success", deleted_parent, Finish::Success),
        ("del-deleted", deleted_parent, Finish::Deleted),
    ] {
        let child = s
            .continue_with(parent, plain("c", 0), on)
            .await
            .unwrap()
            .expect("parent known");
        assert_eq!(state(s, &child).await, JobState::Awaiting);
        kids.insert(name, child);
    }
    assert_eq!(s.stats("c").await.unwrap().enqueued, 0);
    assert!(s
        .continue_with(&jobs::JobId::new("p", 999), plain("c", 0), Finish::Any)
        .await
        .unwrap()
        .is_none());

    assert!(s.delete(deleted_parent).await.unwrap());
    let got = fetch(s, "p", lease).await;
    assert_eq!(got.len(), 2);
    finish(s, &got[0], Outcome::Succeeded, Some("42")).await;
    finish(
        s,
        &got[1],
        Outcome::Failed {
            reason: "boom".into(),
        },
        None,
    )
    .await;

    assert_eq!(state(s, &kids["ok-success"]).await, JobState::Enqueued);
    assert_eq!(state(s, &kids["ok-deleted"]).await, JobState::Deleted);
    assert_eq!(state(s, &kids["fail-success"]).await, JobState::Awaiting);
    assert_eq!(state(s, &kids["fail-any"]).await, JobState::Enqueued);
    assert_eq!(state(s, &kids["del-success"]).await, JobState::Deleted);
    assert_eq!(state(s, &kids["del-deleted"]).await, JobState::Enqueued);
    assert_eq!(
        s.parent_result(&kids["ok-success"])
            .await
            .unwrap()
            .as_deref(),
        Some("42")
    );
    assert_eq!(s.parent_result(&kids["fail-any"]).await.unwrap(), None);

    // The failed parent is requeued and succeeds: its waiting continuation runs now.
    assert!(s.requeue(failing_parent).await.unwrap());
    let again = fetch(s, "p", lease).await;
    assert_eq!(again.len(), 1);
    finish(s, &again[0], Outcome::Succeeded, None).await;
    assert_eq!(state(s, &kids["fail-success"]).await, JobState::Enqueued);
    assert_eq!(s.stats("c").await.unwrap().enqueued, 4);
}

async fn continuation_of_an_ended_parent_is_decided_at_once(kind: Kind) {
    let Some(b) = backend(kind, "continuation-late", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let ids = s.enqueue(vec![plain("p", 1)]).await.unwrap();
    let got = fetch(s, "p", Duration::from_secs(30)).await;
    finish(s, &got[0], Outcome::Succeeded, None).await;
    let run = s
        .continue_with(&ids[0], plain("c", 1), Finish::Success)
        .await
        .unwrap()
        .unwrap();
    let dropped = s
        .continue_with(&ids[0], plain("c", 2), Finish::Deleted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state(s, &run).await, JobState::Enqueued);
    assert_eq!(state(s, &dropped).await, JobState::Deleted);
}

/// Cancelling an enqueued parent deletes it, and its continuations are decided as for any
/// deletion: its on-deletion continuation runs.
async fn cancelling_a_parent_decides_its_continuations(kind: Kind) {
    let Some(b) = backend(kind, "continuation-cancel", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let client = Client::from_shared(b.storage.clone());
    let parent = s.enqueue(vec![plain("pc", 1)]).await.unwrap().remove(0);
    let on_deleted = s
        .continue_with(&parent, plain("c", 3), Finish::Deleted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state(s, &on_deleted).await, JobState::Awaiting);
    assert_eq!(
        client.cancel(&parent).await.unwrap(),
        jobs::storage::Cancellation::Deleted
    );
    assert_eq!(state(s, &parent).await, JobState::Deleted);
    assert_eq!(
        state(s, &on_deleted).await,
        JobState::Enqueued,
        "the on-deletion continuation of a cancelled parent runs"
    );
}

#[jobs::background_job(queue = "cr")]
async fn produce(run: u64) -> Result<Vec<u64>, String> {
    Ok(vec![run, run * 2])
}

static SEEN: Mutex<Vec<(u64, Vec<u64>)>> = Mutex::new(Vec::new());

#[jobs::background_job(queue = "cr2")]
async fn consume(run: u64, ctx: jobs::JobContext) -> Result<(), String> {
    let got: Option<Vec<u64>> = ctx.parent_result().await.map_err(|e| e.to_string())?;
    SEEN.lock()
        .unwrap()
        .push((run, got.ok_or("no parent result")?));
    Ok(())
}

async fn continuation_runs_with_the_parent_result(kind: Kind) {
    let Some(b) = backend(kind, "continuation-result", Retention::default()) else {
        return;
    };
    let run = match kind {
        Kind::Memory => 3,
        Kind::Redis => 5,
        Kind::Postgres => 7,
        Kind::RedisCluster => 9,
    };
    let client = Client::from_shared(b.storage.clone());
    let parent = jobs::enqueue!(&client, produce(run)).await.unwrap();
    let child = client
        .continue_with(&parent, jobs::job!(consume(run)))
        .await
        .unwrap();
    let worker = Worker::builder_shared(b.storage.clone())
        .queues(["cr", "cr2"])
        .build()
        .unwrap();
    let c = client.clone();
    let id = child.clone();
    worker
        .run_until(async move {
            eventually(LIMIT, || async {
                c.job(&id).await.unwrap().unwrap().state == JobState::Succeeded
            })
            .await;
        })
        .await
        .unwrap();
    assert_eq!(
        client.job(&child).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    assert!(SEEN.lock().unwrap().contains(&(run, vec![run, run * 2])));
}

// ---- limits ----

/// Per test run: (running now, most seen at once).
static RUNNING: Mutex<Option<HashMap<u64, (u32, u32)>>> = Mutex::new(None);

fn enter(run: u64) {
    let mut g = RUNNING.lock().unwrap();
    let e = g.get_or_insert_with(HashMap::new).entry(run).or_default();
    e.0 += 1;
    e.1 = e.1.max(e.0);
}

fn leave(run: u64) {
    let mut g = RUNNING.lock().unwrap();
    if let Some(e) = g.as_mut().and_then(|m| m.get_mut(&run)) {
        e.0 -= 1;
    }
}

fn most_at_once(run: u64) -> u32 {
    RUNNING
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&run))
        .map_or(0, |e| e.1)
}

#[jobs::background_job(queue = "lim", concurrency = 2)]
async fn limited(run: u64, n: u64) {
    let _ = n;
    enter(run);
    tokio::time::sleep(Duration::from_millis(30)).await;
    leave(run);
}

async fn concurrency_limit_holds_across_workers(kind: Kind) {
    let Some(b) = backend(kind, "concurrency", Retention::default()) else {
        return;
    };
    let run = match kind {
        Kind::Memory => 1,
        Kind::Redis => 2,
        Kind::Postgres => 4,
        Kind::RedisCluster => 6,
    };
    let client = Client::from_shared(b.storage.clone());
    let total = 12;
    client
        .enqueue_many((0..total).map(|n| jobs::job!(limited(run, n))))
        .await
        .unwrap();
    let mut handles = Vec::new();
    let stop = tokio_util_stop();
    for w in 0..3 {
        let worker = Worker::builder_shared(b.storage.clone())
            .queues(["lim"])
            .concurrency(4)
            .name(format!("limit-worker-{run}-{w}"))
            .build()
            .unwrap();
        let stop = stop.clone();
        handles.push(tokio::spawn(worker.run_until(async move {
            stop.notified().await;
        })));
    }
    let done = eventually(LIMIT, || async {
        client.stats("lim").await.unwrap().succeeded_total >= total
    })
    .await;
    stop.notify_waiters();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    assert!(done, "all limited jobs ran");
    let most = most_at_once(run);
    assert!((1..=2).contains(&most), "at most 2 ran at once, saw {most}");
}

fn tokio_util_stop() -> Arc<tokio::sync::Notify> {
    Arc::new(tokio::sync::Notify::new())
}

async fn expired_lease_frees_its_slot(kind: Kind) {
    let Some(b) = backend(kind, "limit-crash", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    s.enqueue(vec![plain("lc", 1)]).await.unwrap();
    // The holder "crashes": it got the slot, then never completes or renews.
    let holder = fetch(s, "lc", Duration::from_millis(300)).await;
    let req = |j: &FetchedJob| LimitRequest::new(j.lease(), "mutex", Some(1), None);
    assert_eq!(
        s.acquire_limits(&[req(&holder[0])], Duration::from_millis(10))
            .await
            .unwrap(),
        vec![true]
    );
    s.enqueue(vec![plain("lc", 2)]).await.unwrap();
    let waiting = fetch(s, "lc", Duration::from_secs(30)).await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        s.acquire_limits(&[req(&waiting[0])], Duration::from_millis(10))
            .await
            .unwrap(),
        vec![false],
        "the slot is held"
    );
    let info = s.job(&waiting[0].id).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Scheduled);
    assert_eq!(info.attempts, 0, "waiting for a slot is not an attempt");

    // Once the holder's lease ran out, a waiter gets the slot.
    let ok = eventually(LIMIT, || async {
        let mut granted = false;
        for j in fetch(s, "lc", Duration::from_secs(30)).await {
            granted |= s
                .acquire_limits(&[req(&j)], Duration::from_millis(10))
                .await
                .unwrap()
                == vec![true];
        }
        granted
    })
    .await;
    assert!(ok, "an expired lease frees its slot");
}

async fn limit_keys_and_rates(kind: Kind) {
    let Some(b) = backend(kind, "limit-keys", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    s.enqueue((0..5).map(|n| plain("lk", n)).collect())
        .await
        .unwrap();
    let got = fetch(s, "lk", Duration::from_secs(30)).await;
    assert_eq!(got.len(), 5);
    let slot = |j: &FetchedJob, key: &str| LimitRequest::new(j.lease(), key, Some(1), None);
    // One slot per key value. The job refused waits a minute for its retry, so it does not
    // come back in the fetches below (with a short retry it did, on a slow machine, whenever
    // the retry fell between them).
    let granted = s
        .acquire_limits(
            &[slot(&got[0], "a"), slot(&got[1], "b"), slot(&got[2], "a")],
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(granted, vec![true, true, false]);
    // Two starts per minute: the third waits for the window, scheduled past now.
    let rate = |j: &FetchedJob| {
        LimitRequest::new(j.lease(), "r", None, Some((2, Duration::from_secs(60))))
    };
    let granted = s
        .acquire_limits(&[rate(&got[3]), rate(&got[4])], Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(granted, vec![true, true]);
    s.enqueue(vec![plain("lk", 9)]).await.unwrap();
    let third = fetch(s, "lk", Duration::from_secs(30)).await;
    assert_eq!(
        s.acquire_limits(&[rate(&third[0])], Duration::from_millis(10))
            .await
            .unwrap(),
        vec![false]
    );
    let info = s.job(&third[0].id).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Scheduled);
    // It is not due before the window frees a start (about a minute from now).
    assert!(fetch(s, "lk", Duration::from_secs(30)).await.is_empty());
}

// ---- batches ----

async fn batches_run_their_continuation_once_all_succeeded(kind: Kind) {
    let Some(b) = backend(kind, "batch", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let batch = s
        .enqueue_batch(
            vec![plain("bq", 1), plain("bq", 2), plain("bq", 3)],
            Some(plain("after", 0)),
        )
        .await
        .unwrap();
    assert_eq!(batch.jobs.len(), 3);
    let then = batch.then.clone().unwrap();
    assert_eq!(state(s, &then).await, JobState::Awaiting);
    let progress = s.batch_progress(&batch.id).await.unwrap().unwrap();
    assert_eq!(
        (progress.total, progress.succeeded, progress.failed),
        (3, 0, 0)
    );
    assert!(s
        .enqueue_batch(vec![plain("bq", 1), plain("other", 2)], None)
        .await
        .is_err());

    let got = fetch(s, "bq", Duration::from_secs(30)).await;
    assert_eq!(got.len(), 3);
    finish(s, &got[0], Outcome::Succeeded, None).await;
    finish(
        s,
        &got[1],
        Outcome::Failed {
            reason: "boom".into(),
        },
        None,
    )
    .await;
    finish(s, &got[2], Outcome::Succeeded, None).await;
    let progress = s.batch_progress(&batch.id).await.unwrap().unwrap();
    assert_eq!((progress.succeeded, progress.failed), (2, 1));
    assert_eq!(
        state(s, &then).await,
        JobState::Awaiting,
        "one member failed"
    );

    assert!(s.requeue(&got[1].id).await.unwrap());
    let again = fetch(s, "bq", Duration::from_secs(30)).await;
    finish(s, &again[0], Outcome::Succeeded, None).await;
    assert!(s
        .batch_progress(&batch.id)
        .await
        .unwrap()
        .unwrap()
        .is_done());
    assert_eq!(state(s, &then).await, JobState::Enqueued);
    assert_eq!(s.stats("after").await.unwrap().enqueued, 1);

    // An empty batch's continuation is enqueued at once.
    let empty = s
        .enqueue_batch(Vec::new(), Some(plain("after", 1)))
        .await
        .unwrap();
    assert_eq!(state(s, &empty.then.unwrap()).await, JobState::Enqueued);
}
