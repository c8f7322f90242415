//! Mailpit's chaos triggers over HTTP (`GET` and `PUT /api/v1/chaos`): SMTP commands that
//! fail on purpose. The triggers live with the mail (`switchboard_mail::Chaos`); the SMTP
//! service fires them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_mail::Triggers;

use crate::state::AppState;

/// `GET /api/v1/chaos`: Mailpit's `Triggers` (plus `Data`).
pub(crate) async fn get_chaos(State(state): State<AppState>) -> Json<Triggers> {
    Json(state.chaos.get())
}

/// `PUT /api/v1/chaos`: as in Mailpit, triggers left out are switched off.
pub(crate) async fn set_chaos(State(state): State<AppState>, body: Bytes) -> Response {
    let triggers = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Triggers::default())
    } else {
        serde_json::from_slice::<Triggers>(&body).map_err(|e| format!("invalid triggers: {e}"))
    };
    let before = state.chaos.get();
    match triggers.and_then(|t| state.chaos.set(t).map(|()| t).map_err(|e| e.message)) {
        Ok(triggers) => {
            let ports = &*state.ports;
            switchboard_mail::announce_chaos(&state.events, ports, before, triggers, "replaced");
            Json(triggers).into_response()
        }
        Err(message) => {
            (StatusCode::BAD_REQUEST, Json(json!({ "Error": message }))).into_response()
        }
    }
}
