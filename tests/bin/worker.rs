//! A worker process for crash tests: `jobs-test-worker <url> <prefix> <lease ms>
//! <concurrency> <queue>`, on Redis (`redis://…`; the prefix is the key prefix) or PostgreSQL
//! (`postgres://…`; the prefix is the schema). Runs until killed (or until stdin closes, for a
//! graceful stop).
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
    let mut retention = jobs::storage::Retention::default();
    if let Ok(keep) = std::env::var("JOBS_TEST_KEEP_SUCCEEDED") {
        retention = retention.succeeded(keep.parse()?, Duration::from_secs(24 * 3600));
    }
    let storage: std::sync::Arc<dyn jobs::Storage> = if url.starts_with("postgres") {
        std::sync::Arc::new(
            jobs::PostgresStorage::builder(url)
                .schema(prefix)
                .retention(retention)
                .build()?,
        )
    } else {
        std::sync::Arc::new(
            jobs::RedisStorage::builder(url)
                .prefix(prefix)
                .retention(retention)
                .build()?,
        )
    };
    let worker = jobs::Worker::builder_shared(storage)
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
