//! The Redis backend's connections.
//!
//! Its own connection for enqueue transactions (`direct.rs`) logs in and selects the database
//! like the shared connection, serves Unix sockets, replaces a connection Redis closed, gives up
//! after the response timeout, and a call dropped before its reply never leaves that reply to be
//! read as the next call's.
//!
//! The shared connection (redis-rs's connection manager) sends a read once more when it fails
//! because Redis had closed the connection, so the first read after a restart succeeds.

use jobs::storage::{now_ms, NewJob};
use jobs::storage::{Delivery, Monitoring};
use jobs_tests::{numbered, unique_prefix, TestRedis};
use std::time::Duration;

/// Makes Redis hold back every write (for up to 10 s, until `CLIENT UNPAUSE`).
fn pause_writes(raw: &mut redis::Connection) {
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(10_000)
        .arg("WRITE")
        .query(raw)
        .unwrap();
}

/// The lines of `CLIENT LIST` for clients using database `db` of the Redis at `url` (asked on
/// a connection of its own, which is one of them), and how many of those ran `EXEC` last.
fn clients_in_db(url: &str, db: u32) -> (Vec<String>, usize) {
    let mut inspect = redis::Client::open(url).unwrap().get_connection().unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut inspect)
        .unwrap();
    let clients: Vec<String> = list
        .lines()
        .filter(|l| l.split(' ').any(|f| f == format!("db={db}")))
        .map(str::to_owned)
        .collect();
    let exec = clients.iter().filter(|l| l.contains(" cmd=exec ")).count();
    (clients, exec)
}

/// Reads back the jobs `numbered` made, whose ids are `ids`: each is stored with its argument.
async fn assert_numbered_stored(storage: &jobs::RedisStorage, ids: &[jobs::JobId]) {
    for (n, id) in ids.iter().enumerate() {
        let info = storage.job(id).await.unwrap().expect("stored");
        assert_eq!(info.args, format!("{{\"i\":{n}}}"));
    }
}

#[tokio::test]
async fn the_enqueue_connection_logs_in_and_selects_the_database() {
    let Some(r) = TestRedis::start_private("enqueue-auth", false) else {
        return;
    };
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret")
        .query(&mut r.raw())
        .unwrap();
    let url = format!("{}3", r.url().replacen("redis://", "redis://:s3cret@", 1));
    let storage = jobs::RedisStorage::builder(&url)
        .prefix(unique_prefix("enqueue-auth"))
        .build()
        .unwrap();
    let ids = storage.enqueue(numbered(5)).await.unwrap();
    assert_numbered_stored(&storage, &ids).await;

    let (clients, exec) = clients_in_db(&url, 3);
    // Three clients logged in on database 3: this one, the shared connection (which reserved
    // the job numbers and read the jobs back) and the enqueue connection, which ran the
    // transaction. Had the enqueue connection failed to log in, the shared connection would
    // have run it, and there would be two.
    assert_eq!(clients.len(), 3, "{clients:#?}");
    assert_eq!(
        exec, 1,
        "one client ran EXEC and nothing since: {clients:#?}"
    );
    let in_db0: usize = redis::cmd("DBSIZE")
        .query(
            &mut redis::Client::open(url.replace("/3", "/0"))
                .unwrap()
                .get_connection()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(in_db0, 0, "nothing was written to database 0");

    // A wrong password is a clear error, not a hang or a silent success.
    let wrong = url.replacen("s3cret", "wrong", 1);
    let err = jobs::RedisStorage::builder(&wrong)
        .prefix(unique_prefix("enqueue-auth"))
        .build()
        .unwrap()
        .enqueue(numbered(1))
        .await
        .unwrap_err();
    assert!(err.is_storage(), "{err:?}");
    assert!(!err.is_unreachable(), "Redis answered: {err:?}");
    assert!(err.to_string().contains("enqueueing jobs"), "{err}");
}

#[tokio::test]
async fn an_enqueue_after_a_redis_restart_reconnects() {
    let Some(mut r) = TestRedis::start_private("enqueue-restart", true) else {
        return;
    };
    let storage = r.storage("enqueue-restart", Default::default());
    let before = storage.enqueue(numbered(2)).await.unwrap();
    r.restart();
    // The enqueue connection Redis closed is noticed before use and replaced: the call succeeds.
    let after = storage.enqueue(numbered(3)).await.unwrap();
    for id in before.iter().chain(&after) {
        assert!(storage.job(id).await.unwrap().is_some(), "{id:?} stored");
    }
    assert_eq!(storage.stats("q").await.unwrap().enqueued, 5);
}

#[tokio::test]
async fn an_enqueue_dropped_before_its_reply_leaves_the_next_call_its_own_reply() {
    let Some(r) = TestRedis::start_private("enqueue-dropped", false) else {
        return;
    };
    let storage = r.storage("enqueue-dropped", Default::default());
    storage.enqueue(numbered(1)).await.unwrap();

    // Redis holds back writes, so the next transaction's reply does not come; its caller gives
    // up and drops the call.
    let mut raw = r.raw();
    pause_writes(&mut raw);
    let dropped =
        tokio::time::timeout(Duration::from_millis(300), storage.enqueue(numbered(1))).await;
    assert!(dropped.is_err(), "the paused transaction did not answer");

    // The next call is sent while Redis still holds writes back, so the dropped call's reply
    // has not come yet when it starts. Its transaction has more replies than the dropped one (a
    // delayed job adds a ZADD and an HSET): on the dropped call's connection it would read that
    // reply as its own and fail.
    let delayed = vec![
        NewJob::new("q", "n", "{\"i\":7}".to_owned()).run_at_ms(now_ms() + 60_000),
        NewJob::new("q", "n", "{\"i\":8}".to_owned()),
    ];
    let next = tokio::spawn({
        let storage = storage.clone();
        async move { storage.enqueue(delayed).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut raw).unwrap();
    let ids = next.await.unwrap().unwrap();
    for id in &ids {
        assert!(
            storage.job(id).await.unwrap().is_some(),
            "{id:?} stored when enqueue returned"
        );
    }
    let stats = storage.stats("q").await.unwrap();
    assert_eq!(stats.scheduled, 1);
    // The first job, this call's, and the dropped call's job if Redis ran it after all.
    assert!((2..=3).contains(&stats.enqueued), "{stats:?}");
}

#[tokio::test]
async fn an_enqueue_that_redis_does_not_answer_fails_after_the_response_timeout() {
    let Some(r) = TestRedis::start_private("enqueue-timeout", false) else {
        return;
    };
    let storage = jobs::RedisStorage::builder(r.url())
        .prefix(unique_prefix("enqueue-timeout"))
        .response_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    storage.enqueue(numbered(1)).await.unwrap();
    let mut raw = r.raw();
    pause_writes(&mut raw);
    let started = std::time::Instant::now();
    let err = storage.enqueue(numbered(1)).await.unwrap_err();
    let waited = started.elapsed();
    assert!(err.is_storage(), "{err:?}");
    assert!(err.to_string().contains("enqueueing jobs"), "{err}");
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "failed after {waited:?}, with a 200 ms response timeout"
    );
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut raw).unwrap();
    // The connection that timed out is gone; the next call gets a fresh one and its reply.
    let ids = storage.enqueue(numbered(2)).await.unwrap();
    for id in &ids {
        assert!(storage.job(id).await.unwrap().is_some(), "{id:?} stored");
    }
}

#[tokio::test]
async fn the_enqueue_connection_serves_a_unix_socket() {
    let Some(r) = TestRedis::start_on_unix_socket("enqueue-unix") else {
        return;
    };
    let storage = jobs::RedisStorage::builder(r.url())
        .prefix(unique_prefix("enqueue-unix"))
        .build()
        .unwrap();
    let ids = storage.enqueue(numbered(3)).await.unwrap();
    assert_numbered_stored(&storage, &ids).await;
    // Two clients besides this one: the shared connection and the enqueue connection, which
    // ran the transaction.
    let (clients, exec) = clients_in_db(r.url(), 0);
    assert_eq!(clients.len(), 3, "{clients:#?}");
    assert_eq!(exec, 1, "{clients:#?}");
}

#[tokio::test]
async fn the_first_reads_after_a_redis_restart_succeed() {
    let Some(mut r) = TestRedis::start_private("reads-restart", true) else {
        return;
    };
    let storage = r.storage("reads-restart", Default::default());
    let ids = storage.enqueue(numbered(3)).await.unwrap();
    storage
        .heartbeat("server-1", Duration::from_secs(60))
        .await
        .unwrap();
    // Each read below is the first request on the shared connection since Redis restarted, so
    // it is the one that finds the connection closed.
    r.restart();
    let info = storage.job(&ids[1]).await.unwrap().expect("stored");
    assert_eq!(info.args, "{\"i\":1}");
    r.restart();
    assert_eq!(storage.stats("q").await.unwrap().enqueued, 3);
    r.restart();
    assert_eq!(storage.servers().await.unwrap(), ["server-1"]);
    r.restart();
    storage
        .heartbeat("server-1", Duration::from_secs(60))
        .await
        .unwrap();
    // A request that is not safe to repeat is not sent again: a requeue (a script that moves a
    // failed job back to its queue) right after a restart reports the dropped connection.
    r.restart();
    let err = storage.requeue(&ids[0]).await.unwrap_err();
    assert!(err.is_storage(), "{err:?}");
    assert!(err.to_string().contains("Redis is unreachable"), "{err}");
    assert!(err.is_unreachable(), "{err:?}");
    // Redis itself is back: the next request works.
    storage.ping().await.unwrap();
}

#[tokio::test]
async fn a_read_while_redis_is_down_reports_the_refused_connection() {
    let Some(mut r) = TestRedis::start_private("reads-down", false) else {
        return;
    };
    let storage = r.storage("reads-down", Default::default());
    storage.stats("q").await.unwrap();
    r.kill();
    // The first read finds the connection closed and goes once more, which waits for the
    // reconnect: it reports why Redis cannot be reached, not the closed connection. So does
    // the next one.
    for _ in 0..2 {
        let err = storage.stats("q").await.unwrap_err();
        assert!(err.is_storage(), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("reading queue stats: Redis is unreachable"),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
        assert!(err.is_unreachable(), "{err:?}");
    }
}
