//! The live port table: each port's service, addresses, state and connection counts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use switchboard_core::{PortDirectory, PortState, PortStatus};

/// One port's live state. The accept loops and connection tasks update it; the HTTP page
/// and API read it through [`PortDirectory`].
#[derive(Debug)]
pub(crate) struct PortEntry {
    pub(crate) port: u16,
    pub(crate) service: &'static str,
    pub(crate) addrs: Vec<SocketAddr>,
    listening: AtomicBool,
    accepted: AtomicU64,
    active: AtomicU64,
}

impl PortEntry {
    pub(crate) fn new(port: u16, service: &'static str, addrs: Vec<SocketAddr>) -> Self {
        Self {
            port,
            service,
            addrs,
            listening: AtomicBool::new(true),
            accepted: AtomicU64::new(0),
            active: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Relaxed);
    }

    /// Count a new connection; it stays active until the returned guard is dropped, which
    /// happens even if the service panics.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> ActiveConnection {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveConnection(self.clone())
    }

    fn status(&self) -> PortStatus {
        PortStatus {
            port: self.port,
            service: self.service,
            protocol: "tcp",
            addresses: self.addrs.clone(),
            state: if self.listening.load(Ordering::Relaxed) {
                PortState::Listening
            } else {
                PortState::Closed
            },
            accepted: self.accepted.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
        }
    }
}

/// Keeps a connection counted as active while it lives.
#[derive(Debug)]
pub(crate) struct ActiveConnection(Arc<PortEntry>);

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every port switchboard serves.
#[derive(Debug, Default)]
pub(crate) struct PortTable {
    pub(crate) entries: Vec<Arc<PortEntry>>,
}

impl PortDirectory for PortTable {
    fn ports(&self) -> Vec<PortStatus> {
        let mut ports: Vec<_> = self.entries.iter().map(|e| e.status()).collect();
        ports.sort_by_key(|p| p.port);
        ports
    }
}
