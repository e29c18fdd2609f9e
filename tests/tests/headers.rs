//! Job headers on every backend: set by the caller (`Submit::header`) and by client filters,
//! stored with the job (plain, scheduled, bulk, batch members and continuations), shown by
//! `client.job`, handed to fetches and read by the job (`JobContext::headers`) and worker
//! filters, kept across retries; bounded, and counted toward the payload limit. Also the
//! queue-wait inputs the metrics read: when a fetched job became ready and the queue's oldest
//! pending job.

use jobs::filter::{CreatingJob, Filter};
use jobs::storage::{now_ms, Outcome, RecurringFire, Retention};
use jobs::{Client, Headers, JobContext, JobState, RetryBackoff, Worker};
use jobs_tests::backends::{backend, backend_with_payload_limit, Kind};
use jobs_tests::suite::{done, fetch, fetch_when_due, queues, LEASE};
use jobs_tests::until_state;
use std::sync::Mutex;
use std::time::Duration;

jobs_tests::on_every_backend!(
    headers_are_stored_shown_and_fetched,
    filters_add_headers_to_every_kind_of_job,
    the_job_and_worker_filters_read_headers_across_retries,
    headers_over_their_bound_or_the_payload_limit_are_refused,
    fetched_jobs_say_when_they_became_ready,
    recurring_jobs_carry_their_headers_to_every_tick,
);

#[jobs::background_job(queue = "hd")]
async fn tagged(n: u64) {
    let _ = n;
}

/// What `reads_headers` saw on each attempt: (attempt, tenant header).
static SEEN: Mutex<Vec<(u64, u32, Option<String>)>> = Mutex::new(Vec::new());

/// Fails its first attempt, recording the headers it saw on each.
#[jobs::background_job(queue = "hd-run", retries = 2)]
async fn reads_headers(n: u64, ctx: JobContext) -> Result<(), String> {
    let tenant = ctx.headers().get("tenant").map(str::to_owned);
    SEEN.lock().unwrap().push((n, ctx.attempt(), tenant));
    if ctx.attempt() == 1 {
        return Err("first attempt fails".into());
    }
    Ok(())
}

/// Adds `tenant` to every job, and `queue` so tests see the filter saw the job.
struct Tenant(&'static str);

impl Filter for Tenant {
    fn set_headers(&self, job: &CreatingJob<'_>, headers: &mut Headers) {
        headers.insert("tenant", self.0);
        headers.insert("seen-queue", job.queue);
    }
}

/// Records, before each attempt, the tenant header the worker filter sees.
#[derive(Clone, Default)]
struct Watch(std::sync::Arc<Mutex<Vec<Option<String>>>>);

impl Filter for Watch {
    fn before_perform(&self, ctx: &JobContext) {
        let tenant = ctx.headers().get("tenant").map(str::to_owned);
        self.0.lock().unwrap().push(tenant);
    }
}

async fn headers_are_stored_shown_and_fetched(kind: Kind) {
    let Some(b) = backend(kind, "hd-stored", Retention::default()) else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let with = client
        .submit(jobs::job!(tagged(1)))
        .header("request-id", "r-1|two:three \"quoted\"")
        .header("tenant", "acme")
        .await
        .unwrap();
    let without = jobs::enqueue!(&client, tagged(2)).await.unwrap();
    let info = client.job(&with).await.unwrap().expect("stored");
    let expected: Headers = [
        ("request-id", "r-1|two:three \"quoted\""),
        ("tenant", "acme"),
    ]
    .into_iter()
    .collect();
    assert_eq!(info.headers, expected);
    assert_eq!(info.args, r#"{"n":1}"#, "the arguments are unchanged");
    assert!(client
        .job(&without)
        .await
        .unwrap()
        .unwrap()
        .headers
        .is_empty());

    let got = fetch(&*b.storage, &queues(&["hd"]), 10, LEASE).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, with);
    assert_eq!(got[0].headers, expected);
    assert_eq!(&*got[0].args, r#"{"n":1}"#);
    assert!(got[1].headers.is_empty());
    // Still there once the job ended.
    let applied = b
        .storage
        .complete(&[done(&got[0], Outcome::Succeeded)])
        .await
        .unwrap();
    assert_eq!(applied, [true]);
    let info = client.job(&with).await.unwrap().unwrap();
    assert_eq!((info.state, info.headers), (JobState::Succeeded, expected));
}

async fn filters_add_headers_to_every_kind_of_job(kind: Kind) {
    let Some(b) = backend(kind, "hd-filters", Retention::default()) else {
        return;
    };
    let client = Client::builder_shared(b.storage.clone())
        .filter(Tenant("acme"))
        .build();
    let plain = jobs::enqueue!(&client, tagged(1)).await.unwrap();
    let later = jobs::schedule!(&client, tagged(2), in = Duration::from_secs(3600))
        .await
        .unwrap();
    let many = client
        .enqueue_many([jobs::job!(tagged(3)), jobs::job!(tagged(4))])
        .await
        .unwrap();
    let batch = client
        .batch([jobs::job!(tagged(5))])
        .then(jobs::job!(tagged(6)))
        .await
        .unwrap();
    let child = client
        .continue_with(&plain, jobs::job!(tagged(7)))
        .await
        .unwrap();
    // The caller's header wins over the filter's.
    let own = client
        .submit(jobs::job!(tagged(8)))
        .header("tenant", "other")
        .await
        .unwrap();
    let mut ids = vec![plain, later, child];
    ids.extend(many);
    ids.extend(batch.jobs);
    ids.extend(batch.then);
    for id in &ids {
        let info = client.job(id).await.unwrap().expect("stored");
        assert_eq!(info.headers.get("tenant"), Some("acme"), "{id}: {info:?}");
        assert_eq!(info.headers.get("seen-queue"), Some("hd"), "{id}");
    }
    let info = client.job(&own).await.unwrap().unwrap();
    assert_eq!(info.headers.get("tenant"), Some("other"));
}

async fn the_job_and_worker_filters_read_headers_across_retries(kind: Kind) {
    let Some(b) = backend(kind, "hd-worker", Retention::default()) else {
        return;
    };
    let n = 100 + kind.index();
    let client = Client::from_shared(b.storage.clone());
    let id = client
        .submit(jobs::job!(reads_headers(n)))
        .header("tenant", "acme")
        .await
        .unwrap();
    let watch = Watch::default();
    let worker = Worker::builder_shared(b.storage.clone())
        .queues(["hd-run"])
        .retry_backoff(RetryBackoff::exponential(Duration::from_millis(10)))
        .filter(watch.clone())
        .build()
        .unwrap();
    let storage = b.storage.clone();
    let probe = id.clone();
    worker
        .run_until(async move {
            assert!(until_state(&*storage, &probe, JobState::Succeeded).await);
        })
        .await
        .unwrap();
    let seen: Vec<_> = SEEN
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.0 == n)
        .cloned()
        .collect();
    let acme = Some("acme".to_owned());
    assert_eq!(seen, [(n, 1, acme.clone()), (n, 2, acme.clone())]);
    assert_eq!(*watch.0.lock().unwrap(), [acme.clone(), acme]);
    let info = client.job(&id).await.unwrap().unwrap();
    assert_eq!(info.headers.get("tenant"), Some("acme"));
}

async fn headers_over_their_bound_or_the_payload_limit_are_refused(kind: Kind) {
    let Some(b) = backend_with_payload_limit(kind, "hd-limits", Retention::default(), 16 * 1024)
    else {
        return;
    };
    let client = Client::from_shared(b.storage.clone());
    let err = client
        .submit(jobs::job!(tagged(1)))
        .header("big", "x".repeat(9 * 1024))
        .await
        .unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
    let name = <tagged as jobs::Job>::NAME;
    assert!(
        err.to_string().starts_with(&format!(
            "job `{name}` has 9226 bytes (9.0 KiB) of headers, over the limit of 8 KiB"
        )),
        "{err}"
    );
    // Within their own bound, but with the arguments over the payload limit.
    let err = client
        .submit(jobs::job!(tagged(1)))
        .header("big", "x".repeat(8 * 1024 - 20))
        .header("more", "y".repeat(8 * 1024 - 20))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("over the limit of 8 KiB"), "{err}");
    let big = "x".repeat(16 * 1024 - 100);
    let headers: Headers = [("h", "y".repeat(200))].into_iter().collect();
    let job =
        jobs::storage::NewJob::new("hd", name, format!("{{\"s\":\"{big}\"}}")).headers(headers);
    let err = b.storage.enqueue(vec![job]).await.unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
    assert!(
        err.to_string().contains("of arguments and headers") && err.to_string().contains("16 KiB"),
        "{err}"
    );
    let st = b.storage.stats("hd").await.unwrap();
    assert_eq!((st.enqueued, st.scheduled), (0, 0), "nothing was stored");
}

async fn fetched_jobs_say_when_they_became_ready(kind: Kind) {
    let Some(b) = backend(kind, "hd-ready", Retention::default()) else {
        return;
    };
    let q = queues(&["hd"]);
    let client = Client::from_shared(b.storage.clone());
    assert_eq!(
        b.storage.stats("hd").await.unwrap().oldest_pending_at_ms,
        None
    );
    let before = now_ms();
    jobs::enqueue!(&client, tagged(1)).await.unwrap();
    let after = now_ms();
    tokio::time::sleep(Duration::from_millis(30)).await;
    jobs::enqueue!(&client, tagged(2)).await.unwrap();
    let oldest = b.storage.stats("hd").await.unwrap().oldest_pending_at_ms;
    // The storage's clock (Redis's, PostgreSQL's) may be a little off the test's.
    let near = |t: u64, lo: u64, hi: u64| t + 50 >= lo && t <= hi + 50;
    assert!(
        oldest.is_some_and(|t| near(t, before, after)),
        "{oldest:?} not in {before}..{after}"
    );
    let first = fetch(&*b.storage, &q, 1, LEASE).await.remove(0);
    assert!(near(first.ready_at_ms, before, after), "{first:?}");
    let second = fetch(&*b.storage, &q, 1, LEASE).await.remove(0);
    assert!(second.ready_at_ms >= first.ready_at_ms + 20, "{second:?}");
    assert_eq!(
        b.storage.stats("hd").await.unwrap().oldest_pending_at_ms,
        None
    );

    // A retry is ready when it is due, not when it was first enqueued.
    let due = now_ms() + 300;
    let retry = Outcome::Retry {
        at_ms: due,
        reason: "again".into(),
    };
    let applied = b.storage.complete(&[done(&first, retry)]).await.unwrap();
    assert_eq!(applied, [true]);
    let again = fetch_when_due(&*b.storage, &q, LEASE).await;
    assert_eq!(again.id, first.id);
    assert!(
        near(again.ready_at_ms, due, due + 1_000),
        "{again:?} due {due}"
    );
    // So is a scheduled job.
    let at = now_ms() + 200;
    jobs::schedule!(
        &client,
        tagged(3),
        at = std::time::UNIX_EPOCH + Duration::from_millis(at)
    )
    .await
    .unwrap();
    let scheduled = fetch_when_due(&*b.storage, &q, LEASE).await;
    assert!(
        near(scheduled.ready_at_ms, at, at + 1_000),
        "{scheduled:?} due {at}"
    );
}

async fn recurring_jobs_carry_their_headers_to_every_tick(kind: Kind) {
    let Some(b) = backend(kind, "hd-recurring", Retention::default()) else {
        return;
    };
    let client = Client::builder_shared(b.storage.clone())
        .filter(Tenant("acme"))
        .build();
    let id = format!("hd-rec-{kind:?}");
    // Registered inside a span: the ticks still carry no trace context (each is a new root).
    let span = tracing::info_span!("registering");
    let entry = {
        let _entered = span.enter();
        client
            .recurring(&id, "0 0 3 1 1 *", jobs::job!(tagged(1)))
            .header("own", "x")
            .header("tenant", "mine")
            .register()
    }
    .await
    .unwrap();
    let expected: Headers = [("tenant", "mine"), ("seen-queue", "hd"), ("own", "x")]
        .into_iter()
        .collect();
    assert_eq!(
        entry.headers, expected,
        "the caller's header wins over the filter's"
    );
    let listed = client.recurring_jobs().await.unwrap();
    let listed = listed.iter().find(|e| e.id == id).expect("listed");
    assert_eq!(listed.headers, expected);

    let triggered = client.trigger_recurring(&id).await.unwrap();
    let next = listed.next_run_ms.expect("a next run");
    let fired = b
        .storage
        .fire_recurring(&RecurringFire::new(
            listed,
            vec![next, next + 1],
            Some(next + 2),
        ))
        .await
        .unwrap()
        .expect("the entry was unchanged");
    assert_eq!(fired.len(), 2);
    for job in std::iter::once(&triggered).chain(&fired) {
        let info = client.job(job).await.unwrap().expect("stored");
        assert_eq!(info.headers, expected, "{job}");
        assert!(info.headers.get("traceparent").is_none());
    }

    // Registered again without its own headers: the filter's alone from then on.
    let again = client
        .recurring(&id, "0 0 3 1 1 *", jobs::job!(tagged(1)))
        .register()
        .await
        .unwrap();
    assert_eq!(again.headers.get("tenant"), Some("acme"));
    assert_eq!(again.headers.get("own"), None);
    let tick = client.trigger_recurring(&id).await.unwrap();
    let info = client.job(&tick).await.unwrap().unwrap();
    assert_eq!(info.headers, again.headers);

    // Headers over their bound are refused at registration, and nothing changes.
    let err = client
        .recurring(&id, "0 0 3 1 1 *", jobs::job!(tagged(1)))
        .header("big", "x".repeat(9 * 1024))
        .register()
        .await
        .unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
    let listed = client.recurring_jobs().await.unwrap();
    let listed = listed.iter().find(|e| e.id == id).unwrap();
    assert_eq!(listed.headers, again.headers);
}
