//! A worker's session: one connection of its own that LISTENs for enqueues and holds the
//! advisory lock its leases are tied to.
//!
//! Each claim records the lock's key as its lease's owner. PostgreSQL releases a session's
//! advisory locks the moment the session ends, and a process that dies (SIGKILL, OOM) ends its
//! sessions at once (the kernel closes its sockets), so the next maintenance pass of any live
//! worker finds the owner's key gone from `pg_locks` and hands the jobs back, without waiting
//! for the lease to run out. A worker that hangs with its session open is bounded by its lease.
//!
//! When the connection is lost, the key goes with it: the worker claims with owner 0 (lease
//! only) until a new session holds a key again. The new session takes the same key when it is
//! free (PostgreSQL restarted, or the old session already ended), so the leases the worker still
//! holds stay tied to it and a restart does not hand them to other workers; otherwise it takes a
//! new key and the worker's renewals move its leases to it.

use super::Names;
use rand::Rng;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::Notify;

/// How long the session waits without a notification before it checks its connection. A
/// connection the server or the network closed ends the wait at once; this only finds one that
/// went silent (a black-holed route), and it is a query every idle worker sends, so rarely.
const QUIET: Duration = Duration::from_secs(30);

/// The state a session shares with the storage's fetches.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The advisory-lock key of the live session; 0 while there is none.
    owner: AtomicI32,
    /// Woken by every notification (and when the session is re-established).
    pub(crate) wake: Notify,
    started: AtomicBool,
}

impl Session {
    /// The key claims record as their owner (0: none).
    pub(crate) fn owner(&self) -> i32 {
        self.owner.load(Ordering::Acquire)
    }

    /// Waits until a session holds its lock (or `limit` passes): a worker's first claims are
    /// then tied to it, rather than bounded by their lease alone.
    pub(crate) async fn established(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let woken = self.wake.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                if self.owner() != 0 {
                    return;
                }
                woken.await;
            }
        })
        .await;
    }

    /// Starts the session task once (returns whether this call started it); it ends when `alive` has no strong reference left.
    pub(crate) fn start<T: Send + Sync + 'static>(
        &self,
        alive: Weak<T>,
        session: Weak<Session>,
        pool: &PgPool,
        names: &Names,
    ) -> bool {
        if self.started.swap(true, Ordering::AcqRel) {
            return false;
        }
        // A pool of its own: the session's connection is never handed to another caller with
        // the lock still held, and it closes when the session ends.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with((*pool.connect_options()).clone());
        tokio::spawn(run(alive, session, own, names.clone()));
        true
    }
}

async fn run<T>(alive: Weak<T>, session: Weak<Session>, pool: PgPool, names: Names) {
    let mut pause = Duration::from_millis(50);
    let mut last = 0;
    loop {
        if alive.strong_count() == 0 {
            return;
        }
        match open(&pool, &names, last).await {
            Ok((mut listener, key)) => {
                pause = Duration::from_millis(50);
                last = key;
                let Some(s) = session.upgrade() else { return };
                s.owner.store(key, Ordering::Release);
                // Enqueues while there was no session sent no wake-up this worker heard.
                s.wake.notify_waiters();
                drop(s);
                listen(&alive, &session, &mut listener).await;
                if let Some(s) = session.upgrade() {
                    s.owner.store(0, Ordering::Release);
                    s.wake.notify_waiters();
                }
                tracing::debug!("jobs: PostgreSQL session ended; opening a new one");
            }
            Err(e) => {
                tracing::debug!(error = %e, "jobs: cannot open a PostgreSQL session yet");
                tokio::time::sleep(pause).await;
                // Capped well below the two seconds after a restart in which the server keeps
                // the leases of sessions not back yet (migration 0004).
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        }
    }
}

/// Connects, LISTENs and takes an advisory lock: key `prefer` when it is free (0: none),
/// otherwise a fresh one. Returns the listener and the key.
async fn open(pool: &PgPool, names: &Names, prefer: i32) -> Result<(PgListener, i32), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(&names.channel).await?;
    let mut prefer = Some(prefer).filter(|&k| k != 0);
    loop {
        let key = prefer
            .take()
            .unwrap_or_else(|| rand::thread_rng().gen_range(1..i32::MAX));
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(names.lock_namespace)
            .bind(key)
            .fetch_one(&mut listener)
            .await?;
        if locked {
            return Ok((listener, key));
        }
    }
}

/// Passes notifications on until the connection is lost or the storage is dropped.
async fn listen<T>(alive: &Weak<T>, session: &Weak<Session>, listener: &mut PgListener) {
    loop {
        match tokio::time::timeout(QUIET, listener.try_recv()).await {
            Ok(Ok(Some(_))) => match session.upgrade() {
                Some(s) => s.wake.notify_waiters(),
                None => return,
            },
            // The connection was lost (and the lock with it), or failed.
            Ok(Ok(None) | Err(_)) => return,
            Err(_) => {
                if alive.strong_count() == 0 {
                    return;
                }
                let ping = sqlx::query("SELECT 1").execute(&mut *listener);
                if !matches!(tokio::time::timeout(QUIET, ping).await, Ok(Ok(_))) {
                    return;
                }
            }
        }
    }
}
