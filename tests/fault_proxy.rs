//! A TCP fault proxy: a forwarder between a client (a worker, a storage) and a server (Redis,
//! later PostgreSQL) that cuts, stalls or black-holes the connections on command, to test
//! partitions with real servers. It forwards bytes and knows no protocol.
//!
//! ```
//! # #[tokio::main]
//! # async fn main() {
//! use jobs_tests::fault_proxy::FaultProxy;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! // An echo server stands in for Redis.
//! let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let target = server.local_addr().unwrap();
//! tokio::spawn(async move {
//!     while let Ok((mut s, _)) = server.accept().await {
//!         tokio::spawn(async move {
//!             let (mut r, mut w) = s.split();
//!             let _ = tokio::io::copy(&mut r, &mut w).await;
//!         });
//!     }
//! });
//!
//! let proxy = FaultProxy::start(target).await;
//! let mut conn = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
//! conn.write_all(b"ping").await.unwrap();
//! let mut reply = [0; 4];
//! conn.read_exact(&mut reply).await.unwrap();
//! assert_eq!(&reply, b"ping");
//!
//! // A stalled link delivers nothing, until it heals.
//! proxy.stall();
//! conn.write_all(b"pong").await.unwrap();
//! let read = tokio::time::timeout(std::time::Duration::from_millis(100), conn.read_exact(&mut reply));
//! assert!(read.await.is_err(), "nothing passes a stalled link");
//! proxy.heal();
//! conn.read_exact(&mut reply).await.unwrap();
//! assert_eq!(&reply, b"pong");
//!
//! // Dropped connections are closed; new ones are forwarded again.
//! proxy.drop_connections();
//! assert_eq!(conn.read(&mut reply).await.unwrap(), 0, "closed by the proxy");
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to the connections it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward every byte both ways (healed).
    None,
    /// Forward no byte, open or new connections alike, but keep every socket open: a link that
    /// went silent. What was sent meanwhile is delivered when the link heals.
    Stall,
    /// Accept new connections but never connect them to the server, and keep the open ones
    /// silent: a peer that vanished. Both go through once the link heals.
    BlackHole,
    /// Close every connection, and each new one as soon as it is accepted: a peer that resets
    /// connections (a firewall rejecting them, a server that is gone).
    Refuse,
}

#[derive(Clone, Copy)]
struct Link {
    fault: Fault,
    /// Bumped by every `drop_connections` (and `refuse`): connections older than the current
    /// epoch close.
    epoch: u64,
}

/// A TCP forwarder on `127.0.0.1` (a free port) to one target address, with faults on command.
/// Dropping it stops it and closes every connection it carries.
pub struct FaultProxy {
    addr: SocketAddr,
    link: watch::Sender<Link>,
    open: Arc<AtomicUsize>,
    acceptor: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding connections made to [`addr`](Self::addr) to `target`.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port for the fault proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (link, _) = watch::channel(Link {
            fault: Fault::None,
            epoch: 0,
        });
        let open = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio::spawn(accept(listener, target, link.clone(), open.clone()));
        FaultProxy {
            addr,
            link,
            open,
            acceptor,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fault now in force.
    pub fn fault(&self) -> Fault {
        self.link.borrow().fault
    }

    /// How many client connections are open through the proxy (forwarded or held).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Closes every open connection at once (the fault in force stays; new connections are
    /// forwarded when there is none).
    pub fn drop_connections(&self) {
        self.link.send_modify(|l| l.epoch += 1);
    }

    /// Stops forwarding bytes on every connection, open or new, keeping the sockets open.
    pub fn stall(&self) {
        self.set(Fault::Stall);
    }

    /// Accepts new connections without connecting them to the target and keeps the open ones
    /// silent.
    pub fn black_hole(&self) {
        self.set(Fault::BlackHole);
    }

    /// Closes every connection and each new one as soon as it is accepted.
    pub fn refuse(&self) {
        self.set(Fault::Refuse);
    }

    /// Forwards again: held bytes and held connections go through.
    pub fn heal(&self) {
        self.set(Fault::None);
    }

    /// Puts `fault` in force (what [`stall`](Self::stall), [`black_hole`](Self::black_hole),
    /// [`refuse`](Self::refuse) and [`heal`](Self::heal) do).
    pub fn set(&self, fault: Fault) {
        self.link.send_modify(|l| {
            l.fault = fault;
            if fault == Fault::Refuse {
                l.epoch += 1;
            }
        });
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        // Every connection task ends once it sees the epoch change.
        self.drop_connections();
    }
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    link: watch::Sender<Link>,
    open: Arc<AtomicUsize>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let rx = link.subscribe();
        if rx.borrow().fault == Fault::Refuse {
            drop(client);
            continue;
        }
        let open = open.clone();
        tokio::spawn(async move {
            open.fetch_add(1, Ordering::SeqCst);
            carry(client, target, rx).await;
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Carries one client connection until either side closes it or the proxy drops it.
async fn carry(client: TcpStream, target: SocketAddr, mut rx: watch::Receiver<Link>) {
    let epoch = rx.borrow().epoch;
    let mut dropped = rx.clone();
    let dropped = async move {
        // Also ends when the proxy is gone (the sender dropped).
        let _ = dropped.wait_for(|l| l.epoch != epoch).await;
    };
    let run = async move {
        // A black-holed connection is not even connected to the server until the link heals.
        if rx.wait_for(|l| l.fault != Fault::BlackHole).await.is_err() {
            return;
        }
        let Ok(server) = TcpStream::connect(target).await else {
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (client_r, client_w) = client.into_split();
        let (server_r, server_w) = server.into_split();
        tokio::join!(
            pump(client_r, server_w, rx.clone()),
            pump(server_r, client_w, rx)
        );
    };
    tokio::select! {
        () = run => {}
        () = dropped => {}
    }
}

/// Copies bytes one way while the link forwards; passes an end of stream on as a shutdown of
/// the writing side.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut rx: watch::Receiver<Link>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Not reading while the link is held leaves the bytes in the kernel's buffers, as on a
        // link that went silent (the sender's window fills up).
        if !forwarding(&mut rx).await {
            return;
        }
        let read = from.read(&mut buf).await;
        // A fault that began during the read holds what it returned, an end of stream too.
        if !forwarding(&mut rx).await {
            return;
        }
        match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Waits until the link forwards; false when the proxy is gone.
async fn forwarding(rx: &mut watch::Receiver<Link>) -> bool {
    rx.wait_for(|l| l.fault == Fault::None).await.is_ok()
}
