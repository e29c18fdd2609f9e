//! A local Redis Sentinel deployment for tests: one master, one replica (`REPLICAOF`) and three
//! sentinels (`redis-server sentinel.conf --sentinel`, quorum 2, `down-after-milliseconds` 1 s),
//! each on a free port in a directory of its own, all killed when it is dropped.
//!
//! Over TLS ([`TestSentinel::start_tls`]), every process also has a TLS port, with the
//! certificates of `tls.rs` (one throw-away CA): the sentinels monitor the master at its TLS
//! port and talk to it, to its replica and to each other over TLS (`tls-replication yes`, which
//! also makes the replica follow its master and announce itself on TLS ports), so the addresses
//! they hand out are TLS ports. The plain ports serve the harness's own `redis-cli` checks.

use crate::cluster::{cli, field, free_ports};
use crate::tls::{started, Certificates};
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
    tls: Option<Tls>,
    dir: tempfile::TempDir,
}

/// The TLS of a deployment started with [`TestSentinel::start_tls`].
struct Tls {
    certs: Certificates,
    /// Whether the servers ask clients for a certificate (`tls-auth-clients yes`).
    mutual: bool,
}

struct Process {
    /// The port the sentinels name and clients use: the TLS port under TLS.
    port: u16,
    /// The plain port, for `redis-cli` (the same as `port` without TLS).
    plain: u16,
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
            self.plain
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The sentinel `s` (its ports) in `dir`, monitoring the master at `master` (with `tls`, its
/// TLS port).
fn spawn_sentinel(s: &Process, master: u16, dir: &Path, tls: Option<&Tls>) -> Child {
    std::fs::create_dir_all(dir).expect("a sentinel directory");
    // Sentinel rewrites its configuration file (what it learned, its id): it must be writable.
    let conf = dir.join("sentinel.conf");
    let mut text = format!(
        "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\nlogfile {log}\n\
         sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
         sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
         sentinel failover-timeout {MASTER_NAME} 5000\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        port = s.plain,
        dir = dir.display(),
        log = dir.join("sentinel.log").display(),
    );
    if let Some(tls) = tls {
        let [ca, cert, key] = &tls.certs.files;
        text.push_str(&format!(
            "tls-port {port}\ntls-cert-file {cert}\ntls-key-file {key}\n\
             tls-ca-cert-file {ca}\ntls-replication yes\ntls-auth-clients {auth}\n",
            port = s.port,
            cert = cert.display(),
            key = key.display(),
            ca = ca.display(),
            auth = if tls.mutual { "yes" } else { "no" },
        ));
    }
    std::fs::write(&conf, text).expect("a sentinel configuration");
    Command::new("redis-server")
        .arg(&conf)
        .arg("--sentinel")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).expect("a file for stderr"))
        .spawn()
        .expect("redis-server --sentinel starts")
}

/// The data node `node` (its ports) in `dir`; under `tls`, one that replicates over TLS.
fn spawn_node(node: &Process, dir: &Path, tls: Option<&Tls>) -> Child {
    match tls {
        None => spawn_server(&Listen::Port(node.port), dir, false),
        Some(tls) => {
            let extra = ["--tls-replication".to_owned(), "yes".to_owned()];
            crate::tls::spawn(dir, node.plain, node.port, &tls.certs, tls.mutual, &extra)
        }
    }
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
        TestSentinel::spawn(test, dir, None)
    }

    /// A deployment over TLS (see the module's docs), with the CA of
    /// [`ca_pem`](Self::ca_pem), whose servers ask clients for a certificate when `mutual`
    /// ([`client_cert_pem`](Self::client_cert_pem) is one); or `None` as for
    /// [`start`](Self::start), or when `redis-server` has no TLS.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_tls(test: &str, mutual: bool) -> Option<TestSentinel> {
        if !crate::cluster::available(test) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let certs = Certificates::write(dir.path());
        TestSentinel::spawn(test, dir, Some(Tls { certs, mutual }))
    }

    fn spawn(test: &str, dir: tempfile::TempDir, tls: Option<Tls>) -> Option<TestSentinel> {
        let over_tls = tls.is_some();
        let ports = free_ports(if over_tls { 10 } else { 5 });
        // Under TLS, each process's TLS port is in the second half.
        let process = |i: usize| Process {
            port: ports[if over_tls { i + 5 } else { i }],
            plain: ports[i],
            child: None,
        };
        // Built first, so that processes started before a failure are stopped with it.
        let mut deployment = TestSentinel {
            nodes: (0..2).map(process).collect(),
            sentinels: (2..5).map(process).collect(),
            tls,
            dir,
        };
        for i in 0..2 {
            let node_dir = deployment.dir.path().join(format!("node-{i}"));
            std::fs::create_dir_all(&node_dir).expect("a node directory");
            let child = spawn_node(&deployment.nodes[i], &node_dir, deployment.tls.as_ref());
            let child = match deployment.tls {
                Some(_) => started(test, child, &node_dir)?,
                None => child,
            };
            let node = &mut deployment.nodes[i];
            node.child = Some(child);
            wait_ready(&Listen::Port(node.plain).url());
            node.assert_alive();
        }
        let (master, replica) = (&deployment.nodes[0], &deployment.nodes[1]);
        // The first sync at once (Redis waits 5 s by default for more replicas to share it).
        cli(
            master.plain,
            &["CONFIG", "SET", "repl-diskless-sync-delay", "0"],
        )
        .expect("the master takes the setting");
        cli(
            replica.plain,
            &["REPLICAOF", "127.0.0.1", &master.port.to_string()],
        )
        .expect("the replica follows the master");
        let master = master.port;
        for i in 0..3 {
            let dir = deployment.dir.path().join(format!("sentinel-{i}"));
            let s = &deployment.sentinels[i];
            let child = spawn_sentinel(s, master, &dir, deployment.tls.as_ref());
            deployment.sentinels[i].child = Some(child);
        }
        for s in &mut deployment.sentinels {
            wait_ready(&format!("redis://127.0.0.1:{}/", s.plain));
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
        let Some(master) = self.master().map(|port| self.plain(port)) else {
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

    /// The plain ports of the live sentinels, for `redis-cli`.
    fn live_sentinels(&self) -> impl Iterator<Item = u16> + '_ {
        self.sentinels
            .iter()
            .filter(|s| s.child.is_some())
            .map(|s| s.plain)
    }

    /// The plain port of the process whose port (as the sentinels name it) is `port`.
    fn plain(&self, port: u16) -> u16 {
        self.nodes
            .iter()
            .chain(&self.sentinels)
            .find(|p| p.port == port)
            .map_or(port, |p| p.plain)
    }

    /// The URLs of the sentinels (`rediss://` ones under TLS).
    pub fn sentinel_urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        self.sentinels
            .iter()
            .map(|s| format!("{scheme}://127.0.0.1:{}/", s.port))
            .collect()
    }

    /// How a storage names the master: [`MASTER_NAME`], or under TLS `rediss://mymaster` (its
    /// connections are TLS too).
    pub fn master_url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://{MASTER_NAME}"),
            None => MASTER_NAME.to_owned(),
        }
    }

    /// A builder of a storage on this deployment's master under a fresh unique prefix (under
    /// TLS, without certificates: the caller gives them).
    pub fn storage_builder(
        &self,
        test: &str,
        retention: jobs::storage::Retention,
    ) -> jobs::RedisStorageBuilder {
        jobs::RedisStorage::sentinel_builder(self.sentinel_urls(), &self.master_url())
            .prefix(unique_prefix(test))
            .retention(retention)
    }

    /// Under TLS, the CA that signed every server's certificate (PEM).
    ///
    /// # Panics
    ///
    /// When the deployment is not over TLS.
    pub fn ca_pem(&self) -> &str {
        &self
            .tls
            .as_ref()
            .expect("a deployment over TLS")
            .certs
            .ca_pem
    }

    /// Under TLS, a client certificate signed by the CA and its key (PEM), for a `mutual`
    /// deployment.
    ///
    /// # Panics
    ///
    /// When the deployment is not over TLS.
    pub fn client_cert_pem(&self) -> (&str, &str) {
        let certs = &self.tls.as_ref().expect("a deployment over TLS").certs;
        (&certs.client_cert_pem, &certs.client_key_pem)
    }

    /// The port of the master as the first live sentinel that answers names it (its TLS port
    /// under TLS).
    pub fn master(&self) -> Option<u16> {
        self.live_sentinels().find_map(|port| {
            let reply = cli(port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME])?;
            reply.lines().nth(1)?.trim().parse().ok()
        })
    }

    /// The ports of the data nodes (the first master, then its replica), as the sentinels name
    /// them.
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
        self.nodes[i].child = Some(spawn_node(&self.nodes[i], &dir, self.tls.as_ref()));
        let plain = self.nodes[i].plain;
        wait_ready(&Listen::Port(plain).url());
        self.nodes[i].assert_alive();
        cli(plain, &["REPLICAOF", "127.0.0.1", &master.to_string()])
            .expect("the node follows the master");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = cli(plain, &["INFO", "replication"]).unwrap_or_default();
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
            let is_master = cli(self.plain(port), &["INFO", "replication"])
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

    /// `redis-cli` on the node at `port` (on its plain port under TLS), its output (`None`
    /// when it fails).
    pub fn cli(&self, port: u16, args: &[&str]) -> Option<String> {
        cli(self.plain(port), args)
    }
}

impl Drop for TestSentinel {
    fn drop(&mut self) {
        self.sentinels.iter_mut().for_each(Process::stop);
        self.nodes.iter_mut().for_each(Process::stop);
    }
}
