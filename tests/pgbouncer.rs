//! PgBouncer in transaction mode in front of the tests' PostgreSQL, as many production
//! deployments run it: LISTEN/NOTIFY and session state do not survive it, so a storage behind it
//! is built with `listen(false)` and works by polling. Started from Debian's `pgbouncer` on a
//! free port with a configuration in a temporary directory, stopped on drop.
//!
//! Skips (or fails, with `JOBS_REQUIRE_PGBOUNCER=1`) when `pgbouncer` is not installed.

use crate::free_port;
use crate::private_postgres::running_as_root;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A PgBouncer of the test's own.
pub struct TestPgBouncer {
    _dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            let out = Command::new("which").arg("pgbouncer").output().ok()?;
            let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            path.is_file().then_some(path)
        })
}

impl TestPgBouncer {
    /// A PgBouncer in transaction mode forwarding every database to PostgreSQL at
    /// `host:port`, or `None` (after printing why) when `pgbouncer` is not installed and
    /// `JOBS_REQUIRE_PGBOUNCER` is not `1`.
    ///
    /// # Panics
    ///
    /// When it is missing and `JOBS_REQUIRE_PGBOUNCER=1`, or it does not start.
    pub fn start(test: &str, host: &str, port: u16) -> Option<TestPgBouncer> {
        let Some(bin) = binary() else {
            let why = format!("test `{test}`: no `pgbouncer` installed");
            crate::skip_unless_required("JOBS_REQUIRE_PGBOUNCER", &why);
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("jobs-pgbouncer-")
            .tempdir()
            .expect("a temporary directory");
        let listen = free_port();
        let d = dir.path().display();
        std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            dir.path().join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {d}/users.txt\npool_mode = transaction\n\
                 logfile = {d}/pgbouncer.log\n\
                 ignore_startup_parameters = extra_float_digits,options\n"
            ),
        )
        .unwrap();
        let mut cmd = if running_as_root() {
            // PgBouncer refuses to run as root.
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let child = cmd
            .arg(dir.path().join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        let bouncer = TestPgBouncer {
            _dir: dir,
            child,
            port: listen,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", listen)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(bouncer)
    }

    /// The URL of database `database` through this PgBouncer.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for TestPgBouncer {
    fn drop(&mut self) {
        // SIGTERM, which `runuser` passes on to pgbouncer (a SIGKILL would stop runuser only).
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
