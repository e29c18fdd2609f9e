//! The registry of worker processes: heartbeats with an expiry, listed while alive.

use super::failure::Doing;
use super::{millis, PostgresStorage};
use crate::error::Result;
use std::time::Duration;

impl PostgresStorage {
    pub(super) async fn heartbeat_now(&self, server: &str, ttl: Duration) -> Result<()> {
        let pool = self.ready().await?;
        sqlx::query(&self.inner.sql.heartbeat)
            .bind(server)
            .bind(millis(ttl))
            .execute(pool)
            .await
            .doing("recording a heartbeat", self.schema_name())?;
        Ok(())
    }

    pub(super) async fn servers_now(&self) -> Result<Vec<String>> {
        let pool = self.ready().await?;
        sqlx::query_scalar(&self.inner.sql.servers)
            .fetch_all(pool)
            .await
            .doing("listing servers", self.schema_name())
    }

    pub(super) async fn deregister_now(&self, server: &str) -> Result<()> {
        let pool = self.ready().await?;
        sqlx::query(&self.inner.sql.deregister)
            .bind(server)
            .execute(pool)
            .await
            .doing("deregistering a server", self.schema_name())?;
        Ok(())
    }
}
