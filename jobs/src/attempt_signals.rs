//! The signals one attempt shares with the worker performing it: the worker asks the attempt to
//! stop (cancellation, timeout, lost lease, shutdown), and the job reports a permanent failure.
//!
//! One allocation per attempt, and the [`CancellationToken`] that `JobContext` exposes is only
//! created when the job asks for it or waits for cancellation: most jobs only ever check a flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Default)]
pub(crate) struct AttemptSignals {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Created on first use; fired by `cancel` if it exists by then.
    token: OnceLock<CancellationToken>,
    /// Orders creating the token against cancelling, so a token made while the attempt is
    /// being cancelled is never left unfired.
    token_lock: Mutex<()>,
    permanent: AtomicBool,
}

impl AttemptSignals {
    pub(crate) fn new() -> Self {
        AttemptSignals::default()
    }

    /// Asks the attempt to stop.
    pub(crate) fn cancel(&self) {
        let _guard = self
            .inner
            .token_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.inner.cancelled.store(true, Ordering::SeqCst);
        if let Some(token) = self.inner.token.get() {
            token.cancel();
        }
    }

    /// Whether the attempt was asked to stop.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// A token that fires when the attempt is asked to stop (already fired if it was).
    pub(crate) fn token(&self) -> &CancellationToken {
        if let Some(token) = self.inner.token.get() {
            return token;
        }
        let _guard = self
            .inner
            .token_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let token = self.inner.token.get_or_init(CancellationToken::new);
        if self.inner.cancelled.load(Ordering::SeqCst) {
            token.cancel();
        }
        token
    }

    /// Records that the attempt failed with a permanent error (so it is not retried).
    pub(crate) fn mark_permanent(&self) {
        self.inner.permanent.store(true, Ordering::SeqCst);
    }

    /// Whether the attempt failed with a permanent error.
    pub(crate) fn failed_permanently(&self) -> bool {
        self.inner.permanent.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::AttemptSignals;

    #[test]
    fn a_token_made_after_cancelling_has_fired() {
        let signals = AttemptSignals::new();
        assert!(!signals.is_cancelled());
        signals.cancel();
        assert!(signals.is_cancelled());
        assert!(signals.token().is_cancelled());
    }

    #[test]
    fn a_token_made_before_cancelling_fires_with_it() {
        let signals = AttemptSignals::new();
        let token = signals.token().clone();
        assert!(!token.is_cancelled());
        signals.clone().cancel();
        assert!(token.is_cancelled());
    }
}
