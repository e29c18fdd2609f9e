//! Whether a test cluster's replicas hold what their primaries wrote: a wait before a test
//! relies on it (a failover), and the replication state a failure message shows.

use crate::cluster::{cli, field, TestCluster};
use std::time::{Duration, Instant};

impl TestCluster {
    /// Waits until the replica of the primary on `port` has read everything the primary wrote
    /// (a write of its own included). A replica whose link is up can still read nothing: seen
    /// here about once in twenty clusters under load, a replica that had synced at offset 0 and
    /// stayed there while its primary went on, so a failover promoted an empty node. A replica
    /// that stays behind for 3 s has its link to the primary dropped (`CLIENT KILL TYPE
    /// master`), and resumes from where it stopped.
    ///
    /// # Panics
    ///
    /// When the primary has no replica, or the replica has not caught up within `limit`.
    pub fn wait_replicated(&self, port: u16, limit: Duration) {
        let replica = self.replica_of(port).expect("the primary has a replica");
        let probe = (0..)
            .map(|n| format!("{{replication-probe-{n}}}"))
            .find(|k| self.primary_of(k) == port)
            .expect("a key of the primary's slots");
        cli(port, &["INCR", &probe]).expect("the primary takes a write");
        let offset = |node: u16, name: &str| -> u64 {
            cli(node, &["INFO", "replication"])
                .and_then(|info| field(&info, name).and_then(|v| v.parse().ok()))
                .unwrap_or(0)
        };
        let target = offset(port, "master_repl_offset");
        let started = Instant::now();
        let mut kicked = false;
        loop {
            let got = offset(replica, "slave_repl_offset");
            if got >= target {
                return;
            }
            if !kicked && started.elapsed() > Duration::from_secs(3) {
                eprintln!(
                    "cluster: the replica on port {replica} read up to offset {got} of its \
                     primary's {target} in 3 s; dropping its link to the primary"
                );
                let _ = cli(replica, &["CLIENT", "KILL", "TYPE", "master"]);
                kicked = true;
            }
            assert!(
                started.elapsed() < limit,
                "the replica on port {replica} read up to offset {got} of its primary's {target} \
                 within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the node on `port` says of its role, replication and keys (`INFO`), for a failure
    /// message.
    pub fn replication_state(&self, port: u16) -> String {
        const KEEP: [&str; 9] = [
            "role",
            "master_link_status",
            "master_sync_in_progress",
            "master_repl_offset",
            "slave_repl_offset",
            "slave0",
            "sync_full",
            "sync_partial_ok",
            "db0",
        ];
        let mut out = format!("{port}:");
        for section in ["replication", "stats", "keyspace"] {
            let Some(info) = cli(port, &["INFO", section]) else {
                return format!("{out} unreachable");
            };
            for key in KEEP {
                if let Some(value) = field(&info, key) {
                    out += &format!(" {key}:{value}");
                }
            }
        }
        out
    }
}
