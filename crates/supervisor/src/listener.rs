//! One accept loop per port, over all of its listening sockets (one per address).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use switchboard_core::{EventKind, Service};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::gate::{Accepted, Gate};
use crate::port::Port;

/// Longest pause between accept attempts while the system refuses (e.g. out of file
/// descriptors); the first pause is 10 ms and each failure doubles it.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// A port's listening sockets and what answers them.
pub(crate) struct Listener {
    pub(crate) port: Arc<Port>,
    pub(crate) service: Arc<dyn Service>,
    pub(crate) gate: Arc<Gate>,
    /// Each socket with its address.
    pub(crate) sockets: Vec<(TcpListener, SocketAddr)>,
}

impl Listener {
    /// Accept connections until `stop`, handing each to the gate; then close the sockets:
    /// from that moment the kernel refuses new connections to this port.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let mut first = 0;
        loop {
            // Room for one more connection before accepting it. When the port can neither
            // serve nor politely refuse one more, stop accepting: new connections then wait
            // in the kernel's backlog instead of piling up in memory here.
            let ticket = match self.port.try_ticket() {
                Some(ticket) => ticket,
                None => {
                    self.emit(EventKind::PortAtLimit {
                        limit: self.port.max_connections(),
                    });
                    tokio::select! {
                        biased;
                        () = stop.cancelled() => break,
                        ticket = self.port.ticket() => ticket,
                    }
                }
            };
            let accepted = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                accepted = accept(&self.sockets, first) => accepted,
            };
            // Start with the next socket next time, so that a busy address cannot starve
            // the port's other addresses.
            first = first.wrapping_add(1);
            self.gate
                .handle(&self.port, &self.service, ticket, accepted);
        }
        for (socket, addr) in std::mem::take(&mut self.sockets) {
            drop(socket);
            self.emit(EventKind::PortClosed { addr });
        }
    }

    fn emit(&self, kind: EventKind) {
        self.gate.events.emit(self.port.event(kind));
    }
}

/// The next connection on any of `sockets`, trying them from `first` on. Errors never end
/// the loop: one client's failed handshake is skipped, and a system-wide shortage (EMFILE
/// and friends) is waited out with backoff.
async fn accept(sockets: &[(TcpListener, SocketAddr)], first: usize) -> Accepted {
    let mut backoff = Duration::from_millis(10);
    let mut failing = false;
    loop {
        match accept_any(sockets, first).await {
            (Ok((tcp, peer)), listening) => {
                if failing {
                    tracing::info!(addr = %listening, "accepting connections again");
                }
                return Accepted {
                    tcp,
                    peer,
                    listening,
                };
            }
            (Err(error), addr) if is_one_connection_error(&error) => {
                tracing::debug!(%addr, %error, "a connection failed before it was accepted");
            }
            (Err(error), addr) => {
                if !failing {
                    // Logged once per episode, not once per attempt.
                    tracing::warn!(
                        %addr, %error,
                        "accept failed; retrying with backoff (new connections wait in the kernel's queue meanwhile)"
                    );
                    failing = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
}

/// The first socket of `sockets` (from `first` on) with a connection waiting, and the result
/// of accepting it.
async fn accept_any(
    sockets: &[(TcpListener, SocketAddr)],
    first: usize,
) -> (io::Result<(tokio::net::TcpStream, SocketAddr)>, SocketAddr) {
    poll_fn(|cx| {
        for i in 0..sockets.len() {
            let (socket, addr) = &sockets[first.wrapping_add(i) % sockets.len()];
            if let Poll::Ready(result) = socket.poll_accept(cx) {
                return Poll::Ready((result, *addr));
            }
        }
        Poll::Pending
    })
    .await
}

/// Errors that concern only the connection being accepted, not the listener.
fn is_one_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}
