//! Enqueueing: one script call per queue (all or none within it), numbers reserved in blocks,
//! large calls cut into chunks, unique jobs through their own script.

use super::{by_queue, record, RedisStorage};
use crate::error::Result;
use crate::job::JobId;
use crate::state::JobState;
use crate::storage::{now_ms, Delivery, NewJob};

/// The most jobs one command of an enqueue transaction carries.
const CHUNK: usize = 5_000;

impl RedisStorage {
    pub(super) async fn enqueue_jobs(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        for job in &jobs {
            self.check(job)?;
        }
        let now = now_ms();
        let mut ids: Vec<Option<JobId>> = vec![None; jobs.len()];
        // One script call per queue: all or none within a queue (queues are different slots).
        for (queue, positions) in by_queue(&jobs, |j| &j.queue) {
            self.register_queue(&queue).await?;
            if positions.iter().any(|&i| jobs[i].unique.is_some()) {
                let stored = self.enqueue_unique(&queue, &jobs, &positions, now).await?;
                for (id, &i) in stored.into_iter().zip(&positions) {
                    ids[i] = Some(id);
                }
                continue;
            }
            let k = self.keys(&queue);
            // Jobs to run now first, then delayed ones; numbers are handed out in that order.
            let (now_jobs, delayed): (Vec<usize>, Vec<usize>) = positions
                .iter()
                .partition(|&&i| jobs[i].run_at_ms.map_or(true, |t| t <= now));
            let first = self.reserve_seqs(&queue, &k, positions.len()).await?;
            let order: Vec<usize> = now_jobs.iter().chain(&delayed).copied().collect();
            let seq = |n: usize| first + n as u64;
            // One transaction of plain commands (no script: a job costs Redis a hash field and a
            // list entry, nothing more), in bounded chunks so no command grows without limit.
            let mut pipe = redis::pipe();
            pipe.atomic();
            for chunk in chunks(0..order.len()) {
                pipe.cmd("HSET").arg(&*k.jobs);
                for n in chunk {
                    let job = &jobs[order[n]];
                    // A delayed job's record holds its due time: when its queue wait starts.
                    let at = job.run_at_ms.map_or(now, |t| t.max(now));
                    pipe.arg(seq(n))
                        .arg(record::encode(at, &job.name, &job.args, &job.headers));
                }
                pipe.ignore();
            }
            for chunk in chunks(0..now_jobs.len()) {
                pipe.cmd("RPUSH").arg(&*k.pending);
                for n in chunk {
                    pipe.arg(seq(n));
                }
                pipe.ignore();
            }
            let scheduled_entry = record::entry_at(JobState::Scheduled, now);
            for chunk in chunks(now_jobs.len()..order.len()) {
                pipe.cmd("ZADD").arg(&*k.scheduled);
                for n in chunk.clone() {
                    let due = jobs[order[n]].run_at_ms.unwrap_or(0).min(1 << 52);
                    pipe.arg(due).arg(seq(n));
                }
                pipe.ignore();
                // A delayed job's history starts with its own entry, Scheduled at enqueue time.
                pipe.cmd("HSET").arg(&*k.hist);
                for n in chunk {
                    pipe.arg(seq(n)).arg(&scheduled_entry);
                }
                pipe.ignore();
            }
            // Wake a waiting worker: the signal list holds at most one element.
            pipe.cmd("RPUSH").arg(&*k.wake).arg(1).ignore();
            pipe.cmd("LTRIM").arg(&*k.wake).arg(0).arg(0).ignore();
            // The counter never goes below a number handed out, unless Redis lost its data
            // (flushed, or restarted without persistence): checked below.
            pipe.cmd("GET").arg(&*k.seq);
            let counter: Option<u64> = match self.inner.replicas_ack {
                Some(ack) => {
                    self.transaction_acknowledged(ack, &pipe, "enqueueing jobs")
                        .await?
                }
                None => self
                    .transaction_last_reply(&pipe)
                    .await
                    .map_err(self.err("enqueueing jobs"))?,
            };
            let last = seq(order.len() - 1);
            if counter.unwrap_or(0) < last {
                self.counter_went_back(&queue, &k, last).await?;
            }
            for (n, &i) in order.iter().enumerate() {
                ids[i] = Some(JobId::new(queue.clone(), seq(n)));
            }
        }
        Ok(ids.into_iter().flatten().collect())
    }
}

/// `range` cut into consecutive ranges of at most `CHUNK`.
fn chunks(range: std::ops::Range<usize>) -> impl Iterator<Item = std::ops::Range<usize>> {
    let end = range.end;
    range
        .step_by(CHUNK)
        .map(move |start| start..(start + CHUNK).min(end))
}

#[cfg(test)]
mod tests {
    use super::{chunks, CHUNK};

    #[test]
    fn chunks_cover_the_range_once_in_order() {
        let got: Vec<_> = chunks(3..3 + 2 * CHUNK + 1).collect();
        assert_eq!(
            got,
            [
                3..3 + CHUNK,
                3 + CHUNK..3 + 2 * CHUNK,
                3 + 2 * CHUNK..4 + 2 * CHUNK
            ]
        );
        assert_eq!(chunks(5..5).count(), 0);
    }
}
