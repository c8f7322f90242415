//! The mailbox page at `/mail`: every message, live, read in a sandbox (`assets/mail.html`,
//! `mail.js`, `mail.css`; embedded in the binary, no build step, no CDN).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// What the mailbox page may load: its own script and style, its own API and events, and
/// message views from switchboard itself; nothing from anywhere else.
const MAILBOX_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// `GET /mail`: the mailbox.
pub(crate) async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, MAILBOX_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        include_str!("../assets/mail.html"),
    )
        .into_response()
}

pub(crate) async fn script() -> Response {
    switchboard_web::asset(
        "text/javascript; charset=utf-8",
        include_str!("../assets/mail.js"),
    )
}

pub(crate) async fn style() -> Response {
    switchboard_web::asset(
        "text/css; charset=utf-8",
        include_str!("../assets/mail.css"),
    )
}
