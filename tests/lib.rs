//! The integration-test harness: starts a private `redis-server` per test (on a free port, in a
//! temporary directory) so tests are isolated and fault tests can kill and restart it; falls back
//! to `REDIS_URL`; skips (or fails with `JOBS_REQUIRE_REDIS=1`) when neither is available.
//!
//! Also holds the jobs the tests and the `jobs-test-worker` binary perform, and a TCP fault proxy
//! ([`fault_proxy`]) to put between a client and its server.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub mod backends;
pub mod cluster;
mod cluster_replication;
pub mod downtime;
pub mod fault_proxy;
pub mod jobs_for_tests;
pub mod pgbouncer;
pub mod postgres;
pub mod private_postgres;
pub mod sentinel;
pub mod suite;
pub mod tls;
pub mod tls_cluster;

/// A Redis the tests can use: a private server, or the one at `REDIS_URL`.
pub struct TestRedis {
    url: String,
    server: Option<ServerProcess>,
}

struct ServerProcess {
    child: Option<Child>,
    listen: Listen,
    aof: bool,
    dir: tempfile::TempDir,
}

/// Where a private server listens.
#[derive(Clone)]
enum Listen {
    Port(u16),
    /// A Unix socket only (no TCP port).
    UnixSocket(PathBuf),
}

impl Listen {
    fn url(&self) -> String {
        match self {
            Listen::Port(port) => format!("redis://127.0.0.1:{port}/"),
            Listen::UnixSocket(path) => format!("redis+unix://{}", path.display()),
        }
    }
}

/// Whether `redis-server` is on `PATH`.
pub(crate) fn redis_server_available() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Skips a test whose server is missing (prints `SKIPPED why`), or fails it when the variable
/// `require` (e.g. `JOBS_REQUIRE_REDIS`) is `1`, as CI sets it.
///
/// # Panics
///
/// When `require` is `1`.
pub fn skip_unless_required(require: &str, why: &str) {
    assert!(
        std::env::var(require).as_deref() != Ok("1"),
        "{why}, and {require}=1"
    );
    eprintln!("SKIPPED {why}");
}

/// A free TCP port on 127.0.0.1 (bound and released: a server started right after takes it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn spawn_server(listen: &Listen, dir: &Path, aof: bool) -> Child {
    let mut cmd = Command::new("redis-server");
    match listen {
        Listen::Port(port) => cmd
            .arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1"),
        Listen::UnixSocket(path) => cmd.args(["--port", "0", "--unixsocket"]).arg(path),
    };
    cmd.arg("--dir")
        .arg(dir)
        .arg("--save")
        .arg("")
        .arg("--maxmemory-policy")
        .arg("noeviction")
        .arg("--daemonize")
        .arg("no")
        .arg("--logfile")
        .arg(dir.join("redis.log"));
    if aof {
        cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        cmd.args(["--appendonly", "no"]);
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts")
}

pub(crate) fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok();
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server at {url} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

static PREFIX_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `n` jobs on queue `q`, numbered by their argument (`{"i":0}`, `{"i":1}`, …).
pub fn numbered(n: usize) -> Vec<jobs::storage::NewJob> {
    (0..n)
        .map(|i| jobs::storage::NewJob::new("q", "n", format!("{{\"i\":{i}}}")))
        .collect()
}

/// A key prefix unique to this process and call, so tests sharing a Redis never collide.
pub fn unique_prefix(test: &str) -> String {
    let n = PREFIX_COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("t-{test}-{}-{n}", std::process::id())
}

impl TestRedis {
    /// A Redis for one test, or `None` (after printing why) when none is available and
    /// `JOBS_REQUIRE_REDIS` is not `1`.
    ///
    /// # Panics
    ///
    /// When no Redis is available and `JOBS_REQUIRE_REDIS=1`, or the server does not start.
    pub fn start(test: &str) -> Option<TestRedis> {
        Self::start_with(test, false)
    }

    /// Like [`start`](Self::start), with AOF on (`appendfsync always`) when starting a private
    /// server. Fault tests that restart Redis need a private server: they return `None` with
    /// `REDIS_URL` only.
    pub fn start_with(test: &str, aof: bool) -> Option<TestRedis> {
        if redis_server_available() {
            return Some(Self::spawn(|_| Listen::Port(free_port()), aof));
        }
        if let Ok(url) = std::env::var("REDIS_URL") {
            if !url.is_empty() {
                return Some(TestRedis { url, server: None });
            }
        }
        let why =
            format!("test `{test}`: no Redis (no `redis-server` on PATH and REDIS_URL is unset)");
        skip_unless_required("JOBS_REQUIRE_REDIS", &why);
        None
    }

    /// A private server for a test that kills, restarts, reconfigures or pauses it, or `None`
    /// (after printing why) when only a shared one (`REDIS_URL`) or none is available.
    ///
    /// # Panics
    ///
    /// As [`start_with`](Self::start_with).
    pub fn start_private(test: &str, aof: bool) -> Option<TestRedis> {
        let r = Self::start_with(test, aof)?;
        if !r.is_private() {
            eprintln!("SKIPPED test `{test}`: needs a private redis-server");
            return None;
        }
        Some(r)
    }

    /// A private server listening on a Unix socket only, or `None` (after printing why) when
    /// `redis-server` is not on `PATH` and `JOBS_REQUIRE_REDIS` is not `1`.
    ///
    /// # Panics
    ///
    /// When `JOBS_REQUIRE_REDIS=1` and there is no `redis-server`, or it does not start.
    pub fn start_on_unix_socket(test: &str) -> Option<TestRedis> {
        if !redis_server_available() {
            let why = format!("test `{test}`: no `redis-server` on PATH for a Unix socket");
            skip_unless_required("JOBS_REQUIRE_REDIS", &why);
            return None;
        }
        Some(Self::spawn(
            |dir| Listen::UnixSocket(dir.join("redis.sock")),
            false,
        ))
    }

    /// Starts a private server in a new temporary directory, listening where `listen` says.
    fn spawn(listen: impl FnOnce(&Path) -> Listen, aof: bool) -> TestRedis {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let listen = listen(dir.path());
        let child = spawn_server(&listen, dir.path(), aof);
        let url = listen.url();
        wait_ready(&url);
        TestRedis {
            url,
            server: Some(ServerProcess {
                child: Some(child),
                listen,
                aof,
                dir,
            }),
        }
    }

    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's TCP address (resolved), for a [`fault_proxy::FaultProxy`] in front of it;
    /// `None` for a server on a Unix socket.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        let client = redis::Client::open(self.url.as_str()).ok()?;
        match client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port) => {
                (host.as_str(), *port).to_socket_addrs().ok()?.next()
            }
            _ => None,
        }
    }

    /// This server's URL with its host and port replaced by `addr` (a fault proxy in front of
    /// it), keeping the credentials and database.
    ///
    /// # Panics
    ///
    /// When the URL has no `scheme://` (a Unix socket's has no host either).
    pub fn url_through(&self, addr: SocketAddr) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("a URL with a scheme");
        let (auth, host_and_path) = match rest.rsplit_once('@') {
            Some((auth, tail)) => (format!("{auth}@"), tail),
            None => (String::new(), rest),
        };
        let path = host_and_path
            .find('/')
            .map_or("", |slash| &host_and_path[slash..]);
        format!("{scheme}://{auth}{addr}{path}")
    }

    /// Whether this harness started the server (and so may kill, restart or flush it).
    pub fn is_private(&self) -> bool {
        self.server.is_some()
    }

    /// The data directory of a private server.
    pub fn dir(&self) -> Option<PathBuf> {
        self.server.as_ref().map(|s| s.dir.path().to_owned())
    }

    /// A storage on this Redis under a fresh unique prefix.
    ///
    /// # Panics
    ///
    /// When the URL is invalid.
    pub fn storage(&self, test: &str, retention: jobs::storage::Retention) -> jobs::RedisStorage {
        self.storage_builder(test, retention)
            .build()
            .expect("a valid Redis URL")
    }

    /// A builder of a storage on this Redis under a fresh unique prefix, to set more options.
    pub fn storage_builder(
        &self,
        test: &str,
        retention: jobs::storage::Retention,
    ) -> jobs::RedisStorageBuilder {
        jobs::RedisStorage::builder(&self.url)
            .prefix(unique_prefix(test))
            .retention(retention)
    }

    /// A plain synchronous connection for inspecting keys.
    ///
    /// # Panics
    ///
    /// When Redis cannot be reached.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection())
            .expect("a connection to the test Redis")
    }

    /// Kills the private server with SIGKILL.
    ///
    /// # Panics
    ///
    /// When the server is not private.
    pub fn kill(&mut self) {
        let server = self
            .server
            .as_mut()
            .expect("only a private server is killed");
        if let Some(mut child) = server.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the private server again at the same address and directory (with AOF, it reloads
    /// its data).
    ///
    /// # Panics
    ///
    /// When the server is not private or does not start.
    pub fn restart(&mut self) {
        self.kill();
        let server = self
            .server
            .as_mut()
            .expect("only a private server restarts");
        server.child = Some(spawn_server(&server.listen, server.dir.path(), server.aof));
        wait_ready(&server.listen.url());
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(server) = self.server.as_mut() {
            if let Some(mut child) = server.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag (or the whole key) mod 16384.
/// Computed here, independently of the backend, to check its key layout.
pub fn cluster_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        bytes[open + 1..]
            .iter()
            .position(|&b| b == b'}')
            .filter(|&len| len > 0)
            .map(|len| &bytes[open + 1..open + 1 + len])
    });
    let data = tagged.unwrap_or(bytes);
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Polls `check` every 20 ms until it returns true or `limit` passes; returns whether it did.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits up to 30 s for job `id` to be in `state`; returns whether it got there.
///
/// # Panics
///
/// When the storage fails or no longer has the job.
pub async fn until_state(
    storage: &dyn jobs::Storage,
    id: &jobs::JobId,
    state: jobs::JobState,
) -> bool {
    eventually(Duration::from_secs(30), || async {
        storage
            .job(id)
            .await
            .unwrap()
            .expect("the job is kept")
            .state
            == state
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::cluster_slot;

    #[test]
    fn slots_match_the_cluster_spec() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(cluster_slot("123456789"), 0x31C3);
        assert_eq!(cluster_slot("foo"), 12182);
        assert_eq!(
            cluster_slot("{user1000}.following"),
            cluster_slot("user1000")
        );
        assert_eq!(cluster_slot("foo{}{bar}"), cluster_slot("foo{}{bar}"));
    }
}
