//! Cancelling jobs: deleting an enqueued, scheduled or awaiting one at once, or recording a
//! request its worker reads for a running one.

use super::{by_queue, RedisStorage};
use crate::error::Result;
use crate::job::JobId;
use crate::storage::Cancellation;

impl RedisStorage {
    pub(super) async fn cancel_job(&self, id: &JobId) -> Result<Cancellation> {
        let k = self.keys(id.queue());
        let done: i64 = self
            .deletion_call(&self.inner.scripts.cancel, &k, id)
            .key(&k.cancels)
            .invoke(&mut self.conn())
            .await
            .map_err(self.err("cancelling a job"))?;
        if done == 4 {
            self.dispatch_continuations(id.queue_arc()).await?;
        }
        Ok(match done {
            1 | 4 => Cancellation::Deleted,
            2 => Cancellation::Requested,
            3 => Cancellation::Finished,
            _ => Cancellation::NotFound,
        })
    }

    pub(super) async fn cancels_requested(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        let groups = by_queue(ids, JobId::queue_arc);
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        // One round trip: an `HMGET` per queue, pipelined (on a cluster, one per slot at once).
        let cmds = groups
            .iter()
            .map(|(queue, positions)| {
                let mut cmd = redis::cmd("HMGET");
                cmd.arg(&self.keys(queue).cancels);
                for &i in positions {
                    cmd.arg(ids[i].seq());
                }
                cmd
            })
            .collect();
        let replies: Vec<Vec<Option<String>>> = self
            .idempotent_each("checking for cancel requests", cmds)
            .await?;
        let mut requested = vec![false; ids.len()];
        for ((_, positions), reply) in groups.iter().zip(replies) {
            for (&i, value) in positions.iter().zip(reply) {
                requested[i] = value.is_some();
            }
        }
        Ok(requested)
    }
}
