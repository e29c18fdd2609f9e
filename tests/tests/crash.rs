//! Crash safety with real processes: a worker process killed with SIGKILL mid-job, a storm of
//! such kills and a job that aborts every worker that runs it (both on Redis and PostgreSQL), and Redis itself killed and
//! restarted (AOF, `appendfsync always`) while a worker runs, once and twice mid-drain. Every job
//! completes exactly once in the storage's counts, nothing stays processing, and no worker's
//! death fails a job that did not kill it.

use jobs::storage::{Monitoring, Retention};
use jobs::{JobId, JobState, Storage};
use jobs_tests::jobs_for_tests::{poison_pill, sleepy, storm};
use jobs_tests::postgres::TestPostgres;
use jobs_tests::{eventually, unique_prefix, TestRedis};
use redis::Commands;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn_worker(url: &str, prefix: &str, lease_ms: u64, concurrency: usize, queue: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_jobs-test-worker"))
        .args([
            url,
            prefix,
            &lease_ms.to_string(),
            &concurrency.to_string(),
            queue,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        // The kill storm reads every job back (ignored by the other tests' few jobs).
        .env("JOBS_TEST_KEEP_SUCCEEDED", "100000")
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
    let mut first = spawn_worker(r.url(), &prefix, lease_ms, 20, "crash");
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

    let mut second = spawn_worker(r.url(), &prefix, lease_ms, 20, "crash");
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
    // The jobs running at the kill were marked started: crashes. Those in the buffer were not:
    // orphaned. Neither counts an attempt.
    let mut crashed = 0;
    for id in &orphans {
        let info = storage.job(id).await.unwrap().unwrap();
        assert_eq!(info.attempts, 1, "only the attempt that succeeded counts");
        assert_eq!(info.crashes + info.orphaned, 1, "{info:?}");
        crashed += info.crashes;
        assert!(info.history.iter().any(|c| c
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("lease expired"))));
    }
    // Only jobs that were running can have crashed. (How many were marked by the kill depends
    // on how busy the machine is: `crash_accounting.rs` checks the marks with a pause before
    // each kill.)
    assert!(
        crashed <= 20,
        "at most the jobs running at the kill (the concurrency, 20) crashed: {crashed}"
    );

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

/// A job that aborts its worker process the moment it runs, on a queue of its own. Each worker
/// started dies; the job ends Failed after its crash limit (3) instead of looping forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_pill_that_aborts_its_worker_fails_after_three_crashes() {
    let Some(r) = TestRedis::start("poison") else {
        return;
    };
    let prefix = unique_prefix("poison");
    let storage = jobs::RedisStorage::builder(r.url())
        .prefix(&prefix)
        .build()
        .unwrap();
    poison_pill_fails_after_three_crashes(r.url(), &prefix, storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_pill_that_aborts_its_postgres_worker_fails_after_three_crashes() {
    let Some(pg) = TestPostgres::start("poison") else {
        return;
    };
    let storage = pg.storage(Retention::default());
    poison_pill_fails_after_three_crashes(pg.url(), pg.schema(), storage).await;
}

/// The poison pill on the storage at `url` (`prefix`: the key prefix or schema).
async fn poison_pill_fails_after_three_crashes(
    url: &str,
    prefix: &str,
    storage: impl Storage + Clone,
) {
    let client = jobs::Client::new(storage.clone());
    let id = jobs::enqueue!(&client, poison_pill(1)).await.unwrap();
    let failed = || async { storage.job(&id).await.unwrap().unwrap().state == JobState::Failed };
    let mut workers = 0;
    let mut died = 0;
    while !failed().await {
        assert!(workers < 6, "the poison pill kept killing workers");
        workers += 1;
        let mut worker = spawn_worker(url, prefix, 500, 1, "poison");
        let mut ended = false;
        for _ in 0..1_500 {
            if worker.try_wait().unwrap().is_some() || failed().await {
                ended = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ended, "the worker neither died nor failed the job");
        match worker.try_wait().unwrap() {
            Some(status) => {
                assert!(!status.success(), "the worker aborted");
                died += 1;
            }
            None => {
                worker.kill().unwrap();
                worker.wait().unwrap();
            }
        }
    }
    let info = storage.job(&id).await.unwrap().unwrap();
    eprintln!(
        "poison pill: {workers} workers started, {died} died, then {:?} (crashes {}, orphaned {})",
        info.last_reason(),
        info.crashes,
        info.orphaned
    );
    assert_eq!(info.crashes, 3, "{info:?}");
    // The first worker may die before its start mark, sent with its acknowledgements, reached
    // Redis: then that lease is orphaned, and every later start is marked before the job runs.
    assert!(info.orphaned <= 1, "{info:?}");
    assert_eq!(died, 3 + info.orphaned);
    assert!(info
        .last_reason()
        .is_some_and(|r| r.contains("its worker died 3 times while running it")));
}

/// The operator's kill storm: workers started one after another, each SIGKILLed while it drains,
/// then one left to finish. Jobs have no retries, so a crash or a held job charged as an attempt
/// would fail them: every job must succeed exactly once and none fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_storm_fails_no_job_and_loses_none() {
    let Some(r) = TestRedis::start("storm") else {
        return;
    };
    let prefix = unique_prefix("storm");
    // Every finished job is kept, to read its counts.
    let storage = jobs::RedisStorage::builder(r.url())
        .prefix(&prefix)
        .retention(Retention::default().succeeded(100_000, Duration::from_secs(3600)))
        .build()
        .unwrap();
    kill_storm(r.url(), &prefix, storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_storm_of_postgres_workers_fails_no_job_and_loses_none() {
    let Some(pg) = TestPostgres::start("storm") else {
        return;
    };
    let storage = pg.storage(Retention::default().succeeded(100_000, Duration::from_secs(3600)));
    kill_storm(pg.url(), pg.schema(), storage).await;
}

/// The kill storm on the storage at `url` (`prefix`: the key prefix or schema).
async fn kill_storm(url: &str, prefix: &str, storage: impl Storage + Clone) {
    let client = jobs::Client::new(storage.clone());
    const N: u64 = 5_000;
    const KILLS: usize = 5;
    let ids = client
        .enqueue_many((0..N).map(|n| jobs::job!(storm(n, 30))))
        .await
        .unwrap();
    let lease_ms = 1_000;
    for _ in 0..KILLS {
        let mut worker = spawn_worker(url, prefix, lease_ms, 32, "storm");
        tokio::time::sleep(Duration::from_millis(700)).await;
        worker.kill().expect("SIGKILL the worker");
        worker.wait().unwrap();
    }
    let before = storage.stats("storm").await.unwrap();
    assert!(
        before.succeeded_total < N,
        "the storm ended before the queue was drained: make the jobs longer"
    );
    let mut last = spawn_worker(url, prefix, lease_ms, 32, "storm");
    let drained = eventually(Duration::from_secs(120), || async {
        let st = storage.stats("storm").await.unwrap();
        st.succeeded_total + st.failed_total >= N && st.processing == 0
    })
    .await;
    drop(last.stdin.take());
    assert!(last.wait().unwrap().success());
    assert!(drained, "the last worker drained the queue");
    let st = storage.stats("storm").await.unwrap();
    let (mut crashes, mut orphaned) = (0, 0);
    for id in &ids {
        let info = storage.job(id).await.unwrap().unwrap();
        assert_eq!(
            (info.state, info.attempts),
            (JobState::Succeeded, 1),
            "{info:?}"
        );
        crashes += info.crashes;
        orphaned += info.orphaned;
    }
    eprintln!(
        "kill storm: {N} jobs, {KILLS} kills: succeeded {}, failed {}, crashes {crashes}, \
         orphaned leases {orphaned}",
        st.succeeded_total, st.failed_total
    );
    assert_eq!((st.succeeded_total, st.failed_total), (N, 0));
    assert_eq!(
        (st.enqueued, st.processing, st.scheduled, st.failed),
        (0, 0, 0, 0)
    );
    assert!(
        crashes > 0 && orphaned > 0,
        "the kills hit running and held jobs"
    );
}
