//! A local Redis Sentinel deployment for tests: one master, one replica (`REPLICAOF`) and three
//! sentinels (`redis-server sentinel.conf --sentinel`, quorum 2, `down-after-milliseconds` 1 s),
//! each on a free port in a directory of its own, all killed when it is dropped.

use crate::cluster::{cli, field, free_ports};
use crate::{spawn_server, unique_prefix, wait_ready, Listen};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "mymaster";

/// How long the master may be unreachable before the sentinels see it down
/// (`down-after-milliseconds`): short, so failover tests take seconds.
pub const DOWN_AFTER_MS: u64 = 1_000;

/// A running Sentinel deployment.
pub struct TestSentinel {
    /// The data nodes: the first master first, then its replica.
    nodes: Vec<Process>,
    sentinels: Vec<Process>,
    dir: tempfile::TempDir,
}

struct Process {
    port: u16,
    child: Option<Child>,
}

impl Process {
    /// Panics when the process is gone: a `redis-server` exits when it cannot bind its port
    /// (another process took it between `free_ports` and the start), and whatever answers
    /// there is not ours.
    fn assert_alive(&mut self) {
        let exited = self.child.as_mut().map(|c| c.try_wait());
        assert!(
            matches!(exited, Some(Ok(None))),
            "the redis-server on port {} exited right after it started ({exited:?}): was the \
             port taken?",
            self.port
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_sentinel(port: u16, master: u16, dir: &Path) -> Child {
    std::fs::create_dir_all(dir).expect("a sentinel directory");
    // Sentinel rewrites its configuration file (what it learned, its id): it must be writable.
    let conf = dir.join("sentinel.conf");
    let text = format!(
        "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\nlogfile {log}\n\
         sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
         sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
         sentinel failover-timeout {MASTER_NAME} 5000\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        dir = dir.display(),
        log = dir.join("sentinel.log").display(),
    );
    std::fs::write(&conf, text).expect("a sentinel configuration");
    Command::new("redis-server")
        .arg(&conf)
        .arg("--sentinel")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server --sentinel starts")
}

/// Whether a write on the master at `port` reaches a replica within 200 ms (`WAIT`).
fn replicated(port: u16) -> bool {
    let confirmed = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .and_then(|mut con| {
            redis::pipe()
                .cmd("SET")
                .arg("sentinel-harness:replicated")
                .arg(1)
                .ignore()
                .cmd("WAIT")
                .arg(1)
                .arg(200)
                .query::<(u64,)>(&mut con)
        });
    matches!(confirmed, Ok((1,)))
}

impl TestSentinel {
    /// A deployment for one test, or `None` (after printing why) when `redis-server` and
    /// `redis-cli` are missing and `JOBS_REQUIRE_REDIS` is not `1`.
    ///
    /// # Panics
    ///
    /// When the tools are missing and `JOBS_REQUIRE_REDIS=1`, or the deployment does not come
    /// up (replica in sync, every sentinel seeing the replica and the two other sentinels)
    /// within 30 s.
    pub fn start(test: &str) -> Option<TestSentinel> {
        if !crate::cluster::available(test) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ports = free_ports(5);
        let mut nodes = Vec::new();
        for (i, &port) in ports[..2].iter().enumerate() {
            let node_dir = dir.path().join(format!("node-{i}"));
            std::fs::create_dir_all(&node_dir).expect("a node directory");
            let child = spawn_server(&Listen::Port(port), &node_dir, false);
            nodes.push(Process {
                port,
                child: Some(child),
            });
            wait_ready(&Listen::Port(port).url());
            nodes.last_mut().expect("a node").assert_alive();
        }
        let (master, replica) = (ports[0], ports[1]);
        // The first sync at once (Redis waits 5 s by default for more replicas to share it).
        cli(master, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"])
            .expect("the master takes the setting");
        cli(replica, &["REPLICAOF", "127.0.0.1", &master.to_string()])
            .expect("the replica follows the master");
        let sentinels = ports[2..]
            .iter()
            .enumerate()
            .map(|(i, &port)| Process {
                port,
                child: Some(spawn_sentinel(
                    port,
                    master,
                    &dir.path().join(format!("sentinel-{i}")),
                )),
            })
            .collect();
        let mut deployment = TestSentinel {
            nodes,
            sentinels,
            dir,
        };
        for s in &mut deployment.sentinels {
            wait_ready(&format!("redis://127.0.0.1:{}/", s.port));
            s.assert_alive();
        }
        deployment.wait_healthy(Duration::from_secs(30));
        Some(deployment)
    }

    /// Waits until the master has its replica in sync and every live sentinel knows the
    /// master, a replica and the other live sentinels.
    ///
    /// # Panics
    ///
    /// When that does not happen within `limit`.
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.is_healthy() {
            assert!(
                Instant::now() < deadline,
                "the Sentinel deployment did not become healthy within {limit:?} (logs in {})",
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_healthy(&self) -> bool {
        let Some(master) = self.master() else {
            return false;
        };
        // Online is not enough: after its first sync a replica is sent the writes that followed
        // only once it acknowledged an offset (it does every second, or when asked by `WAIT`).
        // Until then a failover loses them, acknowledged or not.
        let synced = cli(master, &["INFO", "replication"]).is_some_and(|info| {
            field(&info, "role") == Some("master")
                && field(&info, "slave0").is_some_and(|s| s.contains("state=online"))
        }) && replicated(master);
        let live: Vec<u16> = self.live_sentinels().collect();
        synced
            && live.iter().all(|&port| {
                cli(port, &["SENTINEL", "MASTER", MASTER_NAME]).is_some_and(|reply| {
                    let values: Vec<&str> = reply.lines().collect();
                    let get = |name: &str| {
                        values
                            .iter()
                            .position(|v| *v == name)
                            .and_then(|i| values.get(i + 1).copied())
                    };
                    get("flags") == Some("master")
                        && get("num-slaves").is_some_and(|n| n != "0")
                        && get("num-other-sentinels") == Some(&(live.len() - 1).to_string())
                })
            })
    }

    fn live_sentinels(&self) -> impl Iterator<Item = u16> + '_ {
        self.sentinels
            .iter()
            .filter(|s| s.child.is_some())
            .map(|s| s.port)
    }

    /// The URLs of the sentinels.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}/", s.port))
            .collect()
    }

    /// A builder of a storage on this deployment's master under a fresh unique prefix.
    pub fn storage_builder(
        &self,
        test: &str,
        retention: jobs::storage::Retention,
    ) -> jobs::RedisStorageBuilder {
        jobs::RedisStorage::sentinel_builder(self.sentinel_urls(), MASTER_NAME)
            .prefix(unique_prefix(test))
            .retention(retention)
    }

    /// The port of the master as the first live sentinel that answers names it.
    pub fn master(&self) -> Option<u16> {
        self.live_sentinels().find_map(|port| {
            let reply = cli(port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME])?;
            reply.lines().nth(1)?.trim().parse().ok()
        })
    }

    /// The ports of the data nodes (the first master, then its replica).
    pub fn data_ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// Kills the data node on `port` with SIGKILL.
    ///
    /// # Panics
    ///
    /// When no data node of this deployment listens there.
    pub fn kill(&mut self, port: u16) {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a data node of this deployment")
            .stop();
    }

    /// Starts the killed data node on `port` again, empty, as a replica of the node on
    /// `master` (as an old master comes back after a failover), and waits until it is in sync.
    ///
    /// # Panics
    ///
    /// When no data node of this deployment listens there, or it does not start or sync within
    /// 30 s.
    pub fn restart_as_replica(&mut self, port: u16, master: u16) {
        let i = self
            .nodes
            .iter()
            .position(|n| n.port == port)
            .expect("a data node of this deployment");
        self.nodes[i].stop();
        let dir = self.dir.path().join(format!("node-{i}"));
        self.nodes[i].child = Some(spawn_server(&Listen::Port(port), &dir, false));
        wait_ready(&Listen::Port(port).url());
        self.nodes[i].assert_alive();
        cli(port, &["REPLICAOF", "127.0.0.1", &master.to_string()])
            .expect("the node follows the master");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = cli(port, &["INFO", "replication"]).unwrap_or_default();
            if field(&info, "master_link_status") == Some("up") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the node on port {port} did not sync with {master} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asks a sentinel for a failover while the master is up (`SENTINEL FAILOVER`): the
    /// replica is promoted and the old master demoted to its replica.
    ///
    /// # Panics
    ///
    /// When no sentinel accepts.
    pub fn switch_over(&self) {
        let accepted = self.live_sentinels().any(|port| {
            cli(port, &["SENTINEL", "FAILOVER", MASTER_NAME])
                .is_some_and(|reply| reply.trim() == "OK")
        });
        assert!(accepted, "a sentinel started a failover");
    }

    /// Sends `signal` (`STOP`, `CONT`) to the data node on `port`: a stopped replica reads
    /// nothing, so its master's writes pile up unreplicated.
    ///
    /// # Panics
    ///
    /// When no live data node listens there.
    pub fn signal(&self, port: u16, signal: &str) {
        let pid = self
            .nodes
            .iter()
            .find(|n| n.port == port)
            .and_then(|n| n.child.as_ref())
            .expect("a live data node of this deployment")
            .id();
        crate::cluster::send_signal(pid, signal);
    }

    /// Waits until the node on `port` is a master, as it says itself, and a sentinel names it
    /// (a replica promoted by a failover).
    ///
    /// # Panics
    ///
    /// When that does not happen within `limit`.
    pub fn wait_master(&self, port: u16, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let is_master = cli(port, &["INFO", "replication"])
                .is_some_and(|info| field(&info, "role") == Some("master"));
            if is_master && self.master() == Some(port) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the node on port {port} did not become the master within {limit:?} (logs in {})",
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `lines` lines of each process's log, for a failure message.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = String::new();
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.sort();
        for dir in names {
            for log in ["redis.log", "sentinel.log"] {
                if let Ok(text) = std::fs::read_to_string(dir.join(log)) {
                    let all: Vec<&str> = text.lines().collect();
                    out.push_str(&format!("--- {}\n", dir.join(log).display()));
                    for line in &all[all.len().saturating_sub(lines)..] {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    /// `redis-cli` on the node at `port`, its output (`None` when it fails).
    pub fn cli(&self, port: u16, args: &[&str]) -> Option<String> {
        cli(port, args)
    }
}

impl Drop for TestSentinel {
    fn drop(&mut self) {
        self.sentinels.iter_mut().for_each(Process::stop);
        self.nodes.iter_mut().for_each(Process::stop);
    }
}
