//! A small local Redis Cluster over TLS, for the cluster path of the TLS tests: 3 primaries
//! without replicas, each a `redis-server --cluster-enabled yes --tls-cluster yes` with a plain
//! port (for `redis-cli`) and a TLS port, sharing one throw-away CA and server certificate
//! (`tls.rs`), joined by hand (`CLUSTER ADDSLOTSRANGE`, `CLUSTER MEET`). A client connected over TLS learns
//! the nodes' TLS ports from `CLUSTER SLOTS`.

use crate::tls::{spawn, started, Certificates};
use crate::{free_port, redis_server_available, skip_unless_required, wait_ready};
use std::process::Child;
use std::time::{Duration, Instant};

/// A running TLS cluster, stopped when dropped.
pub struct TlsCluster {
    /// Each node's plain and TLS port.
    ports: Vec<(u16, u16)>,
    /// Each node's cluster bus port.
    buses: Vec<u16>,
    children: Vec<Child>,
    ca_pem: String,
    /// The nodes' directories, removed when dropped.
    _dir: tempfile::TempDir,
}

impl TlsCluster {
    /// Starts one, or returns `None` (after printing why) when `redis-server` is not on `PATH`
    /// or has no TLS, and `JOBS_REQUIRE_REDIS` is not `1`.
    ///
    /// # Panics
    ///
    /// When it is missing and `JOBS_REQUIRE_REDIS=1`, or the cluster does not form.
    pub fn start(test: &str) -> Option<TlsCluster> {
        if !redis_server_available() {
            let why = format!("test `{test}`: no `redis-server` on PATH for a TLS cluster");
            skip_unless_required("JOBS_REQUIRE_REDIS", &why);
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let certs = Certificates::write(dir.path());
        let base = dir.path().to_owned();
        // Built first, so that nodes started before a failure are stopped with it.
        let mut cluster = TlsCluster {
            ports: Vec::new(),
            buses: Vec::new(),
            children: Vec::new(),
            ca_pem: certs.ca_pem.clone(),
            _dir: dir,
        };
        let mut taken = Vec::new();
        for i in 0..3 {
            let node_dir = base.join(format!("node-{i}"));
            std::fs::create_dir_all(&node_dir).expect("a node directory");
            let [plain, tls, bus] = distinct_ports(&mut taken);
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                &bus.to_string(),
                "--tls-cluster",
                "yes",
                "--cluster-require-full-coverage",
                "no",
            ]
            .map(str::to_owned);
            let child = spawn(&node_dir, plain, tls, &certs, false, &extra);
            cluster.children.push(started(test, child, &node_dir)?);
            cluster.ports.push((plain, tls));
            cluster.buses.push(bus);
        }
        for (plain, _) in &cluster.ports {
            wait_ready(&format!("redis://127.0.0.1:{plain}/"));
        }
        // Formed by hand (slots, then `CLUSTER MEET`): `redis-cli --cluster create` waits
        // forever for nodes that announce their TLS ports to a client on their plain ports.
        let buses = cluster.buses.clone();
        for (i, (plain, _)) in cluster.ports.iter().enumerate() {
            let (first, last) = (i * 16_384 / 3, (i + 1) * 16_384 / 3 - 1);
            let mut con = redis::Client::open(format!("redis://127.0.0.1:{plain}/"))
                .and_then(|c| c.get_connection())
                .expect("a connection to a cluster node");
            let _: () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(first)
                .arg(last)
                .query(&mut con)
                .expect("the node takes its slots");
            for ((_, tls), bus) in cluster.ports.iter().zip(&buses) {
                let _: () = redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(tls)
                    .arg(bus)
                    .query(&mut con)
                    .expect("the node meets the others");
            }
        }
        cluster.wait_ok(Duration::from_secs(30));
        Some(cluster)
    }

    /// The TLS URLs of the nodes.
    pub fn tls_urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|(_, tls)| format!("rediss://127.0.0.1:{tls}/"))
            .collect()
    }

    /// The CA that signed the nodes' certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Waits until every node sees the cluster as `ok` with every slot served.
    fn wait_ok(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let ok = |plain: u16| {
            redis::Client::open(format!("redis://127.0.0.1:{plain}/"))
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
                .is_ok_and(|info| {
                    info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
                })
        };
        while !self.ports.iter().all(|(plain, _)| ok(*plain)) {
            if Instant::now() >= deadline {
                let infos: Vec<String> = self
                    .ports
                    .iter()
                    .map(|(plain, _)| {
                        redis::Client::open(format!("redis://127.0.0.1:{plain}/"))
                            .and_then(|c| c.get_connection())
                            .and_then(|mut c| {
                                redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c)
                            })
                            .unwrap_or_else(|e| e.to_string())
                    })
                    .collect();
                panic!("the TLS cluster did not become ok within {limit:?}: {infos:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Three free ports, different from each other and from those in `taken` (which gets them).
fn distinct_ports(taken: &mut Vec<u16>) -> [u16; 3] {
    let mut ports = [0; 3];
    for port in &mut ports {
        *port = loop {
            let p = free_port();
            if !taken.contains(&p) {
                break p;
            }
        };
        taken.push(*port);
    }
    ports
}
