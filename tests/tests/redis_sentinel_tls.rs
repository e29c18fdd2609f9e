//! `RedisStorage` behind Redis Sentinel over TLS (feature `tls`): one master, one replica and
//! three sentinels started by the harness with TLS ports and a throw-away CA
//! (`TestSentinel::start_tls`). With the CA given to `tls_ca_pem`, the storage asks the
//! sentinels over TLS, connects to the master they name over TLS, runs jobs, and follows a
//! switch-over; a CA that did not sign their certificates, and a missing client certificate on
//! servers that ask for one, fail `connect()` at once with an error that says so.

// `enqueue!(storm(n, 0))` reads as a call; clippy sees the one-argument constructor it expands to.
#![allow(clippy::redundant_closure)]

use jobs::storage::Retention;
use jobs_tests::jobs_for_tests::storm;
use jobs_tests::sentinel::TestSentinel;
use jobs_tests::tls::{connect_error, enqueue_and_perform, unrelated_ca_pem};
use std::time::{Duration, Instant};

/// One deployment at a time: each is 5 processes on a small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_behind_tls_sentinels_with_a_private_ca() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(deployment) = TestSentinel::start_tls("sentinel-tls", false) else {
        return;
    };
    let storage = deployment
        .storage_builder("sentinel-tls", Retention::default())
        .tls_ca_pem(deployment.ca_pem())
        .connect()
        .await
        .unwrap();
    enqueue_and_perform(&storage, 20).await;
    // The storage's connections are on the master the sentinels name, at its TLS port (the
    // storage cannot know the plain port): a client there that is neither a sentinel
    // (`name=sentinel-…`) nor the replica (`flags=S`).
    let master = deployment.master().expect("a sentinel names the master");
    assert!(deployment.data_ports().contains(&master), "{master}");
    let clients = deployment
        .cli(master, &["CLIENT", "LIST"])
        .expect("CLIENT LIST on the master");
    let local = format!(" laddr=127.0.0.1:{master} ");
    assert!(
        clients.lines().any(|c| c.contains(&local)
            && !c.contains(" name=sentinel-")
            && !c.contains(" flags=S ")),
        "no client of the storage on the master's TLS port {master}: {clients}"
    );
}

/// Over TLS too the storage asks a sentinel every second which master it names, and leaves one
/// the sentinels replaced while it is up (a `SENTINEL FAILOVER`) within seconds, long before
/// the old master drops its clients (about 11 s): jobs enqueued after the switch-over land on
/// the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_over_is_followed_over_tls() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(deployment) = TestSentinel::start_tls("sentinel-tls-switch", false) else {
        return;
    };
    let storage = deployment
        .storage_builder("sentinel-tls-switch", Retention::default())
        .tls_ca_pem(deployment.ca_pem())
        .connect()
        .await
        .unwrap();
    let old = deployment.master().expect("a sentinel names the master");
    let new = *deployment
        .data_ports()
        .iter()
        .find(|&&p| p != old)
        .expect("a replica");
    deployment.switch_over();
    deployment.wait_master(new, Duration::from_secs(30));
    let named = Instant::now();
    let keys = |port| {
        deployment
            .cli(port, &["DBSIZE"])
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("DBSIZE")
    };
    let before = keys(new);
    // Enqueues keep flowing (the check runs while requests do); one must land on the new
    // master well before the old one would drop the storage's connection.
    let client = jobs::Client::new(storage.clone());
    let mut n = 0;
    let moved = loop {
        n += 1;
        let _ = jobs::enqueue!(&client, storm(n, 0)).await;
        if keys(new) > before {
            break Some(named.elapsed());
        }
        if named.elapsed() > Duration::from_secs(8) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("after the switch-over, the first enqueue on the new master came {moved:?} after the sentinels named it");
    assert!(
        moved.is_some(),
        "the storage did not move to the new master {new} within 8 s of the sentinels naming \
         it (logs:\n{})",
        deployment.logs(20)
    );
    enqueue_and_perform(&storage, 5).await;
}

#[tokio::test]
async fn a_ca_that_did_not_sign_the_certificates_is_a_clear_error_at_connect() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(deployment) = TestSentinel::start_tls("sentinel-tls-untrusted", false) else {
        return;
    };
    // Neither an unrelated CA nor the system's root certificates (no CA given) trust them.
    for ca in [Some(unrelated_ca_pem()), None] {
        let mut builder =
            deployment.storage_builder("sentinel-tls-untrusted", Retention::default());
        if let Some(ca) = &ca {
            builder = builder.tls_ca_pem(ca.as_str());
        }
        let err = connect_error(builder, "TLS sentinels").await;
        let message = err.to_string();
        assert!(
            message.contains("certificate") && message.contains("not trusted"),
            "{message}"
        );
        assert!(message.contains("tls_ca_pem"), "says what to do: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_shown_to_sentinels_and_master_that_ask_for_one() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(deployment) = TestSentinel::start_tls("sentinel-tls-mutual", true) else {
        return;
    };
    let (cert, key) = deployment.client_cert_pem();
    let storage = deployment
        .storage_builder("sentinel-tls-mutual", Retention::default())
        .tls_ca_pem(deployment.ca_pem())
        .tls_client_cert_pem(cert, key)
        .connect()
        .await
        .unwrap();
    enqueue_and_perform(&storage, 5).await;
    // Without one, the sentinels end the handshake.
    let builder = deployment
        .storage_builder("sentinel-tls-mutual", Retention::default())
        .tls_ca_pem(deployment.ca_pem());
    let err = connect_error(builder, "TLS sentinels asking for a client certificate").await;
    assert!(err.to_string().contains("tls_client_cert_pem"), "{err}");
}
