//! WireMock's admin API (`/__admin/…`): the stub mappings, the request journal and its
//! searches, scenarios, resets, and saving to the stubs directory.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use switchboard_stubs::StubsError;

use crate::errors::{invalid, matcher_failed, not_found};
use crate::state::AppState;

fn json_body(body: &Bytes) -> Result<Value, StubsError> {
    serde_json::from_slice(body)
        .map_err(|e| StubsError::Invalid(format!("the body is not JSON: {e}")))
}

pub(crate) async fn list_mappings(State(state): State<AppState>) -> Json<Value> {
    let mappings = state.stubs.list();
    Json(json!({"meta": {"total": mappings.len()}, "mappings": mappings}))
}

/// `POST /__admin/mappings`: 201 and the stub with its id.
pub(crate) async fn add_mapping(State(state): State<AppState>, body: Bytes) -> Response {
    match json_body(&body).and_then(|json| state.stubs.add(json)) {
        Ok(stub) => (StatusCode::CREATED, Json(stub)).into_response(),
        Err(message) => invalid(message),
    }
}

pub(crate) async fn remove_mappings(State(state): State<AppState>) -> StatusCode {
    state.stubs.remove_all();
    StatusCode::OK
}

pub(crate) async fn get_mapping(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.stubs.get(&id) {
        Some(stub) => Json(stub).into_response(),
        None => not_found("stub mapping"),
    }
}

pub(crate) async fn replace_mapping(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let replaced = json_body(&body).and_then(|json| state.stubs.replace(&id, json));
    match replaced {
        Ok(Some(stub)) => Json(stub).into_response(),
        Ok(None) => not_found("stub mapping"),
        Err(message) => invalid(message),
    }
}

pub(crate) async fn remove_mapping(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    match state.stubs.remove(&id) {
        true => StatusCode::OK.into_response(),
        false => not_found("stub mapping"),
    }
}

/// `POST /__admin/mappings/reset`: back to the stubs directory's mappings.
pub(crate) async fn reset_mappings(State(state): State<AppState>) -> Response {
    match state.stubs.reset_mappings() {
        Ok(_) => StatusCode::OK.into_response(),
        Err(message) => invalid(message),
    }
}

/// `POST /__admin/mappings/save`: every stub written to the stubs directory's `mappings/`.
pub(crate) async fn save_mappings(State(state): State<AppState>) -> Response {
    match state.stubs.save() {
        Ok(_) => StatusCode::OK.into_response(),
        Err(message) => invalid(message),
    }
}

pub(crate) async fn list_requests(State(state): State<AppState>) -> Json<Value> {
    let requests = state.stubs.requests();
    Json(json!({
        "requests": requests,
        "meta": {"total": requests.len()},
        "requestJournalDisabled": false,
    }))
}

pub(crate) async fn clear_requests(State(state): State<AppState>) -> StatusCode {
    state.stubs.clear_requests();
    StatusCode::OK
}

pub(crate) async fn get_request(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.stubs.request(&id) {
        Some(event) => Json(event).into_response(),
        None => not_found("request"),
    }
}

/// The journal's requests that match the request pattern in `body`, found on the stubs'
/// matching thread.
async fn found(state: &AppState, body: &Bytes) -> Result<Vec<Value>, Response> {
    let pattern = json_body(body)
        .and_then(|json| state.stubs.pattern(&json))
        .map_err(invalid)?;
    state.stubs.find(pattern).await.map_err(matcher_failed)
}

/// `POST /__admin/requests/count` with a request pattern: `{"count": N}`.
pub(crate) async fn count_requests(State(state): State<AppState>, body: Bytes) -> Response {
    match found(&state, &body).await {
        Ok(requests) => Json(json!({"count": requests.len()})).into_response(),
        Err(refusal) => refusal,
    }
}

/// `POST /__admin/requests/find` with a request pattern: `{"requests": [...]}`.
pub(crate) async fn find_requests(State(state): State<AppState>, body: Bytes) -> Response {
    match found(&state, &body).await {
        Ok(requests) => Json(json!({"requests": requests})).into_response(),
        Err(refusal) => refusal,
    }
}

pub(crate) async fn unmatched(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"requests": state.stubs.unmatched()}))
}

pub(crate) async fn near_misses(State(state): State<AppState>) -> Response {
    match state.stubs.near_misses().await {
        Ok(near) => Json(json!({"nearMisses": near})).into_response(),
        Err(error) => matcher_failed(error),
    }
}

pub(crate) async fn scenarios(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"scenarios": state.stubs.scenarios()}))
}

pub(crate) async fn reset_scenarios(State(state): State<AppState>) -> StatusCode {
    state.stubs.reset_scenarios();
    StatusCode::OK
}

/// `POST /__admin/reset`: the directory's stubs, every scenario `Started`, no requests.
pub(crate) async fn reset(State(state): State<AppState>) -> Response {
    match state.stubs.reset() {
        Ok(_) => StatusCode::OK.into_response(),
        Err(message) => invalid(message),
    }
}
