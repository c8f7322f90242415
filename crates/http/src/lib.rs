//! switchboard's HTTP service: serving, the guard, the page, the control API and the live
//! events; and, mounted on the same router, the products that answer as other tools do —
//! httpbin (`switchboard-httpbin`), Mailpit's API and mailbox (`switchboard-mailpit`),
//! Toxiproxy's API (`switchboard-toxiproxy`) and WireMock's (`switchboard-wiremock`). Each
//! product owns its routes and their state; this crate decides which path goes where and
//! what guards it.
//!
//! The supervisor hands [`HttpService`] an accepted connection; [`HttpApp::serve`] runs
//! hyper on it with the [`axum`] router. The https service wraps the same [`HttpApp`] in TLS,
//! so both ports answer identically.
//!
//! # Layout
//!
//! - `settings.rs`: [`HttpSettings`], the `[http]` connection clocks and limits, and
//!   [`ControlSettings`], `[control]`.
//! - `state.rs`: [`Shared`] (what the app shows and controls, owned elsewhere),
//!   [`Products`] (the products it mounts) and what its handlers share.
//! - `hosts.rs`: the names switchboard answers to on its state routes.
//! - `body.rs`: what a request body may cost: its pace (`min_body_rate`) and its memory
//!   (`[supervisor] max_buffered_bytes`).
//! - `serve.rs`: one connection: hyper, the idle and header-read clocks, graceful shutdown,
//!   and a protocol the connection switched to (a WebSocket) run in its own task.
//! - `routes/`: the router (`mod.rs`: which routes read or change state, behind the guard;
//!   where each product's routes are mounted) and this crate's own handlers:
//!   - `routes/site.rs`: the guard against cross-site requests and DNS rebinding;
//!   - `routes/info.rs`: health, `/whoami`, `/api/ports`;
//!   - `routes/page.rs`: the building directory, `GET /`;
//!   - `routes/knock.rs`: knocking on a door of the page's picture;
//!   - `routes/control.rs`: adding, closing and opening ports, toxics, reset;
//!   - `routes/live.rs`: `/api/events` (server-sent events), `/metrics`, the page's assets.

mod body;
mod hosts;
mod routes;
mod serve;
mod settings;
mod state;

use std::sync::Arc;

use async_trait::async_trait;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use switchboard_core::{BoxError, Budget, Conn, ConnInfo, Refusal, ResetSwitch, Service, Shutdown};
use tokio::io::{AsyncRead, AsyncWrite};

pub use settings::{ControlSettings, HttpSettings, MIN_HEADER_BYTES};
pub use state::{Products, PublishedCa, Shared};

use state::AppState;
pub use switchboard_httpbin::HttpbinSettings;
pub use switchboard_mailpit::{MailWeb, MailpitSettings};
pub use switchboard_toxiproxy::ToxiproxyApi;
pub use switchboard_wiremock::WireMock;

/// The HTTP application: routes plus the connection settings, ready to serve any stream.
#[derive(Clone)]
pub struct HttpApp {
    router: routes::Guarded,
    state: AppState,
    settings: Arc<HttpSettings>,
    builder: Arc<auto::Builder<TokioExecutor>>,
}

impl std::fmt::Debug for HttpApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpApp")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HttpApp {
    pub fn new(shared: Shared, settings: HttpSettings, products: Products) -> Self {
        let settings = Arc::new(settings);
        let state = AppState::new(shared, settings.clone(), products);
        Self {
            router: routes::router(state.clone()),
            state,
            builder: Arc::new(serve::builder(&settings)),
            settings,
        }
    }

    /// The same app answering with Toxiproxy's API instead (a `toxiproxy` row).
    pub fn toxiproxy(&self) -> Self {
        Self {
            router: routes::toxiproxy_router(self.state.clone()),
            ..self.clone()
        }
    }

    /// The same app answering with stubs instead, their admin API under `/__admin` (a
    /// `stubs` row).
    pub fn stubs(&self) -> Self {
        Self {
            router: routes::stubs_router(self.state.clone()),
            ..self.clone()
        }
    }

    /// Serve HTTP/1.1 or h2c on `stream`, an accepted connection described by `info`.
    /// Request bodies are charged to `buffers`.
    pub async fn serve<S>(
        &self,
        stream: S,
        (info, buffers): (ConnInfo, Budget),
        shutdown: Shutdown,
    ) -> Result<(), BoxError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_with_reset(stream, None, (info, buffers), shutdown)
            .await
    }

    /// [`serve`](Self::serve), with the way to reset the connection when a stub's fault
    /// asks for a reset.
    pub async fn serve_with_reset<S>(
        &self,
        stream: S,
        reset: Option<ResetSwitch>,
        conn: (ConnInfo, Budget),
        shutdown: Shutdown,
    ) -> Result<(), BoxError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        serve::serve_connection(
            &self.builder,
            &self.settings,
            self.router.clone(),
            (stream, reset),
            conn,
            shutdown,
        )
        .await
    }

    /// Answer every request on `stream` with `503 Service Unavailable` and `Retry-After`,
    /// then close: how HTTP says "over a limit, try again later".
    pub async fn refuse<S>(&self, stream: S, info: ConnInfo, why: Refusal, shutdown: Shutdown)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let _ = serve::serve_connection(
            &self.builder,
            &self.settings,
            routes::refusal(why),
            (stream, None),
            // Every request gets 503 at once: no body is read.
            (info, Budget::new(0)),
            shutdown,
        )
        .await;
    }
}

/// Plain HTTP, by default on port 80; also Toxiproxy's API on 8474 and the stubs (the same
/// service with [`HttpApp::toxiproxy`] or [`HttpApp::stubs`], named `toxiproxy`, `stubs`).
#[derive(Debug)]
pub struct HttpService {
    name: &'static str,
    app: HttpApp,
    /// Its responses may reset their connection (a stub's fault).
    resets: bool,
}

impl HttpService {
    pub fn new(app: HttpApp) -> Self {
        Self::named("http", app)
    }

    /// Plain HTTP with `app`, under the service name `name`.
    pub fn named(name: &'static str, app: HttpApp) -> Self {
        Self {
            name,
            app,
            resets: false,
        }
    }

    /// The stubs, over plain HTTP.
    pub fn stubs(app: &HttpApp) -> Self {
        Self {
            name: "stubs",
            app: app.stubs(),
            resets: true,
        }
    }
}

#[async_trait]
impl Service for HttpService {
    fn name(&self) -> &'static str {
        self.name
    }

    /// `header_read_timeout` and `keep_alive_timeout`.
    fn keeps_own_clocks(&self) -> bool {
        true
    }

    async fn serve(self: Arc<Self>, mut conn: Conn, shutdown: Shutdown) -> Result<(), BoxError> {
        // An idle connection holds only this future until its first byte; hyper's state for
        // it is built then, in a box of its own (so it takes no room here before that).
        if !serve::first_byte(&mut conn.stream, &self.app.settings, &shutdown).await? {
            return Ok(()); // shutdown came first: closed, as hyper closes an idle connection
        }
        let reset = match self.resets {
            true => conn.stream.reset_switch(),
            false => None,
        };
        Box::pin(
            self.app
                .serve_with_reset(conn.stream, reset, (conn.info, conn.buffers), shutdown),
        )
        .await
    }

    async fn refuse(self: Arc<Self>, conn: Conn, why: Refusal, shutdown: Shutdown) {
        self.app.refuse(conn.stream, conn.info, why, shutdown).await;
    }
}
