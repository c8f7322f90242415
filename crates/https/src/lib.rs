//! switchboard's HTTPS service: a TLS handshake (tokio-rustls), then the very same HTTP app
//! as the http service, so both ports answer identically.
//!
//! The handshake runs inside the connection's own task, under a timeout, so a client that
//! connects and says nothing holds one task and one socket for at most that long. What the
//! handshake settled on (TLS version, cipher suite, ALPN, SNI) is recorded on the connection:
//! `/whoami` shows it and the connection's log lines carry it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rustls::ServerConfig;
use serde::Deserialize;
use switchboard_certs::HandshakeFailed;
use switchboard_core::{
    BoxError, Conn, ConnInfo, ConnStream, EventBus, Refusal, Service, Shutdown,
};
use switchboard_http::HttpApp;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The ALPN protocols offered, in order of preference: HTTP/2 first.
pub const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The `[https]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpsSettings {
    /// A client must complete the TLS handshake within this time, counted from accept.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

impl Default for HttpsSettings {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// HTTP over TLS, by default on port 443.
pub struct HttpsService {
    name: &'static str,
    acceptor: TlsAcceptor,
    app: HttpApp,
    settings: HttpsSettings,
    events: EventBus,
}

impl std::fmt::Debug for HttpsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HttpsService {
    /// `tls` should offer [`ALPN`]; it is built once and shared by every connection.
    pub fn new(
        tls: Arc<ServerConfig>,
        app: HttpApp,
        settings: HttpsSettings,
        events: EventBus,
    ) -> Self {
        Self {
            name: "https",
            acceptor: TlsAcceptor::from(tls),
            app,
            settings,
            events,
        }
    }

    /// The same, under the service name `name` (a `stubs` row with `tls = true`).
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
}

impl HttpsService {
    /// The TLS handshake, under `[https] handshake_timeout`; `info` learns what it settled on.
    async fn handshake(
        &self,
        stream: ConnStream,
        info: &mut ConnInfo,
    ) -> Result<TlsStream<ConnStream>, HandshakeFailed> {
        switchboard_certs::accept(
            &self.acceptor,
            stream,
            info,
            self.settings.handshake_timeout,
            "https handshake_timeout",
            &self.events,
        )
        .await
    }
}

#[async_trait]
impl Service for HttpsService {
    fn name(&self) -> &'static str {
        self.name
    }

    /// `handshake_timeout`, then HTTP's.
    fn keeps_own_clocks(&self) -> bool {
        true
    }

    async fn serve(self: Arc<Self>, conn: Conn, shutdown: Shutdown) -> Result<(), BoxError> {
        let Conn {
            stream,
            mut info,
            buffers,
        } = conn;
        let handshake = self.handshake(stream, &mut info);
        let stream = tokio::select! {
            stream = handshake => stream?,
            // Nothing was served yet; there is nothing to finish.
            () = shutdown.requested() => return Ok(()),
        };
        self.app.serve(stream, (info, buffers), shutdown).await
    }

    /// Over a limit: the TLS handshake, then 503 with Retry-After (a client cannot read
    /// anything from an HTTPS port before the handshake).
    async fn refuse(self: Arc<Self>, conn: Conn, why: Refusal, shutdown: Shutdown) {
        let Conn {
            stream, mut info, ..
        } = conn;
        if let Ok(stream) = self.handshake(stream, &mut info).await {
            self.app.refuse(stream, info, why, shutdown).await;
        }
    }
}
