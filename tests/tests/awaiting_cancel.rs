//! Cancelling or deleting an awaiting continuation, on both backends: it ends Deleted at once and
//! stays so when its parent (or batch) ends later, and its own continuations are decided as for
//! any deleted parent.

use jobs::storage::{
    now_ms, Cancellation, Completion, FetchRequest, Finish, NewJob, Outcome, Retention,
};
use jobs::{Client, JobId, JobState, Storage};
use jobs_tests::backends::{backend, Kind};
use std::sync::Arc;
use std::time::Duration;

jobs_tests::on_every_backend!(
    a_cancelled_continuation_never_runs,
    a_deleted_continuation_never_runs,
    a_cancelled_batch_continuation_never_runs,
);

fn plain(queue: &str, n: u64) -> NewJob {
    NewJob::new(queue, "awaiting::plain", format!("{{\"n\":{n}}}"))
}

async fn state(s: &dyn Storage, id: &JobId) -> JobState {
    s.job(id).await.unwrap().expect("job known").state
}

/// Fetches every ready job of `queue` and completes each with `outcome`; returns their ids.
async fn finish_all(s: &dyn Storage, queue: &str, outcome: &Outcome) -> Vec<JobId> {
    let queues = [Arc::<str>::from(queue)];
    let got = s
        .fetch(FetchRequest::new(
            &queues,
            100,
            Duration::from_secs(30),
            Duration::ZERO,
        ))
        .await
        .unwrap();
    let done: Vec<Completion> = got
        .iter()
        .map(|j| Completion::new(j.lease(), now_ms(), outcome.clone()))
        .collect();
    assert!(s.complete(&done).await.unwrap().iter().all(|&ok| ok));
    got.into_iter().map(|j| j.id).collect()
}

async fn a_cancelled_continuation_never_runs(kind: Kind) {
    let Some(b) = backend(kind, "awaiting-cancel", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let client = Client::from_shared(b.storage.clone());
    let parent = s.enqueue(vec![plain("ap", 1)]).await.unwrap().remove(0);
    let child = s
        .continue_with(&parent, plain("ac", 1), Finish::Any)
        .await
        .unwrap()
        .expect("parent known");
    // A continuation of the child: cancelling the child is its parent's deletion.
    let grandchild_on_deleted = s
        .continue_with(&child, plain("ag", 1), Finish::Deleted)
        .await
        .unwrap()
        .unwrap();
    let kept = s
        .continue_with(&parent, plain("ac", 2), Finish::Any)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state(s, &child).await, JobState::Awaiting);

    assert_eq!(client.cancel(&child).await.unwrap(), Cancellation::Deleted);
    let info = s.job(&child).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Deleted);
    assert_eq!(info.last_reason(), Some("cancelled"));
    assert_eq!(
        state(s, &grandchild_on_deleted).await,
        JobState::Enqueued,
        "the cancelled continuation's own on-deletion continuation runs"
    );
    assert_eq!(
        client.cancel(&child).await.unwrap(),
        Cancellation::Finished,
        "cancelled already"
    );

    // The parent ends: the other continuation runs, the cancelled one stays deleted.
    assert_eq!(finish_all(s, "ap", &Outcome::Succeeded).await, [parent]);
    assert_eq!(state(s, &kept).await, JobState::Enqueued);
    assert_eq!(state(s, &child).await, JobState::Deleted);
    assert_eq!(finish_all(s, "ac", &Outcome::Succeeded).await, [kept]);
    assert_eq!(s.stats("ac").await.unwrap().enqueued, 0);
}

async fn a_deleted_continuation_never_runs(kind: Kind) {
    let Some(b) = backend(kind, "awaiting-delete", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let client = Client::from_shared(b.storage.clone());
    let parent = s.enqueue(vec![plain("dp", 1)]).await.unwrap().remove(0);
    let child = s
        .continue_with(&parent, plain("dc", 1), Finish::Success)
        .await
        .unwrap()
        .unwrap();
    assert!(client.delete(&child).await.unwrap());
    let info = s.job(&child).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Deleted);
    assert_eq!(info.last_reason(), Some("deleted"));
    assert!(!client.delete(&child).await.unwrap(), "deleted already");

    finish_all(s, "dp", &Outcome::Succeeded).await;
    assert_eq!(state(s, &child).await, JobState::Deleted);
    assert_eq!(s.stats("dc").await.unwrap().enqueued, 0);
    // Requeued by hand, it runs like any deleted job (without its parent's result).
    assert!(s.requeue(&child).await.unwrap());
    assert_eq!(finish_all(s, "dc", &Outcome::Succeeded).await, [child]);
}

async fn a_cancelled_batch_continuation_never_runs(kind: Kind) {
    let Some(b) = backend(kind, "awaiting-batch", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let batch = s
        .enqueue_batch(vec![plain("bm", 1), plain("bm", 2)], Some(plain("bt", 0)))
        .await
        .unwrap();
    let then = batch.then.clone().unwrap();
    assert_eq!(s.cancel(&then).await.unwrap(), Cancellation::Deleted);
    assert_eq!(finish_all(s, "bm", &Outcome::Succeeded).await.len(), 2);
    assert!(s
        .batch_progress(&batch.id)
        .await
        .unwrap()
        .unwrap()
        .is_done());
    assert_eq!(state(s, &then).await, JobState::Deleted);
    assert_eq!(s.stats("bt").await.unwrap().enqueued, 0);
}
