//! `/websocket/echo`: a WebSocket (over HTTP/1.1) that sends every text and binary message
//! back as it came. Messages are at most `[http] max_websocket_message_bytes` (a larger one
//! closes the socket with 1009, "message too big") and a session lasts at most
//! `[http] max_websocket_duration` (then it closes with 1008, naming the key).

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use switchboard_core::Shutdown;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::settings::AppState;
use switchboard_web::Connection;
use switchboard_web::websocket::{self, Socket};

pub(super) async fn echo(
    State(state): State<AppState>,
    Extension(conn): Extension<Arc<Connection>>,
    request: Request,
) -> Response {
    let max = state.max_websocket_message_bytes;
    // Buffers that grow with what arrives, not 128 KiB each way from the start: a session
    // holds at most a message (docs/configuration.md adds it to the memory sum).
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let limit = state.max_websocket_duration;
    let shutdown = conn.shutdown.clone();
    websocket::accept(&conn, request, Some(config), move |socket| {
        session(socket, limit, shutdown)
    })
}

async fn session(socket: Socket, limit: Duration, shutdown: Shutdown) {
    let (mut sink, mut incoming) = socket.split();
    let time_up = tokio::time::sleep(limit);
    tokio::pin!(time_up);
    let goodbye = loop {
        let frame = tokio::select! {
            biased;
            () = shutdown.requested() => break (CloseCode::Away, "switchboard is shutting down"),
            () = &mut time_up => {
                break (CloseCode::Policy, "the session reached [http] max_websocket_duration")
            }
            frame = incoming.next() => frame,
        };
        match frame {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                if sink.send(message).await.is_err() {
                    return;
                }
            }
            // Pings are answered by the protocol layer, pongs need nothing.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Err(Error::Capacity(_))) => {
                break (
                    CloseCode::Size,
                    "message over [http] max_websocket_message_bytes",
                );
            }
            // The client said goodbye (the protocol layer answers it) or went away.
            Some(Ok(Message::Close(_)) | Err(_)) | None => {
                let _ = sink.close().await;
                return;
            }
        }
    };
    let (code, reason) = goodbye;
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}
