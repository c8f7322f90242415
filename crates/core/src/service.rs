use std::sync::Arc;

use async_trait::async_trait;

use crate::{Conn, Shutdown};

/// The error a service may end a connection with. The supervisor only logs it: one
/// connection's failure never affects another.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A protocol that answers connections on a port: http, https, smtp, echo, …
///
/// Services never bind or accept. The supervisor owns the listening sockets, accepts each
/// connection, applies the port's limits, and then runs the future of [`Service::serve`] in a
/// task of its own. That split is what lets the port table, limits and faults work the same
/// for every service.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// The name the port table uses for this service, e.g. `"http"`.
    fn name(&self) -> &'static str;

    /// Serve one accepted connection until it ends.
    ///
    /// When `shutdown` is requested the service should finish what is in flight, say goodbye
    /// in its protocol's terms if it has any, and return. The supervisor waits for that up to
    /// its shutdown deadline and then drops the future, which closes the connection.
    ///
    /// It takes the service by `Arc`, so that the future owns what it needs: the supervisor
    /// makes it before it spawns the connection's task, which then holds nothing else of
    /// the connection.
    async fn serve(self: Arc<Self>, conn: Conn, shutdown: Shutdown) -> Result<(), BoxError>;

    /// Whether the protocol keeps its own clocks for a client that goes quiet (HTTP's
    /// keep-alive and header timeouts, SMTP's command timeout). If not, the supervisor ends a
    /// connection with no byte either way for the row's `idle_timeout`.
    fn keeps_own_clocks(&self) -> bool {
        false
    }

    /// Turn away a connection the port's limits do not allow, in the protocol's own terms
    /// where it has them (HTTP 503, SMTP 421). By default: close it.
    async fn refuse(self: Arc<Self>, conn: Conn, why: Refusal, shutdown: Shutdown) {
        let _ = (conn, why, shutdown);
    }
}

/// What answers a UDP port: one datagram in, at most one datagram out.
///
/// UDP has no connections, so there is nothing to serve for long: the supervisor receives
/// each datagram, applies the port's access rules and rate limit, and asks the service for
/// its answer. The source address of a datagram can be forged, so an answer is sent to
/// whoever the datagram claims to come from; the supervisor never sends more than one
/// datagram per datagram received, and cuts an answer to the size of the datagram it
/// answers or `[supervisor] udp_max_answer` bytes, whichever is more — so a port cannot be
/// used to multiply traffic toward a forged source by much.
pub trait DatagramService: Send + Sync + 'static {
    /// The name the port table uses for this service, e.g. `"echo"`.
    fn name(&self) -> &'static str;

    /// The answer to `datagram`, or `None` to stay silent.
    fn answer(&self, datagram: &[u8]) -> Option<Vec<u8>>;
}

/// Which limit a connection ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The port already has `max_connections` open.
    MaxConnections(usize),
    /// This client address already has `max_per_source` open.
    MaxPerSource(u32),
    /// This client address opened more than `max_rate` connections in the last second.
    MaxRate(u32),
}

impl Refusal {
    /// The config key of the limit.
    pub fn key(&self) -> &'static str {
        match self {
            Refusal::MaxConnections(_) => "max_connections",
            Refusal::MaxPerSource(_) => "max_per_source",
            Refusal::MaxRate(_) => "max_rate",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::MaxConnections(n) => write!(
                f,
                "too many connections to this port (max_connections = {n})"
            ),
            Refusal::MaxPerSource(n) => write!(
                f,
                "too many connections from your address (max_per_source = {n})"
            ),
            Refusal::MaxRate(n) => write!(
                f,
                "too many new connections from your address (max_rate = {n} per second)"
            ),
        }
    }
}
