//! The storage's two connections to Redis, and how a request picks one:
//! - the shared connection (redis-rs's connection manager), which pipelines concurrent requests
//!   and reconnects;
//! - the enqueue connection (`direct.rs`), which carries enqueue transactions when it is free.

use super::RedisStorage;
use crate::error::Result;
use redis::aio::ConnectionManager;

impl RedisStorage {
    /// The shared connection.
    pub(super) fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// Runs `pipe`, an atomic pipeline, and returns the reply of its last command: on the direct
    /// connection when it is free (see `direct.rs`), else through the connection manager.
    pub(super) async fn transaction_last_reply<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<T> {
        #[cfg(unix)]
        if let Some(direct) = &self.inner.direct {
            if let Some(reply) = direct.last_reply(pipe).await {
                return Ok(T::from_redis_value(reply?)?);
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
        conn: &mut ConnectionManager,
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

impl<'a> From<&'a mut redis::Pipeline> for Request<'a> {
    fn from(pipe: &'a mut redis::Pipeline) -> Self {
        Request::Pipeline(pipe)
    }
}
