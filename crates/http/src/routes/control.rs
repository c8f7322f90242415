//! The control API: add, remove, close and open ports, add and remove toxics (Toxiproxy's
//! shape), reset, and the SMTP chaos triggers (Mailpit's shape, served by
//! `switchboard_mailpit`). It answers only to sources in `[control] allow` (default: this
//! machine); everyone else gets 403.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::Value;
// The control API answers in Toxiproxy's shapes.
use switchboard_core::ControlError;
use switchboard_toxiproxy::error;

use switchboard_web::Connection;

use crate::state::AppState;

pub(super) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/ports", post(add_port))
        .route("/api/ports/{port}", delete(remove_port))
        .route("/api/ports/{port}/close", post(close))
        .route("/api/ports/{port}/open", post(open))
        .route("/api/ports/{port}/reset", post(reset_next))
        .route("/api/ports/{port}/toxics", get(list_toxics).post(add_toxic))
        .route(
            "/api/ports/{port}/toxics/{name}",
            get(get_toxic).patch(update_toxic).delete(remove_toxic),
        )
        .route("/api/reset", post(reset))
        // Mailpit's chaos triggers change how SMTP answers: control, too.
        .merge(switchboard_mailpit::chaos_routes(&state.mailpit))
        .route_layer(middleware::from_fn_with_state(state, guard))
}

/// Whether `peer` is in `[control] allow`: it may change things, and see what rows run
/// and where they connect (command lines and upstreams may hold secrets).
pub(super) fn trusted(state: &AppState, peer: std::net::IpAddr) -> bool {
    let ip = peer.to_canonical();
    state
        .shared
        .control_settings
        .allow
        .iter()
        .any(|c| c.contains(ip))
}

/// Only sources in `[control] allow` may change anything.
pub(super) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<Arc<Connection>>()
        .map(|c| c.info.peer.ip().to_canonical());
    let allowed = peer.is_some_and(|ip| trusted(&state, ip));
    if !allowed {
        let who = peer.map(|ip| ip.to_string()).unwrap_or_default();
        return error(
            StatusCode::FORBIDDEN,
            format!("the control API answers only to [control] allow; {who} is not in it"),
        );
    }
    next.run(request).await
}

fn failed(e: ControlError) -> Response {
    error(switchboard_toxiproxy::status_of(&e), e.to_string())
}

fn port_status(state: &AppState, port: u16) -> Response {
    match state
        .shared
        .ports
        .ports()
        .into_iter()
        .find(|p| p.port == port)
    {
        Some(status) => Json(status).into_response(),
        None => failed(ControlError::NoSuchPort(port)),
    }
}

#[derive(serde::Deserialize)]
struct CloseFor {
    /// Open again after this long: `5s`, `500ms` (or a number of seconds).
    #[serde(rename = "for")]
    reopen_after: Option<String>,
}

/// `POST /api/ports/{port}/close[?for=5s]`: new connections are refused at once (for that
/// long, then the port opens again); open ones go on.
async fn close(
    State(state): State<AppState>,
    Path(port): Path<u16>,
    Query(query): Query<CloseFor>,
) -> Response {
    let closed = match query.reopen_after.as_deref() {
        None => state.shared.control.close_port(port).await,
        Some(text) => {
            let max = state.shared.control_settings.max_close_for;
            let after = match switchboard_web::params::duration(
                "for",
                text,
                max,
                "[control] max_close_for",
            ) {
                Ok(after) if !after.is_zero() => after,
                Ok(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("for={text}: give a time above zero, such as 5s or 500ms"),
                    );
                }
                Err(why) => return error(StatusCode::BAD_REQUEST, why.to_string()),
            };
            state.shared.control.close_port_for(port, after).await
        }
    };
    match closed {
        Ok(()) => port_status(&state, port),
        Err(e) => failed(e),
    }
}

#[derive(serde::Deserialize)]
struct ResetNext {
    next: u32,
}

/// `POST /api/ports/{port}/reset?next=3`: the next three connections are accepted and reset
/// at once (the client sees ECONNRESET), then service goes on; `next=0` stops it.
async fn reset_next(
    State(state): State<AppState>,
    Path(port): Path<u16>,
    query: Result<Query<ResetNext>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(ResetNext { next })) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "say how many connections to reset: ?next=3".into(),
        );
    };
    match state.shared.control.reset_next(port, next).await {
        Ok(()) => port_status(&state, port),
        Err(e) => failed(e),
    }
}

/// `POST /api/ports/{port}/open`: listen again.
async fn open(State(state): State<AppState>, Path(port): Path<u16>) -> Response {
    match state.shared.control.open_port(port).await {
        Ok(()) => port_status(&state, port),
        Err(e) => failed(e),
    }
}

/// `POST /api/ports` with a `[[port]]` row as JSON: bind it and serve it; 201 and the row.
async fn add_port(State(state): State<AppState>, body: Bytes) -> Response {
    let row = match parse_json(&body) {
        Ok(row) => row,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match state.shared.control.add_port(row).await {
        Ok(status) => (StatusCode::CREATED, Json(status)).into_response(),
        Err(e) => failed(e),
    }
}

/// `DELETE /api/ports/{port}`: close its listeners now; its connections finish as at
/// shutdown.
async fn remove_port(State(state): State<AppState>, Path(port): Path<u16>) -> Response {
    match state.shared.control.remove_port(port).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failed(e),
    }
}

async fn list_toxics(State(state): State<AppState>, Path(port): Path<u16>) -> Response {
    match state.shared.toxics.toxics(port) {
        Ok(toxics) => Json(toxics).into_response(),
        Err(e) => failed(e),
    }
}

fn parse_json(body: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

/// `POST /api/ports/{port}/toxics` with a toxic: it applies from the next read or write.
async fn add_toxic(State(state): State<AppState>, Path(port): Path<u16>, body: Bytes) -> Response {
    match switchboard_toxiproxy::toxic_of(&body) {
        Ok(toxic) => match state.shared.toxics.add_toxic(port, toxic) {
            Ok(toxic) => Json(toxic).into_response(),
            Err(e) => failed(e),
        },
        Err(invalid) => error(StatusCode::BAD_REQUEST, invalid.0),
    }
}

async fn get_toxic(
    State(state): State<AppState>,
    Path((port, name)): Path<(u16, String)>,
) -> Response {
    match state.shared.toxics.toxics(port) {
        Ok(toxics) => match toxics.into_iter().find(|t| t.name == name) {
            Some(toxic) => Json(toxic).into_response(),
            None => failed(ControlError::NoSuchToxic { port, name }),
        },
        Err(e) => failed(e),
    }
}

/// `PATCH /api/ports/{port}/toxics/{name}`: change toxicity, stream or attributes.
async fn update_toxic(
    State(state): State<AppState>,
    Path((port, name)): Path<(u16, String)>,
    body: Bytes,
) -> Response {
    let patch = match parse_json(&body) {
        Ok(patch) => patch,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match state.shared.toxics.update_toxic(port, &name, &patch) {
        Ok(toxic) => Json(toxic).into_response(),
        Err(e) => failed(e),
    }
}

async fn remove_toxic(
    State(state): State<AppState>,
    Path((port, name)): Path<(u16, String)>,
) -> Response {
    match state.shared.toxics.remove_toxic(port, &name) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failed(e),
    }
}

/// `POST /api/reset`: every toxic removed, every closed port open again, chaos as
/// configured at start-up.
async fn reset(State(state): State<AppState>) -> Response {
    match state.shared.control.reset().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failed(e),
    }
}
