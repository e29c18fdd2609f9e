//! Crash accounting through real workers, on every backend: a worker that dies (its runtime torn
//! down mid-job, as a killed process stops) charges nothing to the jobs it only held, counts a
//! crash for the jobs it was running, and a job that keeps killing its workers ends Failed after
//! its crash limit. The same with real processes and SIGKILL is in `crash.rs`.

use jobs::storage::{JobInfo, Retention};
use jobs::{Client, JobId, JobState, Storage, Worker, WorkerBuilder};
use jobs_tests::backends::{backend, Kind};
use jobs_tests::eventually;
use jobs_tests::jobs_for_tests::{deadly, first_run_slow, hangs, starts_of};
use std::sync::Arc;
use std::time::Duration;

jobs_tests::on_every_backend!(
    a_dead_workers_held_jobs_are_charged_nothing_and_running_ones_a_crash,
    a_job_that_keeps_killing_its_workers_fails_at_its_crash_limit,
    the_workers_crash_limit_applies_to_jobs_without_one,
);

/// The lease of the workers that die: short, so their jobs come back soon.
const LEASE: Duration = Duration::from_millis(400);

/// A worker on its own runtime, which [`DoomedWorker::kill`] drops with every task on it: the
/// jobs it runs stop at once and nothing is handed back, as when its process is killed.
struct DoomedWorker {
    runtime: tokio::runtime::Runtime,
}

impl DoomedWorker {
    fn start(
        storage: Arc<dyn Storage>,
        configure: impl FnOnce(WorkerBuilder) -> WorkerBuilder,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the worker");
        let worker = configure(
            Worker::builder_shared(storage)
                .queues(["doomed"])
                .lease(LEASE),
        )
        .build()
        .expect("a valid worker");
        runtime.spawn(worker.run_until(std::future::pending()));
        DoomedWorker { runtime }
    }

    fn kill(self) {
        self.runtime.shutdown_background();
    }
}

async fn info(storage: &dyn Storage, id: &JobId) -> JobInfo {
    storage.job(id).await.unwrap().expect("the job is kept")
}

/// Distinct job numbers per backend: the start counts are per process.
fn base(kind: Kind, test: u64) -> u64 {
    (test * Kind::COUNT + kind.index()) * 1_000
}

async fn a_dead_workers_held_jobs_are_charged_nothing_and_running_ones_a_crash(kind: Kind) {
    let Some(b) = backend(kind, "held", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let n0 = base(kind, 1);
    let mut ids = Vec::new();
    for n in n0..n0 + 10 {
        ids.push(
            // Long enough to be running at the kill below; the jobs that first start after it
            // take as long, so the second worker runs them all at once.
            jobs::enqueue!(&client, first_run_slow(n, 5_000))
                .await
                .unwrap(),
        );
    }
    // Two slots run two jobs; a fetch batch of 4 holds up to four more in the buffer.
    let doomed = DoomedWorker::start(b.another_handle(), |w| w.concurrency(2).fetch_batch(4));
    let running = eventually(Duration::from_secs(30), || async {
        (n0..n0 + 10).filter(|&n| starts_of(n) == 1).count() == 2
    })
    .await;
    assert!(running, "the doomed worker started two jobs");
    let held = eventually(Duration::from_secs(30), || async {
        b.storage.stats("doomed").await.unwrap().processing >= 4
    })
    .await;
    assert!(held, "and holds more in its buffer");
    // Its start marks go with its next acknowledgement batch, within milliseconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = b.storage.stats("doomed").await.unwrap().processing;
    doomed.kill();

    let worker = Worker::builder_shared(b.storage.clone())
        .queues(["doomed"])
        .concurrency(10)
        .build()
        .unwrap();
    let watch = b.storage.clone();
    worker
        .run_until(async move {
            let done = eventually(Duration::from_secs(60), || async {
                watch.stats("doomed").await.unwrap().succeeded_total == 10
            })
            .await;
            assert!(done, "every job ran again and succeeded");
        })
        .await
        .unwrap();
    let (mut crashed, mut orphaned) = (0u32, 0u32);
    for (id, n) in ids.iter().zip(n0..) {
        let i = info(&*b.storage, id).await;
        assert_eq!((i.state, i.attempts), (JobState::Succeeded, 1), "{i:?}");
        match (i.crashes, i.orphaned) {
            (1, 0) => {
                crashed += 1;
                assert_eq!(starts_of(n), 2, "a crashed job ran twice");
            }
            (0, 1) => {
                orphaned += 1;
                assert_eq!(starts_of(n), 1, "an orphaned job never started before");
            }
            (0, 0) => assert_eq!(starts_of(n), 1),
            other => panic!("unexpected counts {other:?} of {i:?}"),
        }
    }
    assert_eq!(crashed, 2, "the two running jobs crashed");
    assert_eq!(
        u64::from(crashed + orphaned),
        held,
        "every other held job was orphaned"
    );
    let st = b.storage.stats("doomed").await.unwrap();
    assert_eq!((st.failed_total, st.processing), (0, 0));
}

/// Runs doomed workers on `id` one after another, each killed once the job started under it
/// (and its start mark had time to reach the storage), until the job ends Failed. Returns how
/// many workers ran.
async fn kill_workers_until_failed(
    storage: &dyn Storage,
    another: impl Fn() -> Arc<dyn Storage>,
    id: &JobId,
    n: u64,
    configure: impl Fn(WorkerBuilder) -> WorkerBuilder,
) -> u32 {
    for round in 1..=6 {
        let doomed = DoomedWorker::start(another(), &configure);
        let next = eventually(Duration::from_secs(30), || async {
            starts_of(n) == round || info(storage, id).await.state == JobState::Failed
        })
        .await;
        assert!(next, "round {round}: the job neither started nor failed");
        if info(storage, id).await.state == JobState::Failed {
            doomed.kill();
            return round;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        doomed.kill();
    }
    panic!("the job kept running after 6 crashes of its workers");
}

async fn a_job_that_keeps_killing_its_workers_fails_at_its_crash_limit(kind: Kind) {
    let Some(b) = backend(kind, "poison", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let n = base(kind, 2);
    let id = jobs::enqueue!(&client, deadly(n)).await.unwrap();
    let workers =
        kill_workers_until_failed(&*b.storage, || b.another_handle(), &id, n, |w| w).await;
    let i = info(&*b.storage, &id).await;
    assert_eq!(starts_of(n), 2, "it ran under two workers, then not again");
    assert_eq!(workers, 3, "the third worker failed it without running it");
    assert_eq!((i.attempts, i.crashes, i.orphaned), (1, 2, 0), "{i:?}");
    let reason = i.last_reason().unwrap_or_default();
    assert!(
        reason.contains("its worker died 2 times while running it"),
        "{reason}"
    );
    assert_eq!(b.storage.stats("doomed").await.unwrap().failed, 1);
}

async fn the_workers_crash_limit_applies_to_jobs_without_one(kind: Kind) {
    let Some(b) = backend(kind, "default-limit", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let n = base(kind, 3);
    let id = jobs::enqueue!(&client, hangs(n)).await.unwrap();
    let workers = kill_workers_until_failed(
        &*b.storage,
        || b.another_handle(),
        &id,
        n,
        |w| w.max_crashes(1),
    )
    .await;
    let i = info(&*b.storage, &id).await;
    assert_eq!((starts_of(n), workers), (1, 2));
    assert_eq!((i.state, i.crashes), (JobState::Failed, 1));
    assert!(i
        .last_reason()
        .is_some_and(|r| r.contains("its worker died once while running it")));
}
