//! Queue names given at a call (`Client::enqueue_on`, `enqueue_many_on`, a worker's `queues`)
//! follow the rule `#[background_job(queue = ...)]` checks at compile time: a bad one is a
//! configuration error before anything is stored.

use jobs::{background_job, Client, MemoryStorage, Worker};

#[background_job(name = "queue_names.noop")]
async fn noop(n: u64) {
    let _ = n;
}

const BAD: [&str; 5] = ["", "two words", "a:b", "{tag}", "tab\t"];

#[tokio::test]
async fn enqueue_on_refuses_a_bad_queue_name_and_stores_nothing() {
    let client = Client::new(MemoryStorage::new());
    for queue in BAD {
        let one = client.enqueue_on(queue, jobs::job!(noop(1))).await;
        let e = one.expect_err(queue);
        assert!(e.is_config(), "{queue:?}: {e}");
        assert!(e.to_string().contains("enqueue_on"), "{queue:?}: {e}");
        let many = client
            .enqueue_many_on(queue, [jobs::job!(noop(2)), jobs::job!(noop(3))])
            .await;
        let e = many.expect_err(queue);
        assert!(e.is_config(), "{queue:?}: {e}");
    }
    for queue in BAD {
        let stats = client.stats(queue).await.expect("stats");
        assert_eq!(
            stats.enqueued, 0,
            "a refused call stored a job on {queue:?}"
        );
    }
    // A good name next to the bad ones still works.
    let id = client
        .enqueue_on("mail-eu", jobs::job!(noop(4)))
        .await
        .expect("a good name");
    assert_eq!(id.queue(), "mail-eu");
    assert_eq!(client.stats("mail-eu").await.unwrap().enqueued, 1);
}

#[test]
fn a_worker_refuses_a_bad_queue_name() {
    for queue in BAD {
        let e = Worker::builder(MemoryStorage::new())
            .queues(["default", queue])
            .build()
            .map(drop)
            .expect_err(queue);
        assert!(e.is_config(), "{queue:?}: {e}");
        assert!(
            e.to_string().contains("the worker's queues"),
            "{queue:?}: {e}"
        );
        let e = Worker::builder(MemoryStorage::new())
            .queues_weighted([(queue, 1)])
            .build()
            .map(drop)
            .expect_err(queue);
        assert!(e.is_config(), "{queue:?}: {e}");
    }
}
