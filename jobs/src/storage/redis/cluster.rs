//! Redis Cluster: the cluster connection (redis-rs `cluster-async`), made on first use, and
//! where each slot's primary is, for the blocking connections of idle fetches.
//!
//! Every script and transaction of the backend touches the keys of one queue, which share the
//! queue's hash tag and so one slot: the cluster connection routes each to the primary of that
//! slot, follows `MOVED` redirections and refreshes its view of the cluster after a failover.
//! Scripts are loaded on every primary (`SCRIPT LOAD` goes to all of them) when a primary does
//! not know one (a new primary after a failover answers `NOSCRIPT`), and the call is repeated.
//!
//! Blocking commands cannot share the cluster connection (a `BLPOP` would hold up every request
//! to its node), and Redis refuses a `BLPOP` over keys of different slots, even on one node. So
//! an idle fetch blocks with one `BLPOP` per slot among its queues' wake keys (queues are
//! spread over slots by their names: in practice one per queue), each on a connection of its
//! own to the primary of that slot, found with `CLUSTER SLOTS`.

use super::tls::{self, TlsOptions};
use crate::error::{Error, Result};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

/// A primary's address, as `CLUSTER SLOTS` names it.
pub(super) type NodeAddr = (String, u16);

/// Slot ranges and the primary serving each: `(first slot, last slot, primary)`.
type SlotMap = Vec<(u16, u16, NodeAddr)>;

/// The connections to a Redis Cluster.
pub(super) struct ClusterLink {
    client: ClusterClient,
    /// Made by the first request (and tried again by the next one when that fails).
    conn: OnceCell<ClusterConnection>,
    /// How to reach a node: the first node's URL, whose address is replaced (same login, TLS).
    template: ConnectionInfo,
    /// Which primary serves each slot range: read when an idle fetch needs it, forgotten when a
    /// blocking connection finds it wrong.
    primaries: Mutex<Option<Arc<SlotMap>>>,
    /// Blocking connections not in use, by primary.
    waiters: Mutex<HashMap<NodeAddr, Vec<MultiplexedConnection>>>,
}

/// Retries of a request that hit a node that is down or moved, and the pauses between them: a
/// request to a slot whose primary died waits about 4 s in all for a replica to take over
/// before it fails (the worker tries again on its own terms; an enqueue fails with an error).
const RETRIES: u32 = 8;
const MIN_RETRY_WAIT_MS: u64 = 50;
const MAX_RETRY_WAIT_MS: u64 = 1_000;

impl ClusterLink {
    /// The link to the cluster that `nodes` belong to, with the builder's TLS certificates;
    /// connects on first use.
    pub(super) fn new(
        nodes: &[String],
        response_timeout: Duration,
        tls: &TlsOptions,
        display: &str,
    ) -> Result<Self> {
        let infos = nodes
            .iter()
            .map(|n| redis::IntoConnectionInfo::into_connection_info(n.as_str()))
            .collect::<redis::RedisResult<Vec<ConnectionInfo>>>()
            .map_err(|e| config_error(display, e))?;
        let infos = infos
            .into_iter()
            .map(|info| tls::with_certificates(info, display, tls))
            .collect::<Result<Vec<ConnectionInfo>>>()?;
        let template = infos.first().cloned().ok_or_else(|| {
            Error::config("a Redis Cluster storage needs the URL of at least one node")
        })?;
        let client = ClusterClient::builder(infos)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(response_timeout)
            .retries(RETRIES)
            .min_retry_wait(MIN_RETRY_WAIT_MS)
            .max_retry_wait(MAX_RETRY_WAIT_MS);
        #[cfg(feature = "tls")]
        let client = match tls.certificates() {
            Some(certificates) => client.certs(certificates.clone()),
            None => client,
        };
        let client = client.build().map_err(|e| config_error(display, e))?;
        Ok(ClusterLink {
            client,
            conn: OnceCell::new(),
            template,
            primaries: Mutex::new(None),
            waiters: Mutex::new(HashMap::new()),
        })
    }

    /// The cluster connection, connecting first if no request did yet.
    pub(super) async fn connection(&self) -> redis::RedisResult<ClusterConnection> {
        self.conn
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }

    /// The primary serving `slot`, from `CLUSTER SLOTS` (read again after `forget_primaries`).
    pub(super) async fn primary_of(&self, slot: u16) -> redis::RedisResult<NodeAddr> {
        let known = self
            .primaries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let map = match known {
            Some(map) => map,
            None => {
                let mut conn = self.connection().await?;
                let reply = conn
                    .req_packed_command(redis::cmd("CLUSTER").arg("SLOTS"))
                    .await?;
                let map = Arc::new(parse_slots(reply));
                *self
                    .primaries
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(map.clone());
                map
            }
        };
        map.iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, node)| node.clone())
            .ok_or_else(|| {
                (
                    redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
                    "no primary serves the slot",
                    format!("slot {slot}"),
                )
                    .into()
            })
    }

    /// Forgets where the primaries are (one moved or died): the next wait asks again.
    pub(super) fn forget_primaries(&self) {
        *self
            .primaries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// A blocking connection to `node`: a pooled one, or a new one.
    pub(super) async fn waiter(
        &self,
        node: &NodeAddr,
    ) -> redis::RedisResult<MultiplexedConnection> {
        let pooled = self
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(node)
            .and_then(Vec::pop);
        if let Some(conn) = pooled {
            return Ok(conn);
        }
        let addr = match self.template.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: node.0.clone(),
                port: node.1,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(node.0.clone(), node.1),
        };
        let client = redis::Client::open(self.template.clone().set_addr(addr))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None);
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Puts a blocking connection that answered back into the pool of `node`.
    pub(super) fn return_waiter(&self, node: NodeAddr, conn: MultiplexedConnection) {
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(node)
            .or_default()
            .push(conn);
    }

    /// Drops the pooled blocking connections of `node` (it failed).
    pub(super) fn drop_waiters(&self, node: &NodeAddr) {
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(node);
    }
}

/// The slot ranges and their primaries in a `CLUSTER SLOTS` reply (entries it cannot read are
/// left out: a slot without a primary fails its wait, which asks again).
fn parse_slots(reply: Value) -> SlotMap {
    let Value::Array(ranges) = reply else {
        return Vec::new();
    };
    let int = |v: &Value| match v {
        Value::Int(n) => u16::try_from(*n).ok(),
        _ => None,
    };
    ranges
        .iter()
        .filter_map(|range| {
            let Value::Array(parts) = range else {
                return None;
            };
            let (first, last) = (int(parts.first()?)?, int(parts.get(1)?)?);
            let Value::Array(primary) = parts.get(2)? else {
                return None;
            };
            let host = match primary.first()? {
                Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            Some((first, last, (host, int(primary.get(1)?)?)))
        })
        .collect()
}

/// The cluster slot of `key`: CRC16 of its hash tag (the part between the first `{` and the
/// next `}`, when not empty), or of the whole key, modulo 16384.
pub(super) fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &bytes[open + 1..];
        rest.iter()
            .position(|&b| b == b'}')
            .filter(|&len| len > 0)
            .map(|len| &rest[..len])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(bytes)) % 16_384
}

/// The error of a cluster that could not be set up from the given node URLs.
fn config_error(display: &str, e: redis::RedisError) -> Error {
    Error::config(format!(
        "cannot set up a connection to the Redis Cluster at {display}"
    ))
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cluster_spec() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot("123456789"), 0x31C3);
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
        assert_ne!(slot("foo{}{bar}"), slot("bar"));
        assert_eq!(slot("{jobs:mail}:pending"), slot("{jobs:mail}:wake"));
    }

    #[test]
    fn cluster_slots_replies_are_read() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000),
                node("127.0.0.1", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("10.0.0.2", 7001),
            ]),
            Value::Array(vec![Value::Int(1)]),
        ]);
        assert_eq!(
            parse_slots(reply),
            vec![
                (0, 5460, ("127.0.0.1".to_owned(), 7000)),
                (5461, 16383, ("10.0.0.2".to_owned(), 7001)),
            ]
        );
    }
}
