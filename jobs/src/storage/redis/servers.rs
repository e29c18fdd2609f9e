//! The registry of worker processes: heartbeats with a time to live, the live ones, deregistering.

use super::{millis, RedisStorage};
use crate::error::Result;
use crate::storage::now_ms;
use std::time::Duration;

impl RedisStorage {
    pub(super) async fn heartbeat_now(&self, server: &str, ttl: Duration) -> Result<()> {
        let expires = now_ms().saturating_add(millis(ttl)).min(1 << 52);
        let _: i64 = self
            .idempotent(
                "recording a heartbeat",
                redis::cmd("ZADD")
                    .arg(self.servers_key())
                    .arg(expires)
                    .arg(server),
            )
            .await?;
        Ok(())
    }

    pub(super) async fn live_servers(&self) -> Result<Vec<String>> {
        let key = self.servers_key();
        let (mut names,): (Vec<String>,) = self
            .idempotent(
                "listing servers",
                redis::pipe()
                    .cmd("ZREMRANGEBYSCORE")
                    .arg(&key)
                    .arg("-inf")
                    .arg(now_ms())
                    .ignore()
                    .cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        names.sort();
        Ok(names)
    }

    pub(super) async fn deregister_now(&self, server: &str) -> Result<()> {
        let _: i64 = self
            .idempotent(
                "deregistering a server",
                redis::cmd("ZREM").arg(self.servers_key()).arg(server),
            )
            .await?;
        Ok(())
    }

    // --- cancellation ---
}
