//! `GET /`: the port table as a plain, server-rendered page.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use switchboard_core::{ConnInfo, PortState, PortStatus};

use super::AppState;

#[derive(Template)]
#[template(path = "index.html")]
struct Page {
    ports: Vec<Row>,
    peer: String,
    local: String,
    service: &'static str,
    tls: Option<String>,
}

struct Row {
    port: u16,
    service: &'static str,
    addresses: String,
    state: &'static str,
    active: u64,
    accepted: u64,
}

impl From<PortStatus> for Row {
    fn from(p: PortStatus) -> Self {
        Row {
            port: p.port,
            service: p.service,
            addresses: p
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            state: match p.state {
                PortState::Listening => "listening",
                PortState::Closed => "closed",
            },
            active: p.active,
            accepted: p.accepted,
        }
    }
}

pub(super) async fn index(
    State(state): State<AppState>,
    Extension(conn): Extension<Arc<ConnInfo>>,
) -> Response {
    let page = Page {
        ports: state.ports.ports().into_iter().map(Row::from).collect(),
        peer: conn.peer.to_string(),
        local: conn.local.to_string(),
        service: conn.service,
        tls: conn.tls.as_ref().map(ToString::to_string),
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering the page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
