//! The lease conformance suite, on every backend: fencing tokens, renewal, release, and what a
//! lease that runs out means (an orphaned lease when its job never started, a crash when it
//! did; never an attempt).

use jobs::storage::{now_ms, Completion, Lease, LeaseToken, Outcome, Retention};
use jobs::JobState;
use jobs_tests::backends::{backend, Kind};
use jobs_tests::suite::{done, fetch, fetch_when_due, job, queues, states, LEASE};
use std::time::{Duration, Instant};

jobs_tests::on_every_backend!(
    stale_tokens_are_refused,
    a_lease_completed_twice_in_one_call_ends_once,
    an_expired_lease_of_an_unstarted_job_counts_no_attempt,
    an_expired_lease_of_a_started_job_is_a_crash,
    release_puts_back_at_the_front,
    renew_extends_the_lease,
);

async fn stale_tokens_are_refused(kind: Kind) {
    let Some(b) = backend(kind, "fencing", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    s.enqueue(vec![job("q", 1)]).await.unwrap();
    let got = fetch(s, &queues(&["q"]), 1, LEASE).await;
    let real = got[0].lease();
    let stale = Lease {
        id: real.id.clone(),
        token: LeaseToken(real.token.0.wrapping_add(1_000)),
    };
    let c = |lease: &Lease| Completion::new(lease.clone(), now_ms(), Outcome::Succeeded);
    assert_eq!(s.complete(&[c(&stale)]).await.unwrap(), [false]);
    assert_eq!(
        s.renew(std::slice::from_ref(&stale), LEASE).await.unwrap(),
        [false]
    );
    s.release(&[stale]).await.unwrap();
    assert_eq!(
        s.stats("q").await.unwrap().processing,
        1,
        "a stale release is ignored"
    );
    assert_eq!(s.complete(&[c(&real)]).await.unwrap(), [true]);
    assert_eq!(s.complete(&[c(&real)]).await.unwrap(), [false], "only once");
    assert_eq!(s.stats("q").await.unwrap().succeeded_total, 1);
}

async fn a_lease_completed_twice_in_one_call_ends_once(kind: Kind) {
    let Some(b) = backend(kind, "twice", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    s.enqueue(vec![job("q", 1), job("q", 2)]).await.unwrap();
    let got = fetch(s, &queues(&["q"]), 2, LEASE).await;
    let failed = || Outcome::Failed {
        reason: "again".into(),
    };
    let applied = s
        .complete(&[
            done(&got[0], Outcome::Succeeded),
            done(&got[1], Outcome::Succeeded),
            done(&got[0], Outcome::Succeeded),
            done(&got[0], failed()),
        ])
        .await
        .unwrap();
    assert_eq!(
        applied,
        [true, true, false, false],
        "the first of each lease wins"
    );
    let st = s.stats("q").await.unwrap();
    assert_eq!(
        (st.succeeded_total, st.failed_total, st.processing),
        (2, 0, 0)
    );
    let info = s.job(&got[0].id).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Succeeded);
    assert_eq!(
        states(&info),
        [
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
}

async fn an_expired_lease_of_an_unstarted_job_counts_no_attempt(kind: Kind) {
    let Some(b) = backend(kind, "reap", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let ids = s.enqueue(vec![job("q", 1)]).await.unwrap();
    let q = queues(&["q"]);
    let first = fetch(s, &q, 1, Duration::from_millis(200)).await;
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = fetch(s, &q, 1, LEASE).await;
    assert_eq!(
        second.len(),
        1,
        "the expired lease is reaped by the next fetch"
    );
    assert_eq!(second[0].id, ids[0]);
    assert_eq!(
        (second[0].attempt, second[0].crashes, second[0].orphaned),
        (1, 0, 1),
        "never started: orphaned, neither an attempt nor a crash"
    );
    assert_ne!(second[0].token, first[0].token);
    assert_eq!(
        s.complete(&[done(&first[0], Outcome::Succeeded)])
            .await
            .unwrap(),
        [false],
        "the first lease holder can no longer complete"
    );
    assert_eq!(
        s.mark_started(&[first[0].lease()]).await.unwrap(),
        [false],
        "nor mark it started"
    );
    let info = s.job(&ids[0]).await.unwrap().unwrap();
    assert!(info.history.iter().any(|c| c
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("lease expired before it started"))));
    assert_eq!((info.attempts, info.crashes, info.orphaned), (0, 0, 1));
    assert_eq!(
        s.complete(&[done(&second[0], Outcome::Succeeded)])
            .await
            .unwrap(),
        [true]
    );
    let info = s.job(&ids[0]).await.unwrap().unwrap();
    assert_eq!((info.attempts, info.crashes, info.orphaned), (1, 0, 1));
}

async fn an_expired_lease_of_a_started_job_is_a_crash(kind: Kind) {
    let Some(b) = backend(kind, "crash", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let ids = s.enqueue(vec![job("q", 1)]).await.unwrap();
    let q = queues(&["q"]);
    let short = Duration::from_millis(200);
    for crash in 1..=2u32 {
        let got = fetch_when_due(s, &q, short).await;
        assert_eq!(got.id, ids[0]);
        assert_eq!((got.attempt, got.crashes), (1, crash - 1));
        assert_eq!(s.mark_started(&[got.lease()]).await.unwrap(), [true]);
        // Marking twice is harmless.
        assert_eq!(s.mark_started(&[got.lease()]).await.unwrap(), [true]);
        tokio::time::sleep(short * 2).await;
        // This fetch reaps the lease: the job waits a pause before it runs again.
        assert!(
            fetch(s, &q, 1, LEASE).await.is_empty(),
            "paused after a crash"
        );
        let info = s.job(&ids[0]).await.unwrap().unwrap();
        assert_eq!(info.state, JobState::Scheduled);
        assert_eq!((info.attempts, info.crashes, info.orphaned), (0, crash, 0));
        let reason = info.last_reason().unwrap_or_default();
        assert!(
            reason.contains("lease expired while it ran")
                && reason.contains(&format!("crash {crash}")),
            "{reason}"
        );
    }
    let started = Instant::now();
    let one = fetch_when_due(s, &q, LEASE).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the second crash pauses the job at least a second, jittered to half of it at least"
    );
    assert_eq!(
        (one.attempt, one.crashes, one.orphaned),
        (1, 2, 0),
        "each marked lease that ran out is a crash, not an attempt"
    );
    // A mark ends with its lease: a release, then a lease that runs out unmarked, is orphaned.
    assert_eq!(s.mark_started(&[one.lease()]).await.unwrap(), [true]);
    s.release(&[one.lease()]).await.unwrap();
    let again = fetch(s, &q, 1, short).await;
    assert_eq!(again[0].id, ids[0]);
    assert_eq!(
        (again[0].crashes, again[0].orphaned),
        (2, 0),
        "a release is no crash"
    );
    tokio::time::sleep(short * 2).await;
    let last = fetch(s, &q, 1, LEASE).await;
    assert_eq!(last[0].id, ids[0]);
    assert_eq!((last[0].crashes, last[0].orphaned), (2, 1));
    // Failed for good, then requeued: the counts start again.
    let failed = Outcome::Failed {
        reason: "gave up".to_owned(),
    };
    assert_eq!(s.complete(&[done(&last[0], failed)]).await.unwrap(), [true]);
    assert!(s.requeue(&ids[0]).await.unwrap());
    let fresh = fetch(s, &q, 1, LEASE).await;
    assert_eq!(fresh[0].id, ids[0]);
    assert_eq!(
        (fresh[0].attempt, fresh[0].crashes, fresh[0].orphaned),
        (1, 0, 0),
        "a requeued job starts afresh"
    );
}

async fn release_puts_back_at_the_front(kind: Kind) {
    let Some(b) = backend(kind, "release", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let ids = s
        .enqueue(vec![job("q", 1), job("q", 2), job("q", 3)])
        .await
        .unwrap();
    let q = queues(&["q"]);
    let a = fetch(s, &q, 1, LEASE).await;
    assert_eq!(a[0].id, ids[0]);
    s.release(&[a[0].lease()]).await.unwrap();
    let again = fetch(s, &q, 1, LEASE).await;
    assert_eq!(again[0].id, ids[0], "released to the front");
    assert_eq!(again[0].attempt, 1, "a release does not count an attempt");
    assert!(s
        .job(&ids[0])
        .await
        .unwrap()
        .unwrap()
        .history
        .iter()
        .any(|c| c
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("handed back"))));
}

async fn renew_extends_the_lease(kind: Kind) {
    let Some(b) = backend(kind, "renew", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    s.enqueue(vec![job("q", 1)]).await.unwrap();
    let q = queues(&["q"]);
    let lease = Duration::from_secs(2);
    let got = fetch(s, &q, 1, lease).await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        assert_eq!(s.renew(&[got[0].lease()], lease).await.unwrap(), [true]);
    }
    // 2.4 s have passed: without the renewals the lease would have run out.
    assert!(fetch(s, &q, 1, LEASE).await.is_empty());
    assert_eq!(
        s.complete(&[done(&got[0], Outcome::Succeeded)])
            .await
            .unwrap(),
        [true]
    );
}
