//! A worker process for crash tests: `jobs-test-worker <redis url> <prefix> <lease ms>
//! <concurrency> <queue>`. Runs until killed (or until stdin closes, for a graceful stop).
//! `JOBS_TEST_KEEP_SUCCEEDED=<n>` keeps up to `n` succeeded jobs (the default retention keeps
//! fewer), for tests that read every job back.

use jobs_tests as _;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, prefix, lease_ms, concurrency, queue] = args.as_slice() else {
        anyhow::bail!("usage: jobs-test-worker <url> <prefix> <lease ms> <concurrency> <queue>");
    };
    let mut storage = jobs::RedisStorage::builder(url).prefix(prefix);
    if let Ok(keep) = std::env::var("JOBS_TEST_KEEP_SUCCEEDED") {
        let retention = jobs::storage::Retention::default()
            .succeeded(keep.parse()?, Duration::from_secs(24 * 3600));
        storage = storage.retention(retention);
    }
    let storage = storage.build()?;
    let worker = jobs::Worker::builder(storage)
        .queues([queue.as_str()])
        .lease(Duration::from_millis(lease_ms.parse()?))
        .concurrency(concurrency.parse()?)
        .fetch_batch(concurrency.parse()?)
        .build()?;
    println!("ready");
    worker
        .run_until(async {
            // A closed stdin asks for a graceful stop.
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                    line.clear();
                }
            })
            .await;
        })
        .await?;
    Ok(())
}
