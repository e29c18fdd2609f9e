//! Delayed jobs: `schedule!(f(..), in = duration)` and `schedule!(f(..), at = time)`.
//!
//! Schedules jobs a little into the future while a worker idles, and prints how late each one
//! started. The idle worker does not poll: it sleeps until the next job is due, and a new
//! schedule wakes it to recompute that.
//!
//! ```text
//! cargo run --example delayed                                   # in memory
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example delayed  # on Redis
//! ```

use jobs::storage::now_ms;
use jobs::{background_job, schedule, Client, JobState, Worker};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How late each job started, in ms after its due time.
static LATENESS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[background_job(queue = "delayed")]
async fn remind(n: u64, due_ms: u64) {
    let started = now_ms();
    assert!(started >= due_ms, "job {n} started before its time");
    LATENESS.lock().unwrap().push(started - due_ms);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage: Arc<dyn jobs::Storage> = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());
    client.install();

    let worker = Worker::builder_shared(storage.clone())
        .queues(["delayed"])
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    // Let the worker go idle first: each schedule below has to wake it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    const N: u64 = 20;
    println!("scheduling {N} jobs over the next 2 s while the worker idles");
    let mut ids = Vec::new();
    for n in 0..N {
        let delay = Duration::from_millis(100 * (n + 1));
        if n % 2 == 0 {
            // `in = duration`: due `delay` from now.
            let due = now_ms() + 100 * (n + 1);
            ids.push(schedule!(remind(n, due), in = delay).await?);
        } else {
            // `at = time`: due at a wall-clock time.
            let at = SystemTime::now() + delay;
            let due = u64::try_from(at.duration_since(UNIX_EPOCH)?.as_millis())?;
            ids.push(schedule!(remind(n, due), at = at).await?);
        }
        // Spread the schedules out, so jobs come due while others are being scheduled.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "  {} is {}",
        ids[0],
        client
            .job(&ids[0])
            .await?
            .map_or(JobState::Deleted, |i| i.state)
    );

    loop {
        let done = client.stats("delayed").await?;
        if done.scheduled == 0 && done.enqueued == 0 && done.processing == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    running.await??;

    let mut late = LATENESS.lock().unwrap().clone();
    late.sort_unstable();
    assert_eq!(late.len(), usize::try_from(N)?, "every job ran once");
    println!(
        "all {N} ran, none early; lateness after the due time: min {} ms, median {} ms, max {} ms",
        late[0],
        late[late.len() / 2],
        late[late.len() - 1]
    );
    Ok(())
}
