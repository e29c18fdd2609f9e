//! Weighted queues (`queues_weighted`) on every backend: while all queues have work, each one's
//! share of the jobs performed follows its weight; the lightest queue is not starved; once the
//! heavier queues are empty the worker drains the rest.

use jobs::storage::{NewJob, Retention};
use jobs::{background_job, JobContext, Worker};
use jobs_tests::backends::{backend, Kind};
use jobs_tests::eventually;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

jobs_tests::on_every_backend!(shares_follow_the_weights_while_every_queue_has_work);

/// The queue of every job performed, in order, per test key.
static RUNS: Mutex<Option<HashMap<String, Vec<String>>>> = Mutex::new(None);

fn runs(key: &str) -> Vec<String> {
    RUNS.lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(key).cloned())
        .unwrap_or_default()
}

#[background_job(name = "weighted_queues.record")]
async fn record(key: String, ctx: JobContext) {
    RUNS.lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_default()
        .push(ctx.queue().to_owned());
}

const WEIGHTS: [(&str, u32); 3] = [("critical", 6), ("default", 3), ("low", 1)];
/// Jobs per queue: more than the heaviest queue can give in `WINDOW` runs.
const PER_QUEUE: usize = 400;
/// The first runs, during which every queue still has work.
const WINDOW: usize = 300;

async fn shares_follow_the_weights_while_every_queue_has_work(kind: Kind) {
    let Some(b) = backend(kind, "weighted", Retention::default()) else {
        return;
    };
    let key = format!("{kind:?}");
    let mut jobs = Vec::new();
    for (queue, _) in WEIGHTS {
        for _ in 0..PER_QUEUE {
            let args = format!("{{\"key\":\"{key}\"}}");
            jobs.push(NewJob::new(queue, "weighted_queues.record", args));
        }
    }
    b.storage.enqueue(jobs).await.expect("enqueue");

    // One job at a time, one per fetch: every fetch draws a new order.
    let worker = Worker::builder_shared(b.storage.clone())
        .queues_weighted(WEIGHTS)
        .concurrency(1)
        .fetch_batch(1)
        .run_recurring(false)
        .build()
        .expect("a valid worker");
    let total = WEIGHTS.len() * PER_QUEUE;
    let watched = key.clone();
    worker
        .run_until(async move {
            let drained = eventually(Duration::from_secs(120), || async {
                runs(&watched).len() >= total
            })
            .await;
            assert!(drained, "the worker did not drain the three queues");
        })
        .await
        .expect("the worker stops cleanly");

    let runs = runs(&key);
    assert_eq!(runs.len(), total, "every job ran once");
    let window = &runs[..WINDOW];
    let share = |queue: &str| window.iter().filter(|q| *q == queue).count() as f64 / WINDOW as f64;
    // Expected 60 %, 30 % and 10 %; the bounds are about four standard deviations wide, while
    // strict priority would give 100 %, 0 %, 0 %.
    let (critical, default, low) = (share("critical"), share("default"), share("low"));
    assert!((0.47..=0.73).contains(&critical), "critical {critical}");
    assert!((0.18..=0.42).contains(&default), "default {default}");
    assert!((0.03..=0.20).contains(&low), "low {low}");
}
