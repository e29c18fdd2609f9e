//! The leases a worker holds: marking their jobs started, renewing them, and handing them back.

use super::scripts::ScriptCall;
use super::{by_queue, lua_millis, RedisStorage};
use crate::error::{Error, Result};
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
            // One character per lease: '1' held (marked), '0' not.
            let res: Vec<u8> = inv
                .invoke(&mut self.conn())
                .await
                .map_err(self.err("marking jobs started"))?;
            if res.len() != positions.len() {
                return Err(Error::storage(
                    "marking jobs started: the script returned an unexpected reply",
                ));
            }
            for (&i, ok) in positions.iter().zip(res) {
                held[i] = ok == b'1';
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
            let res: Vec<i64> = inv
                .invoke(&mut self.conn())
                .await
                .map_err(self.err("renewing leases"))?;
            for (&i, ok) in positions.iter().zip(res) {
                held[i] = ok == 1;
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
