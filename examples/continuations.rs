//! Continuations: jobs that run after another job ends, reading its return value.
//!
//! Runs on the in-memory storage; set `REDIS_URL` to run on Redis.
//!
//! ```text
//! cargo run --example continuations
//! ```

use jobs::{background_job, enqueue, Client, Finish, JobContext, JobState, Worker};
use std::sync::Arc;
use std::time::Duration;

/// Returns a value: continuations can read it with `ctx.parent_result()`.
#[background_job(queue = "continuations-example")]
async fn charge_order(order: u64) -> Result<u64, String> {
    println!("  charging order {order}");
    Ok(order * 100)
}

#[background_job(queue = "continuations-example")]
async fn send_receipt(order: u64, ctx: JobContext) -> Result<(), String> {
    let cents: Option<u64> = ctx.parent_result().await.map_err(|e| e.to_string())?;
    println!("  receipt for order {order}: charged {cents:?} cents");
    Ok(())
}

#[background_job(queue = "continuations-example")]
async fn audit(order: u64) {
    println!("  audit of order {order} (runs however the charge ended)");
}

#[background_job(queue = "continuations-example")]
async fn refund_hold(order: u64) {
    println!("  releasing the hold of order {order} (only if the charge was deleted)");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage: Arc<dyn jobs::Storage> = jobs_examples::storage_from_env().await?;
    let client = Client::from_shared(storage.clone());

    let charge = enqueue!(&client, charge_order(42)).await?;
    let receipt = client
        .continue_with(&charge, jobs::job!(send_receipt(42)))
        .await?;
    let audited = client
        .continue_with(&charge, jobs::job!(audit(42)))
        .on(Finish::Any)
        .await?;
    let hold = client
        .continue_with(&charge, jobs::job!(refund_hold(42)))
        .on(Finish::Deleted)
        .await?;
    for id in [&receipt, &audited, &hold] {
        let state = client.job(id).await?.map(|j| j.state);
        println!("continuation {id} is {state:?}");
    }

    println!("running a worker");
    let worker = Worker::builder_shared(storage.clone())
        .queues(["continuations-example"])
        .build()?;
    let c = client.clone();
    let watched = [receipt.clone(), audited.clone(), hold.clone()];
    worker
        .run_until(async move {
            loop {
                let mut done = true;
                for id in &watched {
                    let state = c.job(id).await.ok().flatten().map(|j| j.state);
                    done &= state.is_some_and(JobState::is_final);
                }
                if done {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;
    for id in [&receipt, &audited, &hold] {
        let state = client.job(id).await?.map(|j| j.state);
        println!("continuation {id} ended {state:?}");
    }
    assert_eq!(
        client.job(&receipt).await?.map(|j| j.state),
        Some(JobState::Succeeded)
    );
    assert_eq!(
        client.job(&hold).await?.map(|j| j.state),
        Some(JobState::Deleted)
    );
    Ok(())
}
