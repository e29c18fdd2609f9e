//! `RedisStorage` behind Redis Sentinel (one master, one replica, three sentinels started by the
//! harness): jobs go through the master the sentinels name; a worker follows a failover (the
//! master SIGKILLed mid-drain, the replica promoted) and finishes; with the durable
//! acknowledgement (`replicas_ack(1)`) no acknowledged enqueue is lost; and a storage that finds
//! no sentinel, or no master of its name, fails with an error that says so.
//!
//! The failover tests print their figures (jobs acknowledged and lost, how long after the kill
//! the sentinels named the replica and the worker performed a job again): run with
//! `--nocapture` to see them. To lose writes on purpose, two of them stop the replica (SIGSTOP)
//! for 1.5 s before the master is killed, as `redis_failover.rs` does on a cluster: a plain
//! SIGKILL on one host rarely loses anything, since the kernel still delivers what Redis had
//! written to its replica's socket.

use jobs::storage::{Delivery, Monitoring, NewJob, Retention};
use jobs::{JobId, JobState, RedisStorage, Worker};
use jobs_tests::eventually;
use jobs_tests::sentinel::{TestSentinel, MASTER_NAME};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One deployment at a time: failovers on a small machine slow each other down, and the tests
/// share `DONE`.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Jobs performed by this process (reset by each test).
static DONE: AtomicU64 = AtomicU64::new(0);

const QUEUE: &str = "sentinel";

#[jobs::background_job(name = "sentinel.work")]
async fn work(n: u64) {
    let _ = n;
    tokio::time::sleep(Duration::from_millis(1)).await;
    DONE.fetch_add(1, Ordering::Relaxed);
}

fn jobs(from: u64, count: u64) -> Vec<NewJob> {
    padded_jobs(from, count, "")
}

/// Jobs whose arguments carry `padding` (ignored by the job).
fn padded_jobs(from: u64, count: u64, padding: &str) -> Vec<NewJob> {
    (from..from + count)
        .map(|n| {
            let args = format!("{{\"n\":{n},\"pad\":\"{padding}\"}}");
            NewJob::new(QUEUE, "sentinel.work", args)
        })
        .collect()
}

fn worker(storage: &RedisStorage) -> Worker {
    Worker::builder(storage.clone())
        .queues([QUEUE])
        .concurrency(16)
        .fetch_batch(50)
        .lease(Duration::from_secs(2))
        .run_recurring(false)
        .build()
        .unwrap()
}

/// Whether nothing of the queue waits or runs.
async fn drained(storage: &RedisStorage) -> bool {
    storage
        .stats(QUEUE)
        .await
        .is_ok_and(|s| s.enqueued == 0 && s.scheduled == 0 && s.processing == 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_go_through_the_master_the_sentinels_name() {
    let _one = ONE_AT_A_TIME.lock().await;
    DONE.store(0, Ordering::Relaxed);
    let Some(deployment) = TestSentinel::start("sentinel-basic") else {
        return;
    };
    let storage = deployment
        .storage_builder("sentinel-basic", Retention::default())
        .connect()
        .await
        .unwrap();
    storage.enqueue(jobs(0, 200)).await.unwrap();
    let w = worker(&storage);
    let stop = Arc::new(tokio::sync::Notify::new());
    let running = {
        let stop = stop.clone();
        tokio::spawn(w.run_until(async move { stop.notified().await }))
    };
    assert!(
        eventually(Duration::from_secs(30), || async {
            DONE.load(Ordering::Relaxed) == 200
        })
        .await,
        "the worker performed the jobs"
    );
    // An idle worker waits on the master (BLPOP) and an enqueue wakes it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    storage.enqueue(jobs(200, 1)).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            DONE.load(Ordering::Relaxed) == 201
        })
        .await,
        "the idle worker was woken"
    );
    stop.notify_one();
    running.await.unwrap().unwrap();
    assert_eq!(storage.stats(QUEUE).await.unwrap().succeeded_total, 201);

    // The master named by a URL: its database (and login) apply on the master.
    let in_db = RedisStorage::sentinel_builder(
        deployment.sentinel_urls(),
        &format!("redis://{MASTER_NAME}/3"),
    )
    .prefix(storage.prefix())
    .connect()
    .await
    .unwrap();
    in_db.enqueue(jobs(0, 1)).await.unwrap();
    let master = deployment.master().expect("a master");
    let jobs_key = storage
        .queue_keys(QUEUE)
        .into_iter()
        .find(|k| k.ends_with(":jobs"))
        .unwrap();
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{master}/3"))
        .and_then(|c| c.get_connection())
        .unwrap();
    let in_3: u64 = redis::cmd("HLEN").arg(&jobs_key).query(&mut con).unwrap();
    assert_eq!(in_3, 1, "the job went to database 3");

    // A name the sentinels do not monitor.
    let err = RedisStorage::sentinel_builder(deployment.sentinel_urls(), "nosuchmaster")
        .connect()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("no sentinel knows a master of that name")
            && message.contains("`nosuchmaster`"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_clearly_when_no_sentinel_answers() {
    // Nothing listens on these ports.
    let urls: Vec<String> = (0..2)
        .map(|_| format!("redis://127.0.0.1:{}/", jobs_tests::free_port()))
        .collect();
    let err = RedisStorage::sentinel_builder(&urls, MASTER_NAME)
        .connect()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(err.is_unreachable(), "{message}");
    assert!(
        message.contains("unreachable") && message.contains("Sentinel master `mymaster`"),
        "{message}"
    );
    assert!(message.contains(&urls[1]), "{message}");

    let none: [&str; 0] = [];
    let err = RedisStorage::sentinel_builder(none, MASTER_NAME)
        .build()
        .unwrap_err();
    assert!(err.is_config(), "{err}");
}

/// How the master goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    /// SIGKILL.
    Kill,
    /// SIGKILL, after its replica was stopped (SIGSTOP) for 1.5 s while large jobs were
    /// enqueued as fast as possible: more than the socket buffers between master and replica
    /// hold, so some never reach it (resumed right after the kill).
    KillWithReplicaBehind,
    /// `SENTINEL FAILOVER`: the replica is promoted and the master, still up, demoted.
    SwitchOver,
}

/// What a failover cost.
struct Outcome {
    acknowledged: usize,
    lost: usize,
}

/// Enqueues 2,000 jobs, starts a worker draining them (its own storage, without
/// `replicas_ack`: once the replica is promoted it has no replica of its own, so completions
/// that waited for one would all fail) while two producers keep enqueueing with
/// `replicas_ack`, then takes the master away mid-drain (`fault`). Waits until the worker
/// performs jobs again and the queue is drained, checks that every acknowledged job the
/// promoted replica has ended Succeeded, and counts the acknowledged jobs it does not have.
async fn drain_through_failover(test: &str, replicas_ack: u32, fault: Fault) -> Option<Outcome> {
    let replica_behind = fault == Fault::KillWithReplicaBehind;
    let _one = ONE_AT_A_TIME.lock().await;
    DONE.store(0, Ordering::Relaxed);
    let mut deployment = TestSentinel::start(test)?;
    let (master, replica) = (deployment.data_ports()[0], deployment.data_ports()[1]);
    let retention = Retention::default().succeeded(1_000_000, Duration::from_secs(3600));
    let enqueuer = deployment
        .storage_builder(test, retention)
        .replicas_ack(replicas_ack)
        .replicas_ack_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let drainer = RedisStorage::sentinel_builder(deployment.sentinel_urls(), MASTER_NAME)
        .prefix(enqueuer.prefix())
        .retention(retention)
        .build()
        .unwrap();
    // Retried: on a loaded machine the replica may confirm the first, large write late (the
    // jobs of a try that failed are stored all the same, unacknowledged).
    let mut first = Vec::new();
    for _ in 0..5 {
        if let Ok(ids) = enqueuer.enqueue(jobs(0, 2_000)).await {
            first = ids;
            break;
        }
    }
    assert_eq!(first.len(), 2_000, "the first enqueue was acknowledged");
    let acked = Arc::new(Mutex::new(first));
    let stop_producing = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let (storage, acked, stop) = (enqueuer.clone(), acked.clone(), stop_producing.clone());
            tokio::spawn(async move {
                let mut n = 1_000_000 * (p + 1);
                let padding = if replica_behind {
                    "x".repeat(8_000)
                } else {
                    String::new()
                };
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(ids) = storage.enqueue(padded_jobs(n, 20, &padding)).await {
                        acked.lock().unwrap().extend(ids);
                    }
                    n += 20;
                    // Else about 1,000 jobs a second each: some in flight at the kill, few
                    // enough for the drain to stay short.
                    if !replica_behind {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    let stop = Arc::new(tokio::sync::Notify::new());
    let running = {
        let stop = stop.clone();
        tokio::spawn(worker(&drainer).run_until(async move { stop.notified().await }))
    };
    assert!(
        eventually(Duration::from_secs(30), || async {
            DONE.load(Ordering::Relaxed) >= 500
        })
        .await,
        "the worker started"
    );
    if replica_behind {
        deployment.signal(replica, "STOP");
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    let faulted = Instant::now();
    let figures = if fault == Fault::SwitchOver {
        deployment.switch_over();
        let promoted = eventually(Duration::from_secs(30), || async {
            deployment.master() == Some(replica)
        })
        .await;
        assert!(promoted, "the sentinels promoted the replica");
        let promoted_after = faulted.elapsed();
        // The old master, still up, takes writes until the sentinels demote it (seconds
        // later): the storage must leave it as soon as they name another.
        let jobs_key = drainer
            .queue_keys(QUEUE)
            .into_iter()
            .find(|k| k.ends_with(":jobs"))
            .unwrap();
        let on_replica = Arc::new(Mutex::new(
            redis::Client::open(format!("redis://127.0.0.1:{replica}/"))
                .and_then(|c| c.get_connection())
                .unwrap(),
        ));
        let probe = AtomicU64::new(9_000_000);
        let moved = eventually(Duration::from_secs(20), || async {
            let n = probe.fetch_add(1, Ordering::Relaxed);
            let Ok(ids) = drainer.enqueue(jobs(n, 1)).await else {
                return false;
            };
            redis::cmd("HEXISTS")
                .arg(&jobs_key)
                .arg(ids[0].seq())
                .query::<bool>(&mut *on_replica.lock().unwrap())
                .unwrap_or(false)
        })
        .await;
        assert!(moved, "enqueues went to the new master");
        let old_still_master = deployment
            .cli(master, &["ROLE"])
            .is_some_and(|role| role.starts_with("master"));
        stop_producing.store(true, Ordering::Relaxed);
        for p in producers {
            p.await.unwrap();
        }
        format!(
            "promoted_after={promoted_after:.2?} enqueues_on_the_new_master_after={:.2?} \
             (the old master still a master then: {old_still_master})",
            faulted.elapsed()
        )
    } else {
        stop_producing.store(true, Ordering::Relaxed);
        deployment.kill(master);
        if replica_behind {
            deployment.signal(replica, "CONT");
        }
        for p in producers {
            p.await.unwrap();
        }
        // Jobs the worker held at the kill finish within milliseconds; after that, a job
        // performed is one fetched from the promoted replica. A probe enqueues a job every
        // 20 ms meanwhile, in case the worker had drained the queue before the kill.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = DONE.load(Ordering::Relaxed);
        let stop_probing = Arc::new(AtomicBool::new(false));
        let probe = {
            let (storage, stop) = (drainer.clone(), stop_probing.clone());
            tokio::spawn(async move {
                let mut n = 9_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let _ = storage.enqueue(jobs(n, 1)).await;
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let resumed = eventually(Duration::from_secs(60), || async {
            DONE.load(Ordering::Relaxed) > before
        })
        .await;
        let resumed_after = faulted.elapsed();
        stop_probing.store(true, Ordering::Relaxed);
        probe.await.unwrap();
        assert!(resumed, "the worker performed jobs after the failover");
        format!("performed_again_after={resumed_after:.2?} (after the kill)")
    };
    assert_eq!(
        deployment.master(),
        Some(replica),
        "the sentinels promoted the replica"
    );
    let all_done = eventually(Duration::from_secs(60), || drained(&drainer)).await;
    stop.notify_one();
    running.await.unwrap().unwrap();
    assert!(all_done, "the worker drained the queue after the failover");

    let acked: Vec<JobId> = std::mem::take(&mut *acked.lock().unwrap());
    let mut lost = 0;
    for id in &acked {
        match drainer.job(id).await.unwrap() {
            None => lost += 1,
            Some(info) => assert_eq!(info.state, JobState::Succeeded, "{id}"),
        }
    }
    eprintln!(
        "{test}: fault={fault:?} replicas_ack={replicas_ack} acknowledged={} lost={lost} \
         {figures}",
        acked.len()
    );
    if lost > 0 {
        eprintln!("{test}: the deployment's logs:\n{}", deployment.logs(40));
    }
    if fault == Fault::Kill && replicas_ack > 0 {
        // The promoted replica has no replica: durable enqueues fail until the old master
        // comes back as its replica, then go on (to the new master).
        deployment.restart_as_replica(master, replica);
        let durable_again = eventually(Duration::from_secs(20), || async {
            enqueuer.enqueue(jobs(0, 1)).await.is_ok()
        })
        .await;
        assert!(
            durable_again,
            "durable enqueues went on once the old master came back as a replica"
        );
    }
    Some(Outcome {
        acknowledged: acked.len(),
        lost,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replicas_ack_a_worker_drains_through_a_failover_and_no_acknowledged_job_is_lost() {
    let Some(outcome) = drain_through_failover("sentinel-durable", 1, Fault::Kill).await else {
        return;
    };
    assert!(outcome.acknowledged >= 2_000);
    assert_eq!(
        outcome.lost, 0,
        "acknowledged enqueues lost in the failover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replicas_ack_a_worker_drains_through_a_failover() {
    // What survives is what the replica had read: on one host, usually everything (see the
    // figures printed); the worker finishes whatever the promoted replica has.
    let Some(outcome) = drain_through_failover("sentinel-async", 0, Fault::Kill).await else {
        return;
    };
    assert!(outcome.acknowledged >= 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replicas_ack_nothing_acknowledged_is_lost_when_the_replica_fell_behind() {
    let Some(outcome) =
        drain_through_failover("sentinel-durable-behind", 1, Fault::KillWithReplicaBehind).await
    else {
        return;
    };
    assert!(outcome.acknowledged >= 2_000);
    assert_eq!(
        outcome.lost, 0,
        "acknowledged enqueues lost in the failover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replicas_ack_a_failover_loses_what_the_replica_never_read() {
    // The contrast that shows the scenario does lose writes: without `WAIT`, the master
    // acknowledged enqueues its stopped replica never read.
    let Some(outcome) =
        drain_through_failover("sentinel-async-behind", 0, Fault::KillWithReplicaBehind).await
    else {
        return;
    };
    assert!(
        outcome.lost > 0,
        "the stopped replica missed acknowledged enqueues"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replicas_ack_a_switch_over_loses_no_acknowledged_job() {
    // The old master stays up and becomes a replica: the storage must notice (Sentinel closes
    // its clients; a write it would still take answers READONLY) and go to the new one.
    let Some(outcome) = drain_through_failover("sentinel-switch", 1, Fault::SwitchOver).await
    else {
        return;
    };
    assert!(outcome.acknowledged >= 2_000);
    assert_eq!(
        outcome.lost, 0,
        "acknowledged enqueues lost in the switch-over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replicas_ack_a_worker_drains_through_a_switch_over() {
    // The old master takes writes until the storage leaves it (about a second after the
    // sentinels name the new one), and they are gone once it resyncs as a replica: see the
    // figures printed. The worker finishes whatever the new master has.
    let Some(outcome) = drain_through_failover("sentinel-switch-async", 0, Fault::SwitchOver).await
    else {
        return;
    };
    assert!(outcome.acknowledged >= 2_000);
}
