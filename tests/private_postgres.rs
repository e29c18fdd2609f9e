//! A PostgreSQL server of the test's own, for fault tests that stop and restart it: `initdb`
//! into a temporary directory and `pg_ctl` on a free port (about a second to set up). The
//! shared local server is never stopped.
//!
//! Found from `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`. PostgreSQL
//! refuses to run as root, so as root the server runs as the `postgres` user (`runuser`).
//! Skips (or fails, with `JOBS_REQUIRE_POSTGRES=1`) when the binaries are missing.

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A private PostgreSQL server, stopped and removed on drop.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Run its commands as the `postgres` user (the tests run as root).
    as_postgres: bool,
    /// Server settings beyond the defaults, as `-c name=value` options.
    settings: String,
}

/// The directory holding `initdb` and `pg_ctl`, if PostgreSQL's server binaries are installed.
fn bin_dir() -> Option<PathBuf> {
    let has_initdb = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return Some(dir);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| has_initdb(d))
        .collect();
    // Version directories ("13", "15", "17"): the newest last.
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

/// Whether the tests run as root (servers that refuse root then run as `postgres`).
pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PrivatePostgres {
    /// A fresh server (user `postgres`, trust auth, database `postgres`) on a free port, or
    /// `None` (after printing why) when PostgreSQL's server binaries are not installed and
    /// `JOBS_REQUIRE_POSTGRES` is not `1`.
    ///
    /// # Panics
    ///
    /// When the binaries are missing and `JOBS_REQUIRE_POSTGRES=1`, or the server does not
    /// start.
    pub fn start(test: &str) -> Option<PrivatePostgres> {
        Self::start_with(test, &[])
    }

    /// As [`start`](Self::start), with server settings (`("name", "value")`, as `-c` options
    /// kept across restarts), e.g. `shared_preload_libraries` for `pg_stat_statements`.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_with(test: &str, settings: &[(&str, &str)]) -> Option<PrivatePostgres> {
        let Some(bin) = bin_dir() else {
            let why = format!("test `{test}`: no PostgreSQL server binaries (initdb, pg_ctl)");
            crate::skip_unless_required("JOBS_REQUIRE_POSTGRES", &why);
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("jobs-pg-")
            .tempdir()
            .expect("a temporary directory");
        let as_postgres = running_as_root();
        let pg = PrivatePostgres {
            dir,
            bin,
            port: free_port(),
            as_postgres,
            settings: settings
                .iter()
                .map(|(name, value)| format!(" -c {name}={value}"))
                .collect(),
        };
        if as_postgres {
            pg.checked(Command::new("chown").arg("postgres").arg(pg.dir.path()));
        }
        let data = pg.data();
        pg.checked(
            pg.command("initdb")
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data),
        );
        pg.start_again();
        Some(pg)
    }

    /// The server's URL (database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: no checkpoint, every connection
    /// cut, as in a crash; committed work survives, as after a crash).
    pub fn stop(&self) {
        self.checked(
            self.command("pg_ctl")
                .args(["stop", "-m", "immediate", "-D"])
                .arg(self.data()),
        );
    }

    /// Starts the (stopped) server again on the same port and data, and waits until it accepts
    /// connections.
    ///
    /// # Panics
    ///
    /// When it does not start.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off{}",
            self.port,
            self.dir.path().display(),
            self.settings
        );
        self.checked(
            self.command("pg_ctl")
                .args(["start", "-w", "-t", "30", "-o", &options, "-l"])
                .arg(self.dir.path().join("server.log"))
                .arg("-D")
                .arg(self.data()),
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `tool` from the server's binaries, run as the user the server runs as.
    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn checked(&self, cmd: &mut Command) -> Output {
        let out = cmd.output().expect("a PostgreSQL tool runs");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}{}\n(server log: {})",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
        out
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .output();
    }
}
