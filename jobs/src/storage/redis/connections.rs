//! The storage's connections to Redis, and how a request picks one:
//! - the shared connection, which pipelines concurrent requests and reconnects: redis-rs's
//!   connection manager on one Redis, its cluster connection on a Redis Cluster (`cluster.rs`),
//!   which routes each request to the primary of its slot and follows failovers;
//! - on one Redis, the enqueue connection (`direct.rs`), which carries enqueue transactions when
//!   it is free;
//! - the blocking connections of idle fetches (`idle_wait.rs`);
//! - behind Sentinel, the same connections to the master the sentinels name (`sentinel.rs`),
//!   without the enqueue connection.

use super::cluster::ClusterLink;
#[cfg(unix)]
use super::direct::DirectConnection;
use super::sentinel::SentinelLink;
use super::RedisStorage;
use crate::error::Result;
use futures::FutureExt;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::sync::{Arc, Mutex};

/// How the storage reaches Redis.
pub(super) enum Link {
    /// One Redis.
    Node(Box<NodeLink>),
    /// A Redis Cluster.
    Cluster(Arc<ClusterLink>),
    /// The master of a Sentinel deployment.
    Sentinel(Arc<SentinelLink>),
}

/// The connections to one Redis.
pub(super) struct NodeLink {
    pub(super) client: redis::Client,
    pub(super) conn: ConnectionManager,
    /// The enqueue transaction's own connection, read without a task in between (`None` for
    /// TLS, which goes through `conn`; Unix only).
    #[cfg(unix)]
    pub(super) direct: Option<DirectConnection>,
    /// Connections for blocking waits, so a `BLPOP` never holds up the shared connection.
    pub(super) waiters: Mutex<Vec<MultiplexedConnection>>,
}

/// The shared connection of a storage, whichever kind it is. Cheap to clone.
#[derive(Clone)]
pub(super) enum SharedConnection {
    Node(ConnectionManager),
    Cluster(Arc<ClusterLink>),
    Sentinel(Arc<SentinelLink>),
}

impl ConnectionLike for SharedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            SharedConnection::Node(conn) => conn.req_packed_command(cmd),
            SharedConnection::Cluster(link) => async move {
                let mut conn = link.connection().await?;
                conn.req_packed_command(cmd).await
            }
            .boxed(),
            SharedConnection::Sentinel(link) => async move { link.request(cmd).await }.boxed(),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            SharedConnection::Node(conn) => conn.req_packed_commands(pipeline, offset, count),
            SharedConnection::Cluster(link) => async move {
                let mut conn = link.connection().await?;
                conn.req_packed_commands(pipeline, offset, count).await
            }
            .boxed(),
            SharedConnection::Sentinel(link) => {
                async move { link.request_pipeline(pipeline, offset, count).await }.boxed()
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            SharedConnection::Node(conn) => conn.get_db(),
            SharedConnection::Cluster(_) => 0,
            SharedConnection::Sentinel(link) => link.db(),
        }
    }
}

impl RedisStorage {
    /// The shared connection.
    pub(super) fn conn(&self) -> SharedConnection {
        match &self.inner.link {
            Link::Node(node) => SharedConnection::Node(node.conn.clone()),
            Link::Cluster(cluster) => SharedConnection::Cluster(cluster.clone()),
            Link::Sentinel(sentinel) => SharedConnection::Sentinel(sentinel.clone()),
        }
    }

    /// Whether the storage is on a Redis Cluster.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.inner.link, Link::Cluster(_))
    }

    /// Runs `pipe`, an atomic pipeline, and returns the reply of its last command: on the direct
    /// connection when it is free (see `direct.rs`), else on the shared connection.
    pub(super) async fn transaction_last_reply<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<T> {
        #[cfg(unix)]
        if let Link::Node(node) = &self.inner.link {
            if let Some(direct) = &node.direct {
                if let Some(reply) = direct.last_reply(pipe).await {
                    return Ok(T::from_redis_value(reply?)?);
                }
            }
        }
        let (last,): (T,) = pipe.query_async(&mut self.conn()).await?;
        Ok(last)
    }

    /// Sends `request` on the shared connection, for a request that may run twice: a read, a
    /// write that has the same effect when repeated and whose reply is not used, or an `INCRBY`
    /// that reserves job numbers (a repeat leaves a gap, never a duplicate). `what` names it in
    /// the error.
    ///
    /// When the request fails because the connection it went on had dropped, it goes once
    /// more. The connection manager notices that Redis closed an idle connection (a restart, a
    /// failover, the server's idle `timeout`) only when a request fails on it; it then
    /// reconnects, and the second request waits for that. Without this, the first read after
    /// every restart would fail. While Redis is down, the second request fails too, after the
    /// manager's one connection attempt. A request that is not safe to repeat is not sent
    /// through here: its caller gets the error.
    pub(super) async fn idempotent<'a, T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        request: impl Into<Request<'a>>,
    ) -> Result<T> {
        let request = request.into();
        let first = request.send(&mut self.conn()).await;
        match first {
            // Not a refused connection: that one is the manager's reconnect failing, and a
            // second request would only try once more to connect, right after it failed.
            Err(e) if e.is_connection_dropped() && !e.is_connection_refusal() => {
                tracing::debug!(error = %e, "{what}: the connection had dropped; sending again");
                request.send(&mut self.conn()).await
            }
            other => other,
        }
        .map_err(self.err(what))
    }

    /// The replies to `cmds`, each a request that may run twice (see
    /// [`idempotent`](Self::idempotent)) and whose keys share one slot, though different
    /// commands may touch different slots: one pipeline on one Redis; on a cluster, where a
    /// pipeline must stay within one slot, the commands go concurrently, each to its slot's
    /// primary.
    pub(super) async fn idempotent_each<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        cmds: Vec<Cmd>,
    ) -> Result<Vec<T>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        if self.is_cluster() {
            let calls = cmds.iter().map(|cmd| self.idempotent::<T>(what, cmd));
            return futures::future::try_join_all(calls).await;
        }
        let mut pipe = redis::pipe();
        for cmd in cmds {
            pipe.add_command(cmd);
        }
        self.idempotent(what, &pipe).await
    }
}

/// A command or a pipeline, for [`RedisStorage::idempotent`]; made from the `&mut` a builder
/// chain (`redis::cmd(..).arg(..)`) ends with.
pub(super) enum Request<'a> {
    Cmd(&'a redis::Cmd),
    Pipeline(&'a redis::Pipeline),
}

impl Request<'_> {
    async fn send<T: redis::FromRedisValue>(
        &self,
        conn: &mut SharedConnection,
    ) -> redis::RedisResult<T> {
        match self {
            Request::Cmd(cmd) => cmd.query_async(conn).await,
            Request::Pipeline(pipe) => pipe.query_async(conn).await,
        }
    }
}

impl<'a> From<&'a mut redis::Cmd> for Request<'a> {
    fn from(cmd: &'a mut redis::Cmd) -> Self {
        Request::Cmd(cmd)
    }
}

impl<'a> From<&'a redis::Cmd> for Request<'a> {
    fn from(cmd: &'a redis::Cmd) -> Self {
        Request::Cmd(cmd)
    }
}

impl<'a> From<&'a mut redis::Pipeline> for Request<'a> {
    fn from(pipe: &'a mut redis::Pipeline) -> Self {
        Request::Pipeline(pipe)
    }
}

impl<'a> From<&'a redis::Pipeline> for Request<'a> {
    fn from(pipe: &'a redis::Pipeline) -> Self {
        Request::Pipeline(pipe)
    }
}
