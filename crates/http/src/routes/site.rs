//! The guard in front of every route that reads or changes switchboard's state (the control
//! API, the chaos API, the mail API, the event stream, the metrics).
//!
//! Two attacks come from a web page open in a browser on the same machine, whose requests
//! arrive from loopback and so pass `[control] allow`:
//!
//! - **Cross-site requests.** A page on any site may send a "simple" POST to
//!   `http://127.0.0.1/api/ports/25/close`; it cannot read the answer, but the port closes.
//!   Browsers say where such a request comes from (`Origin`, `Sec-Fetch-Site`), so a request
//!   that changes state and says it comes from another site is refused. Clients that send
//!   neither header (curl, test code, Toxiproxy's and Mailpit's client libraries) are not
//!   browsers running someone else's page, and pass.
//! - **DNS rebinding.** A name that first resolves to the attacker's server and then to
//!   127.0.0.1 makes the attacker's page same-origin with switchboard, so it may read the
//!   answers, captured mail included. Its requests carry the attacker's name in `Host`, so
//!   these routes answer only to switchboard's own names ([`HostNames`]).
//!
//! Neither check needs a JSON content type (real client libraries send JSON under others),
//! and these routes send no CORS headers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::hosts::{HostNames, normalize};
use crate::state::AppState;
use switchboard_web::Connection;

/// The middleware: refuse what [`check`] refuses, with a one-line reason.
pub(super) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let tls = request
        .extensions()
        .get::<Arc<Connection>>()
        .is_some_and(|c| c.info.tls.is_some());
    match check(
        &state.hosts,
        request.method(),
        request.uri(),
        request.headers(),
        tls,
    ) {
        Ok(()) => next.run(request).await,
        Err(reason) => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("403 forbidden: {reason}\n"),
        )
            .into_response(),
    }
}

/// Split `host[:port]` (IPv6 in brackets); the port defaults to the scheme's.
fn split_authority(authority: &str, tls: bool) -> Option<(String, u16)> {
    let authority: axum::http::uri::Authority = authority.parse().ok()?;
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Some((normalize(authority.host()), port))
}

/// Why this request may not pass, if it may not.
fn check(
    hosts: &HostNames,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    tls: bool,
) -> Result<(), String> {
    let host = switchboard_web::host_of(uri, headers);
    if let Some(host) = host {
        let name = split_authority(host, tls).map(|(name, _)| name);
        if !name.as_deref().is_some_and(|n| hosts.allows(n)) {
            return Err(format!(
                "switchboard does not answer to the name {host:?} on this route (a guard \
                 against DNS rebinding); add it to [http] hosts"
            ));
        }
    }
    // A WebSocket is a GET, but a page on any site may open one and read every message on
    // it (browsers apply no CORS to WebSockets): it is checked like a change.
    if !switchboard_web::websocket::is_websocket(headers)
        && matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        )
    {
        return Ok(());
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && matches!(site, "cross-site" | "same-site")
    {
        return Err(format!(
            "a request from another site (Sec-Fetch-Site: {site}) may not use this route"
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not text)");
        if !same_origin(origin, host, tls) {
            return Err(format!(
                "a request from another site (Origin: {origin}) may not use this route"
            ));
        }
    }
    Ok(())
}

/// Whether `origin` is this server as the request reached it: the same scheme, name and port.
fn same_origin(origin: &str, host: Option<&str>, tls: bool) -> bool {
    let Ok(origin) = origin.parse::<Uri>() else {
        return false; // "null" (a sandboxed page, a file) and anything malformed
    };
    let scheme_tls = match origin.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return false,
    };
    let (Some(origin_authority), Some(host)) = (origin.authority(), host) else {
        return false;
    };
    scheme_tls == tls
        && split_authority(origin_authority.as_str(), tls) == split_authority(host, tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn checked(method: Method, pairs: &[(&'static str, &str)]) -> Result<(), String> {
        let hosts = HostNames::new(["switchboard", "*.switchboard.test"]);
        check(
            &hosts,
            &method,
            &Uri::from_static("/api/reset"),
            &headers(pairs),
            false,
        )
    }

    #[test]
    fn clients_that_say_nothing_about_their_site_pass() {
        assert_eq!(checked(Method::POST, &[("host", "127.0.0.1:8080")]), Ok(()));
        assert_eq!(checked(Method::DELETE, &[]), Ok(()));
    }

    #[test]
    fn requests_from_another_site_may_not_change_state() {
        let from_evil = [("host", "127.0.0.1"), ("origin", "http://evil.example")];
        assert!(
            checked(Method::POST, &from_evil)
                .unwrap_err()
                .contains("Origin")
        );
        assert_eq!(
            checked(Method::GET, &from_evil),
            Ok(()),
            "reading is not changing"
        );
        let fetch = [("host", "localhost"), ("sec-fetch-site", "cross-site")];
        assert!(checked(Method::PUT, &fetch).is_err());
        let sibling = [("host", "localhost"), ("sec-fetch-site", "same-site")];
        assert!(checked(Method::PATCH, &sibling).is_err());
        let null = [("host", "localhost"), ("origin", "null")];
        assert!(checked(Method::DELETE, &null).is_err());
    }

    #[test]
    fn a_websocket_from_another_site_is_refused_though_it_is_a_get() {
        let hijack = [
            ("host", "127.0.0.1"),
            ("upgrade", "websocket"),
            ("origin", "http://evil.example"),
        ];
        assert!(
            checked(Method::GET, &hijack)
                .unwrap_err()
                .contains("Origin")
        );
        let own = [
            ("host", "127.0.0.1"),
            ("upgrade", "websocket"),
            ("origin", "http://127.0.0.1"),
        ];
        assert_eq!(checked(Method::GET, &own), Ok(()));
        let client_library = [("host", "127.0.0.1"), ("upgrade", "websocket")];
        assert_eq!(checked(Method::GET, &client_library), Ok(()));
    }

    #[test]
    fn the_same_origin_passes_and_a_different_port_or_scheme_does_not() {
        let same = [
            ("host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert_eq!(checked(Method::POST, &same), Ok(()));
        let default_port = [("host", "LocalHost"), ("origin", "http://localhost:80")];
        assert_eq!(checked(Method::POST, &default_port), Ok(()));
        let other_port = [
            ("host", "localhost:8080"),
            ("origin", "http://localhost:3000"),
        ];
        assert!(checked(Method::POST, &other_port).is_err());
        let other_scheme = [
            ("host", "localhost:8080"),
            ("origin", "https://localhost:8080"),
        ];
        assert!(checked(Method::POST, &other_scheme).is_err());
    }

    #[test]
    fn only_switchboards_names_pass_the_host_check() {
        for host in [
            "localhost",
            "app.localhost:8080",
            "127.0.0.1",
            "[::1]:8443",
            "192.0.2.7",
            "switchboard",
            "Switchboard.:80",
            "mail.switchboard.test",
        ] {
            assert_eq!(checked(Method::GET, &[("host", host)]), Ok(()), "{host}");
        }
        for host in [
            "evil.example",
            "localhost.evil.example",
            "switchboard.test",
            "xswitchboard",
            "not a name",
        ] {
            let refused = checked(Method::GET, &[("host", host)]).unwrap_err();
            assert!(refused.contains("[http] hosts"), "{host}: {refused}");
        }
    }

    #[test]
    fn http2_names_its_server_in_the_authority() {
        let hosts = HostNames::new(["switchboard"]);
        let uri = Uri::from_static("https://evil.example/api/v1/messages");
        assert!(check(&hosts, &Method::GET, &uri, &HeaderMap::new(), true).is_err());
        let uri = Uri::from_static("https://switchboard:8443/api/v1/messages");
        assert_eq!(
            check(&hosts, &Method::GET, &uri, &HeaderMap::new(), true),
            Ok(())
        );
    }
}
