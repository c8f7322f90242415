use async_trait::async_trait;

use crate::{Conn, Shutdown};

/// The error a service may end a connection with. The supervisor only logs it: one
/// connection's failure never affects another.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A protocol that answers connections on a port: http, https, smtp, echo, …
///
/// Services never bind or accept. The supervisor owns the listening sockets, accepts each
/// connection, applies the port's limits, and then calls [`Service::serve`] in a task of its
/// own. That split is what lets the port table, limits and faults work the same for every
/// service.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// The name the port table uses for this service, e.g. `"http"`.
    fn name(&self) -> &'static str;

    /// Serve one accepted connection until it ends.
    ///
    /// When `shutdown` is requested the service should finish what is in flight, say goodbye
    /// in its protocol's terms if it has any, and return. The supervisor waits for that up to
    /// its shutdown deadline and then drops the future, which closes the connection.
    async fn serve(&self, conn: Conn, shutdown: Shutdown) -> Result<(), BoxError>;
}
