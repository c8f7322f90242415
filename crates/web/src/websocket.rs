//! The WebSocket handshake (RFC 6455, over HTTP/1.1), shared by the routes that speak it:
//! Mailpit's mailbox events at `/api/events` and httpbin's `/websocket/echo`.
//!
//! The handler answers `101 Switching Protocols`; the session then runs in the connection's
//! own task ([`Connection::after_upgrade`]), so the connection limits and shutdown hold for it.

use std::future::Future;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::conn::Connection;

/// A WebSocket on an upgraded connection.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Whether the request asks to become a WebSocket.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Answer the handshake (`101`, or 400/426 saying what is missing) and run `session` on the
/// socket once the client has it. `config` sets the socket's limits (tungstenite's
/// defaults without one).
pub fn accept<F, Fut>(
    conn: &Connection,
    mut request: Request,
    config: Option<WebSocketConfig>,
    session: F,
) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let headers = request.headers();
    if !is_websocket(headers) {
        return (
            StatusCode::UPGRADE_REQUIRED,
            [(header::UPGRADE, "websocket")],
            "this is a WebSocket: connect with Upgrade: websocket (HTTP/1.1)\n",
        )
            .into_response();
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return (
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs Sec-WebSocket-Key\n",
        )
            .into_response();
    };
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return (
            StatusCode::UPGRADE_REQUIRED,
            [(header::SEC_WEBSOCKET_VERSION, "13")],
            "only WebSocket version 13 is spoken here\n",
        )
            .into_response();
    }
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut request);
    conn.after_upgrade(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, config).await;
        session(socket).await;
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::UPGRADE, "websocket".to_owned()),
            (header::CONNECTION, "Upgrade".to_owned()),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response()
}
