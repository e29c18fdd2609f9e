//! An idle PostgreSQL worker is quiet: in a system with nothing to do it sends at most one
//! statement a second in all (its safety poll, heartbeat and report, recurring scheduler and
//! session check), counted by `pg_stat_statements` on a server of the test's own; while another
//! worker's session holds leases on its queues it polls every second, so that worker's jobs
//! come back within about a second of its death.

use jobs::storage::{Completion, Delivery, FetchRequest, Outcome, Retention};
use jobs::{Client, JobState, PostgresStorage, Worker};
use jobs_tests::jobs_for_tests::recorded;
use jobs_tests::private_postgres::PrivatePostgres;
use jobs_tests::until_state;
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::Duration;

async fn storage_on(pg: &PrivatePostgres) -> PostgresStorage {
    let storage = PostgresStorage::builder(&pg.url())
        .schema("jobs_idle")
        .retention(Retention::default())
        .build()
        .unwrap();
    storage.migrate().await.unwrap();
    storage
}

/// Statements executed since the last reset, leaving out the test's own reads and resets.
async fn statements(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
         WHERE query NOT LIKE '%pg_stat_statements%'",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

async fn reset(conn: &mut PgConnection) {
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(conn)
        .await
        .unwrap();
}

/// Calls of the fetch statement since the last reset.
async fn fetches(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
         WHERE query LIKE '%.fetch(%'",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_postgres_worker_stays_quiet() {
    let Some(pg) = PrivatePostgres::start_with(
        "an_idle_postgres_worker_stays_quiet",
        &[("shared_preload_libraries", "pg_stat_statements")],
    ) else {
        return;
    };
    let mut conn = PgConnection::connect(&pg.url()).await.unwrap();
    sqlx::query("CREATE EXTENSION pg_stat_statements")
        .execute(&mut conn)
        .await
        .unwrap();
    let storage = storage_on(&pg).await;
    let client = Client::new(storage.clone());

    // Another worker process (a storage of its own, so a session of its own) holds a lease on
    // the queue, with a lease far longer than the test.
    let other = storage_on(&pg).await;
    let held = jobs::enqueue!(&Client::new(other.clone()), recorded("idle".into(), 1, 0))
        .await
        .unwrap();
    let queues: Vec<Arc<str>> = vec![Arc::from("faults")];
    let leased = other
        .fetch(FetchRequest::new(
            &queues,
            1,
            Duration::from_secs(3600),
            Duration::from_secs(5),
        ))
        .await
        .unwrap();
    assert_eq!(leased.len(), 1, "the other process holds the job");

    let worker = Worker::builder(storage.clone())
        .queues(["faults"])
        .metrics_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // While another session holds a lease here, the idle worker polls every second (its owner
    // may die, and then nothing but a poll brings the job back).
    reset(&mut conn).await;
    let window = Duration::from_secs(5);
    tokio::time::sleep(window).await;
    let polls = fetches(&mut conn).await;
    eprintln!(
        "idle PostgreSQL worker, another session holding a lease: {polls} fetches in {window:?}"
    );
    assert!(
        polls >= 4,
        "the idle worker polled {polls} times in {window:?} while another session held a lease"
    );

    // The other process finishes its job: nothing is held, and the system is quiet.
    let done = other
        .complete(&[Completion::new(
            leased[0].lease(),
            jobs::storage::now_ms(),
            Outcome::Succeeded,
        )])
        .await
        .unwrap();
    assert_eq!(done, [true]);
    assert!(until_state(&storage, &held, JobState::Succeeded).await);
    // A job through the idle worker too, so its session is up and it is idle again after it.
    let id = jobs::enqueue!(&client, recorded("idle".into(), 2, 0))
        .await
        .unwrap();
    assert!(until_state(&storage, &id, JobState::Succeeded).await);
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    reset(&mut conn).await;
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let quiet = statements(&mut conn).await;
    let polls = fetches(&mut conn).await;
    let sent: Vec<(i64, String)> = sqlx::query_as(
        "SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements \
         WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (calls, query) in &sent {
        eprintln!("  {calls} × {query}");
    }
    eprintln!(
        "idle PostgreSQL worker, quiet system: {quiet} statements ({polls} fetches) in {window:?} \
         ({:.2}/s)",
        quiet as f64 / window.as_secs_f64()
    );
    assert!(
        quiet <= i64::try_from(window.as_secs()).unwrap(),
        "an idle worker sent {quiet} statements in {window:?}"
    );
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
