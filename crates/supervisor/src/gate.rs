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

use crate::table::PortEntry;

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
        entry: &Arc<PortEntry>,
        service: &Arc<dyn Service>,
        tcp: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(entry.addrs[0].ip(), entry.port));
        // Small request/response protocols want each write on the wire at once.
        let _ = tcp.set_nodelay(true);
        let counts = Arc::new(ByteCounts::default());
        let conn = Conn {
            stream: ConnStream::new(tcp, counts.clone()),
            info: ConnInfo {
                id,
                service: entry.service,
                local,
                peer,
                tls: None,
            },
        };
        // `tls` is filled in by TLS services once the handshake is done, so that the
        // connection's closing line shows it.
        let span = tracing::info_span!(
            "conn", id, %peer, %local, port = entry.port, service = entry.service,
            tls = tracing::field::Empty
        );
        let entry = entry.clone();
        let service = service.clone();
        let events = self.events.clone();
        let shutdown = self.shutdown.clone();
        let deadline_passed = self.deadline_passed.clone();

        self.connections.spawn(
            async move {
                let _slot = permit;
                let _active = entry.connection_opened();
                let started = Instant::now();
                events.emit(Event::ConnectionOpened {
                    id,
                    port: entry.port,
                    service: entry.service,
                    peer,
                    local,
                });
                let outcome = tokio::select! {
                    result = service.serve(conn, shutdown) => result.err().map(|e| e.to_string()),
                    () = deadline_passed.cancelled() => {
                        Some("closed by switchboard: the shutdown deadline passed".to_owned())
                    }
                };
                events.emit(Event::ConnectionClosed {
                    id,
                    port: entry.port,
                    service: entry.service,
                    peer,
                    bytes_in: counts.received(),
                    bytes_out: counts.sent(),
                    duration: started.elapsed(),
                    error: outcome,
                });
            }
            .instrument(span),
        );
    }
}
