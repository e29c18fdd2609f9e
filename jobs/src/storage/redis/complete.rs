//! Completing attempts: one script call per queue, plain successes (the common case) in a
//! shorter form than the other ends, and continuations dispatched when a parent's end calls for
//! it.

use super::scripts::ScriptCall;
use super::{by_queue, lua_millis, replies, with_flow_keys, RedisStorage};
use crate::error::Result;
use crate::storage::{Completion, Outcome};

impl RedisStorage {
    pub(super) async fn complete_leases(&self, completions: &[Completion]) -> Result<Vec<bool>> {
        let mut applied = vec![false; completions.len()];
        let r = &self.inner.retention;
        for (queue, positions) in by_queue(completions, |c| c.lease.id.queue_arc()) {
            let positions = distinct_leases(completions, positions);
            let k = self.keys(&queue);
            let mut inv = ScriptCall::new(&self.inner.scripts.complete);
            inv.key(&k.jobs)
                .key(&k.lease_groups)
                .key(&k.tokens)
                .key(&k.scheduled)
                .key(&k.failed)
                .key(&k.succeeded)
                .key(&k.deleted)
                .key(&k.hist)
                .key(&k.stats)
                .key(&k.wake);
            with_flow_keys(&mut inv, &k)
                .key(&k.cancels)
                .key(&k.lease_counts)
                .key(&k.started)
                .arg(r.succeeded_max.min(1 << 52))
                .arg(lua_millis(r.succeeded_ttl))
                .arg(r.deleted_max.min(1 << 52))
                .arg(lua_millis(r.deleted_ttl));
            // Plain successes (the common case) first, in a shorter form: each token once with
            // how many of them it leased (jobs of one fetch share theirs; `positions` is in
            // token order), then all their ids, then all their starts, which the script takes
            // in one go each. The script answers in this order.
            let (plain, other): (Vec<usize>, Vec<usize>) = positions.iter().partition(|&&i| {
                let c = &completions[i];
                matches!(c.outcome, Outcome::Succeeded) && c.result.is_none()
            });
            let groups: Vec<&[usize]> = plain
                .chunk_by(|&a, &b| completions[a].lease.token.0 == completions[b].lease.token.0)
                .collect();
            inv.arg(plain.len())
                .arg(groups.len())
                .reserve(2 * plain.len() + 2 * groups.len() + 8, 32 * plain.len());
            for group in &groups {
                inv.arg(completions[group[0]].lease.token.0)
                    .arg(group.len());
            }
            for &i in &plain {
                inv.arg(completions[i].lease.id.seq());
            }
            for &i in &plain {
                inv.arg(completions[i].started_at_ms.min(1 << 52));
            }
            for &i in &other {
                let c = &completions[i];
                let (kind, at, reason) = outcome_args(&c.outcome);
                inv.arg(c.lease.id.seq())
                    .arg(c.lease.token.0)
                    .arg(c.started_at_ms.min(1 << 52))
                    .arg(kind)
                    .arg(at)
                    .arg(reason)
                    .arg(c.result.as_deref().unwrap_or(""));
            }
            let res = self.invoke_acknowledged(&inv, "acknowledging jobs").await?;
            let res = replies::completions(res, plain.len() + other.len())?;
            for (&i, ok) in plain.iter().chain(&other).zip(res.applied) {
                applied[i] = ok;
            }
            if res.fired {
                self.dispatch_continuations(&queue).await?;
            }
        }
        Ok(applied)
    }
}

fn outcome_args(o: &Outcome) -> (&'static str, u64, &str) {
    match o {
        Outcome::Succeeded => ("O", 0, ""),
        Outcome::Retry { at_ms, reason } => ("S", (*at_ms).min(1 << 52), reason),
        Outcome::Failed { reason } => ("F", 0, reason),
        Outcome::Deleted { reason } => ("D", 0, reason),
    }
}

/// `positions` in lease order (token, then sequence number), without any later completion of a
/// lease already among them: those are not applied, as a lease ends once. `complete.lua` relies
/// on it instead of checking for repeats itself.
fn distinct_leases(completions: &[Completion], mut positions: Vec<usize>) -> Vec<usize> {
    let lease = |i: usize| (completions[i].lease.token.0, completions[i].lease.id.seq());
    positions.sort_by_key(|&i| (lease(i), i));
    positions.dedup_by_key(|i| lease(*i));
    positions
}
