//! The mail API's answers when something is wrong: its error shape, and the message (or
//! part) a request names, or the 404 that says it is not there.

use std::sync::Arc;

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_mail::StoredMessage;

use crate::state::AppState;

/// An API error: the status, and `{"Error": "…"}`.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "Error": self.1 }))).into_response()
    }
}

pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

pub(crate) fn not_found(id: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("message {id} not found"))
}

pub(crate) fn ok() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok").into_response()
}

/// The message `id`, or a 404 saying so.
pub(crate) fn find(state: &AppState, id: &str) -> Result<Arc<StoredMessage>, ApiError> {
    state.mail.get(id).ok_or_else(|| not_found(id))
}

/// The part `part_id` of the message `id`, or 404 saying which is missing.
pub(crate) fn find_part(
    state: &AppState,
    id: &str,
    part_id: &str,
) -> Result<switchboard_mail::PartData, ApiError> {
    find(state, id)?.part(part_id).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("message {id} has no part {part_id}"),
        )
    })
}
