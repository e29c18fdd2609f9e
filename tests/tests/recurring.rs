//! Recurring jobs on both backends: registration (upsert, update, remove, list, trigger), the
//! compare-and-set that enqueues a tick exactly once, misfire policies after a simulated downtime,
//! and worker schedulers racing on the same ticks.

use jobs::recurring::Misfire;
use jobs::storage::{now_ms, RecurringFire, Retention};
use jobs::{Client, JobState};
use jobs_tests::backends::{backend, Kind};
use jobs_tests::downtime::{catch_up, entry, register_at, three_missed_daily_ticks, DAY, HOUR};
use jobs_tests::eventually;
use std::sync::Arc;
use std::time::Duration;

jobs_tests::on_every_backend!(
    register_update_list_remove,
    invalid_schedules_store_nothing,
    fire_is_a_compare_and_set,
    racing_fires_enqueue_a_tick_once,
    trigger_runs_now_and_keeps_the_schedule,
    moving_to_another_queue,
    misfire_run_once_after_downtime,
    misfire_run_all_after_downtime,
    misfire_skip_after_downtime,
    two_schedulers_enqueue_each_tick_once,
);

/// The job the recurring entries enqueue (no worker in these tests consumes its queue).
#[jobs::background_job(queue = "rq")]
async fn report(kind: String) {
    let _ = kind;
}

async fn register_update_list_remove(kind: Kind) {
    let Some(b) = backend(kind, "rec-register", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let before = now_ms();
    let first = client
        .recurring("nightly", "0 0 3 * * *", jobs::job!(report("a".into())))
        .time_zone("Europe/Berlin")
        .register()
        .await
        .unwrap();
    assert_eq!(first.cron, "0 0 3 * * *");
    assert_eq!(first.time_zone, "Europe/Berlin");
    assert_eq!(first.misfire, Misfire::RunOnce);
    assert_eq!(&*first.queue, "rq");
    let next = first.next_run_ms.expect("a next run");
    assert!(next > before && next <= before + DAY + HOUR, "{next}");
    // 03:00 in Berlin is 01:00 or 02:00 UTC.
    let utc_hour = (next % DAY) / HOUR;
    assert!(utc_hour == 1 || utc_hour == 2, "{utc_hour}");
    assert_eq!(first.last_run_ms, None);

    client
        .recurring("hourly", "0 * * * *", jobs::job!(report("h".into())))
        .misfire(Misfire::Skip)
        .register()
        .await
        .unwrap();
    let listed = client.recurring_jobs().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["hourly", "nightly"]);
    assert_eq!(listed[1], first);
    assert_eq!(listed[0].misfire, Misfire::Skip);

    // Same schedule, new arguments: the next run is kept, the revision moves on.
    let second = client
        .recurring("nightly", "0 0 3 * * *", jobs::job!(report("b".into())))
        .time_zone("Europe/Berlin")
        .misfire(Misfire::RunAll)
        .register()
        .await
        .unwrap();
    assert_eq!(second.next_run_ms, first.next_run_ms);
    assert!(second.revision > first.revision);
    assert_eq!(second.misfire, Misfire::RunAll);
    let stored = entry(&*b.storage, "nightly").await.unwrap();
    assert_eq!(stored, second);
    assert!(stored.args.contains("\"b\""), "{}", stored.args);

    // A new schedule: the next run is recomputed.
    let third = client
        .recurring("nightly", "0 0 3 * * *", jobs::job!(report("b".into())))
        .time_zone("America/New_York")
        .register()
        .await
        .unwrap();
    assert_ne!(third.next_run_ms, first.next_run_ms);
    let utc_hour = (third.next_run_ms.unwrap() % DAY) / HOUR;
    assert!(utc_hour == 7 || utc_hour == 8, "{utc_hour}");

    assert!(client.remove_recurring("nightly").await.unwrap());
    assert!(!client.remove_recurring("nightly").await.unwrap());
    let ids: Vec<String> = client
        .recurring_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["hourly"]);
    let err = client.trigger_recurring("nightly").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

async fn invalid_schedules_store_nothing(kind: Kind) {
    let Some(b) = backend(kind, "rec-invalid", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let cases = [
        ("0 0 25 * * *", "UTC", "hour field `25`"),
        ("0 0 * * * MOONDAY", "UTC", "day-of-week field `MOONDAY`"),
        ("every day", "UTC", "expected 5 fields"),
        (
            "0 3 * * *",
            "Mars/Olympus",
            "unknown time zone `Mars/Olympus`",
        ),
        ("0 0 0 30 2 *", "UTC", "never matches"),
    ];
    for (cron, tz, expected) in cases {
        let err = client
            .recurring("bad", cron, jobs::job!(report("x".into())))
            .time_zone(tz)
            .register()
            .await
            .unwrap_err();
        assert!(err.is_config(), "{cron}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(expected), "{cron} {tz}: {msg}");
        assert!(msg.contains("recurring job `bad`"), "{msg}");
    }
    assert!(client.recurring_jobs().await.unwrap().is_empty());
}

async fn fire_is_a_compare_and_set(kind: Kind) {
    let Some(b) = backend(kind, "rec-cas", Retention::default()) else {
        return;
    };
    let s = &*b.storage;
    let t = now_ms() - 5_000;
    let e = register_at(s, "r", "* * * * * *", Misfire::RunAll, t).await;
    let fire = RecurringFire::new(&e, vec![t, t + 1_000], Some(t + 2_000));
    let ids = s.fire_recurring(&fire).await.unwrap().expect("applied");
    assert_eq!(ids.len(), 2);
    for id in &ids {
        assert_eq!(id.queue(), "rq");
        let info = s.job(id).await.unwrap().expect("stored");
        assert_eq!(info.state, JobState::Enqueued);
        assert_eq!(info.name, "recurring-tests::job");
        assert_eq!(info.args, "{}");
    }
    let stored = entry(s, "r").await.unwrap();
    assert_eq!(stored.next_run_ms, Some(t + 2_000));
    assert_eq!(stored.last_run_ms, Some(t + 1_000));
    assert_eq!(stored.revision, e.revision);

    // The same request again: the next run moved, so nothing happens.
    assert_eq!(s.fire_recurring(&fire).await.unwrap(), None);
    // A request from an older revision is refused even with the right next run.
    let e2 = register_at(s, "r", "* * * * * *", Misfire::RunAll, t).await;
    assert_eq!(
        e2.next_run_ms,
        Some(t + 2_000),
        "same schedule keeps the next run"
    );
    let stale = RecurringFire::new(&stored, vec![t + 2_000], Some(t + 3_000));
    assert_eq!(s.fire_recurring(&stale).await.unwrap(), None);
    // A skip advances without enqueueing.
    let skip = RecurringFire::new(&e2, Vec::new(), Some(t + 9_000));
    assert_eq!(s.fire_recurring(&skip).await.unwrap(), Some(Vec::new()));
    assert_eq!(entry(s, "r").await.unwrap().next_run_ms, Some(t + 9_000));
    // Gone: refused.
    assert!(s.remove_recurring("r").await.unwrap());
    let gone = RecurringFire::new(&e2, vec![t + 9_000], Some(t + 10_000));
    assert_eq!(s.fire_recurring(&gone).await.unwrap(), None);

    assert_eq!(s.stats("rq").await.unwrap().enqueued, 2);
}

async fn racing_fires_enqueue_a_tick_once(kind: Kind) {
    let Some(b) = backend(kind, "rec-race", Retention::default()) else {
        return;
    };
    let s = b.storage.clone();
    let t = now_ms() - 1_000;
    let e = register_at(&*s, "race", "* * * * * *", Misfire::RunAll, t).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let fire = RecurringFire::new(&e, vec![t], Some(t + 1_000));
        tasks.push(tokio::spawn(async move {
            s.fire_recurring(&fire).await.unwrap()
        }));
    }
    let mut applied = 0;
    for task in tasks {
        if task.await.unwrap().is_some() {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(s.stats("rq").await.unwrap().enqueued, 1);
}

async fn trigger_runs_now_and_keeps_the_schedule(kind: Kind) {
    let Some(b) = backend(kind, "rec-trigger", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let e = client
        .recurring("weekly", "0 0 0 * * SUN", jobs::job!(report("w".into())))
        .register()
        .await
        .unwrap();
    let before = now_ms();
    let id = client.trigger_recurring("weekly").await.unwrap();
    let info = client.job(&id).await.unwrap().expect("stored");
    assert_eq!(info.state, JobState::Enqueued);
    assert_eq!(info.name, <report as jobs::Job>::NAME);
    assert!(info.args.contains("\"w\""), "{}", info.args);
    let after = entry(&**client.storage(), "weekly").await.unwrap();
    assert_eq!(after.next_run_ms, e.next_run_ms);
    assert_eq!(after.revision, e.revision);
    assert!(after.last_run_ms.unwrap() >= before);
    let again = client.trigger_recurring("weekly").await.unwrap();
    assert_ne!(again, id);
    assert_eq!(client.stats("rq").await.unwrap().enqueued, 2);
}

async fn moving_to_another_queue(kind: Kind) {
    let Some(b) = backend(kind, "rec-move", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    client
        .recurring("m", "0 0 * * * *", jobs::job!(report("m".into())))
        .register()
        .await
        .unwrap();
    let moved = client
        .recurring("m", "0 0 * * * *", jobs::job!(report("m".into())))
        .queue("elsewhere")
        .register()
        .await
        .unwrap();
    let listed = client.recurring_jobs().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0], moved);
    assert_eq!(&*listed[0].queue, "elsewhere");
    let id = client.trigger_recurring("m").await.unwrap();
    assert_eq!(id.queue(), "elsewhere");
    assert_eq!(client.stats("rq").await.unwrap().enqueued, 0);
}

async fn misfire_run_once_after_downtime(kind: Kind) {
    let Some(b) = backend(kind, "rec-once", Retention::default()) else {
        return;
    };
    let now = now_ms();
    let (cron, first) = three_missed_daily_ticks(now);
    register_at(&*b.storage, "once", &cron, Misfire::RunOnce, first).await;
    let e = catch_up(&b.storage, "once").await;
    assert_eq!(b.storage.stats("rq").await.unwrap().enqueued, 1);
    assert_eq!(e.last_run_ms, Some(first));
    assert_eq!(e.next_run_ms, Some(first + 3 * DAY));
}

async fn misfire_run_all_after_downtime(kind: Kind) {
    let Some(b) = backend(kind, "rec-all", Retention::default()) else {
        return;
    };
    let now = now_ms();
    let (cron, first) = three_missed_daily_ticks(now);
    register_at(&*b.storage, "all", &cron, Misfire::RunAll, first).await;
    let e = catch_up(&b.storage, "all").await;
    assert_eq!(b.storage.stats("rq").await.unwrap().enqueued, 3);
    assert_eq!(e.last_run_ms, Some(first + 2 * DAY));
    assert_eq!(e.next_run_ms, Some(first + 3 * DAY));
}

async fn misfire_skip_after_downtime(kind: Kind) {
    let Some(b) = backend(kind, "rec-skip", Retention::default()) else {
        return;
    };
    let now = now_ms();
    let (cron, first) = three_missed_daily_ticks(now);
    register_at(&*b.storage, "skip", &cron, Misfire::Skip, first).await;
    let e = catch_up(&b.storage, "skip").await;
    assert_eq!(b.storage.stats("rq").await.unwrap().enqueued, 0);
    assert_eq!(e.last_run_ms, None);
    assert_eq!(e.next_run_ms, Some(first + 3 * DAY));
}

async fn two_schedulers_enqueue_each_tick_once(kind: Kind) {
    let Some(b) = backend(kind, "rec-two", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let registered = client
        .recurring(
            "every-second",
            "* * * * * *",
            jobs::job!(report("s".into())),
        )
        .misfire(Misfire::RunAll)
        .register()
        .await
        .unwrap();
    let first_tick = registered.next_run_ms.unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut workers = Vec::new();
    for _ in 0..2 {
        let worker = jobs::Worker::builder_shared(b.storage.clone())
            .queues(["unused"])
            .recurring_poll_interval(Duration::from_millis(100))
            .build()
            .unwrap();
        let stop = stop.clone();
        workers.push(tokio::spawn(worker.run_until(async move {
            stop.notified().await;
        })));
    }
    let s = b.storage.clone();
    let ticked = eventually(Duration::from_secs(60), || async {
        entry(&*s, "every-second")
            .await
            .and_then(|e| e.last_run_ms)
            .is_some_and(|l| l >= first_tick + 3_000)
    })
    .await;
    assert!(ticked, "four ticks were enqueued");
    stop.notify_waiters();
    for w in workers {
        w.await.unwrap().unwrap();
    }
    let e = entry(&*b.storage, "every-second").await.unwrap();
    let last = e.last_run_ms.unwrap();
    // RunAll: one job for every tick from the first to the last, none twice.
    let ticks = (last - first_tick) / 1_000 + 1;
    assert_eq!(b.storage.stats("rq").await.unwrap().enqueued, ticks);
    assert_eq!(e.next_run_ms, Some(last + 1_000));
}
