//! The guard in front of every request: it fails closed, so a route is guarded unless it is
//! named public here ([`Public`]), wherever it was registered.
//!
//! Every request first has its `Host` read strictly (the HTTP/1.1 rule that a server answers
//! 400 to a missing, repeated or malformed `Host`): two `Host`s, user info, bytes outside the
//! host grammar, or an HTTP/2 `:authority` (an absolute-form target) that names another
//! server than `Host` get 400, so that no later check reads a different name than this one.
//! HTTP/1.0 needs no `Host` on the public routes (the `nc` lessons type requests by hand).
//!
//! The routes that read or change switchboard's state (the control API, the chaos API, the
//! mail API, the event stream, the metrics: everything not public) then face two attacks from
//! a web page open in a browser on the same machine, whose requests arrive from loopback and
//! so pass `[control] allow`:
//!
//! - **Cross-site requests.** A page on any site may send a "simple" POST to
//!   `http://127.0.0.1/api/ports/25/close`; it cannot read the answer, but the port closes.
//!   Browsers say where such a request comes from (`Origin`, `Sec-Fetch-Site`), so a request
//!   that changes state and says it comes from another site is refused. Clients that send
//!   neither header (curl, test code, Toxiproxy's and Mailpit's client libraries) are not
//!   browsers running someone else's page, and pass. An `Origin` that is not exactly one
//!   plain origin (two of them, user info, `null`) counts as another site.
//! - **DNS rebinding.** A name that first resolves to the attacker's server and then to
//!   127.0.0.1 makes the attacker's page same-origin with switchboard, so it may read the
//!   answers, captured mail included. Its requests carry the attacker's name in `Host`, so
//!   these routes answer only to switchboard's own names ([`HostNames`]).
//!
//! Neither check needs a JSON content type (real client libraries send JSON under others),
//! and these routes send no CORS headers.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};

use crate::hosts::{HostNames, normalize};

/// Which paths of a router answer anyone, by any name. Every other path is a state route.
#[derive(Debug)]
pub(crate) enum Public {
    /// These routes (axum's templates, `/status/{codes}`).
    Routes(matchit::Router<()>),
    /// Every path but those under this prefix (a stubs row: the stubs are the user's to
    /// define, WireMock's admin API under `/__admin` is state).
    AllBut(&'static str),
}

impl Public {
    /// The routes `paths` name. A template that cannot be one (a programming error) stays
    /// guarded: the guard fails closed.
    pub(crate) fn routes<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let mut routes = matchit::Router::new();
        for path in paths {
            if let Err(e) = routes.insert(path, ()) {
                tracing::error!("public route {path} stays guarded: {e}");
            }
        }
        Self::Routes(routes)
    }

    fn contains(&self, path: &str) -> bool {
        match self {
            Self::Routes(routes) => routes.at(path).is_ok(),
            Self::AllBut(prefix) => !path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }
}

/// The guard of one router: the names its state routes answer to and its public routes.
#[derive(Debug)]
pub(crate) struct Site {
    hosts: HostNames,
    public: Public,
    /// Answers a refused request: [`Refused`] rides in its extensions. A router of its
    /// own, so that a refusal and a routed request are the same kind of future (the hot
    /// path stays as it was without the guard).
    refusals: Router,
}

/// Why a request may not pass: 400 for a request HTTP itself forbids, 403 for one that is
/// well formed but may not use this route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    status: StatusCode,
    reason: String,
}

impl Refused {
    fn bad(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            reason: reason.into(),
        }
    }

    fn forbidden(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            reason: reason.into(),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let what = self.status.canonical_reason().unwrap_or_default();
        let status = self.status.as_u16();
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{status} {}: {}\n", what.to_ascii_lowercase(), self.reason),
        )
            .into_response()
    }
}

impl Site {
    pub(crate) fn new(hosts: HostNames, public: Public) -> Self {
        let refusals = Router::new().fallback(|mut request: Request<Body>| async move {
            match request.extensions_mut().remove::<Refused>() {
                Some(refused) => refused.into_response(),
                None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        });
        Self {
            hosts,
            public,
            refusals,
        }
    }

    /// The router that answers what [`check`](Self::check) refused.
    pub(crate) fn refusals(&self) -> &Router {
        &self.refusals
    }

    /// Whether `request`, arriving over TLS or not, may go on to the router.
    pub(crate) fn check(&self, request: &Request<impl Sized>, tls: bool) -> Result<(), Refused> {
        let (uri, headers) = (request.uri(), request.headers());
        let host = host_of(uri, headers)?;
        if host.is_none() && request.version() == Version::HTTP_11 {
            return Err(Refused::bad(
                "the request names no server: send a Host header (HTTP/1.1 requires one)",
            ));
        }
        if self.public.contains(uri.path()) {
            return Ok(());
        }
        // Checked to be ASCII by `authority`; text only now, as the public routes need none.
        let host = host.and_then(|h| std::str::from_utf8(h).ok());
        state_route(&self.hosts, request.method(), host, headers, tls)
    }
}

/// The server the request names, checked: `Host`, or the target's authority when there is
/// no `Host` (HTTP/2's `:authority`); `None` when it names none (or an empty `Host`).
fn host_of<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Result<Option<&'a [u8]>, Refused> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next().map(HeaderValue::as_bytes);
    if hosts.next().is_some() {
        return Err(Refused::bad("the request has two Host headers"));
    }
    if let Some(host) = host.filter(|h| !authority(h)) {
        return Err(Refused::bad(format!(
            "Host {:?} is not a host and port (no user info, no spaces or other bytes)",
            String::from_utf8_lossy(host)
        )));
    }
    let target = uri.authority().map(|a| a.as_str().as_bytes());
    match (host, target) {
        (Some(host), Some(target)) if !host.eq_ignore_ascii_case(target) => {
            Err(Refused::bad(format!(
                "the request's target names {:?} but its Host names {:?}",
                String::from_utf8_lossy(target),
                String::from_utf8_lossy(host)
            )))
        }
        (None, Some(target)) if !authority(target) => Err(Refused::bad(format!(
            "the request's target {:?} is not a host and port",
            String::from_utf8_lossy(target)
        ))),
        (host, target) => Ok(host.or(target).filter(|h| !h.is_empty())),
    }
}

/// Whether `value` is `host[:port]` (RFC 3986's `authority` without user info: a registered
/// name or IPv4 address, or an IP literal in brackets). Empty is allowed (a request for no
/// particular server). One pass over the bytes: it runs on every request.
fn authority(value: &[u8]) -> bool {
    let port = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(end) if end > 1 => {
                let literal = &value[1..end];
                if !literal
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                {
                    return false;
                }
                &value[end + 1..]
            }
            _ => return false,
        },
        _ => {
            let mut name = 0;
            while name < value.len() && NAME_BYTE[usize::from(value[name])] {
                name += 1;
            }
            &value[name..]
        }
    };
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// The bytes of a registered name or an IPv4 address: RFC 3986's unreserved characters,
/// sub-delimiters and `%` (of a percent-encoding). A table: the check runs on every request.
const NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = matches!(
            byte as u8,
            b'a'..=b'z'
                | b'A'..=b'Z'
                | b'0'..=b'9'
                | b'-'
                | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        );
        byte += 1;
    }
    table
};

/// The name in `host[:port]`, checked by [`authority`] (an IP literal keeps its brackets).
fn name_of(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(_) => authority.split_inclusive(']').next().unwrap_or(authority),
        None => authority.split(':').next().unwrap_or(authority),
    }
}

/// Split `host[:port]` (IPv6 in brackets); the port defaults to the scheme's.
fn split_authority(authority: &str, tls: bool) -> Option<(String, u16)> {
    let authority: axum::http::uri::Authority = authority.parse().ok()?;
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Some((normalize(authority.host()), port))
}

/// Why a request for a state route may not pass, if it may not.
fn state_route(
    hosts: &HostNames,
    method: &Method,
    host: Option<&str>,
    headers: &HeaderMap,
    tls: bool,
) -> Result<(), Refused> {
    let host = host.ok_or_else(|| {
        Refused::bad("this route needs a Host header naming switchboard (HTTP/1.0 included)")
    })?;
    if !hosts.allows(name_of(host)) {
        return Err(Refused::forbidden(format!(
            "switchboard does not answer to the name {host:?} on this route (a guard \
             against DNS rebinding); add it to [http] hosts"
        )));
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
    for site in headers.get_all("sec-fetch-site") {
        let site = String::from_utf8_lossy(site.as_bytes());
        if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
            return Err(Refused::forbidden(format!(
                "a request from another site (Sec-Fetch-Site: {site}) may not use this route"
            )));
        }
    }
    let mut origins = headers.get_all(header::ORIGIN).iter();
    if let Some(origin) = origins.next() {
        let shown = origin.to_str().unwrap_or("(not text)");
        if origins.next().is_some() {
            return Err(Refused::forbidden(format!(
                "a request from another site (two Origins, the first {shown}) may not use \
                 this route"
            )));
        }
        if !same_origin(origin, host, tls) {
            return Err(Refused::forbidden(format!(
                "a request from another site (Origin: {shown}) may not use this route"
            )));
        }
    }
    Ok(())
}

/// Whether `origin` is this server as the request reached it: the same scheme, name and
/// port, and nothing else (no user info, path or query).
fn same_origin(origin: &HeaderValue, host: &str, tls: bool) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let (scheme_tls, rest) = if let Some(rest) = origin.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = origin.strip_prefix("http://") {
        (false, rest)
    } else {
        return false; // "null" (a sandboxed page, a file) and anything malformed
    };
    scheme_tls == tls
        && !rest.is_empty()
        && authority(rest.as_bytes())
        && split_authority(rest, tls) == split_authority(host, tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request for `path` with these headers, exactly (repeated names kept).
    fn request(method: Method, path: &str, pairs: &[(&'static str, &[u8])]) -> Request<()> {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in pairs {
            request = request.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        request.body(()).unwrap()
    }

    fn site() -> Site {
        let hosts = HostNames::new(["switchboard", "*.switchboard.test"]);
        Site::new(hosts, Public::routes(["/healthz", "/status/{codes}"]))
    }

    fn checked(method: Method, pairs: &[(&'static str, &str)]) -> Result<(), Refused> {
        let pairs: Vec<_> = pairs.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        site().check(&request(method, "/api/reset", &pairs), false)
    }

    fn reason(refused: Result<(), Refused>) -> String {
        refused.unwrap_err().reason
    }

    #[test]
    fn clients_that_say_nothing_about_their_site_pass() {
        assert_eq!(checked(Method::POST, &[("host", "127.0.0.1:8080")]), Ok(()));
        assert_eq!(checked(Method::DELETE, &[("host", "localhost")]), Ok(()));
    }

    #[test]
    fn requests_from_another_site_may_not_change_state() {
        let from_evil = [("host", "127.0.0.1"), ("origin", "http://evil.example")];
        assert!(reason(checked(Method::POST, &from_evil)).contains("Origin"));
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
    fn an_origin_that_is_not_one_plain_origin_is_another_site() {
        let user_info = [("host", "127.0.0.1"), ("origin", "http://evil@127.0.0.1")];
        assert!(reason(checked(Method::POST, &user_info)).contains("Origin"));
        let with_path = [("host", "127.0.0.1"), ("origin", "http://127.0.0.1/x")];
        assert!(checked(Method::POST, &with_path).is_err());
        let two = [
            ("host", "127.0.0.1"),
            ("origin", "http://127.0.0.1"),
            ("origin", "http://evil.example"),
        ];
        assert!(reason(checked(Method::POST, &two)).contains("two Origins"));
        let shouted = [("host", "localhost"), ("sec-fetch-site", "Cross-Site")];
        assert!(reason(checked(Method::POST, &shouted)).contains("Sec-Fetch-Site"));
        let second = [
            ("host", "localhost"),
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-site", "cross-site"),
        ];
        assert!(checked(Method::POST, &second).is_err());
    }

    #[test]
    fn a_websocket_from_another_site_is_refused_though_it_is_a_get() {
        let hijack = [
            ("host", "127.0.0.1"),
            ("upgrade", "websocket"),
            ("origin", "http://evil.example"),
        ];
        assert!(reason(checked(Method::GET, &hijack)).contains("Origin"));
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
        ] {
            let refused = checked(Method::GET, &[("host", host)]).unwrap_err();
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{host}");
            assert!(
                refused.reason.contains("[http] hosts"),
                "{host}: {refused:?}"
            );
        }
    }

    /// The tricks that made the old guard read one name and the router another, or none:
    /// each is refused with 400 on every route, public or not.
    #[test]
    fn a_host_that_is_not_exactly_one_host_and_port_is_a_bad_request() {
        let tricks: [&[(&'static str, &[u8])]; 8] = [
            &[("host", b"evil@127.0.0.1")],
            &[("host", b"127.0.0.1"), ("host", b"evil.example")],
            &[("host", "caf\u{e9}.localhost".as_bytes())],
            &[("host", b"local\xffhost")],
            &[("host", b"localhost:80:80")],
            &[("host", b"localhost/x")],
            &[("host", b"[::1")],
            &[("host", b"localhost:http")],
        ];
        for path in ["/api/reset", "/healthz", "/status/200"] {
            for pairs in tricks {
                for method in [Method::GET, Method::POST] {
                    let refused = site()
                        .check(&request(method.clone(), path, pairs), false)
                        .unwrap_err();
                    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path} {pairs:?}");
                }
            }
        }
    }

    #[test]
    fn http_1_1_needs_a_host_and_http_1_0_only_on_state_routes() {
        let bare = |path: &str, version: Version| {
            let mut request = request(Method::GET, path, &[]);
            *request.version_mut() = version;
            site().check(&request, false)
        };
        for path in ["/healthz", "/api/reset"] {
            let refused = bare(path, Version::HTTP_11).unwrap_err();
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(refused.reason.contains("Host"), "{refused:?}");
        }
        assert_eq!(bare("/healthz", Version::HTTP_10), Ok(()));
        assert_eq!(bare("/status/418", Version::HTTP_10), Ok(()));
        let refused = bare("/api/reset", Version::HTTP_10).unwrap_err();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn http2_names_its_server_in_the_authority_which_must_agree_with_host() {
        let at = |uri: &str, pairs: &[(&'static str, &[u8])]| {
            let mut request = request(Method::GET, uri, pairs);
            *request.version_mut() = Version::HTTP_2;
            site().check(&request, true)
        };
        let refused = at("https://evil.example/api/v1/messages", &[]).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(at("https://switchboard:8443/api/v1/messages", &[]), Ok(()));
        assert_eq!(
            at(
                "https://switchboard:8443/x",
                &[("host", b"Switchboard:8443")]
            ),
            Ok(())
        );
        for path in ["/api/v1/messages", "/healthz"] {
            let uri = format!("https://switchboard:8443{path}");
            let refused = at(&uri, &[("host", b"evil.example")]).unwrap_err();
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path}");
        }
        let refused = at("https://evil@switchboard/healthz", &[]).unwrap_err();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn public_routes_answer_any_name_and_any_site() {
        let pairs: [(&'static str, &[u8]); 3] = [
            ("host", b"evil.example"),
            ("origin", b"http://evil.example"),
            ("sec-fetch-site", b"cross-site"),
        ];
        for path in ["/healthz", "/status/418"] {
            assert_eq!(
                site().check(&request(Method::POST, path, &pairs), false),
                Ok(())
            );
        }
        // A path that no public route has is guarded, whether or not a route has it.
        for path in ["/healthz/x", "/status", "/new-route"] {
            let refused = site().check(&request(Method::POST, path, &pairs), false);
            assert_eq!(refused.unwrap_err().status, StatusCode::FORBIDDEN, "{path}");
        }
        let stubs = Site::new(HostNames::default(), Public::AllBut("/__admin"));
        for (path, public) in [
            ("/__admin", false),
            ("/__admin/mappings", false),
            ("/__adminx", true),
            ("/api/anything", true),
            ("/", true),
        ] {
            let answer = stubs.check(&request(Method::POST, path, &pairs), false);
            assert_eq!(answer.is_ok(), public, "{path}");
        }
    }
}
