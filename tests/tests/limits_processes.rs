//! A concurrency limit holds across worker processes: two `jobs-test-worker` processes with four
//! slots each perform `concurrency = 1` jobs, and no two runs overlap (read from the recorded
//! start and finish of every job's successful attempt).

use jobs::storage::Monitoring;
use jobs::JobState;
use jobs_tests::jobs_for_tests::exclusive;
use jobs_tests::{eventually, unique_prefix, TestRedis};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutex_job_never_overlaps_across_processes() {
    let Some(r) = TestRedis::start("limits-processes") else {
        return;
    };
    let prefix = unique_prefix("limits-processes");
    let storage = jobs::RedisStorage::builder(r.url())
        .prefix(&prefix)
        .build()
        .unwrap();
    let client = jobs::Client::new(storage.clone());
    let ids = client
        .enqueue_many((0..8).map(|n| jobs::job!(exclusive(n, 40))))
        .await
        .unwrap();
    let mut workers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_jobs-test-worker"))
                .args([r.url(), &prefix, "5000", "4", "exclusive"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("the test worker starts")
        })
        .collect();
    let done = eventually(Duration::from_secs(120), || async {
        storage.stats("exclusive").await.unwrap().succeeded_total >= 8
    })
    .await;
    for w in &mut workers {
        drop(w.stdin.take());
    }
    for mut w in workers {
        w.wait().unwrap();
    }
    assert!(done, "all jobs ran");

    // [start, finish) of each job's successful attempt. A slot is freed only when the
    // completion is recorded, so with the limit intact no run starts before the other finished.
    let mut runs = Vec::new();
    for id in &ids {
        let info = storage.job(id).await.unwrap().unwrap();
        assert_eq!(info.state, JobState::Succeeded);
        let h = &info.history;
        let end = h.len() - 1;
        assert_eq!(h[end].state, JobState::Succeeded);
        assert_eq!(h[end - 1].state, JobState::Processing);
        runs.push((h[end - 1].at_ms, h[end].at_ms));
    }
    runs.sort_unstable();
    let overlaps = runs.windows(2).filter(|w| w[1].0 < w[0].1).count();
    assert_eq!(overlaps, 0, "runs overlapped: {runs:?}");
}
