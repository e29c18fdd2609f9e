//! Client filters see the jobs of recurring jobs, on both backends: a worker's scheduler runs its
//! filters' `on_create` on each job it is about to enqueue (and reports `Enqueued`), a rejected
//! job skips its ticks while the schedule advances, and a client's manual trigger runs the
//! client's filters.

use jobs::filter::{CreatingJob, Filter, StateChangeEvent};
use jobs::recurring::Misfire;
use jobs::storage::{now_ms, Retention};
use jobs::{Client, JobState};
use jobs_tests::backends::{backend, Kind};
use jobs_tests::downtime::{
    catch_up_with, entry_at, scheduler_only, three_missed_daily_ticks, DAY,
};
use std::sync::{Arc, Mutex};

jobs_tests::on_every_backend!(
    the_scheduler_runs_the_worker_filters,
    a_manual_trigger_runs_the_client_filters,
);

/// Rejects jobs whose arguments contain `"blocked"`; records what it saw.
#[derive(Clone, Default)]
struct Gate {
    created: Arc<Mutex<Vec<String>>>,
    enqueued: Arc<Mutex<Vec<jobs::JobId>>>,
}

impl Filter for Gate {
    fn on_create(&self, job: &CreatingJob<'_>) -> Result<(), String> {
        self.created.lock().unwrap().push(job.args.to_owned());
        if job.args.contains("blocked") {
            return Err("blocked by the gate".to_owned());
        }
        Ok(())
    }

    fn on_state_change(&self, event: &StateChangeEvent) {
        if event.state == JobState::Enqueued {
            self.enqueued.lock().unwrap().push(event.id.clone());
        }
    }
}

async fn the_scheduler_runs_the_worker_filters(kind: Kind) {
    let Some(b) = backend(kind, "rec-filters", Retention::default()) else {
        return;
    };
    let s = &b.storage;
    let (cron, first) = three_missed_daily_ticks(now_ms());

    let mut allowed = entry_at("allowed", &cron, Misfire::RunAll, first);
    allowed.args = r#"{"kind":"fine"}"#.to_owned();
    s.register_recurring(allowed).await.unwrap();
    let gate = Gate::default();
    let e = catch_up_with(s, "allowed", scheduler_only(s).filter(gate.clone())).await;
    assert_eq!(s.stats("rq").await.unwrap().enqueued, 3);
    assert_eq!(e.last_run_ms, Some(first + 2 * DAY));
    assert!(
        gate.created
            .lock()
            .unwrap()
            .iter()
            .any(|a| a.contains("fine")),
        "the filter saw the recurring job's arguments"
    );
    let enqueued = gate.enqueued.lock().unwrap().clone();
    assert_eq!(
        enqueued.len(),
        3,
        "one Enqueued change per job: {enqueued:?}"
    );
    for id in &enqueued {
        let info = s.job(id).await.unwrap().expect("stored");
        assert_eq!(info.args, r#"{"kind":"fine"}"#);
    }

    // Rejected: nothing is stored, and the schedule moves past the due ticks all the same.
    let mut blocked = entry_at("blocked", &cron, Misfire::RunAll, first);
    blocked.args = r#"{"kind":"blocked"}"#.to_owned();
    s.register_recurring(blocked).await.unwrap();
    let gate = Gate::default();
    let e = catch_up_with(s, "blocked", scheduler_only(s).filter(gate.clone())).await;
    assert_eq!(s.stats("rq").await.unwrap().enqueued, 3, "nothing more");
    assert_eq!(
        e.next_run_ms,
        Some(first + 3 * DAY),
        "the schedule advanced"
    );
    assert_eq!(e.last_run_ms, None, "no tick ran");
    assert!(gate
        .created
        .lock()
        .unwrap()
        .iter()
        .any(|a| a.contains("blocked")));
    assert!(gate.enqueued.lock().unwrap().is_empty());
}

#[jobs::background_job(queue = "rq")]
async fn sweep(area: String) {
    let _ = area;
}

async fn a_manual_trigger_runs_the_client_filters(kind: Kind) {
    let Some(b) = backend(kind, "rec-trigger-filters", Retention::default()) else {
        return;
    };
    let open = Client::from_shared(b.storage.clone());
    open.recurring(
        "blocked",
        "0 0 6 * * *",
        jobs::job!(sweep("blocked".into())),
    )
    .register()
    .await
    .unwrap();
    open.recurring("fine", "0 0 6 * * *", jobs::job!(sweep("fine".into())))
        .register()
        .await
        .unwrap();

    let gated = Client::builder_shared(b.storage.clone())
        .filter(Gate::default())
        .build();
    let err = gated.trigger_recurring("blocked").await.unwrap_err();
    assert!(err.is_rejected(), "{err}");
    assert!(err.to_string().contains("blocked by the gate"), "{err}");
    assert_eq!(b.storage.stats("rq").await.unwrap().enqueued, 0);
    let id = gated.trigger_recurring("fine").await.unwrap();
    assert_eq!(b.storage.stats("rq").await.unwrap().enqueued, 1);
    assert_eq!(
        b.storage.job(&id).await.unwrap().unwrap().state,
        JobState::Enqueued
    );
    assert!(gated
        .trigger_recurring("missing")
        .await
        .unwrap_err()
        .is_not_found());
}
