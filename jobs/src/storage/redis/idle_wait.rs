//! The wait of an idle fetch: `BLPOP` on the wake keys of its queues, on connections of its own
//! (never the shared one, which it would hold up), until an enqueue signals or the wait runs out.
//!
//! On one Redis that is one `BLPOP` over all the queues. On a cluster it is one per slot among
//! the wake keys (Redis refuses a `BLPOP` across slots), each on a connection to that slot's
//! primary, all at once; the first to return ends the wait (see `cluster.rs`).

use super::cluster::{self, ClusterLink};
use super::connections::{Link, NodeLink};
use super::RedisStorage;
use crate::error::Result;
use futures::FutureExt;
use redis::{AsyncConnectionConfig, Value};
use std::sync::Arc;
use std::time::Duration;

const WHAT: &str = "waiting for jobs";

impl RedisStorage {
    /// Blocks until one of `queues` is signalled or `timeout` passes.
    pub(super) async fn wait(&self, queues: &[Arc<str>], timeout: Duration) -> Result<()> {
        let keys: Vec<String> = queues.iter().map(|q| self.keys(q).wake.clone()).collect();
        match &self.inner.link {
            Link::Node(node) => self.wait_on_node(node, &keys, timeout).await,
            Link::Cluster(link) => self.wait_on_cluster(link, keys, timeout).await,
            Link::Sentinel(link) => link
                .blocking(&blpop(&keys, timeout))
                .await
                .map_err(self.err(WHAT)),
        }
    }

    async fn wait_on_node(
        &self,
        node: &NodeLink,
        keys: &[String],
        timeout: Duration,
    ) -> Result<()> {
        let pooled = node
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(None);
                node.client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(self.err(WHAT))?
            }
        };
        // If this future is dropped here the connection is dropped with it (never reused with a
        // reply outstanding); a signal it consumed is re-created by the next fetch.
        let _: Value = blpop(keys, timeout)
            .query_async(&mut conn)
            .await
            .map_err(self.err(WHAT))?;
        node.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(conn);
        Ok(())
    }

    async fn wait_on_cluster(
        &self,
        link: &ClusterLink,
        keys: Vec<String>,
        timeout: Duration,
    ) -> Result<()> {
        let mut by_slot: Vec<(u16, Vec<String>)> = Vec::new();
        for key in keys {
            let slot = cluster::slot(&key);
            match by_slot.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, group)) => group.push(key),
                None => by_slot.push((slot, vec![key])),
            }
        }
        if by_slot.is_empty() {
            tokio::time::sleep(timeout).await;
            return Ok(());
        }
        // The first wait to end ends them all: the others are dropped with their connections
        // (a signal one of them consumed is re-created by the fetch that follows).
        let waits = by_slot
            .into_iter()
            .map(|(slot, keys)| self.wait_on_slot(link, slot, keys, timeout).boxed());
        futures::future::select_all(waits).await.0
    }

    async fn wait_on_slot(
        &self,
        link: &ClusterLink,
        slot: u16,
        keys: Vec<String>,
        timeout: Duration,
    ) -> Result<()> {
        let node = link.primary_of(slot).await.map_err(self.err(WHAT))?;
        let mut conn = match link.waiter(&node).await {
            Ok(conn) => conn,
            Err(e) => {
                link.forget_primaries();
                return Err(self.err(WHAT)(e));
            }
        };
        match blpop(&keys, timeout).query_async::<Value>(&mut conn).await {
            Ok(_) => {
                link.return_waiter(node, conn);
                Ok(())
            }
            // The slot moved (a failover, a resharding): the fetch that follows goes through
            // the cluster connection, which follows it, and the next wait asks where it went.
            Err(e) if e.redirect_node().is_some() => {
                link.forget_primaries();
                link.return_waiter(node, conn);
                Ok(())
            }
            Err(e) => {
                link.forget_primaries();
                link.drop_waiters(&node);
                Err(self.err(WHAT)(e))
            }
        }
    }
}

/// `BLPOP keys… timeout`, the timeout in whole milliseconds and at least one (0 would block
/// forever).
fn blpop(keys: &[String], timeout: Duration) -> redis::Cmd {
    let mut cmd = redis::cmd("BLPOP");
    for key in keys {
        cmd.arg(key);
    }
    let secs = timeout.as_millis().max(1) as f64 / 1000.0;
    cmd.arg(format!("{secs:.3}"));
    cmd
}
