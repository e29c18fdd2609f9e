//! A job defined in another crate of the workspace is found by the worker, when that crate is
//! linked into the binary. This test binary never names the job function: it stores the job by
//! name, as another process would, and only links the library with `use jobs_test_library as _;`.

// Without this line the library is not linked and the worker would fail the job with
// "no handler registered" (checked by hand: the assertion below then fails).
use jobs_test_library as _;

use jobs::storage::NewJob;
use jobs::storage::{Delivery, Monitoring};
use jobs::{JobState, MemoryStorage, Worker};
use std::time::Duration;

#[tokio::test]
async fn a_worker_performs_jobs_defined_in_a_linked_library_crate() {
    assert!(
        jobs::registry::jobs().any(|d| d.name == "library.add"),
        "the library's job is registered"
    );
    let storage = MemoryStorage::new();
    let ids = storage
        .enqueue(vec![NewJob::new(
            "default",
            "library.add",
            r#"{"n":5}"#.to_owned(),
        )])
        .await
        .unwrap();
    let worker = Worker::builder(storage.clone()).build().unwrap();
    let probe = storage.clone();
    let id = ids[0].clone();
    worker
        .run_until(async move {
            for _ in 0..500 {
                let info = probe.job(&id).await.unwrap().unwrap();
                if info.state.is_final() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
    let info = storage.job(&ids[0]).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Succeeded, "{:?}", info.history);
}
