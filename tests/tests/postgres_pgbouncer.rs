//! Behind PgBouncer in transaction mode (LISTEN and session state do not survive it), a storage
//! built with `transaction_pooler(true)` enqueues, performs and completes jobs by polling (no faster than
//! once a second when idle), and its fenced completions still hold.

use jobs::storage::{Monitoring, Retention};
use jobs::{Client, JobState, PostgresStorage, Worker};
use jobs_tests::jobs_for_tests::{recorded, runs};
use jobs_tests::pgbouncer::TestPgBouncer;
use jobs_tests::postgres::TestPostgres;
use jobs_tests::{eventually, until_state};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behind_pgbouncer_in_transaction_mode_jobs_run_by_polling() {
    let Some(pg) = TestPostgres::start("pgbouncer") else {
        return;
    };
    let Some(bouncer) = TestPgBouncer::start("pgbouncer", "127.0.0.1", 5432) else {
        return;
    };
    let database = pg.url().rsplit('/').next().unwrap().to_owned();
    let storage = PostgresStorage::builder(&bouncer.url(&database))
        .schema(pg.schema())
        .retention(Retention::default().succeeded(10_000, Duration::from_secs(3600)))
        .transaction_pooler(true)
        .build()
        .unwrap();
    storage
        .migrate()
        .await
        .expect("migrate works through PgBouncer");
    let client = Client::new(storage.clone());
    let tag = "pgbouncer";
    let mut ids = Vec::new();
    for n in 0..50 {
        ids.push(
            jobs::enqueue!(&client, recorded(tag.to_owned(), n, 1))
                .await
                .expect("enqueue works through PgBouncer"),
        );
    }
    let worker = Worker::builder(storage.clone())
        .queues(["faults"])
        .concurrency(4)
        .build()
        .unwrap();
    let worker = tokio::spawn(worker.run_until(std::future::pending()));
    for id in &ids {
        assert!(
            until_state(&storage, id, JobState::Succeeded).await,
            "{id} succeeds"
        );
    }
    // Idle now: a new job is found by the next poll.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let enqueued = Instant::now();
    let id = jobs::enqueue!(&client, recorded(tag.to_owned(), 50, 0))
        .await
        .unwrap();
    assert!(until_state(&storage, &id, JobState::Succeeded).await);
    let took = runs(tag, 50)[0].duration_since(enqueued);
    eprintln!("behind PgBouncer, an idle worker polling took the job after {took:?}");
    let stats = storage.stats("faults").await.unwrap();
    assert_eq!((stats.enqueued, stats.processing, stats.failed), (0, 0, 0));
    assert!(
        eventually(Duration::from_secs(5), || async {
            (0..51).all(|n| runs(tag, n).len() == 1)
        })
        .await,
        "each job ran once"
    );
    worker.abort();
}
