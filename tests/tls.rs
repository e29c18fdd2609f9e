//! A private `redis-server` that serves TLS, for the TLS and ACL tests: a throw-away CA, and a
//! server certificate for `localhost` and `127.0.0.1` signed by it (made with `rcgen`, written
//! to the server's temporary directory), a plain port and a TLS port on one server, and an ACL
//! user ([`ACL_USER`], [`ACL_PASSWORD`]) besides the default one.
//!
//! With `mutual`, the server asks for a client certificate signed by the same CA
//! (`tls-auth-clients yes`); [`TlsRedis::client_cert_pem`] is one.
//!
//! Also what the TLS tests share (one Redis, a cluster, Sentinel): a run of jobs end to end
//! ([`enqueue_and_perform`]) and a `connect()` that must fail without hanging
//! ([`connect_error`]).

// `job!(noop(n))` reads as a call; clippy sees the one-argument constructor it expands to.
#![allow(clippy::redundant_closure)]

use crate::jobs_for_tests::noop;
use crate::{eventually, free_port, redis_server_available, skip_unless_required, wait_ready};
use jobs::storage::Monitoring;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether the backend suite's Redis variant runs over TLS (`JOBS_REDIS_TLS=1`; see
/// `backends.rs`).
pub fn suite_over_tls() -> bool {
    std::env::var("JOBS_REDIS_TLS").as_deref() == Ok("1")
}

/// The ACL user every [`TlsRedis`] has, with all permissions.
pub const ACL_USER: &str = "jobsuser";
/// Its password.
pub const ACL_PASSWORD: &str = "secret";

/// A private `redis-server` with a plain port and a TLS port, killed when dropped.
pub struct TlsRedis {
    plain_port: u16,
    tls_port: u16,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    child: Child,
    dir: tempfile::TempDir,
}

/// A CA's certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        let cert = params
            .self_signed(&key)
            .expect("a self-signed CA certificate");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate signed by this CA, for `names` and the uses in `usage`, and its key (both PEM).
    fn sign(&self, names: &[&str], usage: &[ExtendedKeyUsagePurpose]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "jobs test");
        params.extended_key_usages = usage.to_vec();
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a certificate signed by the CA");
        (cert.pem(), key.serialize_pem())
    }
}

/// Longer than any connection attempt of a storage (2 s) plus its one retry: a `connect()`
/// still running by then hangs.
pub const NO_HANG: Duration = Duration::from_secs(15);

/// Enqueues `n` jobs through a client of `storage` and `n` more in one batch, and has a worker
/// perform them; returns once all succeeded.
///
/// # Panics
///
/// When a call fails, or they do not all succeed within 30 s.
pub async fn enqueue_and_perform(storage: &jobs::RedisStorage, n: u64) {
    let client = jobs::Client::new(storage.clone());
    for i in 0..n {
        jobs::enqueue!(&client, noop(i)).await.unwrap();
    }
    client
        .enqueue_many((n..2 * n).map(|i| jobs::job!(noop(i))))
        .await
        .unwrap();
    let worker = jobs::Worker::builder(storage.clone())
        .queues(["bulk"])
        .build()
        .unwrap();
    let watch = storage.clone();
    worker
        .run_until(async move {
            eventually(Duration::from_secs(30), || async {
                watch.stats("bulk").await.unwrap().succeeded_total >= 2 * n
            })
            .await;
        })
        .await
        .unwrap();
    let stats = storage.stats("bulk").await.unwrap();
    assert_eq!(stats.succeeded_total, 2 * n, "{stats:?}");
}

/// The error of `builder.connect()`, which must fail within [`NO_HANG`]; `what` names the
/// target in messages.
///
/// # Panics
///
/// When it succeeds, or still runs after [`NO_HANG`].
pub async fn connect_error(builder: jobs::RedisStorageBuilder, what: &str) -> jobs::Error {
    match tokio::time::timeout(NO_HANG, builder.connect()).await {
        Ok(Ok(_)) => panic!("connect() to {what} succeeded"),
        Ok(Err(e)) => {
            eprintln!("connect() to {what}: {e}");
            e
        }
        Err(_) => panic!("connect() to {what} still runs after {NO_HANG:?}"),
    }
}

/// The certificate (PEM) of a throw-away CA that signed nothing any test server shows.
pub fn unrelated_ca_pem() -> String {
    Ca::new("unrelated test CA").pem
}

/// A throw-away CA, a server certificate for `localhost` and `127.0.0.1` and a client
/// certificate signed by it, with the CA and the server's certificate and key written to files.
pub(crate) struct Certificates {
    pub(crate) ca_pem: String,
    pub(crate) client_cert_pem: String,
    pub(crate) client_key_pem: String,
    /// `ca.crt`, `redis.crt`, `redis.key`.
    pub(crate) files: [PathBuf; 3],
}

impl Certificates {
    /// Makes them, writing the files to `dir`.
    pub(crate) fn write(dir: &Path) -> Certificates {
        let ca = Ca::new("jobs test CA");
        // The server's also serves as a client's: cluster nodes connect to each other with it.
        let (server_pem, server_key) = ca.sign(
            &["localhost", "127.0.0.1"],
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        );
        let (client_cert_pem, client_key_pem) =
            ca.sign(&["jobs-client"], &[ExtendedKeyUsagePurpose::ClientAuth]);
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("a certificate file");
            path
        };
        let files = [
            write("ca.crt", &ca.pem),
            write("redis.crt", &server_pem),
            write("redis.key", &server_key),
        ];
        Certificates {
            ca_pem: ca.pem,
            client_cert_pem,
            client_key_pem,
            files,
        }
    }
}

/// `child`, a `redis-server` just spawned in `dir` with TLS options, or `None` (after printing
/// why) when it exited at once, as one built without TLS does, and `JOBS_REQUIRE_REDIS` is not
/// `1`.
///
/// # Panics
///
/// When it exited and `JOBS_REQUIRE_REDIS=1`.
pub(crate) fn started(test: &str, mut child: Child, dir: &Path) -> Option<Child> {
    std::thread::sleep(std::time::Duration::from_millis(50));
    if let Ok(Some(status)) = child.try_wait() {
        let said = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
        let why = format!(
            "test `{test}`: `redis-server` did not start with TLS options ({status}): {}",
            said.trim()
        );
        skip_unless_required("JOBS_REQUIRE_REDIS", &why);
        return None;
    }
    Some(child)
}

impl TlsRedis {
    /// Starts one, or returns `None` (after printing why) when `redis-server` is not on `PATH`
    /// and `JOBS_REQUIRE_REDIS` is not `1`.
    ///
    /// # Panics
    ///
    /// When `JOBS_REQUIRE_REDIS=1` and there is no `redis-server`, or it does not start.
    pub fn start(test: &str, mutual: bool) -> Option<TlsRedis> {
        if !redis_server_available() {
            let why = format!("test `{test}`: no `redis-server` on PATH for a TLS server");
            skip_unless_required("JOBS_REQUIRE_REDIS", &why);
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let certs = Certificates::write(dir.path());
        let (plain_port, tls_port) = distinct_free_ports();
        let child = spawn(dir.path(), plain_port, tls_port, &certs, mutual, &[]);
        let child = started(test, child, dir.path())?;
        let server = TlsRedis {
            plain_port,
            tls_port,
            ca_pem: certs.ca_pem,
            client_cert_pem: certs.client_cert_pem,
            client_key_pem: certs.client_key_pem,
            child,
            dir,
        };
        wait_ready(&server.plain_url());
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(ACL_USER)
            .arg("on")
            .arg(format!(">{ACL_PASSWORD}"))
            .arg(&["~*", "&*", "+@all"][..])
            .query(&mut server.raw())
            .expect("the ACL user is created");
        Some(server)
    }

    /// The TLS port's URL, as the default user (no password).
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.tls_port)
    }

    /// The TLS port's URL, as `user` with `password`.
    pub fn tls_url_as(&self, user: &str, password: &str) -> String {
        format!("rediss://{user}:{password}@127.0.0.1:{}/", self.tls_port)
    }

    /// The plain port's URL, as the default user.
    pub fn plain_url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.plain_port)
    }

    /// The plain port's URL, as `user` with `password`.
    pub fn plain_url_as(&self, user: &str, password: &str) -> String {
        format!("redis://{user}:{password}@127.0.0.1:{}/", self.plain_port)
    }

    /// A plain `redis://` URL that points at the TLS port (a mistake the tests make on purpose).
    pub fn plain_url_to_tls_port(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.tls_port)
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A client certificate signed by the CA (PEM), for a `mutual` server.
    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert_pem
    }

    /// The key of [`client_cert_pem`](Self::client_cert_pem) (PEM).
    pub fn client_key_pem(&self) -> &str {
        &self.client_key_pem
    }

    /// The directory of the server (its log is `redis.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A plain synchronous connection to the plain port, as the default user.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.plain_url())
            .and_then(|c| c.get_connection())
            .expect("a connection to the TLS test Redis's plain port")
    }

    /// The lines of `CLIENT LIST` of the clients connected to the TLS port (`tls`) or the
    /// plain port, asked on a plain connection of its own (which is left out).
    pub fn clients(&self, tls: bool) -> Vec<String> {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut self.raw())
            .expect("CLIENT LIST");
        let port = if tls { self.tls_port } else { self.plain_port };
        let local = format!(" laddr=127.0.0.1:{port} ");
        list.lines()
            .filter(|c| c.contains(&local) && !c.contains(" cmd=client|list "))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two different free ports.
fn distinct_free_ports() -> (u16, u16) {
    loop {
        let (a, b) = (free_port(), free_port());
        if a != b {
            return (a, b);
        }
    }
}

/// Starts `redis-server` in `dir` on `plain_port` and, with `certs`, on `tls_port` (asking
/// clients for a certificate when `mutual`), with `extra` options.
pub(crate) fn spawn(
    dir: &Path,
    plain_port: u16,
    tls_port: u16,
    certs: &Certificates,
    mutual: bool,
    extra: &[String],
) -> Child {
    let [ca, cert, key] = &certs.files;
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port"])
        .arg(plain_port.to_string())
        .arg("--tls-port")
        .arg(tls_port.to_string())
        .arg("--tls-cert-file")
        .arg(cert)
        .arg("--tls-key-file")
        .arg(key)
        .arg("--tls-ca-cert-file")
        .arg(ca)
        .arg("--tls-auth-clients")
        .arg(if mutual { "yes" } else { "no" })
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--appendonly", "no"])
        .args(["--maxmemory-policy", "noeviction", "--daemonize", "no"])
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).expect("a file for stderr"))
        .spawn()
        .expect("redis-server starts")
}
