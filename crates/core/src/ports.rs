use std::net::SocketAddr;

use serde::Serialize;

/// Whether the kernel currently has a listening socket for a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortState {
    /// Sockets are open: connections are accepted and handed to the service.
    Listening,
    /// No socket: the kernel refuses connections ("connection refused").
    Closed,
}

/// One row of the port table, as shown by the page and `/api/ports`.
#[derive(Clone, Debug, Serialize)]
pub struct PortStatus {
    pub port: u16,
    pub service: &'static str,
    pub protocol: &'static str,
    pub addresses: Vec<SocketAddr>,
    pub state: PortState,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections open right now.
    pub active: u64,
}

/// Read access to the live port table, for services that show it (the HTTP page and API).
///
/// The supervisor owns the table; services see it through this trait so that they never
/// depend on the supervisor itself.
pub trait PortDirectory: Send + Sync + 'static {
    /// Every port in the table, in port order.
    fn ports(&self) -> Vec<PortStatus>;
}
