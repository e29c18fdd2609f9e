//! The Redis backend over TLS (`rediss://`, feature `tls`) and as an ACL user, on a private
//! `redis-server` with a plain port and a TLS port and a throw-away CA (`jobs_tests::tls`):
//! jobs run end to end; every connection the storage opens logs in as the URL's user; and a
//! wrong password, an unknown user, an untrusted certificate and a plain URL to the TLS port
//! each fail `connect()` at once with an error that says what is wrong.

// `job!(noop(n))` reads as a call; clippy sees the one-argument constructor it expands to.
#![allow(clippy::redundant_closure)]

use jobs_tests::jobs_for_tests::noop;
use jobs_tests::tls::{self, enqueue_and_perform, TlsRedis, ACL_PASSWORD, ACL_USER};
use jobs_tests::tls_cluster::TlsCluster;
use jobs_tests::unique_prefix;
use std::time::Duration;

/// `connect()` of a storage at `url` (with `ca` trusted if given), which must fail, and not
/// hang; returns its error.
async fn connect_error(url: &str, ca: Option<&str>) -> jobs::Error {
    let mut builder = jobs::RedisStorage::builder(url).prefix(unique_prefix("tls-error"));
    if let Some(ca) = ca {
        builder = builder.tls_ca_pem(ca);
    }
    tls::connect_error(builder, url).await
}

/// Of `clients` (`CLIENT LIST` lines), those whose last command was `EXEC`.
fn ran_exec_last(clients: &[String]) -> Vec<&String> {
    clients
        .iter()
        .filter(|c| c.contains(" cmd=exec "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_over_tls_with_a_private_ca() {
    let Some(r) = TlsRedis::start("tls-e2e", false) else {
        return;
    };
    let storage = jobs::RedisStorage::builder(&r.tls_url())
        .prefix(unique_prefix("tls-e2e"))
        .tls_ca_pem(r.ca_pem())
        .connect()
        .await
        .unwrap();
    enqueue_and_perform(&storage, 20).await;
    // Under TLS there is no enqueue connection of its own: the enqueue transactions went on
    // the shared connection, which read the stats since, so no client ran `EXEC` last (on
    // plain TCP, the enqueue connection does; see below).
    let clients = r.clients(true);
    assert!(!clients.is_empty(), "the storage is connected over TLS");
    assert_eq!(
        ran_exec_last(&clients),
        Vec::<&String>::new(),
        "{clients:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_as_an_acl_user_over_tls_and_plain_tcp() {
    let Some(r) = TlsRedis::start("acl-e2e", false) else {
        return;
    };
    let mut storages = Vec::new();
    for url in [
        r.plain_url_as(ACL_USER, ACL_PASSWORD),
        r.tls_url_as(ACL_USER, ACL_PASSWORD),
    ] {
        let mut builder = jobs::RedisStorage::builder(&url).prefix(unique_prefix("acl-e2e"));
        if url.starts_with("rediss://") {
            builder = builder.tls_ca_pem(r.ca_pem());
        }
        let storage = builder.connect().await.unwrap();
        enqueue_and_perform(&storage, 20).await;
        storages.push(storage);
    }
    // Every client the storages opened, on either port, logged in as the ACL user.
    let user = format!(" user={ACL_USER} ");
    let (plain, tls) = (r.clients(false), r.clients(true));
    assert!(!plain.is_empty() && !tls.is_empty(), "{plain:#?} {tls:#?}");
    for client in plain.iter().chain(&tls) {
        assert!(client.contains(&user), "{client}");
    }
    // The plain storage's enqueue connection is among them: it ran the enqueue transactions
    // (`EXEC`) after `AUTH jobsuser secret`, while the shared connection read the stats since.
    // Had it failed to log in, the shared connection would have run them.
    assert_eq!(ran_exec_last(&plain).len(), 1, "{plain:#?}");
    assert_eq!(ran_exec_last(&tls).len(), 0, "{tls:#?}");
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_at_connect() {
    let Some(r) = TlsRedis::start("acl-wrong-password", false) else {
        return;
    };
    for url in [
        r.plain_url_as(ACL_USER, "wrong"),
        r.tls_url_as(ACL_USER, "wrong"),
    ] {
        let ca = url.starts_with("rediss://").then_some(r.ca_pem());
        let err = connect_error(&url, ca).await;
        let message = err.to_string();
        assert!(err.is_storage(), "{err:?}");
        assert!(
            message.contains("refused the login") && message.contains("wrong password"),
            "{message}"
        );
        assert!(
            !message.contains("wrong@"),
            "the password is not shown: {message}"
        );
    }
}

#[tokio::test]
async fn an_unknown_acl_user_is_a_clear_error_at_connect() {
    let Some(r) = TlsRedis::start("acl-unknown-user", false) else {
        return;
    };
    let err = connect_error(&r.tls_url_as("nobody", ACL_PASSWORD), Some(r.ca_pem())).await;
    let message = err.to_string();
    assert!(
        message.contains("refused the login") && message.contains("unknown user"),
        "{message}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_clear_error_at_connect() {
    let Some(r) = TlsRedis::start("tls-untrusted", false) else {
        return;
    };
    // Without the CA, the server's certificate is checked against the system's roots only.
    let err = connect_error(&r.tls_url(), None).await;
    let message = err.to_string();
    assert!(
        message.contains("certificate") && message.contains("not trusted"),
        "{message}"
    );
    assert!(message.contains("tls_ca_pem"), "says what to do: {message}");
}

#[tokio::test]
async fn a_plain_url_to_a_tls_port_is_a_clear_error_at_connect() {
    let Some(r) = TlsRedis::start("tls-plain-url", false) else {
        return;
    };
    let err = connect_error(&r.plain_url_to_tls_port(), None).await;
    let message = err.to_string();
    assert!(message.contains("rediss://"), "{message}");
}

#[tokio::test]
async fn a_client_certificate_is_shown_to_a_server_that_asks_for_one() {
    let Some(r) = TlsRedis::start("tls-mutual", true) else {
        return;
    };
    let storage = jobs::RedisStorage::builder(&r.tls_url())
        .prefix(unique_prefix("tls-mutual"))
        .tls_ca_pem(r.ca_pem())
        .tls_client_cert_pem(r.client_cert_pem(), r.client_key_pem())
        .connect()
        .await
        .unwrap();
    enqueue_and_perform(&storage, 5).await;
    // Without one, the server ends the handshake.
    let err = connect_error(&r.tls_url(), Some(r.ca_pem())).await;
    assert!(err.to_string().contains("tls_client_cert_pem"), "{err}");
}

#[tokio::test]
async fn a_tls_url_to_a_plain_port_fails_at_connect_without_hanging() {
    let Some(r) = TlsRedis::start("tls-to-plain-port", false) else {
        return;
    };
    let url = r.plain_url().replacen("redis://", "rediss://", 1);
    let err = connect_error(&url, Some(r.ca_pem())).await;
    assert!(err.to_string().contains("use a `redis://` URL"), "{err}");
}

/// The storage touches only keys that start with `{<prefix>`: a user limited to those runs
/// jobs (its worker registers itself, fetches, completes, waits idle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_limited_to_the_prefix_keys_runs_jobs() {
    let Some(r) = TlsRedis::start("acl-prefix-keys", false) else {
        return;
    };
    let prefix = unique_prefix("acl-prefix-keys");
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("narrow")
        .arg("on")
        .arg(">narrowpw")
        .arg(format!("~{{{prefix}*"))
        .arg("+@all")
        .query(&mut r.raw())
        .unwrap();
    let storage = jobs::RedisStorage::builder(&r.tls_url_as("narrow", "narrowpw"))
        .prefix(prefix)
        .tls_ca_pem(r.ca_pem())
        .connect()
        .await
        .unwrap();
    enqueue_and_perform(&storage, 10).await;
    let log: Vec<redis::Value> = redis::cmd("ACL").arg("LOG").query(&mut r.raw()).unwrap();
    assert!(log.is_empty(), "no command was refused: {log:?}");

    // Under another prefix, every key is out of bounds: the error says what is missing.
    let other = jobs::RedisStorage::builder(&r.tls_url_as("narrow", "narrowpw"))
        .prefix(unique_prefix("elsewhere"))
        .tls_ca_pem(r.ca_pem())
        .connect()
        .await
        .unwrap();
    let err = jobs::Client::new(other)
        .enqueue(jobs::job!(noop(1)))
        .await
        .unwrap_err();
    eprintln!("{err}");
    assert!(err.to_string().contains("lacks a permission"), "{err}");
}

/// On a cluster, the CA applies to every node, and the blocking connections of idle fetches
/// (one per primary, made from the first URL's settings) use TLS too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_on_a_cluster_over_tls() {
    let Some(cluster) = TlsCluster::start("tls-cluster") else {
        return;
    };
    let storage = jobs::RedisStorage::cluster_builder(cluster.tls_urls())
        .prefix(unique_prefix("tls-cluster"))
        .tls_ca_pem(cluster.ca_pem())
        .connect()
        .await
        .unwrap();
    enqueue_and_perform(&storage, 20).await;
    // An idle fetch blocks over TLS on the queue's primary, and an enqueue wakes it.
    let waiting = {
        let storage = storage.clone();
        tokio::spawn(async move {
            let queues = jobs_tests::suite::queues(&["idle"]);
            let request = jobs::storage::FetchRequest::new(
                &queues,
                1,
                Duration::from_secs(30),
                Duration::from_secs(20),
            );
            jobs::storage::Delivery::fetch(&storage, request)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    jobs::storage::Delivery::enqueue(&storage, vec![jobs_tests::suite::job("idle", 1)])
        .await
        .unwrap();
    let fetched = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiting fetch is woken")
        .unwrap();
    assert_eq!(fetched.len(), 1);

    // Without the CA, the first node's certificate is not trusted.
    let err = jobs::RedisStorage::cluster_builder(cluster.tls_urls())
        .prefix(unique_prefix("tls-cluster"))
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not trusted"), "{err}");
}
