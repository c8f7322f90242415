//! WireMock's error shapes, as its admin API and the stubs answer with them.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_stubs::{MatcherFailed, StubsError};

/// An admin error in WireMock's shape: `{"errors": [{"code": 10, "title": "…"}]}`.
pub(crate) fn invalid(error: StubsError) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"errors": [{"code": 10, "title": error.to_string()}]})),
    )
        .into_response()
}

pub(crate) fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"errors": [{"code": 404, "title": format!("{what} not found")}]})),
    )
        .into_response()
}

/// 500: the matching thread could not answer (see `switchboard_stubs::MatcherFailed`).
pub(crate) fn matcher_failed(error: MatcherFailed) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("500 {error}\n")).into_response()
}
