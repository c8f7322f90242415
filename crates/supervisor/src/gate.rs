//! The gate: what happens to a connection between `accept()` and the service.
//!
//! Every connection, whatever its port, passes here: it gets an id, a tracing span, byte
//! counters and an entry in the port's counts; the service runs in a task of its own; and
//! when the service returns (or the shutdown deadline passes) the connection is accounted
//! for in one "connection closed" event. Access rules, limits and faults belong here too,
//! so that they work the same for every service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_core::{
    ByteCounts, Conn, ConnInfo, ConnStream, Event, EventBus, Service, Shutdown,
};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Shared by every accept loop of one supervisor.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) events: EventBus,
    /// Handed to services: finish what is in flight.
    pub(crate) shutdown: Shutdown,
    /// Cancelled when the shutdown deadline passes: connections still open are dropped.
    pub(crate) deadline_passed: CancellationToken,
    /// Every connection task, so that shutdown can wait for them.
    pub(crate) connections: TaskTracker,
    next_id: AtomicU64,
}

impl Gate {
    pub(crate) fn new(events: EventBus) -> Self {
        Self {
            events,
            shutdown: Shutdown::new(),
            deadline_passed: CancellationToken::new(),
            connections: TaskTracker::new(),
            next_id: AtomicU64::new(1),
        }
    }

    /// Hand an accepted connection to `service` in a task of its own. `permit` is the
    /// port's connection slot; it is released when the connection ends.
    pub(crate) fn admit(
        &self,
        service: &Arc<dyn Service>,
        tcp: TcpStream,
        peer: SocketAddr,
        listening: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let port = listening.port();
        let name = service.name();
        // The exact local address (which of the machine's addresses the client used);
        // the listening address if the socket already died.
        let local = tcp.local_addr().unwrap_or(listening);
        // Small request/response protocols want each write on the wire at once.
        let _ = tcp.set_nodelay(true);
        let counts = Arc::new(ByteCounts::default());
        let conn = Conn {
            stream: ConnStream::new(tcp, counts.clone()),
            info: ConnInfo {
                id,
                service: name,
                local,
                peer,
                tls: None,
            },
        };
        // `tls` is filled in by TLS services once the handshake is done, so that the
        // connection's closing line shows it.
        let span = tracing::info_span!(
            "conn", id, %peer, %local, port, service = name,
            tls = tracing::field::Empty
        );
        let service = service.clone();
        let events = self.events.clone();
        let shutdown = self.shutdown.clone();
        let deadline_passed = self.deadline_passed.clone();

        self.connections.spawn(
            async move {
                let _slot = permit;
                events.emit(Event::ConnectionOpened {
                    id,
                    port,
                    service: name,
                    peer,
                    local,
                });
                let mut closing = Closing {
                    events,
                    id,
                    port,
                    service: name,
                    peer,
                    counts,
                    started: Instant::now(),
                    error: None,
                };
                closing.error = tokio::select! {
                    result = service.serve(conn, shutdown) => result.err().map(|e| e.to_string()),
                    () = deadline_passed.cancelled() => {
                        Some("closed by switchboard: the shutdown deadline passed".to_owned())
                    }
                };
            }
            .instrument(span),
        );
    }
}

/// Emits a connection's "closed" event when it is dropped: when the service returns, and
/// also when it panics, so that no connection is ever counted as open forever.
struct Closing {
    events: EventBus,
    id: u64,
    port: u16,
    service: &'static str,
    peer: SocketAddr,
    counts: Arc<ByteCounts>,
    started: Instant,
    error: Option<String>,
}

impl Drop for Closing {
    fn drop(&mut self) {
        let error = self.error.take().or_else(|| {
            std::thread::panicking()
                .then(|| "the service panicked (a bug in switchboard)".to_owned())
        });
        self.events.emit(Event::ConnectionClosed {
            id: self.id,
            port: self.port,
            service: self.service,
            peer: self.peer,
            bytes_in: self.counts.received(),
            bytes_out: self.counts.sent(),
            duration: self.started.elapsed(),
            error,
        });
    }
}
