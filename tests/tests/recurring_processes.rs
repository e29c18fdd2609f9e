//! Three worker processes schedule the same per-second recurring job on one Redis: every tick is
//! enqueued exactly once (no tick twice, none skipped), with no leader election.

use jobs::recurring::Misfire;
use jobs::storage::Monitoring;
use jobs_tests::{eventually, unique_prefix, TestRedis};
use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[jobs::background_job(queue = "ticks")]
async fn tick() {}

fn spawn_scheduler(url: &str, prefix: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_jobs-test-scheduler"))
        .args([url, prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test scheduler starts")
}

/// The `(tick_ms, job id)` of every `enqueued a tick` line.
fn ticks_of(output: &str) -> Vec<(u64, String)> {
    output
        .lines()
        .filter(|l| l.contains("enqueued a tick"))
        .map(|l| {
            let field = |name: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .unwrap_or_else(|| panic!("no {name} in {l}"))
                    .to_owned()
            };
            (field("tick_ms=").parse().expect("a tick"), field("job="))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_enqueue_each_tick_exactly_once() {
    let Some(r) = TestRedis::start("rec-procs") else {
        return;
    };
    let prefix = unique_prefix("rec-procs");
    let storage = jobs::RedisStorage::builder(r.url())
        .prefix(&prefix)
        .build()
        .unwrap();
    let client = jobs::Client::new(storage.clone());
    let registered = client
        .recurring("every-second", "* * * * * *", jobs::job!(tick()))
        .misfire(Misfire::RunAll)
        .register()
        .await
        .unwrap();
    let first_tick = registered.next_run_ms.unwrap();

    let mut children: Vec<Child> = (0..3).map(|_| spawn_scheduler(r.url(), &prefix)).collect();
    // Wait for six ticks, however slow the machine.
    let ticked = eventually(Duration::from_secs(120), || async {
        client.recurring_jobs().await.unwrap()[0]
            .last_run_ms
            .is_some_and(|l| l >= first_tick + 5_000)
    })
    .await;
    // Close stdin: a graceful stop; then collect what each process enqueued.
    let mut outputs = Vec::new();
    for child in &mut children {
        drop(child.stdin.take());
    }
    for mut child in children {
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(child.wait().unwrap().success(), "{out}");
        outputs.push(out);
    }
    assert!(ticked, "six ticks were enqueued: {outputs:?}");

    let mut by_tick: BTreeMap<u64, Vec<(usize, String)>> = BTreeMap::new();
    for (process, out) in outputs.iter().enumerate() {
        for (t, job) in ticks_of(out) {
            by_tick.entry(t).or_default().push((process, job));
        }
    }
    let entry = client.recurring_jobs().await.unwrap().remove(0);
    let last = entry.last_run_ms.unwrap();
    // Every tick from the first to the last, each enqueued by exactly one process.
    let expected: Vec<u64> = (first_tick..=last).step_by(1_000).collect();
    assert_eq!(by_tick.keys().copied().collect::<Vec<_>>(), expected);
    for (t, by) in &by_tick {
        assert_eq!(by.len(), 1, "tick {t} enqueued {} times: {by:?}", by.len());
    }
    // And the queue holds exactly those jobs.
    let stats = storage.stats("ticks").await.unwrap();
    assert_eq!(stats.enqueued, expected.len() as u64);
    let mut per_process = [0usize; 3];
    for by in by_tick.values() {
        per_process[by[0].0] += 1;
    }
    println!(
        "{} ticks; enqueued per process: {per_process:?}",
        expected.len()
    );
}
