//! A `blackhole` port: it listens, and never answers.
//!
//! A client's knock on a TCP port gets one of three answers: a handshake (open), a reset
//! (refused: nothing listens there, or a firewall rejects), or nothing at all (filtered: a
//! firewall drops the SYN, and the client gives up after its timeout). The third normally
//! takes a firewall. This port makes it without one, from how the kernel treats a listening
//! socket whose queue is full:
//!
//! 1. The kernel completes handshakes on its own and queues the connections until a program
//!    accepts them; the queue is as long as the backlog given to `listen()`.
//! 2. When the queue is full, the kernel drops new SYNs without a word (it does not send a
//!    reset: the program might be about to accept, and the client's retry would then get in).
//! 3. So: listen with the smallest backlog, fill the queue with connections of our own, and
//!    never accept. Every knock from then on is dropped by the kernel, exactly as a dropping
//!    firewall would drop it; nothing in switchboard ever sees it.
//!
//! It is bounded: a port holds at most [`MAX_HELD`] connections of its own per address (on
//! Linux one fills a backlog of 0), however many knocks arrive; the dropped ones cost
//! nothing. The queue is filled when the port is bound, before anyone is told it is ready.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use socket2::SockRef;
use switchboard_core::{EventBus, EventKind};
use tokio_util::sync::CancellationToken;

use crate::port::Port;

/// The most connections of its own a blackhole holds per address to keep its queue full.
pub(crate) const MAX_HELD: usize = 4;

/// How long the first connection of our own may take: the queue is empty then, so it must
/// get in.
const FIRST_WITHIN: Duration = Duration::from_secs(2);

/// A listening socket whose queue is full of connections of our own.
#[derive(Debug)]
pub(crate) struct Hole {
    pub(crate) listener: TcpListener,
    /// Our ends of the connections that fill the queue; the kernel holds the others.
    held: Vec<TcpStream>,
}

impl Hole {
    /// Connections of ours in the queue.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }
}

/// Make each of a blackhole row's listening sockets a hole: the smallest queue, full.
///
/// A knock of our own that is not answered within `wait` (`[supervisor] blackhole_wait`)
/// proves the queue full: on loopback a handshake with room in the queue completes within
/// the connect call itself, so the default of 200 ms is generous. It blocks for about
/// `wait` per socket.
pub(crate) fn dig(listeners: Vec<TcpListener>, wait: Duration) -> io::Result<Vec<Hole>> {
    listeners
        .into_iter()
        .map(|listener| {
            let addr = listener.local_addr()?;
            // listen() on a socket that already listens changes only its backlog.
            SockRef::from(&listener).listen(0)?;
            let held = fill(reachable(addr), wait).map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot fill the queue of the blackhole on {addr}: {error}"),
                )
            })?;
            Ok(Hole { listener, held })
        })
        .collect()
}

/// Hold a port's holes until `stop`, then close them: from that moment the kernel refuses
/// connections to the port.
pub(crate) async fn hold(
    holes: Vec<Hole>,
    port: Arc<Port>,
    events: EventBus,
    stop: CancellationToken,
) {
    for hole in &holes {
        if let Ok(addr) = hole.listener.local_addr() {
            tracing::info!(
                port = port.number, %addr,
                "port {} is a blackhole: its queue is full with {} connection(s) of its own, \
                 so the kernel drops every new SYN to {addr}",
                port.number,
                hole.held()
            );
        }
    }
    stop.cancelled().await;
    for hole in holes {
        let addr = hole.listener.local_addr();
        drop(hole);
        if let Ok(addr) = addr {
            events.emit(port.event(EventKind::PortClosed { addr }));
        }
    }
}

/// Connect to `target` until one of our connections is not answered within `wait` (the
/// proof that the queue is full), up to [`MAX_HELD`]; the ones that got in.
fn fill(target: SocketAddr, wait: Duration) -> io::Result<Vec<TcpStream>> {
    let mut held = vec![TcpStream::connect_timeout(&target, FIRST_WITHIN)?];
    while held.len() < MAX_HELD {
        match TcpStream::connect_timeout(&target, wait) {
            Ok(stream) => held.push(stream),
            Err(error) if error.kind() == io::ErrorKind::TimedOut => return Ok(held),
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other(format!(
        "the queue still took connections after {MAX_HELD} of ours"
    )))
}

/// Where to reach a socket listening on `addr` from this machine: loopback for the
/// wildcard addresses.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_every_knock() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let wait = Duration::from_millis(200);
        let holes = dig(vec![listener], wait).unwrap();
        assert!((1..MAX_HELD).contains(&holes[0].held()), "{holes:?}");
        for _ in 0..3 {
            let knock = TcpStream::connect_timeout(&addr, wait);
            let error = knock.expect_err("a knock got an answer");
            assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        }
    }

    #[test]
    fn wildcards_are_reached_over_loopback() {
        let v4: SocketAddr = "0.0.0.0:9".parse().unwrap();
        let v6: SocketAddr = "[::]:9".parse().unwrap();
        let given: SocketAddr = "10.0.0.1:9".parse().unwrap();
        assert_eq!(reachable(v4), "127.0.0.1:9".parse().unwrap());
        assert_eq!(reachable(v6), "[::1]:9".parse().unwrap());
        assert_eq!(reachable(given), given);
    }
}
