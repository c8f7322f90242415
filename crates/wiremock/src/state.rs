//! What WireMock's API and the stubs work with.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_core::{EventBus, RowKeys};
use switchboard_stubs::Stubs;

/// WireMock's admin API and the stubs it manages. Cloning is cheap.
#[derive(Clone)]
pub struct WireMock(pub(crate) AppState);

pub(crate) type AppState = Arc<Inner>;

pub(crate) struct Inner {
    pub(crate) stubs: Stubs,
    pub(crate) events: EventBus,
    /// The largest request body a stub reads (`[http] max_body_bytes`).
    pub(crate) max_body_bytes: usize,
    /// The longest a stub waits before it answers (`[http] max_delay`).
    pub(crate) max_delay: Duration,
}

impl WireMock {
    pub fn new(stubs: Stubs, events: EventBus, max_body_bytes: usize, max_delay: Duration) -> Self {
        Self(Arc::new(Inner {
            stubs,
            events,
            max_body_bytes,
            max_delay,
        }))
    }
}

impl std::fmt::Debug for WireMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireMock")
            .field("max_body_bytes", &self.0.max_body_bytes)
            .field("max_delay", &self.0.max_delay)
            .finish_non_exhaustive()
    }
}

/// A stubs row's own key: whether it serves inside TLS.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StubsRow {
    /// Serve inside TLS (HTTP/2 and HTTP/1.1, by ALPN) with switchboard's certificate.
    pub tls: bool,
}

impl RowKeys for StubsRow {
    fn uses_tls(&self) -> bool {
        self.tls
    }
}
