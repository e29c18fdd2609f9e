//! The misfire grace of recurring jobs, on both backends: a recurring job's own grace, the
//! worker's (for jobs without one), and which wins, after a simulated downtime of three days.

use jobs::recurring::Misfire;
use jobs::storage::{now_ms, Retention};
use jobs::Client;
use jobs_tests::backends::{backend, Kind};
use jobs_tests::downtime::{
    catch_up, catch_up_with, entry, entry_at, scheduler_only, three_missed_daily_ticks, DAY,
};
use std::time::Duration;

jobs_tests::on_every_backend!(
    a_grace_longer_than_the_downtime_runs_every_tick,
    the_entry_grace_overrides_the_worker_grace,
    the_client_stores_the_grace,
);

const FOUR_DAYS: Duration = Duration::from_secs(4 * 24 * 3600);

async fn a_grace_longer_than_the_downtime_runs_every_tick(kind: Kind) {
    let Some(b) = backend(kind, "grace-long", Retention::default()) else {
        return;
    };
    let s = &b.storage;
    let (cron, first) = three_missed_daily_ticks(now_ms());

    // Its own grace: under `Skip`, ticks within the grace are on time, so all three run.
    let mut own = entry_at("own", &cron, Misfire::Skip, first);
    own.misfire_grace = Some(FOUR_DAYS);
    let stored = s.register_recurring(own).await.unwrap();
    assert_eq!(stored.misfire_grace, Some(FOUR_DAYS));
    assert_eq!(
        entry(&**s, "own").await.unwrap().misfire_grace,
        Some(FOUR_DAYS),
        "the grace is stored with the entry"
    );
    let e = catch_up(s, "own").await;
    assert_eq!(s.stats("rq").await.unwrap().enqueued, 3);
    assert_eq!(e.last_run_ms, Some(first + 2 * DAY));
    assert_eq!(e.next_run_ms, Some(first + 3 * DAY));

    // No grace of its own: the worker's applies.
    s.register_recurring(entry_at("worker", &cron, Misfire::Skip, first))
        .await
        .unwrap();
    let e = catch_up_with(
        s,
        "worker",
        scheduler_only(s).recurring_misfire_grace(FOUR_DAYS),
    )
    .await;
    assert_eq!(s.stats("rq").await.unwrap().enqueued, 6);
    assert_eq!(e.last_run_ms, Some(first + 2 * DAY));
}

async fn the_entry_grace_overrides_the_worker_grace(kind: Kind) {
    let Some(b) = backend(kind, "grace-override", Retention::default()) else {
        return;
    };
    let s = &b.storage;
    let (cron, first) = three_missed_daily_ticks(now_ms());
    let mut short = entry_at("short", &cron, Misfire::Skip, first);
    short.misfire_grace = Some(Duration::from_secs(3600));
    s.register_recurring(short).await.unwrap();
    let e = catch_up_with(
        s,
        "short",
        scheduler_only(s).recurring_misfire_grace(FOUR_DAYS),
    )
    .await;
    assert_eq!(
        s.stats("rq").await.unwrap().enqueued,
        0,
        "an hour's grace: the three ticks were missed and skipped"
    );
    assert_eq!(e.last_run_ms, None);
    assert_eq!(e.next_run_ms, Some(first + 3 * DAY));

    // The default (10 s) treats them as missed too: `RunOnce` makes one job of them.
    s.register_recurring(entry_at("default", &cron, Misfire::RunOnce, first))
        .await
        .unwrap();
    let e = catch_up(s, "default").await;
    assert_eq!(s.stats("rq").await.unwrap().enqueued, 1);
    assert_eq!(e.last_run_ms, Some(first));
}

#[jobs::background_job(queue = "rq")]
async fn digest(day: u32) {
    let _ = day;
}

async fn the_client_stores_the_grace(kind: Kind) {
    let Some(b) = backend(kind, "grace-client", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let e = client
        .recurring("digest", "0 0 6 * * *", jobs::job!(digest(1)))
        .misfire_grace(Duration::from_secs(90))
        .register()
        .await
        .unwrap();
    assert_eq!(e.misfire_grace, Some(Duration::from_secs(90)));
    let plain = client
        .recurring("plain", "0 0 6 * * *", jobs::job!(digest(2)))
        .register()
        .await
        .unwrap();
    assert_eq!(plain.misfire_grace, None);
    // Registering again with another grace keeps the schedule and changes the grace.
    let again = client
        .recurring("digest", "0 0 6 * * *", jobs::job!(digest(1)))
        .misfire_grace(Duration::from_secs(600))
        .register()
        .await
        .unwrap();
    assert_eq!(again.next_run_ms, e.next_run_ms);
    let listed = client.recurring_jobs().await.unwrap();
    assert_eq!(listed[0].id, "digest");
    assert_eq!(listed[0].misfire_grace, Some(Duration::from_secs(600)));
}
