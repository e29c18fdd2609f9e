//! The enqueue transaction's own connection, read by the caller itself.
//!
//! Every other request goes through redis-rs's connection manager, whose connection is driven by
//! a task of its own: a request is handed to that task and its reply handed back, two hops
//! between tasks that may run on different threads. The group committer's enqueue transactions
//! form a chain of round trips (each batch waits for the one before), so a stream of `enqueue!`
//! calls pays those hops once per batch. Here the caller writes the transaction and reads the
//! reply itself, and each poll of the reply tries the socket before asking the runtime's I/O
//! driver: a caller that stays awake for the reply ([`crate::awake::Awake`]) picks it up as soon
//! as it arrives, where a reply routed through the I/O driver waits until a thread of the runtime
//! wakes up to notice it. Measured in `jobs-bench` on a 2-vCPU VM (Redis on loopback, 5
//! alternated runs each, medians): `enqueue` 129k → 154k jobs/s, `e2e` 80.5k → 97k.
//!
//! One call at a time: a call that finds the connection in use (or unusable: TLS, or Redis
//! unreachable a moment ago) gets `None` and goes through the connection manager, which
//! pipelines concurrent calls. A call dropped before its reply was read drops the connection
//! with it, so no stray reply is ever read as another call's; the next call connects again.

use redis::{
    ConnectionAddr, ConnectionInfo, ErrorKind, Parser, Pipeline, RedisConnectionInfo, RedisResult,
    Value,
};
use socket2::SockRef;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::UnixStream;

/// How long connecting may take before the call goes through the connection manager instead.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connect, how long calls go through the connection manager before the next try.
const RETRY_CONNECT_AFTER: Duration = Duration::from_secs(1);
/// The largest reply read: a transaction's reply is a few bytes per command.
const MAX_REPLY: usize = 1 << 20;

/// A connection for one call at a time, connected on first use (see the module documentation).
pub(super) struct DirectConnection {
    address: Address,
    /// The user, password and database to log in with.
    login: RedisConnectionInfo,
    response_timeout: Duration,
    state: tokio::sync::Mutex<State>,
}

/// Where Redis listens: the addresses this connection serves.
enum Address {
    Tcp {
        host: String,
        port: u16,
        nodelay: bool,
    },
    Unix(PathBuf),
}

#[derive(Default)]
struct State {
    stream: Option<Stream>,
    /// No connect is tried before this (the last one failed).
    retry_at: Option<Instant>,
}

impl DirectConnection {
    /// A connection to where `info` points, or `None` for an address it does not serve (TLS).
    pub(super) fn new(info: &ConnectionInfo, response_timeout: Duration) -> Option<Self> {
        let address = match info.addr() {
            ConnectionAddr::Tcp(host, port) => Address::Tcp {
                host: host.clone(),
                port: *port,
                nodelay: info.tcp_settings().nodelay(),
            },
            ConnectionAddr::Unix(path) => Address::Unix(path.clone()),
            _ => return None,
        };
        Some(DirectConnection {
            address,
            login: info.redis_settings().clone(),
            response_timeout,
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    /// Runs `pipe`, an atomic pipeline (`MULTI` … `EXEC`), and returns the reply of its last
    /// command, or `None` when this connection is in use or cannot connect (the caller then
    /// sends `pipe` through the connection manager).
    pub(super) async fn last_reply(&self, pipe: &Pipeline) -> Option<RedisResult<Value>> {
        let mut state = self.state.try_lock().ok()?;
        let mut stream = match state.stream.take().filter(Stream::is_open) {
            Some(stream) => stream,
            None => {
                if state.retry_at.is_some_and(|at| Instant::now() < at) {
                    return None;
                }
                match tokio::time::timeout(CONNECT_TIMEOUT, self.connect()).await {
                    Ok(Ok(stream)) => stream,
                    // Not reachable: the connection manager reports it (or reconnects).
                    _ => {
                        state.retry_at = Some(Instant::now() + RETRY_CONNECT_AFTER);
                        return None;
                    }
                }
            }
        };
        let replies = pipe.len() + 2;
        let request = pipe.get_packed_pipeline();
        let call = stream.call(&request, replies);
        let result = match tokio::time::timeout(self.response_timeout, call).await {
            Ok(result) => result,
            Err(_) => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "no reply from Redis in time").into())
            }
        };
        // Only a connection whose reply was read in full serves the next call.
        let values = match result {
            Ok(values) => {
                state.stream = Some(stream);
                values
            }
            Err(e) => return Some(Err(e)),
        };
        Some(exec_last(values))
    }

    async fn connect(&self) -> RedisResult<Stream> {
        let mut stream = match &self.address {
            Address::Tcp {
                host,
                port,
                nodelay,
            } => {
                let tcp = TcpStream::connect((host.as_str(), *port)).await?;
                tcp.set_nodelay(*nodelay)?;
                Stream::Tcp(tcp)
            }
            Address::Unix(path) => Stream::Unix(UnixStream::connect(path).await?),
        };
        // Log in and select the database, as the connection manager does.
        let settings = &self.login;
        let mut setup = redis::pipe();
        if let Some(password) = settings.password() {
            let auth = setup.cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password);
        }
        if settings.db() != 0 {
            setup.cmd("SELECT").arg(settings.db());
        }
        if !setup.is_empty() {
            let packed = setup.get_packed_pipeline();
            for value in stream.call(&packed, setup.len()).await? {
                value.extract_error()?;
            }
        }
        Ok(stream)
    }
}

/// The reply of the last command of a transaction, from its replies: `MULTI`'s, one per queued
/// command, then `EXEC`'s array.
fn exec_last(mut values: Vec<Value>) -> RedisResult<Value> {
    let exec = values.pop().unwrap_or(Value::Nil);
    for queued in values {
        queued.extract_error()?;
    }
    match exec.extract_error()? {
        Value::Array(mut replies) => Ok(replies.pop().unwrap_or(Value::Nil)),
        other => Err((
            ErrorKind::UnexpectedReturnType,
            "EXEC did not answer an array",
            format!("{other:?}"),
        )
            .into()),
    }
}

/// The values in `buf`, `None` while it holds fewer than `count` whole ones.
fn parse(buf: &[u8], count: usize) -> RedisResult<Option<Vec<Value>>> {
    let mut rest = buf;
    let mut parser = Parser::new();
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        match parser.parse_value(&mut rest) {
            Ok(value) => values.push(value),
            // The reply stops short: more is on its way.
            Err(e) if e.kind() == ErrorKind::Io => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(values))
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Stream {
    /// Sends `request` and reads `count` replies.
    async fn call(&mut self, request: &[u8], count: usize) -> RedisResult<Vec<Value>> {
        match self {
            Stream::Tcp(s) => s.write_all(request).await?,
            Stream::Unix(s) => s.write_all(request).await?,
        }
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = std::future::poll_fn(|cx| self.poll_read(cx, &mut chunk)).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "Redis closed the connection before its reply",
                )
                .into());
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.ends_with(b"\r\n") {
                if let Some(values) = parse(&buf, count)? {
                    return Ok(values);
                }
            }
            if buf.len() > MAX_REPLY {
                return Err((
                    ErrorKind::Parse,
                    "the reply is longer than any reply to this call",
                )
                    .into());
            }
        }
    }

    /// Reads what has arrived, trying the socket itself first: the I/O driver may not have
    /// noticed yet (its thread asleep) what is already there.
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match (&*SockRef::from(self)).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                done => return Poll::Ready(done),
            }
            let ready = match self {
                Stream::Tcp(s) => s.poll_read_ready(cx),
                Stream::Unix(s) => s.poll_read_ready(cx),
            };
            if let Poll::Ready(Err(e)) = ready {
                return Poll::Ready(Err(e));
            }
            if ready.is_pending() {
                return Poll::Pending;
            }
            // The driver saw readiness that the read above may have consumed: `try_read` clears
            // it when nothing is left, so the next `poll_read_ready` waits for new data.
            let read = match self {
                Stream::Tcp(s) => s.try_read(buf),
                Stream::Unix(s) => s.try_read(buf),
            };
            match read {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }

    /// Whether the connection is still usable: an idle connection has nothing to read, and one
    /// that Redis closed (a restart, an idle timeout) reads as closed. Checked before each call,
    /// so such a connection is replaced instead of failing the call.
    fn is_open(&self) -> bool {
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        matches!(
            SockRef::from(self).peek(&mut probe),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_parsed_once_all_have_arrived() {
        let reply = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:3\r\n$4\r\n1024\r\n";
        for cut in 0..reply.len() {
            assert_eq!(parse(&reply[..cut], 4).unwrap(), None, "cut at {cut}");
        }
        let values = parse(reply, 4).unwrap().expect("the whole reply");
        assert_eq!(values.len(), 4);
        assert_eq!(
            exec_last(values).unwrap(),
            Value::BulkString(b"1024".to_vec())
        );
    }

    #[test]
    fn a_malformed_reply_is_an_error_not_a_wait() {
        assert!(parse(b"+OK\r\n?what\r\n", 2).is_err());
    }

    #[test]
    fn a_failed_transaction_is_an_error() {
        let aborted = parse(
            b"+OK\r\n-ERR unknown command\r\n-EXECABORT Transaction discarded\r\n",
            3,
        )
        .unwrap()
        .unwrap();
        assert!(exec_last(aborted).is_err());
        let failed_command = parse(b"+OK\r\n+QUEUED\r\n*1\r\n-WRONGTYPE no\r\n", 3)
            .unwrap()
            .unwrap();
        assert!(exec_last(failed_command).is_err());
    }
}
