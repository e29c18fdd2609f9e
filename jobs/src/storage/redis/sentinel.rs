//! Redis Sentinel: the storage asks the sentinels where the master of a name is (redis-rs
//! `sentinel`), connects to it, and asks again after a connection to it fails.
//!
//! redis-rs's `SentinelClient` asks the sentinels in turn (`SENTINEL MASTERS`), skips a master
//! they flag as down, and connects to the one they name to check with `ROLE` that it is a
//! master: an old master that comes back after a failover is a replica, and is never used.
//!
//! Every request goes to that master over one multiplexed connection (as the connection manager
//! does on one Redis), and each idle fetch blocks on a connection of its own to it (pooled, like
//! on one Redis). A request that fails because the connection is gone (the master died, or was
//! demoted: Sentinel closes the clients of a master it turns into a replica) or because the node
//! answers `READONLY` (a demoted master) makes the link forget the master; the next request asks
//! the sentinels again. While a failover is under way they name no master that is up, so
//! requests fail as unreachable until the replica is promoted, and callers retry on their own
//! terms (the worker probes every 25 ms), as after any loss of Redis. A master that the
//! sentinels replaced while it is still up (a `SENTINEL FAILOVER`) keeps its clients until they
//! demote it, seconds later: so while requests flow, the link also asks a sentinel every
//! second which master it names, and leaves one it no longer names.
//!
//! Over TLS (feature `tls`), the certificates of the builder apply to the connections to the
//! sentinels and to the master they name, which redis-rs makes (`sentinel_client.rs`).
//!
//! The enqueue connection of one Redis (`direct.rs`) is not used: enqueue transactions go
//! through the shared connection.

use super::config::{RedisStorageBuilder, Target};
use super::RedisStorage;
use crate::error::{Error, Result};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, RedisResult, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long connecting to the master may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// While requests flow, how often the link asks the sentinels whether the master it uses is
/// still the one they name (see `check_if_due`).
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The master of a name, found through the sentinels, and the connections to it.
pub(super) struct SentinelLink {
    /// Asks the sentinels; one question at a time (it caches its connections to them).
    sentinel: tokio::sync::Mutex<SentinelClient>,
    /// The name the sentinels know the master by.
    name: String,
    /// A connection to one sentinel, for the check of `check_if_due` (made when needed).
    watch: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// The master found last, until a connection to it fails.
    current: Mutex<Option<Master>>,
    /// Numbers the masters found, so a failure on an old one does not forget a newer one.
    found: AtomicU64,
    /// The database selected on the master.
    db: i64,
    response_timeout: Duration,
    /// Blocking connections not in use, each with the number of the master it goes to.
    waiters: Mutex<Vec<(u64, MultiplexedConnection)>>,
    /// When the sentinels were last asked whether the master is still theirs.
    checked: Mutex<Instant>,
    /// Wakes the blocking waits when the link leaves a master.
    left: tokio::sync::Notify,
}

#[derive(Clone)]
struct Master {
    /// Which master this is (see `found`).
    number: u64,
    client: redis::Client,
    conn: MultiplexedConnection,
}

impl RedisStorage {
    /// A builder for a storage on the Redis master that the Sentinel deployment at `sentinels`
    /// monitors under the name `master`. The storage asks the sentinels where the master is,
    /// connects to it, and asks again after a connection fails, so it follows a failover; every
    /// option of the builder applies ([`replicas_ack`](RedisStorageBuilder::replicas_ack)
    /// makes acknowledged enqueues survive one). See the README's Redis Sentinel section.
    ///
    /// A sentinel URL carries that sentinel's own password, if it has one
    /// (`redis://:secret@10.0.0.1:26379`). `master` is the name alone (`mymaster`) or, to log in
    /// to the master (and select a database), a URL whose host is the name:
    /// `redis://app:password@mymaster/2` (ACL user `app`, database 2).
    ///
    /// Over TLS (feature `tls`), `rediss://` sentinel URLs reach the sentinels over TLS, and a
    /// `rediss://` master URL (`rediss://app:password@mymaster`) the master, and the one that
    /// replaces it after a failover. The builder's `tls_ca_pem` and `tls_client_cert_pem` apply
    /// to each of them that is `rediss://`; with them, the sentinels share one login (redis-rs takes one for
    /// all), so their URLs must carry the same user and password, if any. The README's Redis
    /// Sentinel section has an example.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// let storage = jobs::RedisStorage::sentinel_builder(
    ///     ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"],
    ///     "redis://app:secret@mymaster",
    /// )
    /// .prefix("myapp")
    /// .replicas_ack(1)
    /// .connect()
    /// .await?;
    /// # drop(storage); Ok(()) }
    /// ```
    pub fn sentinel_builder<I, S>(sentinels: I, master: &str) -> RedisStorageBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisStorageBuilder::new(Target::Sentinel {
            sentinels: sentinels
                .into_iter()
                .map(|s| s.as_ref().to_owned())
                .collect(),
            master: master.to_owned(),
        })
    }
}

/// How the storage names a Sentinel deployment in messages (without credentials).
pub(super) fn display(sentinels: &[String], master: &str) -> String {
    let sentinels = sentinels
        .iter()
        .map(|s| super::open::redact(s))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "the Sentinel master `{}` (sentinels {sentinels})",
        master_name(master)
    )
}

/// The master's name: `master` itself, or the host of a `redis://…@name/db` URL.
pub(super) fn master_name(master: &str) -> &str {
    let Some((_, rest)) = master.split_once("://") else {
        return master;
    };
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

impl SentinelLink {
    /// The link to the master `master` (a name, or a URL whose host is the name) of the
    /// sentinels at `sentinels`; asks them on first use.
    pub(super) fn new(sentinels: &[String], master: &str, b: &RedisStorageBuilder) -> Result<Self> {
        let display = display(sentinels, master);
        if sentinels.is_empty() {
            return Err(Error::config(
                "a Redis Sentinel storage needs the URL of at least one sentinel",
            ));
        }
        let spec = super::sentinel_client::MasterSpec::parse(master)?;
        let client = super::sentinel_client::sentinel_client(sentinels, &spec, &b.tls, &display)?;
        let (name, db) = (spec.name, spec.login.db());
        Ok(SentinelLink {
            sentinel: tokio::sync::Mutex::new(client),
            name,
            watch: tokio::sync::Mutex::new(None),
            current: Mutex::new(None),
            found: AtomicU64::new(0),
            db,
            response_timeout: b.response_timeout,
            waiters: Mutex::new(Vec::new()),
            checked: Mutex::new(Instant::now()),
            left: tokio::sync::Notify::new(),
        })
    }

    /// The database selected on the master.
    pub(super) fn db(&self) -> i64 {
        self.db
    }

    fn current(&self) -> Option<Master> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The master, asking the sentinels first when none is known.
    async fn master(self: &Arc<Self>) -> RedisResult<Master> {
        if let Some(master) = self.current() {
            self.check_if_due(&master);
            return Ok(master);
        }
        let mut sentinel = self.sentinel.lock().await;
        // Another request may have found it while this one waited.
        if let Some(master) = self.current() {
            return Ok(master);
        }
        let client = sentinel.async_get_client().await?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(self.response_timeout));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let master = Master {
            number: self.found.fetch_add(1, Ordering::Relaxed) + 1,
            client,
            conn,
        };
        tracing::debug!(master = ?master.client.get_connection_info().addr(), "found the Sentinel master");
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(master.clone());
        *self
            .checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        Ok(master)
    }

    /// At most every `CHECK_EVERY`, asks a sentinel in the background which master it names
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`, one command on a connection kept for it), and
    /// forgets `master` when it is another: the next request asks the sentinels again, with
    /// redis-rs's checks. A master that is still up does not drop its clients when the sentinels
    /// promote a replica in its place (a `SENTINEL FAILOVER`, or a partition that left it on the
    /// other side), only when they demote it, seconds later (measured: about 11 s after a
    /// `SENTINEL FAILOVER`). Until then it would go on taking writes that the new master never
    /// sees, and that are gone once it resyncs as a replica.
    fn check_if_due(self: &Arc<Self>, master: &Master) {
        {
            let mut checked = self
                .checked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if checked.elapsed() < CHECK_EVERY {
                return;
            }
            *checked = Instant::now();
        }
        let (link, number) = (self.clone(), master.number);
        let used = match master.client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                (host.clone(), *port)
            }
            _ => return,
        };
        tokio::spawn(async move {
            // No answer (the check goes to another sentinel next time): requests tell.
            if let Ok(Some(named)) = link.named_master().await {
                if named != used {
                    let why = format!("a sentinel now names {}:{}", named.0, named.1);
                    link.forget(number, &why);
                }
            }
        });
    }

    /// The address of the master as the watched sentinel names it.
    async fn named_master(&self) -> RedisResult<Option<(String, u16)>> {
        let mut watch = self.watch.lock().await;
        let conn = match &mut *watch {
            Some(conn) => conn,
            None => {
                let client = self
                    .sentinel
                    .lock()
                    .await
                    .async_get_sentinel_client()
                    .await?;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(CONNECT_TIMEOUT));
                watch.insert(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
        };
        let named = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.name)
            .query_async(conn)
            .await;
        if named.is_err() {
            *watch = None;
        }
        named
    }

    /// Forgets master `number` after `e` showed it is gone or no longer a master.
    fn forget_on(&self, number: u64, e: &redis::RedisError) {
        if lost(e) {
            self.forget(number, e);
        }
    }

    /// Forgets master `number` (unless a newer one was found since), for `why`: the next
    /// request asks the sentinels again.
    fn forget(&self, number: u64, why: &dyn std::fmt::Display) {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.as_ref().is_some_and(|m| m.number == number) {
            tracing::debug!(reason = %why, "left the Sentinel master; asking the sentinels again");
            *current = None;
            self.left.notify_waiters();
        }
    }

    /// Sends `cmd` to the master.
    pub(super) async fn request(self: &Arc<Self>, cmd: &Cmd) -> RedisResult<Value> {
        let mut master = self.master().await?;
        let reply = master.conn.req_packed_command(cmd).await;
        match &reply {
            Err(e) => self.forget_on(master.number, e),
            Ok(Value::ServerError(e)) if e.code() == "READONLY" => {
                self.forget_on(master.number, &e.clone().into());
            }
            Ok(_) => {}
        }
        reply
    }

    /// Sends `count` commands of `pipeline` from `offset` to the master.
    pub(super) async fn request_pipeline(
        self: &Arc<Self>,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let mut master = self.master().await?;
        let replies = master
            .conn
            .req_packed_commands(pipeline, offset, count)
            .await;
        match &replies {
            Err(e) => self.forget_on(master.number, e),
            // A pipeline that ignores errors hands them back as values.
            Ok(values) => {
                let readonly = values.iter().find_map(|v| match v {
                    Value::ServerError(e) if e.code() == "READONLY" => Some(e.clone()),
                    _ => None,
                });
                if let Some(e) = readonly {
                    self.forget_on(master.number, &e.into());
                }
            }
        }
        replies
    }

    /// Sends `cmd`, a blocking command, to the master on a connection of its own (pooled).
    pub(super) async fn blocking(self: &Arc<Self>, cmd: &Cmd) -> RedisResult<()> {
        let master = self.master().await?;
        let pooled = {
            let mut waiters = self
                .waiters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Connections to an earlier master go.
            waiters.retain(|(number, _)| *number == master.number);
            waiters.pop().map(|(_, conn)| conn)
        };
        let mut conn = match pooled {
            Some(conn) => conn,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(None);
                let made = master
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await;
                made.inspect_err(|e| self.forget_on(master.number, e))?
            }
        };
        // Dropped while it waits, the connection is dropped with it (never reused with a reply
        // outstanding). A wait on a master the link left (one still up, that the sentinels
        // replaced) ends at once: the enqueues that would wake it go to the new one.
        let left = self.left.notified();
        if !matches!(self.current(), Some(m) if m.number == master.number) {
            return Ok(());
        }
        let reply = tokio::select! {
            reply = cmd.query_async::<Value>(&mut conn) => reply,
            () = left => return Ok(()),
        };
        match reply {
            Ok(_) => {
                self.waiters
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((master.number, conn));
                Ok(())
            }
            Err(e) => {
                self.forget_on(master.number, &e);
                Err(e)
            }
        }
    }
}

/// Whether `e` shows that the master is gone, or is no longer a master.
fn lost(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || e.code() == Some("READONLY")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_names_are_read_from_names_and_urls() {
        assert_eq!(master_name("mymaster"), "mymaster");
        assert_eq!(master_name("redis://mymaster"), "mymaster");
        assert_eq!(master_name("redis://app:secret@mymaster/2"), "mymaster");
        assert_eq!(master_name("rediss://:secret@my-master"), "my-master");
    }

    #[test]
    fn messages_name_the_master_and_hide_passwords() {
        let shown = display(
            &["redis://:pw@127.0.0.1:26379".to_owned()],
            "redis://app:secret@mymaster/2",
        );
        assert_eq!(
            shown,
            "the Sentinel master `mymaster` (sentinels redis://***@127.0.0.1:26379)"
        );
        assert!(!shown.contains("secret"));
    }
}
