//! Redis-specific behaviour: the cluster-safe key layout, bad data, an unreachable Redis, and a
//! large backlog drained by a worker. Lease groups are in `redis_leases.rs`.

// `job!(noop(n))` reads as a call; clippy sees the one-argument constructor it expands to.
#![allow(clippy::redundant_closure)]

use jobs::storage::{now_ms, Retention};
use jobs::storage::{Delivery, Monitoring};
use jobs::{JobState, Storage};
use jobs_tests::jobs_for_tests::noop;
use jobs_tests::suite::now_request;
use jobs_tests::{cluster_slot, eventually, numbered, until_state, TestRedis};
use redis::Commands;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn every_key_of_a_queue_shares_one_slot() {
    let Some(r) = TestRedis::start("slots") else {
        return;
    };
    let s = r.storage("slots", Retention::default());
    for queue in ["default", "mail", "a:b", "critical"] {
        let keys = s.queue_keys(queue);
        let slot = cluster_slot(&keys[0]);
        for key in &keys {
            assert!(
                key.starts_with(&format!("{{{}:{queue}}}", s.prefix())),
                "{key}"
            );
            assert_eq!(cluster_slot(key), slot, "{key} is in another slot");
        }
    }
    // Exercise every script, then check that every key written lies in its queue's slot and is
    // one of the keys passed to the scripts.
    let id = s
        .enqueue(vec![
            jobs::storage::NewJob::new("mail", "n", "{}".to_owned()),
            jobs::storage::NewJob::new("other", "n", "{}".to_owned()).run_at_ms(now_ms() + 60_000),
        ])
        .await
        .unwrap();
    let q: Vec<Arc<str>> = vec![Arc::from("mail")];
    let got = s.fetch(now_request(&q, 1)).await.unwrap();
    s.renew(&[got[0].lease()], Duration::from_secs(30))
        .await
        .unwrap();
    s.complete(&[jobs::storage::Completion::new(
        got[0].lease(),
        now_ms(),
        jobs::storage::Outcome::Failed { reason: "x".into() },
    )])
    .await
    .unwrap();
    s.requeue(&id[0]).await.unwrap();
    s.delete(&id[0]).await.unwrap();
    s.heartbeat("w", Duration::from_secs(5)).await.unwrap();
    let mut raw = r.raw();
    let written: Vec<String> = raw.keys(format!("*{}*", s.prefix())).unwrap();
    assert!(written.len() > 5, "{written:?}");
    for key in written {
        if key == s.servers_key() || key == s.queues_key() {
            continue;
        }
        let queue = if key.contains(":mail}") {
            "mail"
        } else {
            "other"
        };
        assert!(
            s.queue_keys(queue).contains(&key),
            "{key} is not a declared key"
        );
        assert_eq!(cluster_slot(&key), cluster_slot(&s.queue_keys(queue)[0]));
    }
}

#[tokio::test]
async fn a_malformed_record_fails_that_job_only() {
    let Some(r) = TestRedis::start("malformed") else {
        return;
    };
    let s = r.storage("malformed", Retention::default());
    let ids = s
        .enqueue(vec![
            jobs::storage::NewJob::new("q", "good", "{}".to_owned()),
            jobs::storage::NewJob::new("q", "good", "{}".to_owned()),
            jobs::storage::NewJob::new("q", "good", "{}".to_owned()),
        ])
        .await
        .unwrap();
    let jobs_key = s.queue_keys("q")[2].clone();
    assert!(jobs_key.ends_with(":jobs"));
    let mut raw = r.raw();
    let _: () = raw
        .hset(&jobs_key, ids[0].seq(), "this is not a job record")
        .unwrap();
    // Not even UTF-8.
    let _: () = raw
        .hset(&jobs_key, ids[2].seq(), &[0u8, 0xff, 0xfe, b'|'][..])
        .unwrap();
    let q: Vec<Arc<str>> = vec![Arc::from("q")];
    let got = s
        .fetch(now_request(&q, 10))
        .await
        .expect("a bad record does not fail the fetch");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, ids[1]);
    let failed = s.failed("q", 10).await.unwrap();
    let mut failed_ids: Vec<_> = failed.iter().map(|f| f.id.clone()).collect();
    failed_ids.sort_by_key(jobs::JobId::seq);
    assert_eq!(failed_ids, [ids[0].clone(), ids[2].clone()]);
    for f in &failed {
        let reason = f.last_reason().unwrap();
        assert!(reason.starts_with("malformed job record: "), "{reason}");
    }
    let st = s.stats("q").await.unwrap();
    assert_eq!((st.failed, st.failed_total), (2, 2));
    assert_eq!(
        s.job(&ids[0]).await.unwrap().unwrap().state,
        JobState::Failed
    );
}

#[tokio::test]
async fn enqueue_against_a_dead_port_says_what_is_wrong() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/");
    let s = jobs::RedisStorage::builder(&url).build().unwrap();
    let err = s
        .enqueue(vec![jobs::storage::NewJob::new("q", "n", "{}".to_owned())])
        .await
        .unwrap_err();
    assert!(err.is_storage(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("enqueueing jobs"), "{msg}");
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    let err = jobs::RedisStorage::connect(&url).await.unwrap_err();
    assert!(err.is_storage(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200k_backlog_drains() {
    drain_backlog(200_000).await;
}

/// The full-size check (about a minute in a debug build):
/// `cargo test -p jobs-tests --test redis_backend -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: a 1,000,000-job backlog"]
async fn a_1m_backlog_drains() {
    drain_backlog(1_000_000).await;
}

async fn drain_backlog(n: u64) {
    let Some(r) = TestRedis::start("backlog") else {
        return;
    };
    let storage = r.storage("backlog", Retention::default());
    let client = jobs::Client::new(storage.clone());
    let started = Instant::now();
    for chunk in 0..(n / 50_000) {
        let base = chunk * 50_000;
        client
            .enqueue_many((base..base + 50_000).map(|i| jobs::job!(noop(i))))
            .await
            .unwrap();
    }
    let enqueued_in = started.elapsed();
    assert_eq!(storage.stats("bulk").await.unwrap().enqueued, n);
    let worker = jobs::Worker::builder(storage.clone())
        .queues(["bulk"])
        .concurrency(256)
        .fetch_batch(256)
        .build()
        .unwrap();
    let watch = storage.clone();
    let drain_started = Instant::now();
    worker
        .run_until(async move {
            eventually(Duration::from_secs(600), || async {
                watch.stats("bulk").await.unwrap().succeeded_total >= n
            })
            .await;
        })
        .await
        .unwrap();
    let drained_in = drain_started.elapsed();
    let st = storage.stats("bulk").await.unwrap();
    assert_eq!(st.succeeded_total, n);
    assert_eq!((st.enqueued, st.processing), (0, 0));
    eprintln!(
        "enqueued {n} in {enqueued_in:?} ({:.0}/s), drained in {drained_in:?} ({:.0}/s)",
        n as f64 / enqueued_in.as_secs_f64(),
        n as f64 / drained_in.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_job_is_compact() {
    let Some(r) = TestRedis::start_private("memory", false) else {
        return;
    };
    let used = |raw: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("memory").query(raw).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let mut raw = r.raw();
    let storage = r.storage("memory", Retention::default());
    let client = jobs::Client::new(storage);
    let before = used(&mut raw);
    const N: u64 = 20_000;
    client
        .enqueue_many((0..N).map(|n| jobs::job!(noop(n))))
        .await
        .unwrap();
    let per_job = used(&mut raw).saturating_sub(before) / N;
    eprintln!("{per_job} bytes of Redis memory per pending job");
    // The measurement proper is `examples/redis_memory.rs`; this only catches a regression.
    assert!(per_job < 300, "{per_job} bytes per pending job");
}

/// A worker shutting down gracefully, whose running job outlives the shutdown timeout, cancels
/// it and hands it straight back to its queue on Redis: Enqueued again, no attempt counted,
/// no lease left, so the next worker takes it without waiting for the lease to run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_hands_running_jobs_back_at_once() {
    let Some(r) = TestRedis::start("handback") else {
        return;
    };
    let storage: Arc<dyn Storage> = Arc::new(r.storage("handback", Retention::default()));
    let client = jobs::Client::from_shared(storage.clone());
    let id = jobs::enqueue!(&client, jobs_tests::jobs_for_tests::until_cancelled(1))
        .await
        .unwrap();
    let probe = storage.clone();
    let watched = id.clone();
    jobs::Worker::builder_shared(storage.clone())
        .queues(["cancel"])
        .lease(Duration::from_secs(60))
        .shutdown_timeout(Duration::from_millis(100))
        .run_recurring(false)
        .build()
        .unwrap()
        .run_until(async move {
            assert!(until_state(&*probe, &watched, JobState::Processing).await);
        })
        .await
        .unwrap();
    let job = storage.job(&id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Enqueued, "{:?}", job.history);
    assert_eq!(job.attempts, 0, "a handed-back attempt is not counted");
    assert_eq!(
        job.last_reason(),
        Some("handed back by a worker shutting down")
    );
    let st = storage.stats("cancel").await.unwrap();
    assert_eq!((st.enqueued, st.processing), (1, 0), "no lease left behind");
}

/// A fetch dropped while its lease round runs, or after the round sent its jobs but before the
/// caller took them (a worker stopping mid-fetch), hands the jobs back, and `settle` returns
/// only once it did: nothing stays leased until the lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_fetch_hands_its_jobs_back_before_settle_returns() {
    let Some(r) = TestRedis::start("dropped_fetch") else {
        return;
    };
    let storage = r.storage("dropped_fetch", Retention::default());
    let q: Vec<Arc<str>> = vec![Arc::from("drop")];
    let new = || jobs::storage::NewJob::new("drop", "n", "{}".to_owned());
    let ids = storage.enqueue(vec![new(), new()]).await.unwrap();
    // Dropped at once, while the round runs; then dropped once the round surely ended and its
    // jobs wait, untaken, for the caller.
    for linger in [Duration::ZERO, Duration::from_millis(200)] {
        // One poll starts the round. Its task may finish before that poll returns (this thread
        // can be descheduled in between): then the caller took the jobs, and they are handed
        // back in the ordinary way before trying again.
        let mut tries = 0;
        let fetch = loop {
            tries += 1;
            assert!(tries <= 50, "never caught a fetch in flight");
            let mut fetch = Box::pin(storage.fetch(now_request(&q, 10)));
            let first = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(std::future::Future::poll(fetch.as_mut(), cx))
            })
            .await;
            match first {
                std::task::Poll::Pending => break fetch,
                std::task::Poll::Ready(got) => {
                    let leases: Vec<_> = got.unwrap().iter().map(|j| j.lease()).collect();
                    storage.release(&leases).await.unwrap();
                }
            }
        };
        tokio::time::sleep(linger).await;
        drop(fetch);
        storage.settle().await;
        let st = storage.stats("drop").await.unwrap();
        assert_eq!(
            (st.enqueued, st.processing),
            (2, 0),
            "dropped after {linger:?}: both jobs are back on their queue"
        );
    }
    let job = storage.job(&ids[0]).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Enqueued);
    assert_eq!(job.attempts, 0);
    assert_eq!(
        job.last_reason(),
        Some("handed back by a worker shutting down")
    );
    // And a fetch now gets them.
    let got = storage.fetch(now_request(&q, 10)).await.unwrap();
    assert_eq!(got.len(), 2);
}

/// A job name the Redis backend cannot store (it holds `|`).
#[jobs::background_job(name = "bad|name", queue = "gc")]
async fn bad_name(n: u64) {
    let _ = n;
}

/// A job the Redis backend stores.
#[jobs::background_job(queue = "gc")]
async fn good_name(n: u64) {
    let _ = n;
}

/// Concurrent `enqueue!` calls are coalesced into one storage call (group commit); a job the
/// backend refuses fails only its own caller, and every other job of the batch is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_job_fails_only_its_caller_in_a_coalesced_batch() {
    let Some(r) = TestRedis::start("group-commit") else {
        return;
    };
    let storage: Arc<dyn Storage> = Arc::new(r.storage("group-commit", Retention::default()));
    let client = jobs::Client::from_shared(storage.clone());
    let mut calls = Vec::new();
    for n in 0..40u64 {
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            if n % 10 == 5 {
                jobs::enqueue!(&client, bad_name(n)).await
            } else {
                jobs::enqueue!(&client, good_name(n)).await
            }
        }));
    }
    let mut stored = Vec::new();
    for (n, call) in calls.into_iter().enumerate() {
        match call.await.unwrap() {
            Ok(id) => {
                assert_ne!(n % 10, 5, "the bad job was refused");
                stored.push(id);
            }
            Err(e) => {
                assert_eq!(n % 10, 5, "job {n} failed: {e}");
                assert!(e.is_config(), "{e:?}");
                assert!(e.to_string().contains("bad|name"), "{e}");
            }
        }
    }
    assert_eq!(stored.len(), 36);
    stored.sort();
    stored.dedup();
    assert_eq!(stored.len(), 36, "each job stored once");
    assert_eq!(storage.stats("gc").await.unwrap().enqueued, 36);
}

/// A fetch dropped while its script runs (a worker shutting down mid-fetch) leaves no job
/// leased: what the script leased after its caller went away goes straight back to the queue,
/// long before the 30 s lease would have run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_dropped_mid_flight_leaves_no_job_leased() {
    let Some(r) = TestRedis::start("dropped-fetch") else {
        return;
    };
    let s = r.storage("dropped-fetch", Retention::default());
    let q: Vec<Arc<str>> = vec![Arc::from("q")];
    // Load the fetch script first, as any running worker has.
    let none = s.fetch(now_request(&q, 1)).await.unwrap();
    assert!(none.is_empty());
    let n = 20u64;
    s.enqueue(
        (0..n)
            .map(|i| jobs::storage::NewJob::new("q", "good", format!("{{\"n\":{i}}}")))
            .collect(),
    )
    .await
    .unwrap();
    for _ in 0..2 {
        // Keep Redis busy with a slow script on another connection, so the fetch's request is
        // sent and waits in Redis; then drop the fetch before Redis gets to run it.
        let mut busy = r.raw();
        let slow = std::thread::spawn(move || {
            let _: i64 = redis::cmd("EVAL")
                .arg(
                    "local t0 = redis.call('TIME') \
                     while true do \
                       local t = redis.call('TIME') \
                       if (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 300000 then return 1 end \
                     end",
                )
                .arg(0)
                .query(&mut busy)
                .unwrap();
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let fetch = s.fetch(now_request(&q, 100));
        assert!(
            tokio::time::timeout(Duration::from_millis(30), fetch)
                .await
                .is_err(),
            "the fetch was meant to be dropped while Redis was busy"
        );
        slow.join().unwrap();
        let back = eventually(Duration::from_secs(5), || async {
            let st = s.stats("q").await.unwrap();
            (st.enqueued, st.processing) == (n, 0)
        })
        .await;
        let st = s.stats("q").await.unwrap();
        assert!(
            back,
            "jobs left leased by a dropped fetch: enqueued {} processing {}",
            st.enqueued, st.processing
        );
    }
    // And they are fetched normally afterwards, with no attempt spent.
    let got = s.fetch(now_request(&q, 100)).await.unwrap();
    assert_eq!(got.len(), n as usize);
    assert!(got.iter().all(|j| j.attempt == 1));
}

/// Each storage hands out job numbers from blocks it reserved. If Redis loses its data (here:
/// the counter is deleted) while a process holds such a block, that process's next enqueue
/// notices and moves the counter past its numbers, so a second process is not handed them again.
#[tokio::test]
async fn a_counter_reset_does_not_hand_out_numbers_twice() {
    let Some(r) = TestRedis::start("counter-reset") else {
        return;
    };
    let a = r.storage("counter-reset", Retention::default());
    let b = jobs::RedisStorage::builder(r.url())
        .prefix(a.prefix())
        .build()
        .unwrap();
    let five = || numbered(5);
    let first = a.enqueue(five()).await.unwrap();
    let seq_key = a.queue_keys("q")[0].clone();
    assert!(seq_key.ends_with(":seq"));
    let _: () = r.raw().del(&seq_key).unwrap();
    let second = a.enqueue(five()).await.unwrap();
    let others = b.enqueue(five()).await.unwrap();
    let a_max = first
        .iter()
        .chain(&second)
        .map(jobs::JobId::seq)
        .max()
        .unwrap();
    assert!(
        others.iter().all(|id| id.seq() > a_max),
        "numbers handed out twice: {others:?} after {first:?} and {second:?}"
    );
    // Every job kept its own record.
    for (n, id) in second.iter().enumerate() {
        let info = a.job(id).await.unwrap().unwrap();
        assert_eq!(info.args, format!("{{\"i\":{n}}}"));
    }
}
