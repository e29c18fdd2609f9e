//! Network partitions between a worker and Redis, made by the harness's fault proxy.
//!
//! A worker cut off for longer than its lease: another worker runs its jobs, the partitioned
//! worker's late completions are refused (fenced by the lease token), it carries on once the
//! partition heals, and each job counts succeeded once. A partition shorter than the lease:
//! nothing runs twice. Each is tried with the link stalled, black-holed and refusing
//! connections.

use jobs::filter::{Filter, StateChangeEvent};
use jobs::storage::{Completion, FetchRequest, Outcome};
use jobs::storage::{Delivery, Monitoring};
use jobs::{JobId, JobState, RedisStorage, Worker};
use jobs_tests::fault_proxy::{Fault, FaultProxy};
use jobs_tests::jobs_for_tests::{recorded, runs};
use jobs_tests::{eventually, unique_prefix, TestRedis};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Redis, a fault proxy in front of it, and a key prefix for one test.
struct Setup {
    redis: TestRedis,
    proxy: FaultProxy,
    prefix: String,
}

impl Setup {
    async fn start(test: &str) -> Option<Setup> {
        let redis = TestRedis::start(test)?;
        let proxy = FaultProxy::start(redis.tcp_addr().expect("Redis on TCP")).await;
        Some(Setup {
            redis,
            proxy,
            prefix: unique_prefix(test),
        })
    }

    /// A storage connected straight to Redis.
    fn direct(&self) -> RedisStorage {
        RedisStorage::builder(self.redis.url())
            .prefix(&self.prefix)
            .build()
            .unwrap()
    }

    /// A storage connected through the proxy.
    fn through_proxy(&self) -> RedisStorage {
        RedisStorage::builder(&self.redis.url_through(self.proxy.addr()))
            .prefix(&self.prefix)
            .build()
            .unwrap()
    }
}

/// The state changes a worker's acknowledgements applied (a completion the storage refused is
/// not one of them).
#[derive(Clone, Default)]
struct Applied(Arc<Mutex<Vec<(JobId, JobState)>>>);

impl Filter for Applied {
    fn on_state_change(&self, event: &StateChangeEvent) {
        self.0.lock().unwrap().push((event.id.clone(), event.state));
    }
}

impl Applied {
    /// How many times a completion of `id` applied `Succeeded`.
    fn succeeded(&self, id: &JobId) -> usize {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter(|(i, s)| i == id && *s == JobState::Succeeded)
            .count()
    }
}

/// A worker on `storage` (queue `faults`) running until the returned sender is used or dropped.
fn spawn_worker(
    storage: RedisStorage,
    lease: Duration,
    concurrency: usize,
    applied: Option<Applied>,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<jobs::Result<()>>,
) {
    let mut builder = Worker::builder(storage)
        .queues(["faults"])
        .concurrency(concurrency)
        .fetch_batch(concurrency)
        .lease(lease);
    if let Some(applied) = applied {
        builder = builder.filter(applied);
    }
    let worker = builder.build().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    (stop, run)
}

async fn enqueue(
    storage: &RedisStorage,
    tag: &str,
    ns: std::ops::Range<u64>,
    ms: u64,
) -> Vec<JobId> {
    let client = jobs::Client::new(storage.clone());
    client
        .enqueue_many(ns.map(|n| jobs::job!(recorded(tag.to_owned(), n, ms))))
        .await
        .unwrap()
}

/// Waits until each of `ids` succeeded; false after 30 s.
async fn all_succeeded(storage: &RedisStorage, ids: &[JobId]) -> bool {
    eventually(Duration::from_secs(30), || async {
        for id in ids {
            match storage.job(id).await {
                Ok(Some(info)) if info.state == JobState::Succeeded => {}
                _ => return false,
            }
        }
        true
    })
    .await
}

/// Each of `ids` succeeded once: one `Succeeded` in its history.
async fn succeeded_once(storage: &RedisStorage, ids: &[JobId]) {
    for id in ids {
        let info = storage.job(id).await.unwrap().expect("kept");
        assert_eq!(info.state, JobState::Succeeded, "{id}");
        let succeeded = info
            .history
            .iter()
            .filter(|c| c.state == JobState::Succeeded)
            .count();
        assert_eq!(succeeded, 1, "{id} succeeded once: {:?}", info.history);
    }
}

/// A worker cut off by `fault` for longer than its lease, while it runs four jobs.
async fn cut_off_longer_than_the_lease(fault: Fault, test: &str) {
    let Some(s) = Setup::start(test).await else {
        return;
    };
    let tag = s.prefix.clone();
    let direct = s.direct();
    let lease = Duration::from_secs(1);
    let applied = Applied::default();
    let (_stop_a, _a) = spawn_worker(s.through_proxy(), lease, 4, Some(applied.clone()));
    // Longer than the lease, so they are still running when it has run out.
    let old = enqueue(&direct, &tag, 0..4, 2_500).await;
    let started = eventually(Duration::from_secs(30), || async {
        (0..4).all(|n| runs(&tag, n).len() == 1)
    })
    .await;
    assert!(started, "the worker behind the proxy started the four jobs");
    s.proxy.set(fault);

    // Another worker, on Redis directly, takes them once their lease ran out, and finishes them.
    let (stop_b, b) = spawn_worker(direct.clone(), lease, 4, None);
    assert!(
        all_succeeded(&direct, &old).await,
        "the other worker ran them"
    );
    for n in 0..4 {
        assert_eq!(runs(&tag, n).len(), 2, "job {n} ran on both workers");
    }
    stop_b.send(()).unwrap();
    b.await.unwrap().unwrap();
    // The partitioned worker has long finished them too: its completions are held or failing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.proxy.heal();

    // It carries on: new jobs, which only it can take now.
    let new = enqueue(&direct, &tag, 10..14, 10).await;
    assert!(
        all_succeeded(&direct, &new).await,
        "the healed worker ran new jobs"
    );
    for n in 10..14 {
        assert_eq!(runs(&tag, n).len(), 1, "job {n} ran once");
    }
    // Its acknowledgements go in order: those of the old jobs were answered before the new
    // ones', and refused (a refused completion applies no state change).
    for id in &new {
        assert_eq!(applied.succeeded(id), 1, "{id}");
    }
    for id in &old {
        assert_eq!(
            applied.succeeded(id),
            0,
            "{id}: the late completion was refused"
        );
    }
    succeeded_once(&direct, &old).await;
    succeeded_once(&direct, &new).await;
    let st = direct.stats("faults").await.unwrap();
    assert_eq!(st.succeeded_total, 8, "each job counted once: {st:?}");
    assert_eq!((st.enqueued, st.processing), (0, 0), "{st:?}");
}

/// A worker cut off by `fault` for a second, well within its lease, while it runs jobs and
/// another worker runs the rest: nothing runs twice.
async fn cut_off_within_the_lease(fault: Fault, test: &str) {
    let Some(s) = Setup::start(test).await else {
        return;
    };
    let tag = s.prefix.clone();
    let direct = s.direct();
    let lease = Duration::from_secs(3);
    let (stop_a, a) = spawn_worker(s.through_proxy(), lease, 4, None);
    // The worker holds eight (four running, four prefetched); the other one takes the rest.
    const N: u64 = 16;
    let ids = enqueue(&direct, &tag, 0..N, 1_500).await;
    let started = eventually(Duration::from_secs(30), || async {
        (0..N).filter(|n| !runs(&tag, *n).is_empty()).count() >= 4
    })
    .await;
    assert!(started, "the worker behind the proxy started jobs");
    s.proxy.set(fault);
    let (stop_b, b) = spawn_worker(direct.clone(), lease, 4, None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    s.proxy.heal();
    assert!(all_succeeded(&direct, &ids).await, "every job ran");
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    for n in 0..N {
        assert_eq!(runs(&tag, n).len(), 1, "job {n} ran once");
    }
    succeeded_once(&direct, &ids).await;
    let st = direct.stats("faults").await.unwrap();
    assert_eq!(st.succeeded_total, N, "{st:?}");
    assert_eq!((st.enqueued, st.processing), (0, 0), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_longer_than_the_lease() {
    cut_off_longer_than_the_lease(Fault::Stall, "partition-long-stall").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_longer_than_the_lease() {
    cut_off_longer_than_the_lease(Fault::BlackHole, "partition-long-hole").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_longer_than_the_lease() {
    cut_off_longer_than_the_lease(Fault::Refuse, "partition-long-refuse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_within_the_lease() {
    cut_off_within_the_lease(Fault::Stall, "partition-short-stall").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_within_the_lease() {
    cut_off_within_the_lease(Fault::BlackHole, "partition-short-hole").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_within_the_lease() {
    cut_off_within_the_lease(Fault::Refuse, "partition-short-refuse").await;
}

/// The fencing itself, on the storage: a completion and a renewal sent by a storage cut off
/// past its lease, delivered once the partition heals, are refused after another storage
/// leased the job again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_completion_through_a_healed_partition_is_refused() {
    let Some(s) = Setup::start("partition-fence").await else {
        return;
    };
    let tag = s.prefix.clone();
    let direct = s.direct();
    let cut_off = s.through_proxy();
    let ids = enqueue(&direct, &tag, 0..1, 0).await;
    let queues: Vec<Arc<str>> = vec![Arc::from("faults")];
    let lease = Duration::from_millis(300);
    let mine = cut_off
        .fetch(FetchRequest::new(&queues, 1, lease, Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    let old = mine[0].lease();
    s.proxy.stall();
    // Sent during the partition, delivered after the other storage took the job over.
    let late = {
        let cut_off = cut_off.clone();
        let old = old.clone();
        tokio::spawn(async move {
            let renewed = cut_off.renew(std::slice::from_ref(&old), lease).await;
            let done = Completion::new(old, jobs::storage::now_ms(), Outcome::Succeeded);
            let completed = cut_off.complete(&[done]).await;
            (renewed, completed)
        })
    };
    let theirs = direct
        .fetch(FetchRequest::new(&queues, 1, lease, Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(
        theirs.len(),
        1,
        "the lease ran out: the job was leased again"
    );
    assert_ne!(theirs[0].token, old.token);
    let done = Completion::new(
        theirs[0].lease(),
        jobs::storage::now_ms(),
        Outcome::Succeeded,
    );
    assert_eq!(direct.complete(&[done]).await.unwrap(), [true]);
    s.proxy.heal();
    let (renewed, completed) = late.await.unwrap();
    assert_eq!(renewed.unwrap(), [false], "the late renewal is refused");
    assert_eq!(
        completed.unwrap(),
        [false],
        "the late completion is refused"
    );
    succeeded_once(&direct, &ids).await;
    assert_eq!(direct.stats("faults").await.unwrap().succeeded_total, 1);
}
