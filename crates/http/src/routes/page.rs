//! `GET /`: the building directory. The machine's address is the building, each port a
//! department: which ones answer, which service sits behind each, who is connected now, and
//! what happens at a door where nobody works. Rendered on the server, so it works without
//! JavaScript; a small script (`assets/page.js`) keeps it live from `/api/events`.

use std::collections::HashSet;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use switchboard_core::{ConnInfo, PortState, PortStatus, Protocol};
use switchboard_probe::sockets;

use crate::state::AppState;
use switchboard_web::Connection;

#[derive(Template)]
#[template(path = "index.html")]
struct Page {
    host: String,
    /// `scheme://host:port` as the visitor reached this page, for the httpbin examples.
    here: String,
    ports: Vec<Row>,
    unbound: Vec<Unbound>,
    visitor: Visitor,
    messages: usize,
}

/// A port switchboard serves.
struct Row {
    port: u16,
    /// The row's key on the page: `80` for TCP, `7/udp` for UDP (two ports).
    key: String,
    /// The same, for an element id: `80`, `7-udp`.
    anchor: String,
    service: &'static str,
    protocol: &'static str,
    /// What the door's sign says beside the service: a proxy's upstream, an exec row's
    /// program, the lock of TLS, the slot of mail.
    sign: String,
    addresses: String,
    listening: bool,
    active: u64,
    accepted: u64,
    /// Access rules and limits in words; empty when there are none.
    rules: Vec<String>,
    toxics: Vec<String>,
    /// Connections closed by a rule or turned away by a limit.
    turned_away: u64,
    try_it: Vec<String>,
}

/// A well-known port switchboard does not serve.
struct Unbound {
    port: u16,
    name: &'static str,
    /// Another program on this machine listens there (so it will not be refused).
    taken: bool,
    try_it: String,
}

struct Visitor {
    peer: String,
    local: String,
    port: u16,
    service: &'static str,
    tls: Option<String>,
}

/// Commands to try a port by hand, for copy and paste.
fn try_it(service: &str, host: &str, port: u16) -> Vec<String> {
    match service {
        "http" => vec![format!("curl -v http://{host}:{port}/whoami")],
        "https" => vec![
            format!("curl --cacert certs/ca.pem https://{host}:{port}/whoami"),
            format!("openssl s_client -connect {host}:{port} -alpn h2 -brief </dev/null"),
        ],
        "smtp" => vec![
            format!("swaks --server {host}:{port} --to you@example.test"),
            format!(
                "nc {host} {port}    # then type: EHLO me, MAIL FROM:<me@example.test>, RCPT TO:<you@example.test>, DATA, text, ., QUIT"
            ),
        ],
        "smtps" => vec![format!("openssl s_client -connect {host}:{port} -quiet")],
        "blackhole" => vec![
            format!("switchboard probe {host} {port} --timeout 2000    # timeout: no answer"),
            format!("nc -v -w 3 {host} {port}    # waits, then gives up"),
        ],
        _ => vec![format!("nc {host} {port}")],
    }
}

/// What the picture writes under a door, beside its service.
fn sign(p: &PortStatus) -> String {
    if let Some(target) = &p.target {
        return match target.key {
            "upstream" => format!("→ {}", target.value),
            "command" => format!("runs {}", target.value),
            key => format!("{key}: {}", target.value),
        };
    }
    match p.service {
        "https" | "smtps" => "TLS".to_owned(),
        "smtp" => "✉ mail slot".to_owned(),
        // It listens, but its queue is full: the kernel drops every knock, as a firewall's
        // drop rule would, and the client hears nothing until it gives up.
        "blackhole" => "drops every knock".to_owned(),
        _ => String::new(),
    }
}

/// The host the visitor used, without the port: `localhost`, `192.0.2.7`, `[::1]`.
fn visited_host(headers: &HeaderMap, conn: &ConnInfo) -> String {
    let from_header = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| match h.rfind(':') {
            // A port after the host (and not a colon inside an IPv6 literal).
            Some(i) if !h[i..].contains(']') => h[..i].to_owned(),
            _ => h.to_owned(),
        })
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
        });
    from_header.unwrap_or_else(|| match conn.local.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    })
}

impl Row {
    fn new(p: PortStatus, host: &str) -> Self {
        let udp = p.protocol == Protocol::Udp;
        Row {
            try_it: match udp {
                true => vec![
                    format!("echo hello | nc -u -w1 {host} {}", p.port),
                    format!("switchboard probe --udp {host} {}", p.port),
                ],
                false => try_it(p.service, host, p.port),
            },
            sign: sign(&p),
            key: format!("{}{}", p.port, if udp { "/udp" } else { "" }),
            anchor: format!("{}{}", p.port, if udp { "-udp" } else { "" }),
            port: p.port,
            service: p.service,
            protocol: p.protocol.as_str(),
            addresses: p
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            listening: p.state == PortState::Listening,
            active: p.active,
            accepted: p.accepted,
            turned_away: p.denied + p.limited,
            rules: p.rules,
            toxics: p.toxics,
        }
    }
}

pub(super) async fn index(
    State(state): State<AppState>,
    Extension(conn): Extension<Arc<Connection>>,
    headers: HeaderMap,
) -> Response {
    let ports = super::info::ports_for(&state, &conn);
    let conn = &conn.info;
    let host = visited_host(&headers, conn);
    // The unbound rows are TCP ports: a UDP row on 7 leaves 7/tcp unbound.
    let ours: HashSet<u16> = ports
        .iter()
        .filter(|p| p.protocol == Protocol::Tcp)
        .map(|p| p.port)
        .collect();
    // Who else listens on this machine, as the kernel's table says (empty without /proc).
    let listening: HashSet<u16> = sockets::listening()
        .map(|s| s.iter().map(|s| s.local.port()).collect())
        .unwrap_or_default();
    let unbound = state
        .settings
        .show_unbound
        .iter()
        .filter(|p| !ours.contains(p))
        .map(|&port| Unbound {
            port,
            name: switchboard_probe::well_known(port).unwrap_or(""),
            taken: listening.contains(&port),
            try_it: format!("curl -v telnet://{host}:{port}"),
        })
        .collect();
    let page = Page {
        ports: ports.into_iter().map(|p| Row::new(p, &host)).collect(),
        unbound,
        visitor: Visitor {
            peer: conn.peer.to_string(),
            local: conn.local.to_string(),
            port: conn.port(),
            service: conn.service,
            tls: conn.tls.as_ref().map(ToString::to_string),
        },
        messages: state.shared.mail.len(),
        here: format!(
            "{}://{host}:{}",
            if conn.tls.is_some() { "https" } else { "http" },
            conn.port()
        ),
        host,
    };
    match page.render() {
        // No other site may frame the page (clickjacking its buttons). (`nosniff` goes on
        // every response: serve.rs.)
        Ok(html) => (
            [(header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'")],
            Html(html),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering the page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> ConnInfo {
        ConnInfo {
            id: 1,
            service: "http",
            local: "[::1]:8080".parse().unwrap(),
            peer: "[::1]:5000".parse().unwrap(),
            tls: None,
        }
    }

    fn host_of(value: &str) -> String {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, value.parse().unwrap());
        visited_host(&headers, &conn())
    }

    #[test]
    fn the_host_is_what_the_visitor_typed_without_the_port() {
        assert_eq!(host_of("localhost:8080"), "localhost");
        assert_eq!(host_of("example.test"), "example.test");
        assert_eq!(host_of("[::1]:8080"), "[::1]");
        assert_eq!(host_of("[::1]"), "[::1]");
        assert_eq!(
            host_of("evil\"<script>"),
            "[::1]",
            "odd hosts fall back to the address"
        );
        assert_eq!(visited_host(&HeaderMap::new(), &conn()), "[::1]");
    }
}
