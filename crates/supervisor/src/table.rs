//! The live port table: each port's service, addresses, state and connection counts.
//!
//! The table keeps no counts of its own making: it is an [`Observer`] of the event stream,
//! so what the page and `/api/ports` show is, by construction, what the log says.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use switchboard_core::{Event, Observer, PortDirectory, PortState, PortStatus};

/// One port's live state.
#[derive(Debug)]
pub(crate) struct PortEntry {
    port: u16,
    service: &'static str,
    addrs: Vec<SocketAddr>,
    /// Listening sockets open now (one per address).
    listening: AtomicUsize,
    accepted: AtomicU64,
    active: AtomicU64,
}

impl PortEntry {
    pub(crate) fn new(port: u16, service: &'static str, addrs: Vec<SocketAddr>) -> Self {
        Self {
            port,
            service,
            addrs,
            listening: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            active: AtomicU64::new(0),
        }
    }

    fn status(&self) -> PortStatus {
        PortStatus {
            port: self.port,
            service: self.service,
            protocol: "tcp",
            addresses: self.addrs.clone(),
            state: if self.listening.load(Ordering::Relaxed) > 0 {
                PortState::Listening
            } else {
                PortState::Closed
            },
            accepted: self.accepted.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
        }
    }
}

/// Every port switchboard serves.
#[derive(Debug, Default)]
pub(crate) struct PortTable {
    pub(crate) entries: Vec<PortEntry>,
}

impl PortTable {
    fn entry(&self, port: u16) -> Option<&PortEntry> {
        self.entries.iter().find(|e| e.port == port)
    }
}

impl Observer for PortTable {
    fn observe(&self, event: &Event) {
        let port = match event {
            Event::PortBound { port, .. }
            | Event::PortClosed { port, .. }
            | Event::ConnectionOpened { port, .. }
            | Event::ConnectionClosed { port, .. } => *port,
            _ => return,
        };
        let Some(entry) = self.entry(port) else {
            return;
        };
        match event {
            Event::PortBound { .. } => {
                entry.listening.fetch_add(1, Ordering::Relaxed);
            }
            Event::PortClosed { .. } => {
                let _ = entry
                    .listening
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            }
            Event::ConnectionOpened { .. } => {
                entry.accepted.fetch_add(1, Ordering::Relaxed);
                entry.active.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                entry.active.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl PortDirectory for PortTable {
    fn ports(&self) -> Vec<PortStatus> {
        let mut ports: Vec<_> = self.entries.iter().map(PortEntry::status).collect();
        ports.sort_by_key(|p| p.port);
        ports
    }
}
