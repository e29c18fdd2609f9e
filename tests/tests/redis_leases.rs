//! Redis lease groups: one sorted-set entry per fetch, which lasts while any of its jobs is held,
//! counted exactly by mixed and large completion calls, and the per-job leases of earlier
//! versions reaped.

use jobs::storage::{now_ms, FetchRequest, Retention};
use jobs::storage::{Delivery, Monitoring};
use jobs::JobState;
use jobs_tests::suite::now_request;
use jobs_tests::{numbered, TestRedis};
use redis::Commands;
use std::sync::Arc;
use std::time::Duration;

/// The key of `queue` whose name ends with `:<name>`.
fn queue_key(s: &jobs::RedisStorage, queue: &str, name: &str) -> String {
    s.queue_keys(queue)
        .into_iter()
        .find(|k| k.ends_with(&format!(":{name}")))
        .unwrap_or_else(|| panic!("no key {name}"))
}

/// Once every job of queue `q` ended: no lease group, no lease count, nothing processing.
async fn assert_no_lease_left(s: &jobs::RedisStorage, raw: &mut redis::Connection) {
    let groups: usize = raw.zcard(queue_key(s, "q", "lease_groups")).unwrap();
    assert_eq!(groups, 0, "no lease group outlives its jobs");
    let left: usize = raw.hlen(queue_key(s, "q", "lease_counts")).unwrap();
    assert_eq!(left, 0, "no lease count outlives its group");
    assert_eq!(s.stats("q").await.unwrap().processing, 0);
}

#[tokio::test]
async fn a_lease_group_lasts_while_any_of_its_jobs_is_held() {
    let Some(r) = TestRedis::start("lease-groups") else {
        return;
    };
    let s = r.storage("lease-groups", Retention::default());
    s.enqueue(numbered(6)).await.unwrap();
    let q: Vec<Arc<str>> = vec![Arc::from("q")];
    let short = Duration::from_millis(300);
    let first = s
        .fetch(FetchRequest::new(&q, 3, short, Duration::ZERO))
        .await
        .unwrap();
    let second = s
        .fetch(FetchRequest::new(
            &q,
            3,
            Duration::from_secs(30),
            Duration::ZERO,
        ))
        .await
        .unwrap();
    assert_eq!((first.len(), second.len()), (3, 3));
    let groups = queue_key(&s, "q", "lease_groups");
    let mut raw = r.raw();
    let n_groups = |raw: &mut redis::Connection| -> usize { raw.zcard(&groups).unwrap() };
    assert_eq!(n_groups(&mut raw), 2, "one lease group per fetch");

    // The whole second fetch completes: its group goes, the first stays.
    let done = |f: &[jobs::storage::FetchedJob]| {
        f.iter()
            .map(|j| {
                jobs::storage::Completion::new(
                    j.lease(),
                    now_ms(),
                    jobs::storage::Outcome::Succeeded,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(s.complete(&done(&second)).await.unwrap(), vec![true; 3]);
    assert_eq!(
        n_groups(&mut raw),
        1,
        "a group none of whose jobs is held is removed"
    );
    // One job of the first fetch completes, the other two are abandoned: when the group's lease
    // runs out, exactly those two come back, each counted as orphaned (none was marked started).
    assert_eq!(s.complete(&done(&first[..1])).await.unwrap(), vec![true]);
    assert_eq!(
        n_groups(&mut raw),
        1,
        "the group lasts while two of its jobs are held"
    );
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    let again = s.fetch(now_request(&q, 10)).await.unwrap();
    let mut back: Vec<u64> = again.iter().map(|j| j.id.seq()).collect();
    back.sort_unstable();
    let mut abandoned: Vec<u64> = first[1..].iter().map(|j| j.id.seq()).collect();
    abandoned.sort_unstable();
    assert_eq!(
        back, abandoned,
        "only the unfinished jobs of the expired fetch come back"
    );
    assert!(again
        .iter()
        .all(|j| (j.attempt, j.crashes, j.orphaned) == (1, 0, 1)));
    let info = s.job(&first[0].id).await.unwrap().unwrap();
    assert_eq!(
        info.state,
        JobState::Succeeded,
        "a finished job is not reaped"
    );
    assert_eq!(s.complete(&done(&again)).await.unwrap(), vec![true; 2]);
    // Nothing is left behind once every job ended.
    assert_no_lease_left(&s, &mut raw).await;
}

/// One complete call holding successes of two fetches, a lease lost in the middle of one of them
/// and a failure under the other's token: each held lease ends once, the lost one stays held,
/// and each group counts exactly the jobs still held.
#[tokio::test]
async fn a_mixed_complete_call_counts_each_lease_group_exactly() {
    use jobs::storage::{Completion, Lease, LeaseToken, Outcome};
    let Some(r) = TestRedis::start("mixed-complete") else {
        return;
    };
    let s = r.storage("mixed-complete", Retention::default());
    s.enqueue(numbered(6)).await.unwrap();
    let q: Vec<Arc<str>> = vec![Arc::from("q")];
    let a = s.fetch(now_request(&q, 3)).await.unwrap();
    let b = s.fetch(now_request(&q, 3)).await.unwrap();
    assert_eq!((a.len(), b.len()), (3, 3));
    let ok = |lease: Lease, outcome: Outcome| Completion::new(lease, now_ms(), outcome);
    let stale = Lease {
        id: a[1].id.clone(),
        token: LeaseToken(a[1].token.0 + 1_000),
    };
    let failed = Outcome::Failed {
        reason: "boom".into(),
    };
    let applied = s
        .complete(&[
            ok(a[0].lease(), Outcome::Succeeded),
            ok(stale, Outcome::Succeeded),
            ok(b[0].lease(), Outcome::Succeeded),
            ok(b[1].lease(), failed),
            ok(a[2].lease(), Outcome::Succeeded),
        ])
        .await
        .unwrap();
    assert_eq!(applied, [true, false, true, true, true]);
    let st = s.stats("q").await.unwrap();
    assert_eq!(
        (st.succeeded_total, st.failed_total, st.processing),
        (3, 1, 2),
        "a[1] (completed with a stale token) and b[2] are still held"
    );
    let counts = queue_key(&s, "q", "lease_counts");
    let mut raw = r.raw();
    let held = |raw: &mut redis::Connection, token: u64| -> Option<i64> {
        raw.hget(&counts, token.to_string()).unwrap()
    };
    assert_eq!(
        held(&mut raw, a[0].token.0),
        Some(1),
        "a[1] left in a's group"
    );
    assert_eq!(
        held(&mut raw, b[0].token.0),
        Some(1),
        "b[2] left in b's group"
    );
    let info = s.job(&b[1].id).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Failed);
    // The rest end: both groups go, and nothing is left behind.
    let rest = [
        ok(a[1].lease(), Outcome::Succeeded),
        ok(b[2].lease(), Outcome::Succeeded),
    ];
    assert_eq!(s.complete(&rest).await.unwrap(), [true, true]);
    assert_no_lease_left(&s, &mut raw).await;
}

/// A complete call far larger than any the worker makes (its acker sends up to 1,000): the
/// script's chunked paths (ids past what it copies in one go, replies read in chunks, the
/// retention trim of 1,500 jobs) apply every completion once.
#[tokio::test]
async fn one_complete_call_of_2500_jobs_applies_them_all() {
    use jobs::storage::{Completion, Outcome};
    let Some(r) = TestRedis::start("big-complete") else {
        return;
    };
    let s = r.storage("big-complete", Retention::default());
    let n = 2_500;
    s.enqueue(numbered(n)).await.unwrap();
    let q: Vec<Arc<str>> = vec![Arc::from("q")];
    let got = s.fetch(now_request(&q, n)).await.unwrap();
    assert_eq!(got.len(), n);
    let all: Vec<_> = got
        .iter()
        .map(|j| Completion::new(j.lease(), now_ms(), Outcome::Succeeded))
        .collect();
    assert_eq!(s.complete(&all).await.unwrap(), vec![true; n]);
    assert_eq!(s.complete(&all).await.unwrap(), vec![false; n], "only once");
    let st = s.stats("q").await.unwrap();
    assert_eq!((st.succeeded_total, st.processing), (n as u64, 0));
    // The default retention keeps 1,000 succeeded jobs: 1,500 records and histories are gone.
    // (All finished in the same millisecond, so which ones is up to Redis's order for ties.)
    let mut raw = r.raw();
    let records: usize = raw.hlen(queue_key(&s, "q", "jobs")).unwrap();
    let kept: usize = raw.zcard(queue_key(&s, "q", "succeeded")).unwrap();
    assert_eq!((records, kept), (1_000, 1_000));
    let mut left = 0;
    for j in &got {
        if let Some(info) = s.job(&j.id).await.unwrap() {
            assert_eq!(info.state, JobState::Succeeded);
            left += 1;
        }
    }
    assert_eq!(left, 1_000);
    assert_no_lease_left(&s, &mut raw).await;
}

#[tokio::test]
async fn a_per_job_lease_left_by_an_earlier_version_is_reaped() {
    let Some(r) = TestRedis::start("legacy-lease") else {
        return;
    };
    let s = r.storage("legacy-lease", Retention::default());
    let id = s
        .enqueue(vec![jobs::storage::NewJob::new("q", "n", "{}".to_owned())])
        .await
        .unwrap()
        .remove(0);
    // What a worker of an earlier version left when it died holding the job: the id moved from
    // the pending list to the per-job lease set, its token in the tokens hash.
    let mut raw = r.raw();
    let _: () = raw
        .lrem(queue_key(&s, "q", "pending"), 1, id.seq())
        .unwrap();
    let _: () = raw
        .zadd(queue_key(&s, "q", "leases"), id.seq(), now_ms() - 1_000)
        .unwrap();
    let _: () = raw.hset(queue_key(&s, "q", "tokens"), id.seq(), 7).unwrap();
    assert_eq!(
        s.job(&id).await.unwrap().unwrap().state,
        JobState::Processing
    );
    let q: Vec<Arc<str>> = vec![Arc::from("q")];
    let got = s.fetch(now_request(&q, 10)).await.unwrap();
    assert_eq!(got.len(), 1, "the expired per-job lease is reaped");
    assert_eq!(
        (got[0].id.seq(), got[0].attempt, got[0].orphaned),
        (id.seq(), 1, 1)
    );
    let left: usize = raw.zcard(queue_key(&s, "q", "leases")).unwrap();
    assert_eq!(left, 0);
}
