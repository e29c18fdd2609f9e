//! Opening a storage: the builders and `connect` shorthands of [`RedisStorage`], and the links
//! to one Redis, a Redis Cluster or the master Sentinel names that a built storage shares.

use super::config::{ReplicasAck, Target};
use super::connections::{Link, NodeLink};
#[cfg(unix)]
use super::direct::DirectConnection;
use super::scripts::Scripts;
use super::{cluster, sentinel, tls, Inner, RedisStorage, RedisStorageBuilder};
use crate::error::{Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// The connections to the one Redis at `url`.
fn node_link(url: &str, display_url: &str, b: &RedisStorageBuilder) -> Result<NodeLink> {
    if url.contains(',') {
        return Err(Error::config(format!(
            "`{display_url}` is several URLs: for a Redis Cluster use \
             `RedisStorage::cluster_builder` with one URL per node"
        )));
    }
    let client = tls::client(url, display_url, &b.tls)?;
    // One connection attempt per reconnect, no retries with sleeps in between: a worker
    // waiting on a reconnect that sleeps would take a job only when the sleep ends (up to
    // 0.4 s after Redis is back, measured); each caller retries on its own terms instead
    // (the fetch loop probes every 25 ms, see `worker/fetch_backoff.rs`).
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(b.response_timeout));
    let conn = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(|e| {
        Error::config(format!(
            "cannot set up a connection to Redis at {display_url}"
        ))
        .with_source(e)
    })?;
    Ok(NodeLink {
        #[cfg(unix)]
        direct: DirectConnection::new(client.get_connection_info(), b.response_timeout),
        client,
        conn,
        waiters: Mutex::new(Vec::new()),
    })
}

/// The URL without a password.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl RedisStorage {
    /// A builder for a storage at `url` (e.g. `redis://127.0.0.1:6379`, `rediss://` for TLS
    /// with the `tls` feature). For a Redis Cluster, see
    /// [`cluster_builder`](Self::cluster_builder).
    pub fn builder(url: &str) -> RedisStorageBuilder {
        RedisStorageBuilder::new(Target::Node(url.to_owned()))
    }

    /// A builder for a storage on a Redis Cluster, from the URLs of some of its nodes (any
    /// nodes: the storage learns the others from them). Queues spread over the cluster's
    /// primaries by the hash tags of their keys; see the README's Redis Cluster section.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// let storage = jobs::RedisStorage::cluster_builder([
    ///     "redis://127.0.0.1:7000",
    ///     "redis://127.0.0.1:7001",
    ///     "redis://127.0.0.1:7002",
    /// ])
    /// .prefix("myapp")
    /// .connect()
    /// .await?;
    /// # drop(storage); Ok(()) }
    /// ```
    pub fn cluster_builder<I, S>(nodes: I) -> RedisStorageBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisStorageBuilder::new(Target::Cluster(
            nodes.into_iter().map(|n| n.as_ref().to_owned()).collect(),
        ))
    }

    /// Connects to `url` with the default prefix (`jobs`) and retention, checking that Redis
    /// answers.
    ///
    /// # Errors
    ///
    /// When the URL is invalid or Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<RedisStorage> {
        RedisStorage::builder(url).connect().await
    }

    /// Connects to the Redis Cluster that `nodes` belong to, with the default prefix and
    /// retention, checking that every primary answers.
    ///
    /// # Errors
    ///
    /// When a URL is invalid, or the cluster cannot be reached.
    pub async fn connect_cluster<I, S>(nodes: I) -> Result<RedisStorage>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisStorage::cluster_builder(nodes).connect().await
    }

    pub(super) fn from_builder(b: RedisStorageBuilder) -> Result<RedisStorage> {
        let (link, display_url) = match &b.target {
            Target::Node(url) => {
                let display_url = redact(url);
                (
                    Link::Node(Box::new(node_link(url, &display_url, &b)?)),
                    display_url,
                )
            }
            Target::Cluster(nodes) => {
                let display_url = nodes
                    .iter()
                    .map(|n| redact(n))
                    .collect::<Vec<_>>()
                    .join(",");
                if nodes.is_empty() {
                    return Err(Error::config(
                        "a Redis Cluster storage needs the URL of at least one node",
                    ));
                }
                let link =
                    cluster::ClusterLink::new(nodes, b.response_timeout, &b.tls, &display_url)?;
                (Link::Cluster(Arc::new(link)), display_url)
            }
            Target::Sentinel { sentinels, master } => (
                Link::Sentinel(Arc::new(sentinel::SentinelLink::new(
                    sentinels, master, &b,
                )?)),
                sentinel::display(sentinels, master),
            ),
        };
        Ok(RedisStorage {
            inner: Arc::new(Inner {
                link,
                scripts: Scripts::new(),
                prefix: b.prefix,
                retention: b.retention,
                maintenance_batch: b.maintenance_batch,
                payload: b.payload,
                replicas_ack: (b.replicas_ack > 0).then_some(ReplicasAck {
                    replicas: b.replicas_ack,
                    timeout: b.replicas_ack_timeout,
                }),
                maintained: Mutex::new(HashMap::new()),
                limits_swept: Mutex::new(HashMap::new()),
                queue_keys: Mutex::new(HashMap::new()),
                seq_blocks: Mutex::new(HashMap::new()),
                registered: Mutex::new(foldhash::HashSet::default()),
                display_url,
                rounds: {
                    let rounds = TaskTracker::new();
                    rounds.close();
                    rounds
                },
            }),
        })
    }
}
