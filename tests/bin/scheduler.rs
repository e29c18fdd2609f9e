//! A worker process that only schedules recurring jobs, for the multi-process exactly-once test:
//! `jobs-test-scheduler <redis url> <prefix>`. It prints one line per tick it enqueued (the
//! scheduler's `jobs::recurring` log events) and runs until stdin closes.

use jobs_tests as _;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, prefix] = args.as_slice() else {
        anyhow::bail!("usage: jobs-test-scheduler <url> <prefix>");
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("jobs::recurring=info"))
        .with_ansi(false)
        .without_time()
        .with_writer(std::io::stdout)
        .init();
    let storage = jobs::RedisStorage::builder(url).prefix(prefix).build()?;
    let worker = jobs::Worker::builder(storage)
        // A queue nobody enqueues to: the enqueued ticks stay for the test to count.
        .queues(["idle"])
        .recurring_poll_interval(Duration::from_millis(200))
        .build()?;
    println!("ready");
    worker
        .run_until(async {
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
