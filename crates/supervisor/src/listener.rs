//! One accept loop per listening socket.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::Event;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::gate::Gate;
use crate::ports::Port;

/// Longest pause between accept attempts while the system refuses (e.g. out of file
/// descriptors); the first pause is 10 ms and each failure doubles it.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accept connections on `socket` until `stop`, handing each to the gate; then close the
/// socket: from that moment the kernel refuses new connections to this address and port.
pub(crate) async fn accept_loop(
    port: Arc<Port>,
    gate: Arc<Gate>,
    socket: TcpListener,
    addr: SocketAddr,
    stop: CancellationToken,
) {
    loop {
        // Back-pressure: when the port can neither serve nor politely refuse one more
        // connection, stop accepting. New connections then wait in the kernel's backlog
        // instead of piling up in memory here.
        if port.saturated() {
            gate.events.emit(Event::PortAtLimit {
                port: port.number,
                service: port.name,
                limit: port.max_connections(),
            });
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = port.unsaturated() => {}
            }
        }
        let (tcp, peer) = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = accept(&socket, addr) => accepted,
        };
        gate.handle(&port, tcp, peer, addr);
    }
    drop(socket);
    gate.events.emit(Event::PortClosed {
        port: port.number,
        service: port.name,
        addr,
    });
}

/// The next connection. Errors never end the loop: one client's failed handshake is
/// skipped, and a system-wide shortage (EMFILE and friends) is waited out with backoff.
async fn accept(socket: &TcpListener, addr: SocketAddr) -> (TcpStream, SocketAddr) {
    let mut backoff = Duration::from_millis(10);
    let mut failing = false;
    loop {
        match socket.accept().await {
            Ok(accepted) => {
                if failing {
                    tracing::info!(%addr, "accepting connections again");
                }
                return accepted;
            }
            Err(error) if is_one_connection_error(&error) => {
                tracing::debug!(%addr, %error, "a connection failed before it was accepted");
            }
            Err(error) => {
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
