//! The connection a request came on, as its handler sees it ([`Connection`], one in every
//! request's extensions), and what a response may ask the connection to do instead of
//! sending it ([`Sabotage`]).

use std::pin::Pin;
use std::sync::Mutex;

use switchboard_core::{Budget, ConnInfo, Shutdown};

/// What handlers may ask about the connection a request came on. One per connection, in
/// every request's extensions: one entry rather than one per field, as each entry costs
/// every request an allocation and a hash-map insertion.
pub struct Connection {
    pub info: ConnInfo,
    /// What request bodies are charged to (`[supervisor] max_buffered_bytes`).
    pub buffers: Budget,
    /// Long-lived responses (the event stream) end themselves when shutdown is requested.
    pub shutdown: Shutdown,
    /// What the connection does once it has switched protocols (`101`).
    upgrade: Mutex<Option<Upgrade>>,
}

/// A protocol the connection switched to, run in the connection's own task.
pub type Upgrade = Pin<Box<dyn Future<Output = ()> + Send>>;

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The connection `info` describes, which ends when `shutdown` is requested.
    pub fn new(info: ConnInfo, buffers: Budget, shutdown: Shutdown) -> Self {
        Self {
            info,
            buffers,
            shutdown,
            upgrade: Mutex::new(None),
        }
    }

    /// What the connection is to run once it has switched protocols, if a handler said
    /// (for the server that serves the connection).
    pub fn take_upgrade(&self) -> Option<Upgrade> {
        self.upgrade
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Run `session` on this connection once its `101 Switching Protocols` is sent.
    pub fn after_upgrade(&self, session: impl Future<Output = ()> + Send + 'static) {
        *self.upgrade.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::pin(session));
    }
}

/// What a connection does instead of sending a response: a stub's `fault`. A handler puts
/// one in its response's extensions; the connection's stream then sends none of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Sabotage {
    /// Close without a byte (FIN).
    Close = 1,
    /// Reset the connection (RST).
    Reset = 2,
    /// Random bytes, then close.
    Garbage = 3,
}
