//! The vocabulary between switchboard's HTTP server (the http crate) and the products it
//! serves — httpbin, Mailpit's API and mailbox, Toxiproxy's API, WireMock's: what a handler
//! may know of the connection its request came on and do with it, beside what axum gives.
//!
//! # Layout
//!
//! - `conn.rs`: [`Connection`], in every request's extensions: the connection's addresses,
//!   TLS and shutdown, and the protocol it switches to; [`Sabotage`], a response that is
//!   not sent (a stub's fault).
//! - `websocket.rs`: the WebSocket handshake, the session then run in the connection's task.
//! - `params.rs`: durations a request gives, checked against their maximum.
//! - `lib.rs` (this file): [`host_of`], the server a request names, and [`asset`], a
//!   page's script or style served from the binary.

mod conn;
pub mod params;
pub mod websocket;

pub use conn::{Connection, Sabotage, Upgrade};

use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};

/// The server this request names: the `Host` header (HTTP/1.1), or the URI's authority
/// (HTTP/2's `:authority`).
pub fn host_of<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

/// A page's script or style, embedded in the binary, served with its type: kept for five
/// minutes, never sniffed as another type.
pub fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
