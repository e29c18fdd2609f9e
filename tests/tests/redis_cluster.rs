//! What is particular to a Redis Cluster (the shared suite runs on one too, as `redis_cluster`):
//! queues spread over the primaries by their hash tags, an idle fetch blocks on each primary and
//! wakes on an enqueue to any of them, and bad node lists are refused clearly.

use jobs::storage::{Delivery, FetchRequest, NewJob, Retention};
use jobs_tests::cluster::TestCluster;
use jobs_tests::free_port;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_fetch_wakes_on_an_enqueue_to_any_primary() {
    let Some(cluster) = TestCluster::shared("cluster-wake") else {
        return;
    };
    let storage = cluster
        .storage_builder("cluster-wake", Retention::default())
        .build()
        .unwrap();
    // One queue on each primary.
    let mut queues: Vec<Arc<str>> = Vec::new();
    let mut primaries = BTreeSet::new();
    for n in 0.. {
        let queue = format!("q{n}");
        let primary = cluster.primary_of(&format!("{{{}:{queue}}}", storage.prefix()));
        if primaries.insert(primary) {
            queues.push(Arc::from(queue));
        }
        if primaries.len() == 3 {
            break;
        }
    }
    let other = cluster
        .storage_builder("cluster-wake", Retention::default())
        .prefix(storage.prefix())
        .build()
        .unwrap();
    for queue in &queues {
        let waiting = {
            let (storage, queues) = (storage.clone(), queues.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let req = FetchRequest::new(
                    &queues,
                    10,
                    Duration::from_secs(30),
                    Duration::from_secs(20),
                );
                let jobs = storage.fetch(req).await.unwrap();
                (jobs, started.elapsed())
            })
        };
        // Let the fetch find nothing and block.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ids = other
            .enqueue(vec![NewJob::new(queue.clone(), "n", "{}".to_owned())])
            .await
            .unwrap();
        let (jobs, waited) = waiting.await.unwrap();
        assert_eq!(jobs.len(), 1, "the fetch woke with the job of `{queue}`");
        assert_eq!(jobs[0].id, ids[0]);
        assert!(
            waited < Duration::from_secs(15),
            "the fetch waited for its timeout instead of waking ({waited:?})"
        );
    }
}

#[tokio::test]
async fn a_cluster_that_cannot_be_reached_is_a_clear_error() {
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let err = jobs::RedisStorage::connect_cluster([dead.as_str()])
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains(&dead), "{err}");
}

#[tokio::test]
async fn several_urls_for_one_redis_are_refused() {
    let err = jobs::RedisStorage::builder("redis://127.0.0.1:7000,redis://127.0.0.1:7001")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("cluster_builder"), "{err}");
    let err = jobs::RedisStorage::cluster_builder(Vec::<String>::new())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("at least one node"), "{err}");
}
