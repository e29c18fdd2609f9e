//! PostgreSQL faults, on a server of the test's own ([`PrivatePostgres`]): while it is down an
//! enqueue fails with a clear error and workers back off; once it is back an idle worker takes
//! a new job within a second (the contract; bounded generously here and printed); restarted
//! mid-drain (stopped as in a crash, twice), nothing is lost: every job ends Succeeded.

use jobs::storage::{Monitoring, Retention};
use jobs::{Client, PostgresStorage, Worker};
use jobs_tests::jobs_for_tests::{recorded, runs};
use jobs_tests::private_postgres::PrivatePostgres;
use jobs_tests::{eventually, until_state};
use std::time::{Duration, Instant};

/// The generous bound on resuming; the contract is 1 s.
const BOUND: Duration = Duration::from_secs(3);

async fn storage_on(pg: &PrivatePostgres) -> PostgresStorage {
    let storage = PostgresStorage::builder(&pg.url())
        .schema("jobs_faults")
        .retention(Retention::default().succeeded(10_000, Duration::from_secs(3600)))
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    storage.migrate().await.unwrap();
    storage
}

fn worker_on(
    storage: PostgresStorage,
    concurrency: usize,
) -> tokio::task::JoinHandle<jobs::Result<()>> {
    let worker = Worker::builder(storage)
        .queues(["faults"])
        .concurrency(concurrency)
        .build()
        .unwrap();
    tokio::spawn(worker.run_until(std::future::pending()))
}

/// Enqueues `recorded(tag, n, 0)`, trying again while PostgreSQL still refuses, and returns when
/// the enqueue succeeded.
async fn enqueue_when_back(client: &Client, tag: &str, n: u64) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match jobs::enqueue!(client, recorded(tag.to_owned(), n, 0)).await {
            Ok(_) => return Instant::now(),
            Err(e) if Instant::now() < deadline => {
                eprintln!("enqueue while PostgreSQL comes back: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("PostgreSQL is back, yet the enqueue fails: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_postgres_is_down_enqueue_errors_and_workers_resume_when_it_is_back() {
    let Some(pg) = PrivatePostgres::start("pg_down") else {
        return;
    };
    let storage = storage_on(&pg).await;
    let worker = worker_on(storage.clone(), 2);
    let client = Client::new(storage.clone());
    let tag = "pg_down";

    jobs::enqueue!(&client, recorded(tag.to_owned(), 0, 0))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            !runs(tag, 0).is_empty()
        })
        .await,
        "a job runs while PostgreSQL is up"
    );

    pg.stop();
    let asked = Instant::now();
    let err = jobs::enqueue!(&client, recorded(tag.to_owned(), 1, 0))
        .await
        .expect_err("an enqueue while PostgreSQL is down fails");
    let took = asked.elapsed();
    let text = format!("{err}");
    eprintln!("enqueue while down: {err:#} (after {took:?})");
    assert!(
        err.is_unreachable(),
        "the error says the storage is unreachable: {err:#}"
    );
    assert!(
        text.contains("PostgreSQL"),
        "the error names PostgreSQL: {text}"
    );
    assert!(
        took < Duration::from_secs(10),
        "the error comes without a long wait: {took:?}"
    );

    // Long enough for a doubling backoff to have grown well past a second.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !worker.is_finished(),
        "the worker keeps running while PostgreSQL is down"
    );
    pg.start_again();
    let back = Instant::now();
    let enqueued = enqueue_when_back(&client, tag, 2).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            !runs(tag, 2).is_empty()
        })
        .await,
        "the worker takes jobs again once PostgreSQL is back"
    );
    let started = runs(tag, 2)[0];
    let after_enqueue = started.duration_since(enqueued);
    eprintln!(
        "PostgreSQL back: enqueue accepted after {:?}, the idle worker started the job {after_enqueue:?} after that",
        enqueued.duration_since(back)
    );
    assert!(
        after_enqueue < BOUND,
        "an idle worker takes a new job soon after PostgreSQL is back: {after_enqueue:?}"
    );
    // The job refused while down was never stored.
    assert!(runs(tag, 1).is_empty());
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_mid_drain_postgres_loses_nothing() {
    const N: u64 = 600;
    let Some(pg) = PrivatePostgres::start("pg_restart") else {
        return;
    };
    let storage = storage_on(&pg).await;
    let client = Client::new(storage.clone());
    let tag = "pg_restart";
    let mut ids = Vec::new();
    for n in 0..N {
        ids.push(
            jobs::enqueue!(&client, recorded(tag.to_owned(), n, 5))
                .await
                .unwrap(),
        );
    }
    let worker = worker_on(storage.clone(), 8);
    let ran = |n: u64| (0..N).filter(|&i| !runs(tag, i).is_empty()).count() as u64 >= n;
    for third in [N / 3, 2 * N / 3] {
        assert!(
            eventually(Duration::from_secs(60), || async { ran(third) }).await,
            "the drain reaches {third} jobs"
        );
        pg.stop();
        tokio::time::sleep(Duration::from_millis(500)).await;
        pg.start_again();
    }
    for id in &ids {
        assert!(
            until_state(&storage, id, jobs::JobState::Succeeded).await,
            "job {id} ends Succeeded"
        );
    }
    let stats = storage.stats("faults").await.unwrap();
    assert_eq!(
        (stats.enqueued, stats.processing, stats.failed),
        (0, 0, 0),
        "nothing left behind: {stats:?}"
    );
    let twice = (0..N).filter(|&n| runs(tag, n).len() > 1).count();
    eprintln!("restarted twice mid-drain: {N} of {N} succeeded, {twice} ran more than once");
    worker.abort();
}
