//! Failovers of a local Redis Cluster (3 primaries, 3 replicas, `cluster-node-timeout` 1 s):
//! a worker drains through the SIGKILL of a primary, and acknowledged enqueues survive a
//! failover with the durable acknowledgement (`replicas_ack`), where without it they may not.
//!
//! To lose writes on purpose, the primary's replica is stopped (SIGSTOP) for a while before the
//! primary is killed: the primary goes on acknowledging writes its replica never reads, as it
//! would with a replica that fell behind or a network that stopped delivering. (A plain SIGKILL
//! on one host loses nothing: the kernel still delivers what Redis had written to the socket.)
//!
//! Each test starts a cluster of its own (about 5 s) and waits for a failover (about 2–3 s).

use jobs::storage::{Delivery, Monitoring, NewJob, Retention};
use jobs::{JobId, JobState, RedisStorage, Worker};
use jobs_tests::cluster::TestCluster;
use jobs_tests::eventually;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One failover at a time: three clusters at once on a small machine make every step slow.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Jobs performed by this process.
static DONE: AtomicU64 = AtomicU64::new(0);

#[jobs::background_job(name = "failover.work")]
async fn work(n: u64) {
    let _ = n;
    tokio::time::sleep(Duration::from_millis(1)).await;
    DONE.fetch_add(1, Ordering::Relaxed);
}

/// A queue whose slot the primary on `primary` serves, or (with `avoid`) one it does not.
fn queue_on(
    cluster: &TestCluster,
    prefix: &str,
    primary: Option<u16>,
    avoid: Option<u16>,
) -> String {
    (0..)
        .map(|n| format!("q{n}"))
        .find(|q| {
            let p = cluster.primary_of(&format!("{{{prefix}:{q}}}"));
            primary.is_none_or(|want| p == want) && avoid.is_none_or(|no| p != no)
        })
        .expect("some queue name")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_drains_through_the_failover_of_a_primary() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(mut cluster) = TestCluster::start("failover-drain") else {
        return;
    };
    let storage = cluster
        .storage_builder(
            "failover-drain",
            Retention::default().succeeded(100_000, Duration::from_secs(3600)),
        )
        .build()
        .unwrap();
    let doomed_primary = cluster.primaries()[0];
    let replica = cluster.replica_of(doomed_primary).expect("a replica");
    let doomed = queue_on(&cluster, storage.prefix(), Some(doomed_primary), None);
    let safe = queue_on(&cluster, storage.prefix(), None, Some(doomed_primary));
    let per_queue = 2_000;
    let mut ids: Vec<JobId> = Vec::new();
    for queue in [&doomed, &safe] {
        let jobs = (0..per_queue)
            .map(|n| NewJob::new(queue.as_str(), "failover.work", format!("{{\"n\":{n}}}")))
            .collect();
        ids.extend(storage.enqueue(jobs).await.unwrap());
    }
    let worker = Worker::builder(storage.clone())
        .queues([doomed.as_str(), safe.as_str()])
        .concurrency(16)
        .fetch_batch(50)
        .lease(Duration::from_secs(2))
        .run_recurring(false)
        .build()
        .unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let running = {
        let stop = stop.clone();
        tokio::spawn(worker.run_until(async move { stop.notified().await }))
    };
    assert!(
        eventually(Duration::from_secs(60), || async {
            DONE.load(Ordering::Relaxed) >= 500
        })
        .await,
        "the worker started"
    );
    // A replica that read what its primary wrote (its link can be up while it reads nothing):
    // what it has not read yet when the primary dies is Redis's loss, not the worker's.
    cluster.wait_replicated(doomed_primary, Duration::from_secs(30));
    let at_kill = format!(
        "at the kill: {}; {}",
        cluster.replication_state(doomed_primary),
        cluster.replication_state(replica)
    );
    cluster.kill(doomed_primary);
    cluster.wait_primary(replica, Duration::from_secs(30));

    // Every job ends Succeeded on the promoted replica: the ones whose completion it never saw
    // run again once their lease runs out.
    // What the last check saw, for the message if the worker does not finish.
    let seen = Mutex::new(String::new());
    let all_done = eventually(Duration::from_secs(90), || async {
        let mut done = 0;
        let mut saw = format!("{} performed;", DONE.load(Ordering::Relaxed));
        for queue in [&doomed, &safe] {
            match storage.stats(queue).await {
                Ok(s) => {
                    done += s.succeeded_total;
                    saw += &format!(
                        " {queue}: {} enqueued, {} processing, {} scheduled, {} succeeded;",
                        s.enqueued, s.processing, s.scheduled, s.succeeded_total
                    );
                }
                Err(e) => saw += &format!(" {queue}: {e};"),
            }
        }
        *seen.lock().unwrap() = saw;
        done >= 2 * per_queue
    })
    .await;
    stop.notify_one();
    running.await.unwrap().unwrap();
    assert!(
        all_done,
        "the worker finished both queues after the failover; {at_kill}; after: {}; last seen: \
         {}",
        cluster.replication_state(replica),
        seen.lock().unwrap()
    );
    for id in &ids {
        let info = storage.job(id).await.unwrap().expect("the job is kept");
        assert_eq!(info.state, JobState::Succeeded, "{id}");
    }
}

/// Enqueues on a queue of one primary from four producers, stops its replica for 1.5 s, kills
/// the primary while the replica is stopped, resumes the replica and waits until it took over.
/// Returns how many enqueued jobs were acknowledged, and how many of those the promoted replica
/// does not have.
async fn acknowledged_then_lost(test: &str, replicas_ack: u32) -> Option<(usize, usize)> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = TestCluster::start(test)?;
    let storage: RedisStorage = cluster
        .storage_builder(test, Retention::default())
        .replicas_ack(replicas_ack)
        .replicas_ack_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let primary = cluster.primaries()[0];
    let replica = cluster.replica_of(primary).expect("a replica");
    let queue = queue_on(&cluster, storage.prefix(), Some(primary), None);
    let acked = Arc::new(Mutex::new(Vec::<JobId>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let (storage, queue, acked, stop) =
                (storage.clone(), queue.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let padding = "x".repeat(2_000);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let jobs = (0..100)
                        .map(|i| {
                            let args =
                                format!("{{\"p\":{p},\"n\":{},\"pad\":\"{padding}\"}}", n + i);
                            NewJob::new(queue.as_str(), "failover.work", args)
                        })
                        .collect();
                    n += 100;
                    match storage.enqueue(jobs).await {
                        Ok(ids) => acked.lock().unwrap().extend(ids),
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            })
        })
        .collect();
    // Some acknowledged and replicated first.
    let started = eventually(Duration::from_secs(30), || async {
        acked.lock().unwrap().len() >= 1_000
    })
    .await;
    assert!(
        started,
        "enqueues were acknowledged before the replica stopped"
    );
    cluster.signal(replica, "STOP");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.store(true, Ordering::Relaxed);
    cluster.kill(primary);
    cluster.signal(replica, "CONT");
    for p in producers {
        p.await.unwrap();
    }
    cluster.wait_primary(replica, Duration::from_secs(30));

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let jobs_key = storage
        .queue_keys(&queue)
        .into_iter()
        .find(|k| k.ends_with(":jobs"))
        .unwrap();
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{replica}/"))
        .and_then(|c| c.get_connection())
        .unwrap();
    let kept: HashSet<u64> = redis::cmd("HKEYS")
        .arg(&jobs_key)
        .query::<Vec<u64>>(&mut con)
        .unwrap()
        .into_iter()
        .collect();
    let lost = acked.iter().filter(|id| !kept.contains(&id.seq())).count();
    eprintln!(
        "{test}: replicas_ack={replicas_ack} acknowledged={} lost={lost}",
        acked.len()
    );
    Some((acked.len(), lost))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replicas_ack_no_acknowledged_enqueue_is_lost_in_a_failover() {
    let Some((acked, lost)) = acknowledged_then_lost("failover-durable", 1).await else {
        return;
    };
    assert!(acked > 0, "some enqueues were acknowledged");
    assert_eq!(lost, 0, "acknowledged enqueues lost in the failover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replicas_ack_a_failover_loses_what_the_replica_never_read() {
    // The contrast that shows the scenario does lose writes: without `WAIT`, the primary
    // acknowledged enqueues its stopped replica never read.
    let Some((acked, lost)) = acknowledged_then_lost("failover-async", 0).await else {
        return;
    };
    assert!(acked > 0, "some enqueues were acknowledged");
    assert!(lost > 0, "the stopped replica missed acknowledged enqueues");
}
