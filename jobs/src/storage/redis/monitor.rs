//! Monitoring beyond single jobs: the registry of queues, queue summaries and counts, jobs by
//! state (`scripts/monitor_list.lua`), a job's detail, pauses, server reports, history
//! snapshots (`scripts/history_record.lua`) and batches.
//!
//! Every count is a length Redis keeps (`LLEN`, `ZCARD`, `HLEN`), so summaries cost the same at
//! any backlog. A queue is paused by a field `paused` in its stats hash, which the fetch script
//! reads before it leases (`scripts/fetch.lua`); resuming wakes a waiting worker. Queues are
//! listed from a registry set each storage adds a queue to once, at its first enqueue (or pause,
//! or recurring job) there.

use super::scripts::ScriptCall;
use super::{keys, record, RedisStorage, TOKENS_PIN};
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::monitor::{
    parse_one, parse_pair, BatchInfo, BatchPage, Count, JobDetail, JobPage, JobQuery, QueueSummary,
    Resolution, ServerReport, Snapshot,
};
use crate::state::JobState;
use crate::storage::{now_ms, BatchProgress, Finish};
use futures::future::try_join_all;
use std::sync::Arc;
use std::time::Duration;

/// How many single-job actions of a bulk action are in flight at once (the shared connection
/// pipelines them).
const IN_FLIGHT: usize = 64;

/// How a state's index is read by `monitor_list.lua`, and which key it is.
fn index(k: &super::keys::QueueKeys, state: JobState) -> (&'static str, &str) {
    match state {
        JobState::Enqueued => ("list", &k.pending),
        JobState::Scheduled => ("asc", &k.scheduled),
        JobState::Processing => ("hkeys", &k.tokens),
        JobState::Failed => ("desc", &k.failed),
        JobState::Succeeded => ("desc", &k.succeeded),
        JobState::Deleted => ("desc", &k.deleted),
        _ => ("set", &k.awaiting),
    }
}

impl RedisStorage {
    /// Adds `queue` to the registry of queues, once per storage.
    pub(super) async fn register_queue(&self, queue: &Arc<str>) -> Result<()> {
        self.register_queue_for("enqueueing jobs (registering the queue)", queue)
            .await
    }

    /// [`register_queue`](Self::register_queue), saying what it is for in errors.
    pub(super) async fn register_queue_for(
        &self,
        what: &'static str,
        queue: &Arc<str>,
    ) -> Result<()> {
        let known = self
            .inner
            .registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(queue);
        if known {
            return Ok(());
        }
        let _: i64 = self
            .idempotent(
                what,
                redis::cmd("SADD").arg(self.queues_key()).arg(&**queue),
            )
            .await?;
        self.inner
            .registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(queue.clone());
        Ok(())
    }

    pub(super) async fn queue_names_now(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .idempotent(
                "listing queues",
                redis::cmd("SMEMBERS").arg(self.queues_key()),
            )
            .await?;
        names.sort();
        Ok(names)
    }

    pub(super) async fn queue_summary_now(&self, queue: &str) -> Result<QueueSummary> {
        let k = self.keys(queue);
        #[allow(clippy::type_complexity)]
        let (pending, scheduled, tokens, pinned, failed, counters, head): (
            u64,
            u64,
            u64,
            bool,
            u64,
            (Option<u64>, Option<u64>, Option<String>),
            Option<u64>,
        ) = self
            .idempotent(
                "reading a queue's summary",
                redis::pipe()
                    .llen(&k.pending)
                    .zcard(&k.scheduled)
                    .hlen(&k.tokens)
                    .hexists(&k.tokens, TOKENS_PIN)
                    .zcard(&k.failed)
                    .hmget(&k.stats, &["succeeded", "failed", "paused"])
                    .lindex(&k.pending, 0),
            )
            .await?;
        // When the front job became ready: its latest history entry, or its enqueue (a job
        // still in its first state has no history).
        let oldest = match head {
            None => None,
            Some(seq) => {
                let (rec, hist): (Option<Vec<u8>>, Option<Vec<u8>>) = self
                    .idempotent(
                        "reading a queue's summary",
                        redis::pipe().hget(&k.jobs, seq).hget(&k.hist, seq),
                    )
                    .await?;
                let entered = hist
                    .and_then(|h| record::decode_history(&h).last().map(|c| c.at_ms))
                    .filter(|&at| at > 0);
                entered.or_else(|| {
                    rec.and_then(|r| {
                        record::decode(std::str::from_utf8(&r).ok()?).map(|r| r.enqueued_at_ms)
                    })
                })
            }
        };
        let mut s = QueueSummary::new(queue).oldest_pending(oldest, now_ms());
        s.pending = Count::exact(pending);
        s.scheduled = Count::exact(scheduled);
        s.processing = Count::exact(tokens.saturating_sub(u64::from(pinned)));
        s.failed = Count::exact(failed);
        s.succeeded_total = counters.0.unwrap_or(0);
        s.failed_total = counters.1.unwrap_or(0);
        s.paused = counters.2.is_some();
        Ok(s)
    }

    pub(super) async fn count_now(&self, queue: &str, state: JobState) -> Result<Count> {
        let k = self.keys(queue);
        let (kind, key) = index(&k, state);
        let what = "counting jobs";
        let n: u64 = match kind {
            "list" => self.idempotent(what, redis::cmd("LLEN").arg(key)).await?,
            "set" => self.idempotent(what, redis::cmd("SCARD").arg(key)).await?,
            "hkeys" => {
                let (n, pinned): (u64, bool) = self
                    .idempotent(what, redis::pipe().hlen(key).hexists(key, TOKENS_PIN))
                    .await?;
                n.saturating_sub(u64::from(pinned))
            }
            _ => self.idempotent(what, redis::cmd("ZCARD").arg(key)).await?,
        };
        Ok(Count::exact(n))
    }

    pub(super) async fn list_jobs_now(&self, queue: &str, query: &JobQuery) -> Result<JobPage> {
        let k = self.keys(queue);
        let (kind, key) = index(&k, query.state);
        let cursor = query.cursor.as_deref().unwrap_or("");
        // Checked here, so the script can trust its shape.
        if !cursor.is_empty() {
            match kind {
                "list" | "asc" | "desc" => {
                    parse_pair(cursor)?;
                }
                _ => {
                    parse_one(cursor)?;
                }
            }
        }
        let mut inv = ScriptCall::new(&self.inner.scripts.monitor_list);
        inv.key(key)
            .key(&k.jobs)
            .key(&k.hist)
            .arg(kind)
            .arg(cursor)
            .arg(query.page_size())
            .arg(query.budget())
            .arg(query.name.as_deref().unwrap_or(""))
            .arg(query.search.as_deref().unwrap_or(""));
        let reply: Vec<redis::Value> = inv
            .invoke(&mut self.conn())
            .await
            .map_err(self.err("listing jobs"))?;
        let bad = || Error::storage("listing jobs: Redis sent a reply of another shape");
        let mut it = reply.into_iter();
        let int = |v: Option<redis::Value>| -> Result<u64> {
            redis::from_redis_value::<u64>(v.ok_or_else(bad)?).map_err(|_| bad())
        };
        let total = int(it.next())?;
        let examined = int(it.next())?;
        let next: String =
            redis::from_redis_value(it.next().ok_or_else(bad)?).map_err(|_| bad())?;
        let rest: Vec<redis::Value> = it.collect();
        let queue_arc: Arc<str> = Arc::from(queue);
        let mut jobs = Vec::with_capacity(rest.len() / 3);
        for triple in rest.chunks(3) {
            let [seq, rec, hist] = triple else {
                return Err(bad());
            };
            let seq: u64 = redis::from_redis_value(seq.clone()).map_err(|_| bad())?;
            let rec: Vec<u8> = redis::from_redis_value(rec.clone()).map_err(|_| bad())?;
            let hist: Vec<u8> = redis::from_redis_value(hist.clone()).map_err(|_| bad())?;
            let hist = (!hist.is_empty()).then_some(hist);
            let id = JobId::new(queue_arc.clone(), seq);
            jobs.extend(Self::info(id, Some(rec), hist, query.state));
        }
        Ok(JobPage::new(
            jobs,
            (!next.is_empty()).then_some(next),
            examined,
            Count::exact(total),
        ))
    }

    pub(super) async fn job_detail_now(&self, id: &JobId) -> Result<Option<JobDetail>> {
        let Some(info) = self.job_info(id).await? else {
            return Ok(None);
        };
        let k = self.keys(id.queue());
        let seq = id.seq();
        let (hook, conts, result): (Option<String>, Option<String>, Option<String>) = self
            .idempotent(
                "reading a job's flow data",
                redis::pipe()
                    .hget(&k.hooks, seq)
                    .hget(&k.conts, seq)
                    .hget(&k.results, seq),
            )
            .await?;
        let mut detail = JobDetail::from_info(info);
        detail.result = result;
        if let Some(hook) = hook.and_then(|h| serde_json::from_str::<serde_json::Value>(&h).ok()) {
            detail.batch = hook
                .get("b")
                .and_then(|b| {
                    b.as_str()
                        .map(str::to_owned)
                        .or_else(|| Some(b.to_string()))
                })
                .and_then(|b| b.parse().ok())
                .map(|b| JobId::new(id.queue_arc().clone(), b));
        }
        detail.continuations = conts.map(|c| continuations(&c)).unwrap_or_default();
        Ok(Some(detail))
    }

    pub(super) async fn set_queue_paused_now(&self, queue: &str, paused: bool) -> Result<()> {
        let q: Arc<str> = Arc::from(queue);
        self.register_queue_for("pausing a queue (registering it)", &q)
            .await?;
        let k = self.keys(queue);
        if paused {
            let _: i64 = self
                .idempotent(
                    "pausing a queue",
                    redis::cmd("HSET").arg(&k.stats).arg("paused").arg(now_ms()),
                )
                .await?;
        } else {
            let mut inv = ScriptCall::new(&self.inner.scripts.queue_resume);
            inv.key(&k.stats).key(&k.pending).key(&k.wake);
            let _: i64 = inv
                .invoke(&mut self.conn())
                .await
                .map_err(self.err("resuming a queue"))?;
        }
        Ok(())
    }

    pub(super) async fn set_recurring_paused_now(&self, id: &str, paused: bool) -> Result<bool> {
        let what = "pausing a recurring job";
        let exists: bool = self
            .idempotent(
                what,
                redis::cmd("HEXISTS")
                    .arg(self.recurring_index_key())
                    .arg(id),
            )
            .await?;
        let set = keys::recurring_paused(&self.inner.prefix);
        let change = if paused && exists { "SADD" } else { "SREM" };
        let _: i64 = self
            .idempotent(what, redis::cmd(change).arg(&set).arg(id))
            .await?;
        Ok(exists)
    }

    pub(super) async fn paused_recurring_now(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .idempotent(
                "listing paused recurring jobs",
                redis::cmd("SMEMBERS").arg(keys::recurring_paused(&self.inner.prefix)),
            )
            .await?;
        ids.sort();
        Ok(ids)
    }

    pub(super) async fn report_server_now(
        &self,
        report: &ServerReport,
        ttl: Duration,
    ) -> Result<()> {
        let json = serde_json::to_string(report)
            .map_err(|e| Error::serialization("encoding a server report").with_source(e))?;
        let _: () = self
            .idempotent(
                "recording a server report",
                redis::cmd("SET")
                    .arg(keys::server_report(&self.inner.prefix, &report.name))
                    .arg(json)
                    .arg("PX")
                    .arg(super::millis(ttl).max(1)),
            )
            .await?;
        Ok(())
    }

    pub(super) async fn server_reports_now(&self) -> Result<Vec<ServerReport>> {
        let names = self.live_servers().await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let report_keys: Vec<String> = names
            .iter()
            .map(|n| keys::server_report(&self.inner.prefix, n))
            .collect();
        let reports: Vec<Option<String>> = self
            .idempotent(
                "reading server reports",
                redis::cmd("MGET").arg(&report_keys),
            )
            .await?;
        Ok(reports
            .into_iter()
            .flatten()
            .filter_map(|r| serde_json::from_str(&r).ok())
            .collect())
    }

    pub(super) async fn record_history_now(&self, queues: &[Arc<str>], now: u64) -> Result<()> {
        for queue in queues {
            let k = self.keys(queue);
            let mut inv = ScriptCall::new(&self.inner.scripts.history_record);
            inv.key(&k.stats).key(&k.history);
            for res in [Resolution::Minute, Resolution::Hour] {
                let bucket = res.bucket_of(now);
                inv.arg(bucket)
                    .arg(format!("{}{}", res.code(), res.slot_of(bucket)));
            }
            let _: i64 = inv
                .invoke(&mut self.conn())
                .await
                .map_err(self.err("recording history"))?;
        }
        Ok(())
    }

    pub(super) async fn history_snapshots_now(
        &self,
        queue: &str,
        res: Resolution,
    ) -> Result<Vec<Snapshot>> {
        let k = self.keys(queue);
        let all: Vec<(String, String)> = self
            .idempotent("reading history", redis::cmd("HGETALL").arg(&k.history))
            .await?;
        Ok(all
            .into_iter()
            .filter(|(field, _)| field.starts_with(res.code()))
            .filter_map(|(_, v)| {
                let mut parts = v.split('|').map(str::parse::<u64>);
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(Ok(at)), Some(Ok(s)), Some(Ok(f))) => Some(Snapshot::new(at, s, f)),
                    _ => None,
                }
            })
            .collect())
    }

    pub(super) async fn batches_now(
        &self,
        queue: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<BatchPage> {
        let scan_from = cursor.map(parse_one).transpose()?.unwrap_or(0);
        let k = self.keys(queue);
        let mut ids: Vec<u64> = Vec::new();
        let mut next = scan_from;
        // Fields `<batch>:t` name the batches; a scan returns about COUNT fields at a time.
        loop {
            let (c, fields): (u64, Vec<String>) = self
                .idempotent(
                    "listing batches",
                    redis::cmd("HSCAN")
                        .arg(&k.batches)
                        .arg(next)
                        .arg("MATCH")
                        .arg("*:t")
                        .arg("COUNT")
                        .arg((limit * 4).max(100)),
                )
                .await?;
            next = c;
            ids.extend(
                fields
                    .chunks(2)
                    .filter_map(|kv| kv[0].strip_suffix(":t")?.parse::<u64>().ok()),
            );
            if next == 0 || ids.len() >= limit {
                break;
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        if ids.is_empty() {
            return Ok(BatchPage::new(Vec::new(), None));
        }
        let mut fields = Vec::with_capacity(ids.len() * 3);
        for id in &ids {
            fields.push(format!("{id}:t"));
            fields.push(format!("{id}:s"));
            fields.push(format!("{id}:f"));
        }
        let (counts, conts): (Vec<Option<u64>>, Vec<Option<String>>) = self
            .idempotent(
                "listing batches",
                redis::pipe()
                    .cmd("HMGET")
                    .arg(&k.batches)
                    .arg(&fields)
                    .cmd("HMGET")
                    .arg(&k.conts)
                    .arg(&ids),
            )
            .await?;
        let queue_arc: Arc<str> = Arc::from(queue);
        let batches = ids
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                let progress = BatchProgress {
                    total: counts[3 * i].unwrap_or(0),
                    succeeded: counts[3 * i + 1].unwrap_or(0),
                    failed: counts[3 * i + 2].unwrap_or(0),
                };
                let then = conts[i]
                    .as_deref()
                    .and_then(|c| continuations(c).into_iter().next())
                    .map(|(id, _)| id);
                BatchInfo::new(JobId::new(queue_arc.clone(), b), progress, then)
            })
            .collect();
        Ok(BatchPage::new(
            batches,
            (next != 0).then(|| next.to_string()),
        ))
    }

    pub(super) async fn requeue_many_now(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        use crate::storage::Monitoring;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_FLIGHT) {
            out.extend(try_join_all(chunk.iter().map(|id| self.requeue(id))).await?);
        }
        Ok(out)
    }

    pub(super) async fn delete_many_now(&self, ids: &[JobId]) -> Result<Vec<bool>> {
        use crate::storage::Monitoring;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_FLIGHT) {
            out.extend(try_join_all(chunk.iter().map(|id| self.delete(id))).await?);
        }
        Ok(out)
    }
}

/// Continuations as the conts hash stores them: JSON `[[queue, seq, on], ..]`.
fn continuations(json: &str) -> Vec<(JobId, Finish)> {
    let Ok(list) = serde_json::from_str::<Vec<(String, serde_json::Value, String)>>(json) else {
        return Vec::new();
    };
    list.into_iter()
        .filter_map(|(queue, seq, on)| {
            let seq = match seq {
                serde_json::Value::Number(n) => n.as_u64()?,
                serde_json::Value::String(s) => s.parse().ok()?,
                _ => return None,
            };
            Some((JobId::new(queue, seq), Finish::from_code(&on)?))
        })
        .collect()
}
