use std::net::SocketAddr;

use serde::Serialize;

/// The row service that nobody answers: the supervisor keeps its queue full, so the kernel
/// drops every new SYN and clients time out, as if a firewall dropped them.
pub const BLACKHOLE: &str = "blackhole";

/// The transport a port belongs to. 7/tcp and 7/udp are two ports, as far apart as 7 and
/// 8: a TCP listener on 7 says nothing about UDP datagrams to 7.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Connections: a handshake, then a byte stream both ways.
    #[default]
    Tcp,
    /// Datagrams: each one stands alone; no handshake, no connection.
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// The row's name (given, or `<service>-<port>`): a proxy's name in the Toxiproxy API.
    pub name: String,
    /// Added while switchboard runs (through an API), not from the table it started with.
    pub runtime: bool,
    pub protocol: Protocol,
    pub addresses: Vec<SocketAddr>,
    pub state: PortState,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections open right now.
    pub active: u64,
    /// Connections closed at once by an access rule.
    pub denied: u64,
    /// Connections turned away by a limit.
    pub limited: u64,
    /// The access rules, in words (`allow 127.0.0.0/8`, …); empty when anyone may connect.
    pub rules: Vec<String>,
    /// The names of the port's toxics.
    pub toxics: Vec<String>,
    /// What the row serves, as its service says (a proxy's `upstream`, an exec row's
    /// `command`): one key of the row's JSON, absent for services that say nothing.
    #[serde(flatten)]
    pub target: Option<crate::Target>,
}

/// Read access to the live port table, for services that show it (the HTTP page and API).
///
/// The supervisor owns the table; services see it through this trait so that they never
/// depend on the supervisor itself.
pub trait PortDirectory: Send + Sync + 'static {
    /// Every port in the table, in port order.
    fn ports(&self) -> Vec<PortStatus>;
}

/// Changing the port table while it runs: closing and opening ports, and putting everything
/// back as it started. The supervisor implements it; the HTTP control API and the test
/// harness use it. (A port's toxics change through `switchboard_faults::ToxicControl`.)
#[async_trait::async_trait]
pub trait PortControl: Send + Sync + 'static {
    /// Close the port's listeners: new connections are refused from now on; open ones go on.
    async fn close_port(&self, port: u16) -> Result<(), ControlError>;
    /// Listen on the port again (on the same addresses).
    async fn open_port(&self, port: u16) -> Result<(), ControlError>;
    /// Close the port's listeners, and open them again after `reopen_after` (unless the port
    /// was opened and closed again meanwhile).
    async fn close_port_for(
        &self,
        port: u16,
        reopen_after: std::time::Duration,
    ) -> Result<(), ControlError>;
    /// Accept the port's next `count` connections and reset each at once (the client sees
    /// ECONNRESET); 0 stops it. (Refusals cannot be counted: the kernel answers those.)
    async fn reset_next(&self, port: u16, count: u32) -> Result<(), ControlError>;
    /// Remove every toxic, reopen every closed port, and restore what else was changed at
    /// run time (the SMTP chaos triggers). Ports added at run time stay.
    async fn reset(&self) -> Result<(), ControlError>;
    /// Add a port while switchboard runs. `row` has the keys of a `[[port]]` table of the
    /// config file (its number used as given: never moved by `--port-offset`); the answer is
    /// the new row as the port table shows it.
    async fn add_port(&self, row: serde_json::Value) -> Result<PortStatus, ControlError>;
    /// Whether [`add_port`](Self::add_port) would take `row` — its keys, the API's rules, a
    /// proxy's upstream — without adding it: a change of several rows is checked whole
    /// before any is made. (Only binding can still fail afterwards: the address in use.)
    async fn check_port(&self, row: serde_json::Value) -> Result<(), ControlError>;
    /// Remove a port: close its listeners at once (new connections are refused), and let its
    /// open connections finish as at shutdown, within the same deadline.
    async fn remove_port(&self, port: u16) -> Result<(), ControlError>;
    /// Close the port's listeners and drop its open connections at once: how Toxiproxy
    /// disables a proxy (`close_port` lets open connections finish).
    async fn disable_port(&self, port: u16) -> Result<(), ControlError>;
}

/// Why a control action could not be done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("port {0} is not in switchboard's port table")]
    NoSuchPort(u16),
    #[error("port {port} has no toxic named \"{name}\"")]
    NoSuchToxic { port: u16, name: String },
    #[error(
        "port {port} already has a toxic named \"{name}\"; choose another name or change that one"
    )]
    ToxicExists { port: u16, name: String },
    #[error("{0}")]
    Invalid(String),
    /// Not allowed by a setting, which the message names.
    #[error("{0}")]
    Forbidden(String),
    /// The bind failed; `reason` says so in full, as start-up would.
    #[error("{reason}")]
    Bind { port: u16, reason: String },
    #[error("switchboard already serves port {0}; remove it first (DELETE /api/ports/{0})")]
    PortExists(u16),
    #[error("a port named \"{0}\" is already in the table; choose another name")]
    NameExists(String),
    #[error("switchboard is shutting down")]
    ShuttingDown,
}
