//! The monitoring API on every backend: queues with their counts, latency and pause; jobs by
//! state with cursor paging and filters; a job's detail; bulk actions; history; server
//! reports; paused recurring jobs; batches; and workers that stop fetching a paused queue.

use jobs::monitor::{BulkAction, JobQuery, Monitor, Resolution, ServerReport};
use jobs::recurring::Misfire;
use jobs::storage::{now_ms, Finish, NewJob, Outcome, RecurringEntry, Retention};
use jobs::{JobId, JobState, Worker};
use jobs_tests::backends::{backend, Kind};
use jobs_tests::suite::{done, fetch, job, queues, LEASE};
use jobs_tests::{eventually, until_state};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

jobs_tests::on_every_backend!(
    queues_are_listed_with_counts_latency_and_pause,
    a_paused_queue_is_not_fetched_until_resumed,
    workers_stop_and_resume_within_a_second,
    pages_follow_cursors_and_stay_stable_while_jobs_leave,
    each_state_lists_in_its_order,
    filters_look_at_a_bounded_window_and_say_how_far,
    listing_every_queue_walks_them_by_name,
    a_job_detail_shows_error_parent_continuations_and_batch,
    bulk_actions_act_on_every_match_in_chunks,
    history_counts_completions_per_minute_and_hour,
    servers_report_host_queues_and_jobs,
    recurring_jobs_pause_and_resume,
    a_paused_recurring_job_skips_its_ticks,
    batches_are_listed_with_progress,
    bad_cursors_are_refused_with_a_clear_error,
);

#[jobs::background_job(queue = "monitored")]
async fn monitored(n: u64) {
    let _ = n;
}

fn named(queue: &str, name: &'static str, args: &str) -> NewJob {
    NewJob::new(queue, name, args.to_owned())
}

/// Fails `n` jobs of `queue` (enqueued and fetched here) with reason `why-<i>`.
async fn failed_jobs(s: &dyn jobs::Storage, queue: &str, n: u64) -> Vec<JobId> {
    let ids = s
        .enqueue((0..n).map(|i| job(queue, i)).collect())
        .await
        .unwrap();
    let got = fetch(s, &queues(&[queue]), n as usize, LEASE).await;
    let completions: Vec<_> = got
        .iter()
        .map(|j| {
            done(
                j,
                Outcome::Failed {
                    reason: format!("why-{}", j.id.seq()),
                },
            )
        })
        .collect();
    assert!(s.complete(&completions).await.unwrap().iter().all(|&a| a));
    ids
}

async fn queues_are_listed_with_counts_latency_and_pause(kind: Kind) {
    let Some(b) = backend(kind, "mon_queues", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    s.enqueue((0..3).map(|n| job("a", n)).collect())
        .await
        .unwrap();
    s.enqueue(vec![job("b", 9).run_at_ms(now_ms() + 60_000)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let got = fetch(s, &queues(&["a"]), 1, LEASE).await;
    assert_eq!(got.len(), 1);
    failed_jobs(s, "c", 2).await;

    let all = m.queues().await.unwrap();
    let names: Vec<&str> = all.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let a = &all[0];
    assert_eq!(
        (a.pending.value, a.processing.value, a.scheduled.value),
        (2, 1, 0)
    );
    assert!(a.counts_exact(), "small counts are exact: {a:?}");
    let latency = a.latency_ms.expect("jobs wait on a");
    assert!((30..60_000).contains(&latency), "{latency}");
    assert!(!a.paused);
    assert_eq!((all[1].scheduled.value, all[1].latency_ms), (1, None));
    assert_eq!((all[2].failed.value, all[2].failed_total), (2, 2));

    m.pause("a").await.unwrap();
    assert!(m.queue("a").await.unwrap().paused);
    // A queue paused before it has jobs is listed too.
    m.pause("empty").await.unwrap();
    assert!(m.queue("empty").await.unwrap().paused);
    assert!(s.queue_names().await.unwrap().contains(&"empty".to_owned()));
    m.resume("a").await.unwrap();
    assert!(!m.queue("a").await.unwrap().paused);
    // Unknown queues read as empty, running queues.
    let none = m.queue("never").await.unwrap();
    assert_eq!((none.pending.value, none.paused), (0, false));
}

async fn a_paused_queue_is_not_fetched_until_resumed(kind: Kind) {
    let Some(b) = backend(kind, "mon_pause", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    s.enqueue(vec![job("p", 1), job("q", 2)]).await.unwrap();
    m.pause("p").await.unwrap();
    let got = fetch(s, &queues(&["p", "q"]), 10, LEASE).await;
    assert_eq!(
        got.iter().map(|j| j.id.queue()).collect::<Vec<_>>(),
        ["q"],
        "the paused queue's job stays"
    );
    assert!(fetch(s, &queues(&["p"]), 10, LEASE).await.is_empty());
    assert_eq!(m.queue("p").await.unwrap().pending.value, 1);

    // A fetch waiting on the paused queue wakes when it is resumed.
    let waiter = b.another_handle();
    let wait = tokio::spawn(async move {
        let q = queues(&["p"]);
        let started = Instant::now();
        let req = jobs::storage::FetchRequest::new(&q, 1, LEASE, Duration::from_secs(10));
        let got = waiter.fetch(req).await.unwrap();
        (got.len(), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.resume("p").await.unwrap();
    let (n, took) = wait.await.unwrap();
    assert_eq!(n, 1, "the waiting fetch took the job once resumed");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

async fn workers_stop_and_resume_within_a_second(kind: Kind) {
    let Some(b) = backend(kind, "mon_worker_pause", Retention::default()) else {
        return;
    };
    let storage = b.storage.clone();
    let m = Monitor::from_shared(storage.clone());
    let client = jobs::Client::from_shared(storage.clone());
    let first = jobs::enqueue!(&client, monitored(1)).await.unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let worker = Worker::builder_shared(b.another_handle())
        .queues(["monitored"])
        .build()
        .unwrap();
    let run = tokio::spawn(worker.run_until(async move { stopped.notified().await }));
    assert!(until_state(&*storage, &first, JobState::Succeeded).await);

    m.pause("monitored").await.unwrap();
    // Paused: within a second no worker takes a new job.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let held = jobs::enqueue!(&client, monitored(2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        storage.job(&held).await.unwrap().unwrap().state,
        JobState::Enqueued,
        "a worker fetched from a paused queue"
    );
    // The worker reports itself, with its queue.
    let servers = m.servers().await.unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].queues, ["monitored"]);
    assert_eq!(servers[0].pid, std::process::id());

    let resumed = Instant::now();
    m.resume("monitored").await.unwrap();
    assert!(until_state(&*storage, &held, JobState::Succeeded).await);
    let took = resumed.elapsed();
    stop.notify_one();
    run.await.unwrap().unwrap();
    assert!(
        took < Duration::from_secs(2),
        "an idle worker took {took:?} to take a job of a resumed queue"
    );
}

async fn pages_follow_cursors_and_stay_stable_while_jobs_leave(kind: Kind) {
    let Some(b) = backend(kind, "mon_paging", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    let ids = s
        .enqueue((0..10).map(|n| job("q", n)).collect())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut q = JobQuery::new(JobState::Enqueued).queue("q").limit(3);
    let first = m.jobs(&q).await.unwrap();
    assert_eq!(first.total.value, 10);
    assert_eq!(first.jobs.len(), 3);
    seen.extend(first.jobs.iter().map(|j| j.id.clone()));
    // Two jobs leave from the front between pages: the listing goes on where it was.
    assert_eq!(fetch(s, &queues(&["q"]), 2, LEASE).await.len(), 2);
    q.cursor = first.next.clone();
    loop {
        let page = m.jobs(&q).await.unwrap();
        seen.extend(page.jobs.iter().map(|j| j.id.clone()));
        match page.next {
            Some(next) => q.cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every job once, in queue order");

    // Failed jobs, newest first, across pages; one requeued in between is not listed again.
    let failed = failed_jobs(s, "f", 7).await;
    let mut q = JobQuery::new(JobState::Failed).queue("f").limit(3);
    let page = m.jobs(&q).await.unwrap();
    assert_eq!(page.jobs.len(), 3);
    let listed: BTreeSet<JobId> = page.jobs.iter().map(|j| j.id.clone()).collect();
    assert!(m.requeue(&page.jobs[2].id).await.unwrap());
    let mut all = listed.clone();
    q.cursor = page.next;
    while let Some(c) = q.cursor.take() {
        q.cursor = Some(c);
        let page = m.jobs(&q).await.unwrap();
        for j in &page.jobs {
            assert!(all.insert(j.id.clone()), "{} listed twice", j.id);
        }
        q.cursor = page.next;
    }
    assert_eq!(all, failed.iter().cloned().collect::<BTreeSet<_>>());
}

async fn each_state_lists_in_its_order(kind: Kind) {
    let Some(b) = backend(kind, "mon_states", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    let now = now_ms();
    let later = s
        .enqueue(vec![
            job("s", 1).run_at_ms(now + 30_000),
            job("s", 2).run_at_ms(now + 10_000),
            job("s", 3).run_at_ms(now + 20_000),
        ])
        .await
        .unwrap();
    let page = m
        .jobs(&JobQuery::new(JobState::Scheduled).queue("s"))
        .await
        .unwrap();
    assert_eq!(
        page.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        [later[1].clone(), later[2].clone(), later[0].clone()],
        "soonest first"
    );
    assert!(page.jobs.iter().all(|j| j.state == JobState::Scheduled));

    let ids = s
        .enqueue((0..3).map(|n| job("r", n)).collect())
        .await
        .unwrap();
    let got = fetch(s, &queues(&["r"]), 3, LEASE).await;
    let running = m
        .jobs(&JobQuery::new(JobState::Processing).queue("r"))
        .await
        .unwrap();
    assert_eq!(
        running
            .jobs
            .iter()
            .map(|j| j.id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(running.total.value, 3);
    for j in &got {
        s.complete(&[done(j, Outcome::Succeeded)]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let succeeded = m
        .jobs(&JobQuery::new(JobState::Succeeded).queue("r"))
        .await
        .unwrap();
    assert_eq!(
        succeeded
            .jobs
            .iter()
            .map(|j| j.id.clone())
            .collect::<Vec<_>>(),
        ids.iter().rev().cloned().collect::<Vec<_>>(),
        "newest first"
    );
    assert!(m.delete(&later[0]).await.unwrap());
    let deleted = m
        .jobs(&JobQuery::new(JobState::Deleted).queue("s"))
        .await
        .unwrap();
    assert_eq!(deleted.jobs.len(), 1);
    assert_eq!(deleted.jobs[0].id, later[0]);

    let parent = s.enqueue(vec![job("w", 1)]).await.unwrap().remove(0);
    let child = s
        .continue_with(&parent, job("w", 2), Finish::Success)
        .await
        .unwrap()
        .unwrap();
    let awaiting = m
        .jobs(&JobQuery::new(JobState::Awaiting).queue("w"))
        .await
        .unwrap();
    assert_eq!(
        awaiting
            .jobs
            .iter()
            .map(|j| j.id.clone())
            .collect::<Vec<_>>(),
        [child]
    );
    assert_eq!(awaiting.total.value, 1);
}

async fn filters_look_at_a_bounded_window_and_say_how_far(kind: Kind) {
    let Some(b) = backend(kind, "mon_filters", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    let mut batch: Vec<NewJob> = (0..20)
        .map(|n| {
            named(
                "q",
                "mail.send",
                &format!("{{\"to\":\"user{n}@example.com\"}}"),
            )
        })
        .collect();
    batch.push(named("q", "mail.send", r#"{"to":"needle@example.com"}"#));
    batch.push(named(
        "q",
        "billing.charge",
        r#"{"to":"needle@example.com"}"#,
    ));
    let ids = s.enqueue(batch).await.unwrap();

    let q = JobQuery::new(JobState::Enqueued)
        .queue("q")
        .search("needle@");
    let page = m.jobs(&q).await.unwrap();
    assert_eq!(
        page.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        [ids[20].clone(), ids[21].clone()]
    );
    assert_eq!(page.examined, 22);
    assert!(page.next.is_none());

    let by_name = m.jobs(&q.clone().name("billing.charge")).await.unwrap();
    assert_eq!(by_name.jobs.len(), 1);
    assert_eq!(by_name.jobs[0].name, "billing.charge");

    // A window of 8: the first call finds nothing among the first 8 and says so.
    let mut windowed = q.clone().window(8);
    let first = m.jobs(&windowed).await.unwrap();
    assert!(first.jobs.is_empty());
    assert_eq!(first.examined, 8);
    assert!(first.next.is_some(), "more to look at");
    let mut found = Vec::new();
    let mut looked = first.examined;
    windowed.cursor = first.next;
    while windowed.cursor.is_some() {
        let page = m.jobs(&windowed).await.unwrap();
        looked += page.examined;
        found.extend(page.jobs.into_iter().map(|j| j.id));
        windowed.cursor = page.next;
    }
    assert_eq!(found, [ids[20].clone(), ids[21].clone()]);
    assert_eq!(looked, 22);

    // Arguments with markup are found as text.
    let xss = s
        .enqueue(vec![named(
            "q",
            "x",
            r#"{"s":"<script>alert(1)</script>"}"#,
        )])
        .await
        .unwrap();
    let page = m.jobs(&q.clone().search("<script>")).await.unwrap();
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.jobs[0].id, xss[0]);

    // By id: listed only in its state.
    let by_id = m
        .jobs(&JobQuery::new(JobState::Enqueued).id(ids[3].clone()))
        .await
        .unwrap();
    assert_eq!(by_id.jobs.len(), 1);
    let wrong_state = m
        .jobs(&JobQuery::new(JobState::Failed).id(ids[3].clone()))
        .await
        .unwrap();
    assert!(wrong_state.jobs.is_empty());
}

async fn listing_every_queue_walks_them_by_name(kind: Kind) {
    let Some(b) = backend(kind, "mon_all_queues", Retention::default()) else {
        return;
    };
    let m = Monitor::from_shared(b.storage.clone());
    let s = &*b.storage;
    let mut expected = Vec::new();
    for q in ["z", "a", "m"] {
        expected.extend(failed_jobs(s, q, 3).await);
    }
    let mut q = JobQuery::new(JobState::Failed).limit(2);
    let mut seen = Vec::new();
    loop {
        let page = m.jobs(&q).await.unwrap();
        assert_eq!(page.total.value, 9);
        assert!(page.jobs.len() <= 2);
        seen.extend(page.jobs.into_iter().map(|j| j.id));
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let queues_in_order: Vec<&str> = seen.iter().map(|id| id.queue()).collect();
    assert_eq!(
        queues_in_order,
        ["a", "a", "a", "m", "m", "m", "z", "z", "z"]
    );
    assert_eq!(
        seen.iter().cloned().collect::<BTreeSet<_>>(),
        expected.into_iter().collect::<BTreeSet<_>>()
    );
}

async fn a_job_detail_shows_error_parent_continuations_and_batch(kind: Kind) {
    let Some(b) = backend(kind, "mon_detail", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    let parent = s.enqueue(vec![job("q", 1)]).await.unwrap().remove(0);
    let child = s
        .continue_with(&parent, job("q", 2), Finish::Any)
        .await
        .unwrap()
        .unwrap();
    let detail = m.job(&parent).await.unwrap().unwrap();
    assert_eq!(detail.continuations, [(child.clone(), Finish::Any)]);
    assert_eq!(detail.info.args, r#"{"n":1}"#);
    let child_detail = m.job(&child).await.unwrap().unwrap();
    assert_eq!(child_detail.parent, Some(parent.clone()));

    // A retry, then a failure: the last error is the failure's.
    let q = queues(&["q"]);
    let got = fetch(s, &q, 1, LEASE).await;
    let retry = Outcome::Retry {
        at_ms: now_ms(),
        reason: "first: timeout".into(),
    };
    s.complete(&[done(&got[0], retry)]).await.unwrap();
    let again = jobs_tests::suite::fetch_when_due(s, &q, LEASE).await;
    assert_eq!(
        m.job(&parent).await.unwrap().unwrap().last_error.as_deref(),
        Some("first: timeout")
    );
    let failed = Outcome::Failed {
        reason: "second: refused".into(),
    };
    s.complete(&[done(&again, failed)]).await.unwrap();
    let detail = m.job(&parent).await.unwrap().unwrap();
    assert_eq!(detail.info.state, JobState::Failed);
    assert_eq!(detail.last_error.as_deref(), Some("second: refused"));
    assert_eq!(detail.info.attempts, 2);

    let batch = s
        .enqueue_batch(vec![job("q", 10), job("q", 11)], None)
        .await
        .unwrap();
    let member = m.job(&batch.jobs[0]).await.unwrap().unwrap();
    assert_eq!(member.batch, Some(batch.id.clone()));
    assert!(m.job(&JobId::new("q", 99_999)).await.unwrap().is_none());
}

async fn bulk_actions_act_on_every_match_in_chunks(kind: Kind) {
    let Some(b) = backend(kind, "mon_bulk", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    let mut batch: Vec<NewJob> = (0..20).map(|n| job("q", n)).collect();
    batch.extend((0..10).map(|n| named("q", "special", &format!("{{\"n\":{n}}}"))));
    s.enqueue(batch).await.unwrap();
    let got = fetch(s, &queues(&["q"]), 30, LEASE).await;
    let fails: Vec<_> = got
        .iter()
        .map(|j| {
            done(
                j,
                Outcome::Failed {
                    reason: "no".into(),
                },
            )
        })
        .collect();
    s.complete(&fails).await.unwrap();

    let special = JobQuery::new(JobState::Failed).name("special").window(7);
    let report = m
        .bulk(BulkAction::Requeue, &special, u64::MAX)
        .await
        .unwrap();
    assert_eq!(report.acted, 10);
    assert!(report.next.is_none());
    assert_eq!(m.queue("q").await.unwrap().pending.value, 10);
    assert_eq!(m.queue("q").await.unwrap().failed.value, 20);

    // Bounded: stops after `max` and says where to go on.
    let all_failed = JobQuery::new(JobState::Failed).queue("q").limit(5);
    let some = m.bulk(BulkAction::Delete, &all_failed, 5).await.unwrap();
    assert!(some.acted >= 5 && some.acted < 20, "{some:?}");
    assert!(some.next.is_some());
    let rest = m
        .bulk(
            BulkAction::Delete,
            &all_failed.clone().after(some.next.unwrap()),
            u64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(some.acted + rest.acted, 20);
    assert_eq!(m.queue("q").await.unwrap().failed.value, 0);
}

async fn history_counts_completions_per_minute_and_hour(kind: Kind) {
    let Some(b) = backend(kind, "mon_history", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    s.enqueue((0..4).map(|n| job("h", n)).collect())
        .await
        .unwrap();
    let q = queues(&["h"]);
    // Before any completion: the snapshot a worker takes when it starts.
    s.record_history(&q, now_ms()).await.unwrap();
    let got = fetch(s, &q, 4, LEASE).await;
    let mut completions: Vec<_> = got[..3]
        .iter()
        .map(|j| done(j, Outcome::Succeeded))
        .collect();
    completions.push(done(
        &got[3],
        Outcome::Failed {
            reason: "no".into(),
        },
    ));
    s.complete(&completions).await.unwrap();
    // A second recorder in the same minute changes nothing (the first writer wins).
    s.record_history(&q, now_ms()).await.unwrap();
    for res in [Resolution::Minute, Resolution::Hour] {
        let points = m.history(None, res).await.unwrap();
        assert_eq!(points.len() as u64, res.points());
        let succeeded: u64 = points.iter().map(|p| p.succeeded).sum();
        let failed: u64 = points.iter().map(|p| p.failed).sum();
        assert_eq!((succeeded, failed), (3, 1), "{res:?}");
        let last = points.last().unwrap();
        assert!(last.at_ms <= now_ms() && now_ms() - last.at_ms < res.bucket_ms());
    }
    let one = m.history(Some("h"), Resolution::Minute).await.unwrap();
    assert_eq!(one.iter().map(|p| p.succeeded).sum::<u64>(), 3);
    let snaps = s.history_snapshots("h", Resolution::Minute).await.unwrap();
    assert!(!snaps.is_empty() && snaps.len() <= 2, "{snaps:?}");
}

async fn servers_report_host_queues_and_jobs(kind: Kind) {
    let Some(b) = backend(kind, "mon_servers", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    let report = ServerReport::named("w1")
        .process("host-a", 42)
        .serving(vec!["critical".into(), "default".into()], 8, 1_000)
        .holding(2_000, vec![JobId::new("default", 5)], 1);
    s.heartbeat("w1", Duration::from_secs(60)).await.unwrap();
    s.report_server(&report, Duration::from_secs(60))
        .await
        .unwrap();
    s.heartbeat("w2", Duration::from_secs(60)).await.unwrap();
    let servers = m.servers().await.unwrap();
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0], report);
    assert_eq!(servers[1].name, "w2");
    assert_eq!(servers[1].pid, 0, "no report: the name alone");
    // A report runs out with its heartbeat.
    s.report_server(
        &ServerReport::named("w3").process("h", 1),
        Duration::from_millis(150),
    )
    .await
    .unwrap();
    s.heartbeat("w3", Duration::from_millis(150)).await.unwrap();
    assert_eq!(m.servers().await.unwrap().len(), 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(m.servers().await.unwrap().len(), 2);
    s.deregister("w1").await.unwrap();
    assert_eq!(m.servers().await.unwrap().len(), 1);
}

async fn recurring_jobs_pause_and_resume(kind: Kind) {
    let Some(b) = backend(kind, "mon_recurring", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    let entry = RecurringEntry::new(
        "nightly",
        "0 3 * * *",
        "UTC",
        Misfire::Skip,
        "reports",
        "reports.nightly",
        "{}".to_owned(),
        Some(now_ms() + 3_600_000),
    );
    s.register_recurring(entry).await.unwrap();
    assert!(m.pause_recurring("nightly").await.unwrap());
    assert!(!m.pause_recurring("unknown").await.unwrap());
    let listed = m.recurring().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].paused);
    assert_eq!(s.paused_recurring().await.unwrap(), ["nightly"]);
    let id = m.trigger_recurring("nightly").await.unwrap().unwrap();
    assert_eq!(id.queue(), "reports");
    assert!(m.resume_recurring("nightly").await.unwrap());
    assert!(!m.recurring().await.unwrap()[0].paused);
    assert!(m.pause_recurring("nightly").await.unwrap());
    assert!(m.remove_recurring("nightly").await.unwrap());
    assert!(m.recurring().await.unwrap().is_empty());
    assert!(s.paused_recurring().await.unwrap().is_empty());
}

async fn batches_are_listed_with_progress(kind: Kind) {
    let Some(b) = backend(kind, "mon_batches", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let m = Monitor::from_shared(b.storage.clone());
    let first = s
        .enqueue_batch(vec![job("b", 1), job("b", 2), job("b", 3)], None)
        .await
        .unwrap();
    let second = s
        .enqueue_batch(vec![job("b", 4)], Some(job("after", 5)))
        .await
        .unwrap();
    let got = fetch(s, &queues(&["b"]), 1, LEASE).await;
    s.complete(&[done(&got[0], Outcome::Succeeded)])
        .await
        .unwrap();
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = m.batches(Some("b"), cursor.as_deref(), 1).await.unwrap();
        listed.extend(page.batches);
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    listed.sort_by_key(|b| b.id.seq());
    assert_eq!(
        listed.iter().map(|b| b.id.clone()).collect::<Vec<_>>(),
        [first.id.clone(), second.id.clone()]
    );
    assert_eq!(
        (listed[0].progress.total, listed[0].progress.succeeded),
        (3, 1)
    );
    assert_eq!(listed[1].then, second.then);
    let everywhere = m.batches(None, None, 10).await.unwrap();
    assert_eq!(everywhere.batches.len(), 2);
}

async fn bad_cursors_are_refused_with_a_clear_error(kind: Kind) {
    let Some(b) = backend(kind, "mon_bad_cursor", Retention::default()) else {
        return;
    };
    let m = Monitor::from_shared(b.storage.clone());
    b.storage.enqueue(vec![job("q", 1)]).await.unwrap();
    for state in [JobState::Enqueued, JobState::Failed, JobState::Processing] {
        let q = JobQuery::new(state).queue("q").after("not a cursor");
        let err = m.jobs(&q).await.unwrap_err();
        assert!(err.is_config(), "{err}");
        assert!(err.to_string().contains("not a cursor"), "{err}");
    }
    let err = m
        .jobs(&JobQuery::new(JobState::Enqueued).after("garbage"))
        .await
        .unwrap_err();
    assert!(err.is_config(), "{err}");
}

async fn a_paused_recurring_job_skips_its_ticks(kind: Kind) {
    let Some(b) = backend(kind, "mon_recurring_skip", Retention::default()) else {
        return;
    };
    let client = jobs::Client::from_shared(b.storage.clone());
    let m = Monitor::from_shared(b.storage.clone());
    let registered = client
        .recurring("every-second", "* * * * * *", jobs::job!(monitored(7)))
        .misfire(Misfire::RunAll)
        .register()
        .await
        .unwrap();
    assert!(m.pause_recurring("every-second").await.unwrap());
    let first_tick = registered.next_run_ms.unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let worker = Worker::builder_shared(b.storage.clone())
        .queues(["unused"])
        .recurring_poll_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let run = tokio::spawn(worker.run_until(async move { stopped.notified().await }));
    let s = b.storage.clone();
    let advanced = eventually(Duration::from_secs(20), || async {
        let e = s.recurring().await.unwrap();
        e[0].next_run_ms.is_some_and(|n| n >= first_tick + 2_000)
    })
    .await;
    assert!(advanced, "the schedule moves on while paused");
    assert_eq!(m.queue("monitored").await.unwrap().pending.value, 0);
    assert!(m.resume_recurring("every-second").await.unwrap());
    let s = b.storage.clone();
    let enqueued = eventually(Duration::from_secs(20), || async {
        s.stats("monitored").await.unwrap().enqueued > 0
    })
    .await;
    stop.notify_one();
    run.await.unwrap().unwrap();
    assert!(enqueued, "ticks enqueue jobs again once resumed");
}
