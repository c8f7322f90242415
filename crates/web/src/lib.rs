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
//! - `lib.rs` (this file): [`host_of`], the server a request names.

mod conn;
pub mod params;
pub mod websocket;

pub use conn::{Connection, Sabotage, Upgrade};

use axum::http::{HeaderMap, Uri, header};

/// The server this request names: the `Host` header (HTTP/1.1), or the URI's authority
/// (HTTP/2's `:authority`).
pub fn host_of<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}
