//! Knocking on a door of the page's picture: `POST /api/knock/{port}` tries to connect to the
//! server's own address (the one the visitor reached) on a port the page shows, and says
//! what the kernel answered — open, refused, or nothing within `[http] knock_timeout`.
//!
//! It is the HTTP service's only outbound connection, and a narrow one: to its own address
//! only, to the ports drawn on the page only (the table's TCP rows and `[http]
//! show_unbound`), at most `[http] knock_rate` times a second per client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_core::Protocol;

use crate::state::AppState;
use switchboard_web::Connection;

pub(super) async fn knock(
    State(state): State<AppState>,
    Extension(conn): Extension<Arc<Connection>>,
    Path(port): Path<u16>,
) -> Response {
    let info = &conn.info;
    // Forget addresses that have not knocked lately, so the table stays small.
    if state.knocks.len() > 10_000 {
        state.knocks.retain_recent();
    }
    if state
        .knocks
        .check_key(&info.peer.ip().to_canonical())
        .is_err()
    {
        let why = format!(
            "at most {} knocks a second from one address ([http] knock_rate)",
            state.settings.knock_rate
        );
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            Json(json!({ "error": why })),
        )
            .into_response();
    }
    let drawn = state.settings.show_unbound.contains(&port)
        || state
            .shared
            .ports
            .ports()
            .iter()
            .any(|p| p.port == port && p.protocol == Protocol::Tcp);
    if !drawn {
        let why = format!(
            "port {port} is not on the page: knocks go only to the doors drawn there (the \
             port table's TCP rows and [http] show_unbound)"
        );
        return (StatusCode::NOT_FOUND, Json(json!({ "error": why }))).into_response();
    }
    let addr = SocketAddr::new(info.local.ip(), port);
    let timeout = state.settings.knock_timeout;
    let started = Instant::now();
    let connected = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await;
    let (answer, meaning) = match connected {
        Ok(Ok(_stream)) => (
            "open",
            "a socket listens there: the kernel completed the handshake and handed the \
             connection to a program"
                .to_owned(),
        ),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => (
            "refused",
            "no socket listens there: the kernel itself answered with a reset; no service of \
             switchboard's ever saw the knock"
                .to_owned(),
        ),
        Ok(Err(error)) => ("error", format!("the knock failed: {error}")),
        Err(_) => (
            "timeout",
            format!(
                "nothing answered within {}: the knock was dropped on its way (by a firewall's \
                 drop rule, or by the kernel at a port whose queue is full, as at a blackhole \
                 row)",
                humantime::format_duration(timeout)
            ),
        ),
    };
    Json(json!({
        "port": port,
        "address": addr.to_string(),
        "answer": answer,
        "meaning": meaning,
        "ms": started.elapsed().as_secs_f64() * 1000.0,
    }))
    .into_response()
}
