//! A local Redis Cluster for tests: 3 primaries and 3 replicas, each a `redis-server
//! --cluster-enabled yes` on free ports in a directory of its own, joined with `redis-cli
//! --cluster create ... --cluster-replicas 1`.
//!
//! The shared backend suite runs on one cluster per test process ([`TestCluster::shared`]),
//! each test under a prefix of its own; tests that kill nodes start a private one
//! ([`TestCluster::start`]). The nodes of the shared cluster outlive the statics that hold
//! them, so a watchdog shell kills them (and removes their directory) once the test process is
//! gone.

use crate::unique_prefix;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a primary may be unreachable before its replica takes over (`cluster-node-timeout`):
/// short, so failover tests take seconds, not the default 15.
pub const NODE_TIMEOUT_MS: u64 = 1_000;

/// A running local cluster.
pub struct TestCluster {
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
    watchdog: Option<Child>,
}

struct Node {
    port: u16,
    child: Option<Child>,
}

/// `n` distinct free TCP ports on 127.0.0.1 (all bound at once, then released).
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free local port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound address").port())
        .collect()
}

/// Whether `redis-server` and `redis-cli` are on `PATH`.
fn tools_available() -> bool {
    ["redis-server", "redis-cli"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Whether a cluster (or a Sentinel deployment) can be started; `false` after printing why when
/// the tools are missing and `JOBS_REQUIRE_REDIS` is not `1`.
pub(crate) fn available(test: &str) -> bool {
    if tools_available() {
        return true;
    }
    crate::skip_unless_required(
        "JOBS_REQUIRE_REDIS",
        &format!("test `{test}`: no `redis-server` and `redis-cli` on PATH"),
    );
    false
}

fn spawn_node(port: u16, bus_port: u16, dir: &Path) -> Child {
    std::fs::create_dir_all(dir).expect("a node directory");
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .arg("--cluster-port")
        .arg(bus_port.to_string())
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])
        .arg("--cluster-node-timeout")
        .arg(NODE_TIMEOUT_MS.to_string())
        // Queues of the other primaries go on while one fails over.
        .args(["--cluster-require-full-coverage", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--maxmemory-policy", "noeviction", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts")
}

/// `redis-cli -p port args…`, its output; `None` when it fails.
pub(crate) fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of `field` in an `INFO`-style `field:value` reply.
pub(crate) fn field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
}

impl TestCluster {
    /// The cluster this test process shares among its tests (started by the first), or `None`
    /// (after printing why) when `redis-server`/`redis-cli` are missing and
    /// `JOBS_REQUIRE_REDIS` is not `1`.
    ///
    /// # Panics
    ///
    /// When the tools are missing and `JOBS_REQUIRE_REDIS=1`, or the cluster does not form.
    pub fn shared(test: &str) -> Option<&'static TestCluster> {
        static SHARED: OnceLock<Option<TestCluster>> = OnceLock::new();
        if !available(test) {
            return None;
        }
        SHARED
            .get_or_init(|| {
                let mut cluster = TestCluster::spawn();
                cluster.watch();
                Some(cluster)
            })
            .as_ref()
    }

    /// A private cluster for a test that kills its nodes, or `None` as for
    /// [`shared`](Self::shared).
    ///
    /// # Panics
    ///
    /// As [`shared`](Self::shared).
    pub fn start(test: &str) -> Option<TestCluster> {
        available(test).then(TestCluster::spawn)
    }

    fn spawn() -> TestCluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut nodes = Vec::new();
        let ports = free_ports(12);
        for i in 0..6 {
            let (port, bus) = (ports[2 * i], ports[2 * i + 1]);
            let child = spawn_node(port, bus, &dir.path().join(format!("node-{i}")));
            nodes.push(Node {
                port,
                child: Some(child),
            });
        }
        let cluster = TestCluster {
            nodes,
            dir,
            watchdog: None,
        };
        for node in &cluster.nodes {
            cluster.wait_answers(node.port);
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        cluster.wait_healthy(Duration::from_secs(30));
        for primary in cluster.primaries() {
            cluster.wait_replicated(primary, Duration::from_secs(30));
        }
        cluster
    }

    /// Starts a shell that kills the nodes and removes their directory once this process is
    /// gone (the statics holding a shared cluster are never dropped).
    fn watch(&mut self) {
        let pids: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(|c| c.id().to_string()))
            .collect();
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -9 {pids} 2>/dev/null; rm -rf '{dir}'",
            me = std::process::id(),
            pids = pids.join(" "),
            dir = self.dir.path().display(),
        );
        self.watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
    }

    fn wait_answers(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while cli(port, &["PING"]).as_deref().map(str::trim) != Some("PONG") {
            assert!(
                Instant::now() < deadline,
                "cluster node on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every live node sees the cluster as `ok`, every slot is served, and every
    /// primary has a replica whose link is up.
    ///
    /// # Panics
    ///
    /// When that does not happen within `limit`.
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.is_healthy() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the test cluster did not become healthy within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_healthy(&self) -> bool {
        let mut primaries_with_replica = 0;
        let mut primaries = 0;
        for port in self.live_ports() {
            let Some(info) = cli(port, &["CLUSTER", "INFO"]) else {
                return false;
            };
            if field(&info, "cluster_state") != Some("ok")
                || field(&info, "cluster_slots_ok") != Some("16384")
            {
                return false;
            }
            let Some(repl) = cli(port, &["INFO", "replication"]) else {
                return false;
            };
            match field(&repl, "role") {
                Some("master") => {
                    primaries += 1;
                    let connected: u32 = field(&repl, "connected_slaves")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    if connected >= 1 {
                        primaries_with_replica += 1;
                    }
                }
                Some("slave") if field(&repl, "master_link_status") != Some("up") => return false,
                _ => {}
            }
        }
        primaries == 3 && primaries_with_replica == 3
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// The URLs of all nodes started (a storage is given them all, as an application would be).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port))
            .collect()
    }

    /// A builder of a storage on this cluster under a fresh unique prefix.
    pub fn storage_builder(
        &self,
        test: &str,
        retention: jobs::storage::Retention,
    ) -> jobs::RedisStorageBuilder {
        jobs::RedisStorage::cluster_builder(self.urls())
            .prefix(unique_prefix(test))
            .retention(retention)
    }

    /// The port of the primary that serves `key`'s slot, as a live node sees it.
    ///
    /// # Panics
    ///
    /// When no live node answers.
    pub fn primary_of(&self, key: &str) -> u16 {
        let slot = crate::cluster_slot(key);
        for port in self.live_ports() {
            let Ok(mut con) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .and_then(|c| c.get_connection())
            else {
                continue;
            };
            let Ok(ranges) = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query::<Vec<Vec<redis::Value>>>(&mut con)
            else {
                continue;
            };
            for range in ranges {
                let int = |v: Option<&redis::Value>| match v {
                    Some(redis::Value::Int(n)) => u16::try_from(*n).ok(),
                    _ => None,
                };
                let (Some(start), Some(end)) = (int(range.first()), int(range.get(1))) else {
                    continue;
                };
                if let Some(redis::Value::Array(primary)) = range.get(2) {
                    if let Some(p) = int(primary.get(1)) {
                        if (start..=end).contains(&slot) {
                            return p;
                        }
                    }
                }
            }
        }
        panic!("no live node knows which primary serves slot {slot}");
    }

    /// Kills the node on `port` with SIGKILL.
    ///
    /// # Panics
    ///
    /// When no node of this cluster listens there.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to the node on `port`: a stopped replica reads nothing,
    /// so its primary's writes pile up unreplicated.
    ///
    /// # Panics
    ///
    /// When no live node of this cluster listens there.
    pub fn signal(&self, port: u16, signal: &str) {
        let pid = self
            .nodes
            .iter()
            .find(|n| n.port == port)
            .and_then(|n| n.child.as_ref())
            .expect("a live node of this cluster")
            .id();
        send_signal(pid, signal);
    }

    /// The port of a replica of the primary on `port`, as the primary lists them.
    pub fn replica_of(&self, port: u16) -> Option<u16> {
        let info = cli(port, &["INFO", "replication"])?;
        let line = field(&info, "slave0")?;
        line.split(',')
            .find_map(|kv| kv.strip_prefix("port="))
            .and_then(|p| p.parse().ok())
    }

    /// Waits until the node on `port` is a primary and sees the cluster as `ok` (a replica
    /// promoted by a failover).
    ///
    /// # Panics
    ///
    /// When that does not happen within `limit`.
    pub fn wait_primary(&self, port: u16, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let ok = cli(port, &["CLUSTER", "INFO"])
                .is_some_and(|info| field(&info, "cluster_state") == Some("ok"));
            if ok && self.is_primary(port) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the node on port {port} did not become a primary within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `port` is a primary now, as the node itself says.
    pub fn is_primary(&self, port: u16) -> bool {
        cli(port, &["INFO", "replication"])
            .is_some_and(|info| field(&info, "role") == Some("master"))
    }

    /// The ports of the live primaries.
    pub fn primaries(&self) -> Vec<u16> {
        self.live_ports()
            .into_iter()
            .filter(|&p| self.is_primary(p))
            .collect()
    }

    /// `redis-cli` on the node at `port`, its output (`None` when it fails).
    pub fn cli(&self, port: u16, args: &[&str]) -> Option<String> {
        cli(port, args)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// Sends `signal` (`STOP`, `CONT`, `KILL`, ...) to process `pid`.
///
/// # Panics
///
/// When `kill` fails.
pub(crate) fn send_signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{signal} {pid}");
}
