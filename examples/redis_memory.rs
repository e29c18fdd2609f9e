//! Measures the Redis memory a pending job costs: enqueues 100,000 jobs with one `u64` argument
//! under a fresh prefix, compares `INFO memory` `used_memory` before and after, then deletes the
//! keys it wrote.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --release --example redis_memory
//! ```
//!
//! Use a Redis nothing else writes to while it runs, or the figure includes their writes.

use jobs::storage::Monitoring;

const JOBS: u64 = 100_000;

#[jobs::background_job]
async fn one_u64(n: u64) {
    let _ = n;
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("INFO memory has no used_memory"))
}

// `job!` reads as a call; clippy sees the constructor it expands to.
#[allow(clippy::redundant_closure)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("REDIS_URL")
        .map_err(|_| anyhow::anyhow!("set REDIS_URL to the Redis to measure"))?;
    let prefix = format!("memory-probe-{}", std::process::id());
    let storage = jobs::RedisStorage::builder(&url)
        .prefix(&prefix)
        .connect()
        .await?;
    let client = jobs::Client::new(storage.clone());
    let mut conn = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;

    let before = used_memory(&mut conn).await?;
    for chunk in 0..JOBS / 10_000 {
        let base = chunk * 10_000;
        client
            .enqueue_many((base..base + 10_000).map(|n| jobs::job!(one_u64(n))))
            .await?;
    }
    let after = used_memory(&mut conn).await?;
    let queue = "default";
    let stats = storage.stats(queue).await?;
    let sample = storage
        .job(&jobs::JobId::new(queue, JOBS / 2))
        .await?
        .map(|j| format!("name `{}` args `{}`", j.name, j.args))
        .unwrap_or_default();
    let per_job = after.saturating_sub(before) as f64 / JOBS as f64;
    println!("pending jobs:       {}", stats.enqueued);
    println!("sample job:         {sample}");
    println!("used_memory before: {before} bytes");
    println!("used_memory after:  {after} bytes");
    println!("per pending job:    {per_job:.1} bytes");

    let keys = storage.queue_keys(queue);
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
    Ok(())
}
