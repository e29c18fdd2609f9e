//! The `jobs` binary, run as a user runs it: against a private Redis and a PostgreSQL schema of
//! the test's own, with jobs stored through the library.

use jobs::storage::{Completion, FetchRequest, NewJob, Outcome, Retention};
use jobs::Storage;
use jobs_tests::postgres::TestPostgres;
use jobs_tests::TestRedis;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

fn jobs_cmd(url: &str, prefix: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobs"))
        .arg("--url")
        .arg(url)
        .arg("--prefix")
        .arg(prefix)
        .args(args)
        .env_remove("JOBS_URL")
        .output()
        .expect("the jobs binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stores 3 jobs on `mail` (one failed, one with a searchable argument) and 1 on `bulk`.
async fn fill(s: &dyn Storage) {
    s.enqueue(vec![
        NewJob::new("mail", "mail.send", r#"{"to":"ada@example.com"}"#.into()),
        NewJob::new("mail", "mail.send", r#"{"to":"bob@example.com"}"#.into()),
        NewJob::new("mail", "mail.send", r#"{"to":"eve@example.com"}"#.into()),
        NewJob::new("bulk", "bulk.noop", "{}".into()),
    ])
    .await
    .unwrap();
    let q: Vec<Arc<str>> = vec![Arc::from("mail")];
    let got = s
        .fetch(FetchRequest::new(
            &q,
            1,
            Duration::from_secs(30),
            Duration::ZERO,
        ))
        .await
        .unwrap();
    let failed = Outcome::Failed {
        reason: "smtp: connection refused".into(),
    };
    s.complete(&[Completion::new(got[0].lease(), 0, failed)])
        .await
        .unwrap();
}

/// Everything the CLI does, on the storage at `url` under `prefix`.
fn exercise(url: &str, prefix: &str) {
    let run = |args: &[&str]| jobs_cmd(url, prefix, args);

    let o = run(&["stats", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let queues = v["queues"].as_array().unwrap();
    let mail = queues.iter().find(|q| q["name"] == "mail").unwrap();
    assert_eq!(
        (mail["pending"].as_u64(), mail["failed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(v["totals"]["pending"], 3);

    let o = run(&["queues"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("mail") && stdout(&o).contains("PENDING"),
        "{}",
        stdout(&o)
    );

    let o = run(&["list", "--state", "failed", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let failed = v["jobs"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    let id = failed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(failed[0]["reason"], "smtp: connection refused");

    let o = run(&[
        "list", "--state", "enqueued", "--queue", "mail", "--search", "eve@",
    ]);
    assert!(stdout(&o).contains("eve@example.com"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("bob@example.com"), "{}", stdout(&o));

    let o = run(&["show", &id]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("last error: smtp: connection refused"),
        "{text}"
    );
    assert!(
        text.contains("\"to\": \"ada@example.com\""),
        "pretty arguments: {text}"
    );

    let o = run(&["show", "mail:999999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no job mail:999999"), "{}", stderr(&o));
    let o = run(&["show", "not-an-id"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a job id"), "{}", stderr(&o));

    let o = run(&["retry", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["retry", &id]);
    assert_eq!(o.status.code(), Some(1), "a second retry finds it enqueued");
    assert!(stderr(&o).contains("cannot be requeued"), "{}", stderr(&o));

    let o = run(&[
        "delete", "--all", "--state", "enqueued", "--queue", "mail", "--search", "bob@",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("deleted 1"), "{}", stdout(&o));

    assert!(run(&["pause", "bulk"]).status.success());
    let o = run(&["queues", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let bulk = v
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "bulk")
        .unwrap()
        .clone();
    assert_eq!(bulk["paused"], true);
    assert!(run(&["resume", "bulk"]).status.success());

    let o = run(&["recurring", "trigger", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no recurring job `nope`"));
    for read in [
        &["servers", "--json"][..],
        &["history", "--json"],
        &["batches"],
        &["recurring", "list"],
    ] {
        let o = run(read);
        assert!(o.status.success(), "{read:?}: {}", stderr(&o));
    }

    // Usage errors exit with 2.
    let o = run(&["list", "--state", "sideways"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["retry"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn the_cli_on_redis() {
    let Some(redis) = TestRedis::start("cli") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = rt.enter();
    let storage = redis.storage("cli", Retention::default());
    let prefix = storage.prefix().to_owned();
    rt.block_on(fill(&storage));
    exercise(redis.url(), &prefix);
}

#[test]
fn the_cli_on_postgres() {
    let Some(pg) = TestPostgres::start("cli") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = rt.enter();
    let storage = pg.storage_builder(Retention::default()).build().unwrap();
    let schema = storage.schema().to_owned();
    rt.block_on(fill(&storage));
    exercise(pg.url(), &schema);
}

#[test]
fn an_unreachable_storage_is_a_clear_error() {
    let o = jobs_cmd("redis://127.0.0.1:1", "x", &["stats"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Redis is unreachable"),
        "{}",
        stderr(&o)
    );
    let o = jobs_cmd("ftp://x", "x", &["stats"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a storage URL"),
        "{}",
        stderr(&o)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_jobs"))
        .arg("stats")
        .env_remove("JOBS_URL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no storage given"), "{}", stderr(&o));
}
