//! The captured mail over HTTP, as Mailpit serves it: Mailpit's v1 API (field names and
//! types as in its published definition) so that Mailpit's clients and test helpers work
//! unchanged, its send API and chaos triggers, the `/view/` pages, thumbnails, Mailpit's
//! events on a WebSocket, and switchboard's own mailbox page at `/mail` — all over the one
//! mail store the SMTP service writes (`switchboard_mail`).
//!
//! The http crate serves these routes behind its guards: [`routes`] behind the one against
//! cross-site requests and DNS rebinding, [`chaos_routes`] also behind `[control] allow`;
//! [`asset_routes`] are the mailbox page's script and style.
//!
//! # Layout
//!
//! - `state.rs`: [`MailWeb`], what the handlers work with, and [`MailpitSettings`].
//! - `errors.rs`: the API's error shape; the message a request names, or its 404.
//! - `shapes.rs`: Mailpit's JSON shapes (a message's summary, a page of them, a message).
//! - `thumbnail.rs`: thumbnails of image attachments, decoded within a limit, made once.
//! - `messages.rs`: the v1 API: messages, search, tags, parts, info, `/api/v1/wait`.
//! - `send.rs`: `POST /api/v1/send`, a message built from JSON.
//! - `view.rs`: `/view/{ID}.html` and `.txt`, sandboxed.
//! - `chaos.rs`: `GET` and `PUT /api/v1/chaos`.
//! - `events.rs`: Mailpit's events on a WebSocket at `/api/events`.
//! - `mailbox.rs`: the mailbox page and its assets.
//! - `fuzzing.rs`: the send API's parser, reached without a server, for the fuzz targets.
//! - `lib.rs` (this file): which path goes to which handler.

mod chaos;
mod errors;
mod events;
pub mod fuzzing;
mod mailbox;
mod messages;
mod send;
mod shapes;
mod state;
mod thumbnail;
mod view;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::{get, post, put};
use switchboard_web::Connection;

pub use state::{MailWeb, MailpitSettings};

/// The mail API, the send API, `/view/`, thumbnails and the mailbox page.
pub fn routes<S: Clone + Send + Sync + 'static>(web: &MailWeb) -> Router<S> {
    Router::new()
        .route(
            "/api/v1/messages",
            get(messages::list_messages)
                .delete(messages::delete_messages)
                .put(messages::set_read),
        )
        .route("/api/v1/message/{id}", get(messages::message))
        .route("/api/v1/message/{id}/raw", get(messages::raw))
        .route("/api/v1/message/{id}/headers", get(messages::headers))
        .route("/api/v1/message/{id}/part/{part}", get(messages::part))
        .route(
            "/api/v1/message/{id}/part/{part}/thumb",
            get(messages::thumbnail),
        )
        .route(
            "/api/v1/search",
            get(messages::search).delete(messages::delete_search),
        )
        .route(
            "/api/v1/tags",
            get(messages::list_tags).put(messages::set_tags),
        )
        .route(
            "/api/v1/tags/{tag}",
            put(messages::rename_tag).delete(messages::delete_tag),
        )
        .route("/api/v1/send", post(send::send))
        .route("/api/v1/info", get(messages::info))
        .route("/api/v1/webui", get(messages::webui))
        .route("/api/v1/wait", get(messages::wait))
        .route("/view/{file}", get(view::view))
        .route("/mail", get(mailbox::page))
        .with_state(web.0.clone())
}

/// Mailpit's chaos triggers (`/api/v1/chaos`): they change how SMTP answers, so the http
/// crate lets only `[control] allow` use them.
pub fn chaos_routes<S: Clone + Send + Sync + 'static>(web: &MailWeb) -> Router<S> {
    Router::new()
        .route("/api/v1/chaos", get(chaos::get_chaos).put(chaos::set_chaos))
        .with_state(web.0.clone())
}

/// The mailbox page's script and style.
pub fn asset_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/assets/mail.js", get(mailbox::script))
        .route("/assets/mail.css", get(mailbox::style))
}

/// A WebSocket upgrade of `/api/events`: Mailpit's mailbox events, as its clients expect
/// there (the same path without an upgrade is switchboard's own event stream).
pub fn events(web: &MailWeb, conn: &Connection, request: Request) -> Response {
    events::upgrade(&web.0, conn, request)
}
