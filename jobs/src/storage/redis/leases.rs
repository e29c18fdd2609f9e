//! The leases a worker holds: marking their jobs started, renewing them, and handing them back.

use super::scripts::ScriptCall;
use super::{by_queue, lua_millis, replies, RedisStorage};
use crate::error::Result;
use crate::storage::Lease;
use std::time::Duration;

impl RedisStorage {
    pub(super) async fn mark_leases_started(&self, leases: &[Lease]) -> Result<Vec<bool>> {
        let mut held = vec![false; leases.len()];
        for (queue, positions) in by_queue(leases, |l| l.id.queue_arc()) {
            let k = self.keys(&queue);
            let mut inv = ScriptCall::new(&self.inner.scripts.mark_started);
            inv.key(&k.tokens).key(&k.started);
            for &i in &positions {
                inv.arg(leases[i].id.seq()).arg(leases[i].token.0);
            }
            let res = inv
                .invoke(&mut self.conn())
                .await
                .map_err(self.err("marking jobs started"))?;
            for (&i, ok) in positions.iter().zip(replies::marks(res, positions.len())?) {
                held[i] = ok;
            }
        }
        Ok(held)
    }

    pub(super) async fn renew_leases(
        &self,
        leases: &[Lease],
        lease: Duration,
    ) -> Result<Vec<bool>> {
        let mut held = vec![false; leases.len()];
        for (queue, positions) in by_queue(leases, |l| l.id.queue_arc()) {
            let k = self.keys(&queue);
            let mut inv = ScriptCall::new(&self.inner.scripts.renew);
            inv.key(&k.lease_groups)
                .key(&k.tokens)
                .arg(lua_millis(lease));
            for &i in &positions {
                inv.arg(leases[i].id.seq()).arg(leases[i].token.0);
            }
            let res = inv
                .invoke(&mut self.conn())
                .await
                .map_err(self.err("renewing leases"))?;
            for (&i, ok) in positions
                .iter()
                .zip(replies::renewals(res, positions.len())?)
            {
                held[i] = ok;
            }
        }
        Ok(held)
    }

    pub(super) async fn release_leases(&self, leases: &[Lease]) -> Result<()> {
        for (queue, positions) in by_queue(leases, |l| l.id.queue_arc()) {
            let k = self.keys(&queue);
            let mut inv = ScriptCall::new(&self.inner.scripts.release);
            inv.key(&k.lease_groups)
                .key(&k.tokens)
                .key(&k.pending)
                .key(&k.jobs)
                .key(&k.hist)
                .key(&k.wake)
                .key(&k.lease_counts)
                .key(&k.started);
            for &i in &positions {
                inv.arg(leases[i].id.seq()).arg(leases[i].token.0);
            }
            let _: i64 = inv
                .invoke(&mut self.conn())
                .await
                .map_err(self.err("handing jobs back"))?;
        }
        Ok(())
    }
}
