//! A process dying inside `continue_with` on Redis, reproduced with raw Redis commands: the
//! continuation is attached to its parent before it is stored, so a crash between the two steps
//! leaves no stored job that nothing would decide, and a decision that comes before the
//! continuation is stored is applied when it is.

use jobs::storage::{now_ms, Completion, FetchRequest, Finish, NewJob, Outcome, Retention};
use jobs::storage::{Delivery, Flows, Monitoring};
use jobs::{JobId, JobState, RedisStorage, Storage};
use jobs_tests::TestRedis;
use redis::Commands;
use std::sync::Arc;
use std::time::Duration;

fn plain(queue: &str, n: u64) -> NewJob {
    NewJob::new(queue, "crash::plain", format!("{{\"n\":{n}}}"))
}

/// The key of `queue` whose name ends in `:<name>`.
fn key(s: &RedisStorage, queue: &str, name: &str) -> String {
    let suffix = format!("}}:{name}");
    s.queue_keys(queue)
        .into_iter()
        .find(|k| k.ends_with(&suffix))
        .unwrap_or_else(|| panic!("queue `{queue}` has a key `{name}`"))
}

/// Fetches every ready job of `queue` and completes each with `outcome` and `result`.
async fn finish_all(s: &dyn Storage, queue: &str, outcome: &Outcome, result: Option<&str>) {
    let queues = [Arc::<str>::from(queue)];
    let got = s
        .fetch(FetchRequest::new(
            &queues,
            1_000,
            Duration::from_secs(30),
            Duration::ZERO,
        ))
        .await
        .unwrap();
    let done: Vec<Completion> = got
        .iter()
        .map(|j| {
            Completion::new(j.lease(), now_ms(), outcome.clone())
                .with_result(result.map(str::to_owned))
        })
        .collect();
    assert!(s.complete(&done).await.unwrap().iter().all(|&ok| ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_attaching_leaves_nothing_behind() {
    let Some(r) = TestRedis::start("crash-attach") else {
        return;
    };
    let s = r.storage("crash-attach", Retention::default());
    let mut raw = r.raw();
    let parent = s.enqueue(vec![plain("p", 1)]).await.unwrap().remove(0);

    // The state a `continue_with` leaves when its process dies after the attach: a number
    // reserved on the child's queue, and the parent naming it as its continuation.
    let child: u64 = raw.incr(key(&s, "c", "seq"), 1).unwrap();
    let _: () = raw
        .hset(
            key(&s, "p", "conts"),
            parent.seq(),
            format!(r#"[["c","{child}","s"]]"#),
        )
        .unwrap();
    let _: () = raw
        .hset(key(&s, "p", "hooks"), parent.seq(), r#"{"c":1}"#)
        .unwrap();
    let child = JobId::new("c", child);
    assert!(s.job(&child).await.unwrap().is_none(), "nothing is stored");

    // The parent ends: its decision finds no continuation and is kept for one that never comes.
    finish_all(&s, "p", &Outcome::Succeeded, Some("7")).await;
    assert!(s.job(&child).await.unwrap().is_none());
    assert_eq!(s.stats("c").await.unwrap().enqueued, 0);
    let awaiting: u64 = raw.scard(key(&s, "c", "awaiting")).unwrap();
    assert_eq!(awaiting, 0);
    let early = key(&s, "c", "early");
    let kept: Vec<String> = raw.zrange(&early, 0, -1).unwrap();
    assert_eq!(kept, [format!("{}|1", child.seq())]);
    let conts: u64 = raw.hlen(key(&s, "p", "conts")).unwrap();
    assert_eq!(conts, 0, "the parent's continuations were settled");

    // A day later the kept decision is dropped by the next decision on that queue.
    let _: () = redis::cmd("ZADD")
        .arg(&early)
        .arg("XX")
        .arg(0)
        .arg(&kept[0])
        .query(&mut raw)
        .unwrap();
    let other = s.enqueue(vec![plain("p", 2)]).await.unwrap().remove(0);
    let real = s
        .continue_with(&other, plain("c", 2), Finish::Success)
        .await
        .unwrap()
        .unwrap();
    finish_all(&s, "p", &Outcome::Succeeded, None).await;
    assert_eq!(
        s.job(&real).await.unwrap().unwrap().state,
        JobState::Enqueued
    );
    let left: u64 = raw.zcard(&early).unwrap();
    assert_eq!(left, 0, "the stale decision is gone");
    let presult: bool = raw.hexists(key(&s, "c", "presult"), child.seq()).unwrap();
    assert!(!presult, "and the parent result kept with it");
}

/// A fresh storage's first continuation on `queue` gets the number after the counter.
fn next_number(raw: &mut redis::Connection, s: &RedisStorage, queue: &str) -> u64 {
    let counter: Option<u64> = raw.get(key(s, queue, "seq")).unwrap();
    counter.unwrap_or(0) + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_that_comes_first_is_applied_when_the_continuation_is_stored() {
    let Some(r) = TestRedis::start("crash-early") else {
        return;
    };
    let s = r.storage("crash-early", Retention::default());
    let mut raw = r.raw();
    let parents = s.enqueue(vec![plain("p", 1), plain("p", 2)]).await.unwrap();
    let early = key(&s, "c", "early");

    // The parent ended (and its decision was made) between the attach and the store.
    let n = next_number(&mut raw, &s, "c");
    let _: () = raw.zadd(&early, format!("{n}|1"), now_ms()).unwrap();
    let _: () = raw.hset(key(&s, "c", "presult"), n, "\"r\"").unwrap();
    let run = s
        .continue_with(&parents[0], plain("c", 1), Finish::Success)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        run.seq(),
        n,
        "the test set the decision for this continuation"
    );
    assert_eq!(
        s.job(&run).await.unwrap().unwrap().state,
        JobState::Enqueued
    );
    assert_eq!(
        s.parent_result(&run).await.unwrap().as_deref(),
        Some("\"r\"")
    );

    let _: () = raw.zadd(&early, format!("{}|0", n + 1), now_ms()).unwrap();
    let dropped = s
        .continue_with(&parents[1], plain("c", 2), Finish::Success)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dropped.seq(), n + 1);
    assert_eq!(
        s.job(&dropped).await.unwrap().unwrap().state,
        JobState::Deleted
    );
    let left: u64 = raw.zcard(&early).unwrap();
    assert_eq!(left, 0, "both decisions were used");

    // The parents' own ends find them decided already: nothing runs twice.
    finish_all(&s, "p", &Outcome::Succeeded, None).await;
    assert_eq!(s.stats("c").await.unwrap().enqueued, 1);
    assert_eq!(
        s.job(&dropped).await.unwrap().unwrap().state,
        JobState::Deleted
    );
}

/// Parents that end while their continuations are being added: each continuation is decided
/// once, none is left awaiting, no decision is left over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuations_added_while_their_parents_end_are_each_decided_once() {
    let Some(r) = TestRedis::start("crash-race") else {
        return;
    };
    let s = Arc::new(r.storage("crash-race", Retention::default()));
    let mut raw = r.raw();
    let parents = s
        .enqueue((0..200).map(|i| plain("p", i)).collect())
        .await
        .unwrap();
    let adder = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut kids = Vec::new();
            for p in &parents {
                kids.push(
                    s.continue_with(p, plain("c", p.seq()), Finish::Success)
                        .await
                        .unwrap()
                        .expect("the parent is kept"),
                );
            }
            kids
        })
    };
    for _ in 0..20 {
        finish_all(&*s, "p", &Outcome::Succeeded, None).await;
        tokio::task::yield_now().await;
    }
    let kids = adder.await.unwrap();
    finish_all(&*s, "p", &Outcome::Succeeded, None).await;
    for kid in &kids {
        assert_eq!(
            s.job(kid).await.unwrap().unwrap().state,
            JobState::Enqueued,
            "{kid}"
        );
    }
    assert_eq!(s.stats("c").await.unwrap().enqueued, 200);
    let early: u64 = raw.zcard(key(&s, "c", "early")).unwrap();
    assert_eq!(early, 0);
}
