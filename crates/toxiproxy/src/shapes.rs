//! Toxiproxy's shapes: its error body (`{"error": "…", "status": 404}`), the status each
//! control error gets, and a toxic's body. The control API answers in the same shapes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_core::ControlError;
use switchboard_faults::{InvalidToxic, Toxic, ToxicSpec};

/// An error in Toxiproxy's shape: `{"error": "…", "status": 404}`.
pub fn error(status: StatusCode, message: String) -> Response {
    (
        status,
        Json(json!({"error": message, "status": status.as_u16()})),
    )
        .into_response()
}

/// The status code of a control error.
pub fn status_of(e: &ControlError) -> StatusCode {
    match e {
        ControlError::NoSuchPort(_) | ControlError::NoSuchToxic { .. } => StatusCode::NOT_FOUND,
        ControlError::ToxicExists { .. }
        | ControlError::Bind { .. }
        | ControlError::PortExists(_)
        | ControlError::NameExists(_) => StatusCode::CONFLICT,
        ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
        ControlError::Forbidden(_) => StatusCode::FORBIDDEN,
        ControlError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A toxic in Toxiproxy's JSON (plus `first` and `duration`), checked.
pub fn toxic_of(body: &[u8]) -> Result<Toxic, InvalidToxic> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let spec =
        serde_json::from_value::<ToxicSpec>(json).map_err(|e| format!("bad request body: {e}"))?;
    Toxic::from_spec(spec)
}

/// The Toxiproxy API version whose routes and shapes this answers with.
pub(crate) const TOXIPROXY_VERSION: &str = "2.6.0";

/// An error answer, in Toxiproxy's shape (`{"error": "…", "status": 404}`).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

/// A control error in Toxiproxy's words where a client may look for them.
impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let status = status_of(&e);
        match e {
            ControlError::NameExists(_) => Self::new(status, "proxy already exists"),
            ControlError::NoSuchToxic { .. } => Self::new(status, "toxic not found"),
            ControlError::ToxicExists { .. } => Self::new(status, "toxic already exists"),
            other => Self::new(status, other.to_string()),
        }
    }
}
