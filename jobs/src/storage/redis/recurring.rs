//! Recurring jobs in the Redis backend.
//!
//! # Layout, and why
//!
//! Each entry lives **with its target queue**, in the hash `{<prefix>:<queue>}:recurring` (id →
//! `revision|next_ms|last_ms|json`). Enqueueing a tick's jobs and advancing the entry's next run
//! then touch one hash slot, so they are one script (`recurring_fire.lua`): a compare-and-set on
//! the revision and next run the scheduler read. Any number of schedulers may race on a tick;
//! exactly one script call matches and enqueues, the others change nothing. No leader election,
//! and it works on Redis Cluster.
//!
//! Listing spans queues, so an index `{<prefix>}:recurring` (id → queue, its own slot) says where
//! each entry is. Registering writes the entry first (guarded by its revision), then the index,
//! then removes the entry from a previous queue; each step is idempotent and a registration
//! that stopped half-way is completed by registering again. Listing trusts the index: an entry
//! on a queue the index does not name for it is ignored.

use super::scripts::ScriptCall;
use super::{keys, RedisStorage};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::recurring::Misfire;
use crate::storage::Recurring;
use crate::storage::{now_ms, RecurringEntry, RecurringFire};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The part of an entry that only registration changes.
#[derive(Serialize, Deserialize)]
struct Meta {
    cron: String,
    tz: String,
    misfire: String,
    /// The misfire grace in ms, when the entry has its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grace_ms: Option<u64>,
    name: String,
    args: String,
    /// The headers of its jobs, in their stored form; absent when there are none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    headers: String,
}

fn opt(v: Option<u64>) -> String {
    v.map(|t| t.min(1 << 52).to_string()).unwrap_or_default()
}

fn encode(e: &RecurringEntry) -> Result<String> {
    let meta = serde_json::to_string(&Meta {
        cron: e.cron.clone(),
        tz: e.time_zone.clone(),
        misfire: e.misfire.as_str().to_owned(),
        grace_ms: e.misfire_grace.map(|g| {
            u64::try_from(g.as_millis())
                .unwrap_or(u64::MAX)
                .min(1 << 52)
        }),
        name: e.name.clone(),
        args: e.args.clone(),
        headers: e.headers.to_json(),
    })
    .map_err(|err| Error::serialization("encoding a recurring job").with_source(err))?;
    Ok(format!(
        "{}|{}|{}|{meta}",
        e.revision,
        opt(e.next_run_ms),
        opt(e.last_run_ms)
    ))
}

fn decode(id: &str, queue: &Arc<str>, rec: &str) -> Option<RecurringEntry> {
    let mut parts = rec.splitn(4, '|');
    let revision = parts.next()?.parse().ok()?;
    let next = parts.next()?;
    let last = parts.next()?;
    let meta: Meta = serde_json::from_str(parts.next()?).ok()?;
    let mut e = RecurringEntry::new(
        id,
        meta.cron,
        meta.tz,
        Misfire::from_name(&meta.misfire)?,
        queue.clone(),
        meta.name,
        meta.args,
        if next.is_empty() {
            None
        } else {
            Some(next.parse().ok()?)
        },
    );
    e.last_run_ms = if last.is_empty() {
        None
    } else {
        Some(last.parse().ok()?)
    };
    e.misfire_grace = meta.grace_ms.map(std::time::Duration::from_millis);
    e.revision = revision;
    e.headers = crate::Headers::of_recurring(id, &meta.headers);
    Some(e)
}

/// The condition and update of `recurring_fire.lua`, as its arguments: `*` for "any" (expected)
/// or "keep" (new next), empty for "none" (new next) or "keep" (new last).
struct Cas {
    revision: u64,
    expected_next: String,
    new_next: String,
    new_last: String,
}

/// How often a registration retries after losing a race with another registration of its id.
const PUT_ATTEMPTS: usize = 5;

impl RedisStorage {
    /// The key of the index of recurring jobs (id → queue). It spans queues, so it has its own
    /// hash tag `{<prefix>}`; each entry itself lives with its queue's keys.
    pub fn recurring_index_key(&self) -> String {
        keys::recurring_index(&self.inner.prefix)
    }

    /// The queue the index names for `id`.
    async fn recurring_queue(&self, id: &str) -> Result<Option<Arc<str>>> {
        let queue: Option<String> = self
            .idempotent(
                "reading the recurring job index",
                redis::cmd("HGET").arg(self.recurring_index_key()).arg(id),
            )
            .await?;
        Ok(queue.map(Arc::from))
    }

    async fn recurring_entry(&self, id: &str, queue: &Arc<str>) -> Result<Option<RecurringEntry>> {
        let rec: Option<String> = self
            .idempotent(
                "reading a recurring job",
                redis::cmd("HGET").arg(&self.keys(queue).recurring).arg(id),
            )
            .await?;
        Ok(rec.and_then(|r| decode(id, queue, &r)))
    }

    pub(super) async fn register_recurring_in_redis(
        &self,
        mut entry: RecurringEntry,
    ) -> Result<RecurringEntry> {
        super::check_name(&entry.name)?;
        self.inner.payload.check_recurring(&entry)?;
        self.register_queue(&entry.queue).await?;
        let given_next = entry.next_run_ms;
        for _ in 0..PUT_ATTEMPTS {
            let old_queue = self.recurring_queue(&entry.id).await?;
            let old = match &old_queue {
                Some(q) => self.recurring_entry(&entry.id, q).await?,
                None => None,
            };
            // The revision guarded is the one in the target queue's hash.
            let in_target = if old_queue.as_deref() == Some(&*entry.queue) {
                old.clone()
            } else {
                self.recurring_entry(&entry.id, &entry.queue).await?
            };
            let expected = in_target.as_ref().map_or(0, |e| e.revision);
            entry.next_run_ms = given_next;
            entry.last_run_ms = None;
            if let Some(old) = &old {
                if old.same_schedule(&entry) {
                    entry.next_run_ms = old.next_run_ms;
                }
                entry.last_run_ms = old.last_run_ms;
            }
            entry.revision = expected.max(old.as_ref().map_or(0, |e| e.revision)) + 1;
            let k = self.keys(&entry.queue);
            let mut inv = ScriptCall::new(&self.inner.scripts.recurring_put);
            inv.key(&k.recurring)
                .arg(&entry.id)
                .arg(expected)
                .arg(encode(&entry)?);
            let stored: i64 = inv
                .invoke(&mut self.conn())
                .await
                .map_err(self.err("registering a recurring job"))?;
            if stored != 1 {
                continue;
            }
            let _: i64 = self
                .idempotent(
                    "registering a recurring job",
                    redis::cmd("HSET")
                        .arg(self.recurring_index_key())
                        .arg(&entry.id)
                        .arg(&*entry.queue),
                )
                .await?;
            if let Some(q) = old_queue.filter(|q| *q != entry.queue) {
                let _: i64 = self
                    .idempotent(
                        "moving a recurring job to another queue",
                        redis::cmd("HDEL")
                            .arg(&self.keys(&q).recurring)
                            .arg(&entry.id),
                    )
                    .await?;
            }
            return Ok(entry);
        }
        Err(Error::storage(format!(
            "registering recurring job `{}`: it was registered concurrently {PUT_ATTEMPTS} times \
             in a row; try again",
            entry.id
        )))
    }

    pub(super) async fn remove_recurring_in_redis(&self, id: &str) -> Result<bool> {
        let Some(queue) = self.recurring_queue(id).await? else {
            return Ok(false);
        };
        // Entry first, index second (two commands: the index has a slot of its own): a removal
        // that stops half-way leaves an index entry that points at nothing, which listing
        // ignores.
        let removed: i64 = redis::cmd("HDEL")
            .arg(&self.keys(&queue).recurring)
            .arg(id)
            .query_async(&mut self.conn())
            .await
            .map_err(self.err("removing a recurring job"))?;
        let _: i64 = self
            .idempotent(
                "removing a recurring job",
                redis::cmd("HDEL").arg(self.recurring_index_key()).arg(id),
            )
            .await?;
        Ok(removed == 1)
    }

    pub(super) async fn recurring_in_redis(&self) -> Result<Vec<RecurringEntry>> {
        let index: HashMap<String, String> = self
            .idempotent(
                "listing recurring jobs",
                redis::cmd("HGETALL").arg(self.recurring_index_key()),
            )
            .await?;
        if index.is_empty() {
            return Ok(Vec::new());
        }
        let mut queues: Vec<Arc<str>> = index.values().map(|q| Arc::from(q.as_str())).collect();
        queues.sort();
        queues.dedup();
        let cmds = queues
            .iter()
            .map(|q| {
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(&self.keys(q).recurring);
                cmd
            })
            .collect();
        let hashes: Vec<HashMap<String, String>> =
            self.idempotent_each("listing recurring jobs", cmds).await?;
        let mut out = BTreeMap::new();
        for (queue, hash) in queues.iter().zip(hashes) {
            for (id, rec) in hash {
                if index.get(&id).map(String::as_str) != Some(&**queue) {
                    continue;
                }
                if let Some(e) = decode(&id, queue, &rec) {
                    out.insert(id, e);
                } else {
                    tracing::warn!(id, queue = %queue, "skipping a malformed recurring job entry");
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// Runs `recurring_fire.lua`; `None` when the entry changed.
    async fn fire_script(
        &self,
        queue: &Arc<str>,
        id: &str,
        cas: Cas,
        records: &[super::record::NewRecord<'_>],
    ) -> Result<Option<Vec<JobId>>> {
        let k = self.keys(queue);
        let mut inv = ScriptCall::new(&self.inner.scripts.recurring_fire);
        inv.key(&k.recurring)
            .key(&k.seq)
            .key(&k.pending)
            .key(&k.jobs)
            .key(&k.wake)
            .arg(id)
            .arg(cas.revision)
            .arg(cas.expected_next)
            .arg(cas.new_next)
            .arg(cas.new_last)
            .arg(now_ms());
        for r in records {
            inv.arg(*r);
        }
        let first: i64 = self
            .invoke_acknowledged(&inv, "enqueueing a recurring job")
            .await?;
        let Ok(first) = u64::try_from(first) else {
            return Ok(None);
        };
        Ok(Some(
            (0..records.len() as u64)
                .map(|i| JobId::new(queue.clone(), first + i))
                .collect(),
        ))
    }

    pub(super) async fn fire_recurring_in_redis(
        &self,
        fire: &RecurringFire,
    ) -> Result<Option<Vec<JobId>>> {
        // The scheduler read the entry at `fire.revision`; the script refuses if it changed, so
        // the name and arguments of that copy are the stored ones.
        let Some(entry) = self.recurring_entry(&fire.id, &fire.queue).await? else {
            return Ok(None);
        };
        if entry.revision != fire.revision {
            return Ok(None);
        }
        let now = now_ms();
        let record = super::record::encode(now, &entry.name, &entry.args, &entry.headers);
        let records = vec![record; fire.ticks.len()];
        let cas = Cas {
            revision: fire.revision,
            expected_next: fire.expected_next_ms.min(1 << 52).to_string(),
            new_next: opt(fire.next_run_ms),
            new_last: opt(fire.ticks.last().copied()),
        };
        self.fire_script(&fire.queue, &fire.id, cas, &records).await
    }

    pub(super) async fn trigger_recurring_in_redis(&self, id: &str) -> Result<Option<JobId>> {
        for _ in 0..PUT_ATTEMPTS {
            let Some(queue) = self.recurring_queue(id).await? else {
                return Ok(None);
            };
            let Some(entry) = self.recurring_entry(id, &queue).await? else {
                return Ok(None);
            };
            let now = now_ms();
            let record = super::record::encode(now, &entry.name, &entry.args, &entry.headers);
            let fired = self
                .fire_script(
                    &queue,
                    id,
                    Cas {
                        revision: entry.revision,
                        expected_next: "*".to_owned(),
                        new_next: "*".to_owned(),
                        new_last: now.to_string(),
                    },
                    &[record],
                )
                .await?;
            if let Some(ids) = fired {
                return Ok(ids.into_iter().next());
            }
        }
        Err(Error::storage(format!(
            "triggering recurring job `{id}`: it kept changing while being triggered; try again"
        )))
    }
}

#[async_trait]
impl Recurring for RedisStorage {
    async fn register_recurring(&self, entry: RecurringEntry) -> Result<RecurringEntry> {
        self.register_recurring_in_redis(entry).await
    }

    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        self.remove_recurring_in_redis(id).await
    }

    async fn recurring(&self) -> Result<Vec<RecurringEntry>> {
        self.recurring_in_redis().await
    }

    async fn fire_recurring(&self, fire: &RecurringFire) -> Result<Option<Vec<JobId>>> {
        self.fire_recurring_in_redis(fire).await
    }

    async fn trigger_recurring(&self, id: &str) -> Result<Option<JobId>> {
        self.trigger_recurring_in_redis(id).await
    }
}
