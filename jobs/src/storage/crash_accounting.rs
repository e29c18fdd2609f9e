//! The words of crash accounting (see the [module docs](super#crash-accounting)): the history
//! reasons a reaped lease leaves, shared by the backends (`redis/scripts/fetch.lua` writes the
//! same text), and the reason a job that reached its crash limit fails with.

/// The history reason of a lease that ran out before its job was marked started.
pub(crate) const ORPHANED_REASON: &str = "lease expired before it started: its worker stopped or \
                                          hung; handed back without counting an attempt";

/// How long a job whose worker died while running it waits before it runs again, after its
/// `crashes`-th crash: that many seconds, jittered to 50–150 % (`redis/scripts/fetch.lua` does
/// the same). A job that crashes its workers does not take the next one down at once, and jobs
/// that crashed together (one worker's slots) come back spread out; without the pause, a worker
/// killed on a schedule (`bench/kill-storm.sh`: every second, leases of two) met the same jobs
/// just started at every kill, and failed them at their crash limit.
pub(crate) fn crash_pause_ms(crashes: u32) -> u64 {
    use rand::Rng;
    let jitter: u64 = rand::thread_rng().gen_range(500..=1_500);
    u64::from(crashes.max(1)).saturating_mul(jitter)
}

/// The history reason of a lease that ran out while its job ran, its `crashes`-th such end.
pub(crate) fn crash_reason(crashes: u32) -> String {
    format!("lease expired while it ran: its worker died or hung (crash {crashes})")
}

/// Why a job that reached its crash limit ends Failed without running again.
pub(crate) fn crash_limit_reason(crashes: u32) -> String {
    let times = match crashes {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    };
    format!(
        "its worker died {times} while running it (the job's crash limit, `max_crashes`): \
         not run again, so that a job that kills its worker cannot loop forever"
    )
}
