//! What the PostgreSQL storage promises beyond the shared suite, with real processes where a
//! process must die: a SIGKILLed worker's jobs are claimable again within about a second,
//! whatever the lease; a worker that hangs with its session open is bounded by its lease and
//! its late completions are refused; enqueue inside the application's transaction exists if
//! and only if it commits, and wakes an idle worker on commit; without a session, workers poll.

use jobs::storage::{Delivery, Monitoring};
use jobs::storage::{FetchRequest, NewJob, Retention};
use jobs::{JobState, PostgresStorage};
use jobs_tests::eventually;
use jobs_tests::jobs_for_tests::sleepy;
use jobs_tests::postgres::TestPostgres;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn spawn_worker(pg: &TestPostgres, lease_ms: u64, concurrency: usize, queue: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_jobs-test-worker"))
        .args([
            pg.url(),
            pg.schema(),
            &lease_ms.to_string(),
            &concurrency.to_string(),
            queue,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .env("JOBS_TEST_KEEP_SUCCEEDED", "100000")
        .spawn()
        .expect("the test worker starts")
}

fn keep_all() -> Retention {
    Retention::default().succeeded(100_000, Duration::from_secs(3600))
}

async fn leased_ids(pg: &TestPostgres, storage: &PostgresStorage) -> Vec<i64> {
    sqlx::query_scalar(&format!("SELECT id FROM \"{}\".leases", pg.schema()))
        .fetch_all(storage.pool())
        .await
        .unwrap()
}

/// A worker process SIGKILLed mid-job with a lease of two minutes: its jobs are leased again by
/// a live worker within seconds (the measured time is printed), not after the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_jobs_are_claimable_again_at_once() {
    let Some(pg) = TestPostgres::start("pg-kill") else {
        return;
    };
    let storage = pg.storage(keep_all());
    let client = jobs::Client::new(storage.clone());
    const N: u64 = 40;
    client
        .enqueue_many((0..N).map(|n| jobs::job!(sleepy(n, 3_000))))
        .await
        .unwrap();
    let lease_ms = 120_000;
    let mut doomed = spawn_worker(&pg, lease_ms, 10, "crash");
    let busy = eventually(Duration::from_secs(30), || async {
        leased_ids(&pg, &storage).await.len() >= 10
    })
    .await;
    assert!(busy, "the doomed worker leased jobs");
    let held = leased_ids(&pg, &storage).await;
    doomed.kill().expect("SIGKILL the worker");
    let killed_at = Instant::now();
    doomed.wait().unwrap();

    // A live worker in this process, idle until the dead worker's jobs come back.
    let survivor = jobs::Worker::builder(storage.clone())
        .queues(["crash"])
        .concurrency(N as usize)
        .lease(Duration::from_millis(lease_ms))
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(survivor.run_until(async {
        let _ = stopped.await;
    }));
    let released = eventually(Duration::from_secs(20), || async {
        let leased = leased_ids(&pg, &storage).await;
        // Every job the dead worker held is either leased again (by the survivor, with a new
        // token) or done; none waits for the two-minute lease.
        let mut back = 0;
        for id in &held {
            let info = storage
                .job(&jobs::JobId::new("crash", u64::try_from(*id).unwrap()))
                .await
                .unwrap()
                .unwrap();
            if info.crashes + info.orphaned > 0
                && (leased.contains(id) || info.state == JobState::Succeeded)
            {
                back += 1;
            }
        }
        back == held.len()
    })
    .await;
    let recovery = killed_at.elapsed();
    assert!(
        released,
        "the dead worker's jobs came back before their lease ran out"
    );
    eprintln!(
        "PostgreSQL instant requeue: the {} jobs a SIGKILLed worker held were leased again \
         {recovery:?} after the kill (lease {lease_ms} ms)",
        held.len()
    );
    assert!(recovery < Duration::from_secs(20));
    let done = eventually(Duration::from_secs(60), || async {
        storage.stats("crash").await.unwrap().succeeded_total == N
    })
    .await;
    assert!(done, "every job succeeded");
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    let st = storage.stats("crash").await.unwrap();
    assert_eq!(
        (st.succeeded_total, st.failed_total, st.processing),
        (N, 0, 0)
    );
}

/// A worker that hangs while connected (SIGSTOP) keeps its session, so its jobs wait for its
/// lease; then a live worker runs them, and the hung worker's completions after SIGCONT are
/// refused: each job counts succeeded once.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_worker_is_bounded_by_its_lease_and_fenced() {
    let Some(pg) = TestPostgres::start("pg-hung") else {
        return;
    };
    let storage = pg.storage(keep_all());
    let client = jobs::Client::new(storage.clone());
    const N: u64 = 10;
    client
        .enqueue_many((0..N).map(|n| jobs::job!(sleepy(n, 1_500))))
        .await
        .unwrap();
    let lease_ms = 3_000;
    let mut hung = spawn_worker(&pg, lease_ms, 10, "crash");
    let busy = eventually(Duration::from_secs(30), || async {
        leased_ids(&pg, &storage).await.len() as u64 == N
    })
    .await;
    assert!(busy, "the worker leased every job");
    let pid = hung.id().to_string();
    let stop = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    stop("-STOP");
    let stopped_at = Instant::now();
    let survivor = jobs::Worker::builder(storage.clone())
        .queues(["crash"])
        .concurrency(10)
        .lease(Duration::from_millis(lease_ms))
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(survivor.run_until(async {
        let _ = rx.await;
    }));
    // While the hung worker's session is open its leases hold: nothing is re-run at once.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        storage.stats("crash").await.unwrap().succeeded_total < N,
        "jobs of a connected worker were taken before its lease ran out"
    );
    let done = eventually(Duration::from_secs(60), || async {
        storage.stats("crash").await.unwrap().succeeded_total == N
    })
    .await;
    eprintln!(
        "hung worker: its jobs were done by another worker {:?} after SIGSTOP (lease {lease_ms} ms)",
        stopped_at.elapsed()
    );
    assert!(done, "the survivor ran the hung worker's jobs");
    assert!(stopped_at.elapsed() >= Duration::from_millis(lease_ms));
    stop("-CONT");
    // The hung worker wakes, finishes its attempts and acknowledges them: refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(hung.stdin.take());
    let _ = hung.wait();
    let _ = tx.send(());
    running.await.unwrap().unwrap();
    let st = storage.stats("crash").await.unwrap();
    assert_eq!(
        (st.succeeded_total, st.failed_total),
        (N, 0),
        "each job counted once"
    );
}

fn job(queue: &str, i: u64) -> NewJob {
    NewJob::new(queue, "n", format!("{{\"i\":{i}}}"))
}

/// A job enqueued in a transaction that rolls back leaves no trace; one enqueued in a
/// transaction that commits exists, and a fetch waiting on its queue returns on the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_enqueue_exists_if_and_only_if_it_commits() {
    let Some(pg) = TestPostgres::start("pg-tx") else {
        return;
    };
    let storage = pg.storage(Retention::default());
    let queues: Vec<Arc<str>> = vec![Arc::from("tx")];

    let mut tx = storage.pool().begin().await.unwrap();
    let ids = storage
        .enqueue_in(&mut tx, vec![job("tx", 1)])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        storage.job(&ids[0]).await.unwrap().is_none(),
        "rolled back: no job"
    );
    assert_eq!(storage.stats("tx").await.unwrap().enqueued, 0);

    // A fetch waits on the queue while a transaction enqueues and, later, commits.
    let waiting = {
        let storage = storage.clone();
        let queues = queues.clone();
        tokio::spawn(async move {
            let req = FetchRequest::new(
                &queues,
                10,
                Duration::from_secs(30),
                Duration::from_secs(10),
            );
            let got = storage.fetch(req).await.unwrap();
            (Instant::now(), got)
        })
    };
    // The session starts with the first fetch; give it time to LISTEN.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tx = storage.pool().begin().await.unwrap();
    let ids = storage
        .enqueue_in(&mut tx, vec![job("tx", 2)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the job is invisible before the commit"
    );
    tx.commit().await.unwrap();
    let committed_at = Instant::now();
    let (woke_at, got) = waiting.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, ids[0]);
    let latency = woke_at.saturating_duration_since(committed_at);
    eprintln!("a waiting fetch returned {latency:?} after the enqueue's commit");
    // The fallback poll is once a second: a wake-up by NOTIFY comes well before it.
    assert!(latency < Duration::from_millis(900), "{latency:?}");
}

/// The client's enqueue in a transaction (`InTransaction`): `enqueue!` and `schedule!` on it,
/// with the client's filters; the jobs and the application's own row commit together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_macros_work_inside_a_transaction() {
    let Some(pg) = TestPostgres::start("pg-tx-macro") else {
        return;
    };
    let storage = pg.storage(Retention::default());
    let client = jobs::Client::new(storage.clone());
    let table = format!("\"{}\".orders", pg.schema());
    sqlx::query(&format!(
        "CREATE TABLE {table} (id bigserial PRIMARY KEY, total int)"
    ))
    .execute(storage.pool())
    .await
    .unwrap();

    for commit in [false, true] {
        let mut tx = storage.pool().begin().await.unwrap();
        let (order,): (i64,) = sqlx::query_as(&format!(
            "INSERT INTO {table} (total) VALUES (42) RETURNING id"
        ))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let in_tx = jobs::InTransaction::new(&client, &mut tx).unwrap();
        let now = jobs::enqueue!(&in_tx, sleepy(u64::try_from(order).unwrap(), 1))
            .await
            .unwrap();
        let later = jobs::schedule!(&in_tx, sleepy(0, 1), in = Duration::from_secs(60))
            .await
            .unwrap();
        drop(in_tx);
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        let orders: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(storage.pool())
            .await
            .unwrap();
        assert_eq!(orders, i64::from(commit));
        let stored = storage.job(&now).await.unwrap();
        assert_eq!(
            stored.map(|j| j.state),
            commit.then_some(JobState::Enqueued)
        );
        let stored = storage.job(&later).await.unwrap();
        assert_eq!(
            stored.map(|j| j.state),
            commit.then_some(JobState::Scheduled)
        );
    }

    // A client on another storage cannot enqueue in a PostgreSQL transaction.
    let memory = jobs::Client::new(jobs::MemoryStorage::new());
    let mut conn = storage.pool().acquire().await.unwrap();
    let err = jobs::InTransaction::new(&memory, &mut conn).unwrap_err();
    assert!(
        err.is_config() && err.to_string().contains("PostgresStorage"),
        "{err}"
    );
}

/// Without a session (behind PgBouncer in transaction mode), workers find jobs by polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_workers_poll() {
    let Some(pg) = TestPostgres::start("pg-poll") else {
        return;
    };
    let storage = pg
        .storage_builder(Retention::default())
        .listen(false)
        .build()
        .unwrap();
    let queues: Vec<Arc<str>> = vec![Arc::from("poll")];
    let waiting = {
        let storage = storage.clone();
        let queues = queues.clone();
        tokio::spawn(async move {
            let req = FetchRequest::new(
                &queues,
                10,
                Duration::from_secs(30),
                Duration::from_secs(10),
            );
            storage.fetch(req).await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let enqueued_at = Instant::now();
    storage.enqueue(vec![job("poll", 1)]).await.unwrap();
    let got = waiting.await.unwrap();
    let took = enqueued_at.elapsed();
    assert_eq!(got.len(), 1);
    eprintln!("without LISTEN, a waiting fetch found a new job {took:?} after its enqueue");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// A stored job whose arguments no longer decode fails with the reason; the worker goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_arguments_no_longer_decode_fails_and_the_worker_goes_on() {
    let Some(pg) = TestPostgres::start("pg-undecodable") else {
        return;
    };
    let storage = pg.storage(keep_all());
    let client = jobs::Client::new(storage.clone());
    let bad = jobs::enqueue!(&client, sleepy(1, 1)).await.unwrap();
    let good = jobs::enqueue!(&client, sleepy(2, 1)).await.unwrap();
    sqlx::query(&format!(
        "UPDATE \"{}\".jobs SET args = '{{\"n\": \"not a number\"}}' WHERE id = $1",
        pg.schema()
    ))
    .bind(i64::try_from(bad.seq()).unwrap())
    .execute(storage.pool())
    .await
    .unwrap();
    let worker = jobs::Worker::builder(storage.clone())
        .queues(["crash"])
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = rx.await;
    }));
    let ended = eventually(Duration::from_secs(30), || async {
        let b = storage.job(&bad).await.unwrap().unwrap().state;
        let g = storage.job(&good).await.unwrap().unwrap().state;
        b == JobState::Failed && g == JobState::Succeeded
    })
    .await;
    let _ = tx.send(());
    running.await.unwrap().unwrap();
    assert!(ended, "the bad job failed and the good one ran");
    let info = storage.job(&bad).await.unwrap().unwrap();
    let reason = info.last_reason().unwrap_or_default().to_owned();
    assert!(reason.contains("argument"), "{reason}");
}
