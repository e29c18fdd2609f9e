//! The queue from the job slots to the acker: a locked list of messages the acker takes in
//! batches, cheaper per message than a channel. Like a channel, it closes when the last sender
//! is dropped, and the acker still gets everything sent before.
//!
//! Start marks travel beside the messages, not among them: they neither fill a batch nor wake
//! a busy acker, so a worker of short jobs, whose marks are almost all dropped unsent, sends as
//! few and as large batches as without them.

use super::acker::AckMsg;
use crate::storage::Lease;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;
use tokio::time::Instant;

struct Shared {
    state: Mutex<State>,
    /// Signalled when the queue becomes non-empty, fills a batch, or closes.
    ready: Notify,
}

struct State {
    msgs: VecDeque<AckMsg>,
    /// Leases whose jobs started, for their start marks.
    starts: Vec<Lease>,
    senders: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation is one push, one drain or one count: nothing is left half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending side; clone it for every task that sends.
pub(super) struct AckSender {
    shared: Arc<Shared>,
    batch: usize,
}

/// The receiving side, owned by the acker.
pub(super) struct AckReceiver {
    shared: Arc<Shared>,
    batch: usize,
}

/// A queue whose receiver takes batches of up to `batch` messages.
pub(super) fn ack_queue(batch: usize) -> (AckSender, AckReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            msgs: VecDeque::new(),
            starts: Vec::new(),
            senders: 1,
        }),
        ready: Notify::new(),
    });
    (
        AckSender {
            shared: shared.clone(),
            batch,
        },
        AckReceiver { shared, batch },
    )
}

impl AckSender {
    /// Queues `msg` for the acker.
    pub(super) fn send(&self, msg: AckMsg) {
        let len = {
            let mut state = self.shared.lock();
            state.msgs.push_back(msg);
            state.msgs.len()
        };
        // Only the transitions the receiver waits for: the first message, a full batch.
        if len == 1 || len == self.batch {
            self.shared.ready.notify_one();
        }
    }
}

impl AckSender {
    /// Queues the start mark of a job whose handler starts now.
    pub(super) fn started(&self, lease: Lease) {
        let idle = {
            let mut state = self.shared.lock();
            state.starts.push(lease);
            state.msgs.is_empty() && state.starts.len() == 1
        };
        // An idle acker waits for a first message: a long job's mark must not wait for one.
        if idle {
            self.shared.ready.notify_one();
        }
    }
}

impl Clone for AckSender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        AckSender {
            shared: self.shared.clone(),
            batch: self.batch,
        }
    }
}

impl Drop for AckSender {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.ready.notify_one();
        }
    }
}

impl AckReceiver {
    /// Moves the next batch into `out` and the start marks queued so far into `starts`: waits
    /// for a first message or mark (at most `wait`, when given), then until `linger` passes for
    /// a full batch. Returns `false` once every sender is gone (`out` then holds the last
    /// messages, possibly none).
    pub(super) async fn recv_batch(
        &mut self,
        out: &mut Vec<AckMsg>,
        starts: &mut Vec<Lease>,
        linger: std::time::Duration,
        wait: Option<std::time::Duration>,
    ) -> bool {
        // A first message (or the close).
        let give_up_at = wait.map(|w| Instant::now() + w);
        loop {
            let notified = self.shared.ready.notified();
            {
                let state = self.shared.lock();
                if !state.msgs.is_empty() || !state.starts.is_empty() || state.senders == 0 {
                    break;
                }
            }
            match give_up_at {
                Some(at) => {
                    if tokio::time::timeout_at(at, notified).await.is_err() {
                        break;
                    }
                }
                None => notified.await,
            }
        }
        // Then more, for up to `linger`, so one storage call carries many.
        let flush_at = Instant::now() + linger;
        loop {
            let notified = self.shared.ready.notified();
            {
                let state = self.shared.lock();
                if state.msgs.len() >= self.batch || state.senders == 0 {
                    break;
                }
            }
            if tokio::time::timeout_at(flush_at, notified).await.is_err() {
                break;
            }
        }
        let mut state = self.shared.lock();
        let n = state.msgs.len().min(self.batch);
        out.extend(state.msgs.drain(..n));
        starts.append(&mut state.starts);
        state.senders > 0 || !state.msgs.is_empty()
    }
}
