//! One accept loop per listening socket.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{Event, Service};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::gate::Gate;

/// Longest pause between accept attempts while the system refuses (e.g. out of file
/// descriptors); the first pause is 10 ms and each failure doubles it.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// A listening socket and where its connections go.
pub(crate) struct Listener {
    pub(crate) socket: TcpListener,
    pub(crate) addr: SocketAddr,
    pub(crate) service: Arc<dyn Service>,
    /// The port's connection slots, shared by all its listeners (IPv4 and IPv6).
    pub(crate) slots: Arc<Semaphore>,
    /// How many slots the port has.
    pub(crate) limit: usize,
    pub(crate) gate: Arc<Gate>,
}

impl Listener {
    /// Accept connections until `stop`, then close the socket: from that moment the kernel
    /// refuses new connections to this address and port.
    pub(crate) async fn run(self, stop: CancellationToken) {
        loop {
            // Take a connection slot *before* accepting. At the port's limit we simply stop
            // accepting: new connections wait in the kernel's backlog instead of piling up
            // in memory here (back-pressure).
            let slot = match self.slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    self.gate.events.emit(Event::PortAtLimit {
                        port: self.addr.port(),
                        service: self.service.name(),
                        limit: self.limit,
                    });
                    let slot = tokio::select! {
                        biased;
                        () = stop.cancelled() => break,
                        slot = self.slots.clone().acquire_owned() => slot,
                    };
                    let Ok(slot) = slot else { break }; // only if the semaphore were closed
                    slot
                }
            };
            let (tcp, peer) = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                accepted = self.accept() => accepted,
            };
            self.gate.admit(&self.service, tcp, peer, self.addr, slot);
        }
        drop(self.socket);
        self.gate.events.emit(Event::PortClosed {
            port: self.addr.port(),
            service: self.service.name(),
            addr: self.addr,
        });
    }

    /// The next connection. Errors never end the loop: one client's failed handshake is
    /// skipped, and a system-wide shortage (EMFILE and friends) is waited out with backoff.
    async fn accept(&self) -> (TcpStream, SocketAddr) {
        let mut backoff = Duration::from_millis(10);
        let mut failing = false;
        loop {
            match self.socket.accept().await {
                Ok(accepted) => {
                    if failing {
                        tracing::info!(addr = %self.addr, "accepting connections again");
                    }
                    return accepted;
                }
                Err(error) if is_one_connection_error(&error) => {
                    tracing::debug!(addr = %self.addr, %error, "a connection failed before it was accepted");
                }
                Err(error) => {
                    if !failing {
                        // Logged once per episode, not once per attempt.
                        tracing::warn!(
                            addr = %self.addr, %error,
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
