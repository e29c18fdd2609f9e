//! The storage conformance suite: the same tests on every backend, so all keep the semantics of
//! the `Storage` trait (fetching, scheduling, retries, retention, history, servers, waiting).
//! Leases, fencing and crash accounting are in `leases.rs`.

use jobs::storage::{now_ms, FetchRequest, Outcome, Retention};
use jobs::JobState;
use jobs_tests::backends::{backend, Kind};
use jobs_tests::suite::{done, fetch, job, queues, states, LEASE};
use std::time::{Duration, Instant};

jobs_tests::on_every_backend!(
    enqueue_fetch_complete,
    scheduled_jobs_become_due,
    retries_are_persisted,
    failed_jobs_are_kept_requeued_and_deleted,
    retention_trims_succeeded_jobs,
    servers_expire_without_heartbeats,
    idle_fetch_blocks_and_wakes_on_enqueue,
    idle_fetch_wakes_when_a_delayed_job_is_due,
    dropping_a_waiting_fetch_loses_nothing,
    queues_are_taken_in_priority_order,
    a_batch_mixing_now_and_later_keeps_each_id_with_its_job,
    a_large_mixed_batch_keeps_each_id_with_its_job,
    a_fetch_returns_its_jobs_in_queue_order,
);

async fn enqueue_fetch_complete(kind: Kind) {
    let Some(b) = backend(kind, "basic", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let ids = s
        .enqueue(vec![job("q", 1), job("q", 2), job("q", 3)])
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| id.queue() == "q"));
    assert!(ids[0].seq() < ids[1].seq() && ids[1].seq() < ids[2].seq());
    let st = s.stats("q").await.unwrap();
    assert_eq!((st.enqueued, st.processing), (3, 0));
    let info = s.job(&ids[0]).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Enqueued);
    assert_eq!(info.attempts, 0);

    let got = fetch(s, &queues(&["q"]), 10, LEASE).await;
    assert_eq!(got.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(&*got[1].name, "conformance::job");
    assert_eq!(&*got[1].args, r#"{"n":2}"#);
    assert_eq!(got[0].attempt, 1);
    assert!(got[0].enqueued_at_ms > 0);
    let st = s.stats("q").await.unwrap();
    assert_eq!((st.enqueued, st.processing), (0, 3));
    assert_eq!(
        s.job(&ids[0]).await.unwrap().unwrap().state,
        JobState::Processing
    );

    let applied = s
        .complete(
            &got.iter()
                .map(|j| done(j, Outcome::Succeeded))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert_eq!(applied, vec![true; 3]);
    let st = s.stats("q").await.unwrap();
    assert_eq!(
        (st.processing, st.succeeded_total, st.failed_total),
        (0, 3, 0)
    );
    let info = s.job(&ids[2]).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Succeeded);
    assert_eq!(info.attempts, 1);
    assert_eq!(
        states(&info),
        [
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    assert!(s.job(&jobs::JobId::new("q", 999)).await.unwrap().is_none());
}

async fn scheduled_jobs_become_due(kind: Kind) {
    let Some(b) = backend(kind, "scheduled", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let ids = s
        .enqueue(vec![job("q", 1).run_at_ms(now_ms() + 300)])
        .await
        .unwrap();
    let st = s.stats("q").await.unwrap();
    assert_eq!((st.enqueued, st.scheduled), (0, 1));
    let info = s.job(&ids[0]).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Scheduled);
    assert_eq!(states(&info)[0], JobState::Scheduled);
    let q = queues(&["q"]);
    assert!(fetch(s, &q, 1, LEASE).await.is_empty(), "not due yet");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = fetch(s, &q, 1, LEASE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, ids[0]);
    // A job scheduled in the past is ready at once.
    s.enqueue(vec![job("q", 2).run_at_ms(now_ms().saturating_sub(1_000))])
        .await
        .unwrap();
    assert_eq!(fetch(s, &q, 1, LEASE).await.len(), 1);
}

async fn retries_are_persisted(kind: Kind) {
    let Some(b) = backend(kind, "retry", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let ids = s.enqueue(vec![job("q", 1)]).await.unwrap();
    let q = queues(&["q"]);
    let got = fetch(s, &q, 1, LEASE).await;
    let retry = Outcome::Retry {
        at_ms: now_ms() + 200,
        reason: "boom".to_owned(),
    };
    assert_eq!(s.complete(&[done(&got[0], retry)]).await.unwrap(), [true]);
    let info = s.job(&ids[0]).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Scheduled);
    assert_eq!(info.attempts, 1);
    assert_eq!(info.last_reason(), Some("boom"));
    assert_eq!(s.stats("q").await.unwrap().scheduled, 1);
    let again = s
        .fetch(FetchRequest::new(&q, 1, LEASE, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
}

async fn failed_jobs_are_kept_requeued_and_deleted(kind: Kind) {
    let Some(b) = backend(kind, "failed", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let ids = s.enqueue(vec![job("q", 1), job("q", 2)]).await.unwrap();
    let q = queues(&["q"]);
    let got = fetch(s, &q, 2, LEASE).await;
    let fail = Outcome::Failed {
        reason: "bad input".to_owned(),
    };
    s.complete(&[
        done(&got[0], fail.clone()),
        done(&got[1], Outcome::Succeeded),
    ])
    .await
    .unwrap();
    let st = s.stats("q").await.unwrap();
    assert_eq!((st.failed, st.failed_total, st.succeeded_total), (1, 1, 1));
    let failed = s.failed("q", 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, ids[0]);
    assert_eq!(failed[0].state, JobState::Failed);
    assert_eq!(failed[0].last_reason(), Some("bad input"));
    assert!(s.failed("q", 0).await.unwrap().is_empty());

    assert!(
        !s.requeue(&ids[1]).await.unwrap(),
        "a succeeded job is not requeued"
    );
    assert!(s.requeue(&ids[0]).await.unwrap());
    let info = s.job(&ids[0]).await.unwrap().unwrap();
    assert_eq!((info.state, info.attempts), (JobState::Enqueued, 0));
    assert_eq!(info.last_reason(), Some("requeued"));
    assert!(s.failed("q", 10).await.unwrap().is_empty());
    let again = fetch(s, &q, 1, LEASE).await;
    assert_eq!((again[0].id.clone(), again[0].attempt), (ids[0].clone(), 1));
    assert!(
        !s.delete(&ids[0]).await.unwrap(),
        "a processing job is not deleted"
    );
    s.complete(&[done(&again[0], fail)]).await.unwrap();
    assert_eq!(s.stats("q").await.unwrap().failed_total, 2);
    assert!(s.delete(&ids[0]).await.unwrap());
    assert_eq!(
        s.job(&ids[0]).await.unwrap().unwrap().state,
        JobState::Deleted
    );
    assert!(s.failed("q", 10).await.unwrap().is_empty());
    assert_eq!(s.stats("q").await.unwrap().failed, 0);

    // Deleting enqueued and scheduled jobs.
    let more = s
        .enqueue(vec![job("q", 3), job("q", 4).run_at_ms(now_ms() + 60_000)])
        .await
        .unwrap();
    assert!(s.delete(&more[0]).await.unwrap());
    assert!(s.delete(&more[1]).await.unwrap());
    assert!(!s.delete(&more[1]).await.unwrap());
    let st = s.stats("q").await.unwrap();
    assert_eq!((st.enqueued, st.scheduled), (0, 0));
    assert!(fetch(s, &q, 1, LEASE).await.is_empty());
}

async fn retention_trims_succeeded_jobs(kind: Kind) {
    let keep = Retention::default().succeeded(2, Duration::from_secs(3600));
    let Some(b) = backend(kind, "retention", keep) else {
        return;
    };
    let s = &*b.storage;
    let q = queues(&["q"]);
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.extend(s.enqueue(vec![job("q", n)]).await.unwrap());
        let got = fetch(s, &q, 1, LEASE).await;
        s.complete(&[done(&got[0], Outcome::Succeeded)])
            .await
            .unwrap();
    }
    for id in &ids[..3] {
        assert!(s.job(id).await.unwrap().is_none(), "{id} trimmed");
    }
    for id in &ids[3..] {
        assert!(s.job(id).await.unwrap().is_some(), "{id} kept");
    }
    assert_eq!(s.stats("q").await.unwrap().succeeded_total, 5);

    let Some(b) = backend(
        kind,
        "retention-ttl",
        Retention::default().succeeded(100, Duration::ZERO),
    ) else {
        return;
    };
    let s = &*b.storage;
    let id = s.enqueue(vec![job("q", 1)]).await.unwrap();
    let got = fetch(s, &q, 1, LEASE).await;
    s.complete(&[done(&got[0], Outcome::Succeeded)])
        .await
        .unwrap();
    assert!(s.job(&id[0]).await.unwrap().is_none(), "older than the ttl");
}

async fn servers_expire_without_heartbeats(kind: Kind) {
    let Some(b) = backend(kind, "servers", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    s.heartbeat("short", Duration::from_millis(200))
        .await
        .unwrap();
    s.heartbeat("long", Duration::from_secs(60)).await.unwrap();
    let listed = s.servers().await.unwrap();
    assert!(listed.contains(&"short".to_owned()) && listed.contains(&"long".to_owned()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.servers().await.unwrap(), ["long"]);
    s.deregister("long").await.unwrap();
    assert!(s.servers().await.unwrap().is_empty());
}

async fn idle_fetch_blocks_and_wakes_on_enqueue(kind: Kind) {
    let Some(b) = backend(kind, "wake", Retention::default()) else {
        return;
    };
    let s = b.storage.clone();
    let wait = Duration::from_secs(20);
    let fetcher = tokio::spawn({
        let s = s.clone();
        async move {
            let q = queues(&["q"]);
            let started = Instant::now();
            let got = s
                .fetch(FetchRequest::new(&q, 5, LEASE, wait))
                .await
                .unwrap();
            (got, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!fetcher.is_finished(), "an idle fetch waits");
    s.enqueue(vec![job("q", 1)]).await.unwrap();
    let (got, took) = fetcher.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        took < wait,
        "woken by the enqueue, not the timeout ({took:?})"
    );
    eprintln!("idle fetch woke {took:?} after it started (enqueue at ~300 ms)");
}

async fn idle_fetch_wakes_when_a_delayed_job_is_due(kind: Kind) {
    let Some(b) = backend(kind, "wake-delayed", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    // Due 300 ms from now: the first call may take a while to connect (a TLS handshake).
    let due_from = Instant::now();
    s.enqueue(vec![job("q", 1).run_at_ms(now_ms() + 300)])
        .await
        .unwrap();
    let wait = Duration::from_secs(20);
    let q = queues(&["q"]);
    let started = Instant::now();
    let got = s
        .fetch(FetchRequest::new(&q, 5, LEASE, wait))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(got.len(), 1);
    assert!(took < wait, "woken at the due time ({took:?})");
    assert!(
        due_from.elapsed() >= Duration::from_millis(250),
        "not before it is due"
    );
}

async fn dropping_a_waiting_fetch_loses_nothing(kind: Kind) {
    let Some(b) = backend(kind, "drop-wait", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let q = queues(&["q"]);
    for _ in 0..3 {
        let waiting = s.fetch(FetchRequest::new(&q, 5, LEASE, Duration::from_secs(20)));
        assert!(tokio::time::timeout(Duration::from_millis(100), waiting)
            .await
            .is_err());
    }
    let ids = s.enqueue(vec![job("q", 1)]).await.unwrap();
    let got = s
        .fetch(FetchRequest::new(&q, 5, LEASE, Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, ids[0]);
}

async fn queues_are_taken_in_priority_order(kind: Kind) {
    let Some(b) = backend(kind, "priority", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    s.enqueue(vec![job("low", 1), job("low", 2)]).await.unwrap();
    s.enqueue(vec![job("high", 1)]).await.unwrap();
    let q = queues(&["high", "low"]);
    let got = fetch(s, &q, 1, LEASE).await;
    assert_eq!(got[0].id.queue(), "high");
    let got = fetch(s, &q, 5, LEASE).await;
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|j| j.id.queue() == "low"));
    // A mixed batch fills from the higher queue first.
    s.enqueue(vec![job("low", 3), job("high", 2)])
        .await
        .unwrap();
    let got = fetch(s, &q, 5, LEASE).await;
    let order: Vec<&str> = got.iter().map(|j| j.id.queue()).collect();
    assert_eq!(order, ["high", "low"]);
}

/// One enqueue call holding jobs to run now and delayed ones, interleaved: every id names its
/// own job, and each is in the state its due time says.
async fn a_batch_mixing_now_and_later_keeps_each_id_with_its_job(kind: Kind) {
    mixed_batch(kind, "mixed", 5).await;
}

/// The same with a batch large enough for a storage's bulk path (PostgreSQL's from 64 jobs),
/// some of its jobs with headers.
async fn a_large_mixed_batch_keeps_each_id_with_its_job(kind: Kind) {
    mixed_batch(kind, "mixed-large", 150).await;
}

/// Enqueues `n` jobs in one call: odd ones an hour from now, even ones now (the last one
/// due a second ago), every third with a header naming it.
async fn mixed_batch(kind: Kind, name: &str, n: u64) {
    let Some(b) = backend(kind, name, Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let later = now_ms() + 3_600_000;
    let batch = (0..n)
        .map(|i| {
            let mut j = job("q", i);
            if i % 2 == 1 {
                j = j.run_at_ms(later);
            } else if i == n - 1 {
                j = j.run_at_ms(now_ms().saturating_sub(1_000));
            }
            if i % 3 == 0 {
                let mut h = jobs::Headers::new();
                h.insert("n", i.to_string());
                j = j.headers(h);
            }
            j
        })
        .collect();
    let ids = s.enqueue(batch).await.unwrap();
    assert_eq!(ids.len(), usize::try_from(n).unwrap());
    for (i, id) in (0..n).zip(&ids) {
        let info = s.job(id).await.unwrap().unwrap();
        assert_eq!(
            info.args,
            format!("{{\"n\":{i}}}"),
            "id {id} holds another job"
        );
        let want = if i % 2 == 1 {
            JobState::Scheduled
        } else {
            JobState::Enqueued
        };
        assert_eq!(info.state, want, "job {i}");
        let header = (i % 3 == 0).then(|| i.to_string());
        assert_eq!(info.headers.get("n").map(str::to_owned), header, "job {i}");
    }
    let st = s.stats("q").await.unwrap();
    assert_eq!((st.enqueued, st.scheduled), (n.div_ceil(2), n / 2));
    let got = fetch(s, &queues(&["q"]), 1_000, LEASE).await;
    let got: Vec<_> = got.iter().map(|j| j.id.clone()).collect();
    // Enqueued in input order: fetched in the same order.
    let want: Vec<_> = ids.iter().step_by(2).cloned().collect();
    assert_eq!(got, want);
}

/// One fetch of several jobs returns them in queue order, released jobs (back at the front)
/// first, newest release first, then the rest oldest first.
async fn a_fetch_returns_its_jobs_in_queue_order(kind: Kind) {
    let Some(b) = backend(kind, "order", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let ids = s
        .enqueue((0..6).map(|n| job("q", n)).collect())
        .await
        .unwrap();
    let q = queues(&["q"]);
    let first = fetch(s, &q, 2, LEASE).await;
    let leases: Vec<_> = first.iter().map(|j| j.lease()).collect();
    s.release(&leases[..1]).await.unwrap();
    s.release(&leases[1..]).await.unwrap();
    let got: Vec<_> = fetch(s, &q, 10, LEASE)
        .await
        .iter()
        .map(|j| j.id.clone())
        .collect();
    let want = [&ids[1], &ids[0], &ids[2], &ids[3], &ids[4], &ids[5]];
    assert_eq!(got.iter().collect::<Vec<_>>(), want);
}
