//! Crash safety with real processes: a worker process killed with SIGKILL mid-job, and Redis
//! itself killed and restarted (AOF, `appendfsync always`) while a worker runs, once and twice
//! mid-drain. In each case every job completes exactly once in the storage's counts and nothing
//! stays processing.

use jobs::storage::Retention;
use jobs::{JobId, JobState, Storage};
use jobs_tests::jobs_for_tests::sleepy;
use jobs_tests::{eventually, unique_prefix, TestRedis};
use redis::Commands;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn_worker(url: &str, prefix: &str, lease_ms: u64, concurrency: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_jobs-test-worker"))
        .args([
            url,
            prefix,
            &lease_ms.to_string(),
            &concurrency.to_string(),
            "crash",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the test worker starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_loses_nothing() {
    let Some(r) = TestRedis::start("crash") else {
        return;
    };
    let prefix = unique_prefix("crash");
    let storage = jobs::RedisStorage::builder(r.url())
        .prefix(&prefix)
        .build()
        .unwrap();
    let client = jobs::Client::new(storage.clone());
    const N: u64 = 300;
    client
        .enqueue_many((0..N).map(|n| jobs::job!(sleepy(n, 100))))
        .await
        .unwrap();
    let lease_ms = 1_500;
    let mut first = spawn_worker(r.url(), &prefix, lease_ms, 20);
    let busy = eventually(Duration::from_secs(60), || async {
        let st = storage.stats("crash").await.unwrap();
        st.succeeded_total >= 60 && st.processing > 0
    })
    .await;
    assert!(busy, "the first worker made progress");
    // The jobs in flight at the kill: their leases are orphaned.
    let tokens_key = storage
        .queue_keys("crash")
        .into_iter()
        .find(|k| k.ends_with(":tokens"))
        .unwrap();
    first.kill().expect("SIGKILL the worker");
    let killed_at = Instant::now();
    first.wait().unwrap();
    // The leased jobs, without the pin field `~` that keeps the hash a hash table.
    let held: Vec<String> = r.raw().hkeys(&tokens_key).unwrap();
    let orphans: Vec<u64> = held.iter().filter_map(|f| f.parse().ok()).collect();
    assert!(!orphans.is_empty(), "the worker was killed mid-job");
    let orphans: Vec<JobId> = orphans
        .into_iter()
        .map(|s| JobId::new("crash", s))
        .collect();

    let mut second = spawn_worker(r.url(), &prefix, lease_ms, 20);
    let recovered = eventually(Duration::from_secs(60), || async {
        for id in &orphans {
            let info = storage.job(id).await.unwrap();
            if !matches!(info, Some(i) if i.state == JobState::Succeeded) {
                return false;
            }
        }
        true
    })
    .await;
    let recovery = killed_at.elapsed();
    assert!(recovered, "the orphaned jobs ran again");
    eprintln!(
        "recovery after SIGKILL: the {} jobs in flight at the kill all succeeded {recovery:?} \
         after it (lease {lease_ms} ms, job 100 ms)",
        orphans.len()
    );
    for id in &orphans {
        let info = storage.job(id).await.unwrap().unwrap();
        assert_eq!(info.attempts, 2, "the killed attempt counts");
        assert!(info.history.iter().any(|c| c
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("lease expired"))));
    }

    let all_done = eventually(Duration::from_secs(120), || async {
        storage.stats("crash").await.unwrap().succeeded_total >= N
    })
    .await;
    assert!(all_done, "every job completed");
    // Graceful stop: closing stdin asks the second worker to shut down.
    drop(second.stdin.take());
    assert!(second.wait().unwrap().success());
    let st = storage.stats("crash").await.unwrap();
    assert_eq!(st.succeeded_total, N, "each job counted exactly once");
    assert_eq!((st.enqueued, st.processing, st.scheduled), (0, 0, 0));
    assert_eq!(st.failed_total, 0);
}

/// Drains `N` jobs with an in-process worker while Redis (AOF, `appendfsync always`) is
/// SIGKILLed once the succeeded count passes each of `kill_at`, and restarted a second later:
/// every job succeeds, once, and nothing stays behind.
async fn drain_through_redis_kills(test: &str, kill_at: &[u64]) {
    let Some(mut r) = TestRedis::start_private(test, true) else {
        return;
    };
    const N: u64 = 3_000;
    // Every job is kept, to check each one.
    let keep_all = Retention::default().succeeded(N as usize, Duration::from_secs(3600));
    let storage = r.storage(test, keep_all);
    let client = jobs::Client::new(storage.clone());
    let ids = client
        .enqueue_many((0..N).map(|n| jobs::job!(sleepy(n, 5))))
        .await
        .unwrap();
    let worker = jobs::Worker::builder(storage.clone())
        .queues(["crash"])
        .concurrency(32)
        .lease(Duration::from_secs(10))
        .build()
        .unwrap();
    let watch = storage.clone();
    let run = tokio::spawn(worker.run_until(async move {
        eventually(Duration::from_secs(180), || async {
            watch
                .stats("crash")
                .await
                .is_ok_and(|st| st.succeeded_total >= N && st.processing == 0)
        })
        .await;
    }));
    for &at in kill_at {
        let busy = eventually(Duration::from_secs(60), || async {
            storage
                .stats("crash")
                .await
                .is_ok_and(|st| st.succeeded_total >= at)
        })
        .await;
        assert!(busy, "the worker got past {at} jobs");
        let st = storage.stats("crash").await.unwrap();
        assert!(st.succeeded_total < N, "killed mid-drain: {st:?}");
        r.kill();
        assert!(
            client.stats("crash").await.is_err(),
            "Redis is down: calls fail"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        r.restart();
    }
    run.await.unwrap().unwrap();
    let st = storage.stats("crash").await.unwrap();
    assert_eq!(st.succeeded_total, N, "no job lost or counted twice");
    assert_eq!((st.enqueued, st.processing, st.scheduled), (0, 0, 0));
    assert_eq!(st.failed_total, 0);
    for id in &ids {
        let info = storage.job(id).await.unwrap().expect("kept");
        let succeeded = info
            .history
            .iter()
            .filter(|c| c.state == JobState::Succeeded)
            .count();
        assert_eq!(
            (info.state, succeeded),
            (JobState::Succeeded, 1),
            "{id}: {:?}",
            info.history
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_survive_a_redis_restart() {
    drain_through_redis_kills("restart", &[300]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_twice_mid_drain_loses_nothing() {
    drain_through_redis_kills("restart-twice", &[300, 1_500]).await;
}
