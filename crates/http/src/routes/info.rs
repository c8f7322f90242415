//! Small endpoints about the server itself: health, "who am I", the port table as JSON.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_core::{PortState, PortStatus, TlsInfo};

use switchboard_web::Connection;

use crate::state::AppState;

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 once every port of the table accepts connections (switchboard binds
/// them all before it serves any, so this answers 200 from the first moment it answers at
/// all); 503 naming the ports that are closed, if any were closed since.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let closed: Vec<String> = state
        .shared
        .ports
        .ports()
        .iter()
        .filter(|p| p.state != PortState::Listening)
        .map(|p| format!("{} ({})", p.port, p.service))
        .collect();
    match closed.is_empty() {
        true => "ready\n".into_response(),
        false => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: closed port(s) {}\n", closed.join(", ")),
        )
            .into_response(),
    }
}

/// `GET /ca.pem`: the local CA's certificate, so that a client on another machine or in
/// another container can fetch what to trust. It is public (the key never leaves the
/// certificates directory); fetching it over plain HTTP is fine for a test setup, where a
/// person decides to trust it.
pub(super) async fn ca_pem(State(state): State<AppState>) -> Response {
    match &state.shared.local_ca {
        Some(ca) => (
            [
                (header::CONTENT_TYPE, "application/x-pem-file"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"switchboard-ca.pem\"",
                ),
            ],
            ca.pem.clone(),
        )
            .into_response(),
        None => no_local_ca(),
    }
}

/// `GET /ca.crl`: the local CA's certificate revocation list (DER), at the address the
/// server certificate names, for clients that check revocation before they trust.
pub(super) async fn ca_crl(State(state): State<AppState>) -> Response {
    match &state.shared.local_ca {
        Some(ca) => (
            [(header::CONTENT_TYPE, "application/pkix-crl")],
            ca.crl_der.clone(),
        )
            .into_response(),
        None => no_local_ca(),
    }
}

fn no_local_ca() -> Response {
    (
        StatusCode::NOT_FOUND,
        "404 no local CA: switchboard serves no TLS port, or serves a certificate of your own \
         ([tls] cert and key)\n",
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct WhoamiQuery {
    format: Option<String>,
}

#[derive(Serialize)]
struct Whoami {
    /// The client's address and the port its kernel chose for this connection.
    peer: String,
    /// The address and port the client connected to.
    local: String,
    port: u16,
    service: &'static str,
    protocol: String,
    connection_id: u64,
    /// What the TLS handshake settled on; absent on plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsInfo>,
}

/// `GET /whoami`: both ends of this connection and the service the port chose. JSON when
/// the client asks for it (`Accept: application/json` or `?format=json`), text otherwise.
pub(super) async fn whoami(
    Extension(conn): Extension<Arc<Connection>>,
    version: Version,
    headers: HeaderMap,
    Query(query): Query<WhoamiQuery>,
) -> Response {
    let conn = &conn.info;
    let who = Whoami {
        peer: conn.peer.to_string(),
        local: conn.local.to_string(),
        port: conn.port(),
        service: conn.service,
        protocol: format!("{version:?}"),
        connection_id: conn.id,
        tls: conn.tls.as_deref().cloned(),
    };
    if wants_json(&headers, query.format.as_deref()) {
        return Json(who).into_response();
    }
    let mut text = format!(
        "you      {peer:<34} your address, and the port your kernel picked for this connection\n\
         reached  {local:<34} the address and port you connected to\n\
         service  {service:<34} the service switchboard's port table names for port {port}\n\
         protocol {protocol:<34} connection #{id}\n",
        peer = who.peer,
        local = who.local,
        service = who.service,
        port = who.port,
        protocol = who.protocol,
        id = who.connection_id,
    );
    if let Some(tls) = &who.tls {
        let version = format!("{} {}", tls.version, tls.cipher);
        text.push_str(&format!(
            "tls      {version:<34} the encryption this connection's handshake agreed on\n\
             alpn     {alpn:<34} the application protocol chosen in the handshake\n\
             sni      {sni:<34} the server name your client asked for\n",
            alpn = tls.alpn.as_deref().unwrap_or("(none offered)"),
            sni = tls
                .sni
                .as_deref()
                .unwrap_or("(none: clients send none for IP addresses)"),
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

fn wants_json(headers: &HeaderMap, format: Option<&str>) -> bool {
    match format {
        Some(format) => format.eq_ignore_ascii_case("json"),
        None => headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/json")),
    }
}

#[derive(Serialize)]
pub(super) struct Ports {
    ports: Vec<PortStatus>,
}

/// `GET /api/ports`: the live port table.
pub(super) async fn ports(
    State(state): State<AppState>,
    Extension(conn): Extension<Arc<Connection>>,
) -> Json<Ports> {
    Json(Ports {
        ports: ports_for(&state, &conn),
    })
}

/// The port table as `conn`'s client may see it: what each row serves (a program's command
/// line, a proxy's upstream) only for `[control] allow`, since those may hold secrets.
pub(super) fn ports_for(state: &AppState, conn: &Connection) -> Vec<PortStatus> {
    let mut ports = state.shared.ports.ports();
    if !super::control::trusted(state, conn.info.peer.ip()) {
        for port in &mut ports {
            port.target = None;
        }
    }
    ports
}
