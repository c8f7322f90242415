//! The guard on the state routes: a request from another site may not change anything, a
//! name switchboard does not have (DNS rebinding) may not read anything, and clients that
//! send no Origin (curl, test code, client libraries) work as before.

use std::net::SocketAddr;

use serde_json::Value;
use switchboard_testkit::Stack;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{json_of, read_to_close, read_until, router_paths, send_mail};

/// A raw HTTP/1.1 request with exactly these headers; the whole response.
async fn raw(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut stream = send_raw(addr, method, path, headers).await;
    read_to_close(&mut stream).await
}

/// Only the response's head: enough for routes whose body streams or waits.
async fn raw_head(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut stream = send_raw(addr, method, path, headers).await;
    read_until(&mut stream, "\r\n\r\n").await
}

async fn send_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> TcpStream {
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(name, _)| *name == "Host") {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

const EVIL: (&str, &str) = ("Origin", "http://evil.example");

async fn port_state(stack: &Stack, port: u16) -> Value {
    let table = json_of(crate::http_client().get(stack.url("http", "/api/ports"))).await;
    table["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == port)
        .unwrap()["state"]
        .clone()
}

#[tokio::test]
async fn a_cross_site_post_is_refused_and_the_port_stays_open() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();
    let http = stack.addr("http");
    let echo = stack.addr("echo").port();

    let close = format!("/api/ports/{echo}/close");
    let refused = raw(http, "POST", &close, &[EVIL]).await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(
        refused.contains("a request from another site (Origin: http://evil.example)"),
        "{refused}"
    );
    assert_eq!(port_state(&stack, echo).await, "listening");
    TcpStream::connect(stack.addr("echo")).await.unwrap();

    // The same with a content type a form may send, adding a toxic: refused, none added.
    let toxics = format!("/api/ports/{echo}/toxics");
    let fetch_site = ("Sec-Fetch-Site", "cross-site");
    let plain = ("Content-Type", "text/plain");
    let refused = raw(http, "POST", &toxics, &[fetch_site, plain]).await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    let listed = json_of(crate::http_client().get(stack.url("http", &toxics))).await;
    assert_eq!(listed, serde_json::json!([]));

    // From the page's own origin, and from curl (no Origin at all), the same request works.
    let same = format!("http://{http}");
    let ok = raw(http, "POST", &close, &[("Origin", &same)]).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert_eq!(port_state(&stack, echo).await, "closed");
    let ok = raw(http, "POST", &format!("/api/ports/{echo}/open"), &[]).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert_eq!(port_state(&stack, echo).await, "listening");
}

#[tokio::test]
async fn captured_mail_cannot_be_deleted_cross_site_or_read_under_another_name() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let http = stack.addr("http");
    send_mail(
        stack.addr("smtp"),
        "a@example.test",
        &["b@example.test"],
        "Subject: secret\r\n\r\nx\r\n",
    )
    .await;

    let refused = raw(http, "DELETE", "/api/v1/messages", &[EVIL]).await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert_eq!(stack.mail().len(), 1);

    // DNS rebinding: the attacker's name now points at 127.0.0.1, so the browser thinks
    // the page and switchboard share an origin; the Host header still carries the name.
    let rebound = ("Host", "rebind.evil.example");
    for path in ["/api/v1/messages", "/api/events", "/api/ports", "/metrics"] {
        let refused = raw(http, "GET", path, &[rebound]).await;
        assert!(refused.starts_with("HTTP/1.1 403"), "{path}: {refused}");
        assert!(refused.contains("DNS rebinding"), "{path}: {refused}");
        assert!(!refused.contains("secret"), "{path}: {refused}");
    }
    // Routes that show no state still answer any name (httpbin, health).
    let health = raw(http, "GET", "/healthz", &[rebound]).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // switchboard's own names pass.
    for host in ["localhost", "127.0.0.1", "switchboard.localhost"] {
        let ok = raw(http, "GET", "/api/v1/messages", &[("Host", host)]).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{host}: {ok}");
    }
}

#[tokio::test]
async fn another_sites_page_cannot_open_mailpits_websocket() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let http = stack.addr("http");
    let upgrade = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let mut hijack = upgrade.to_vec();
    hijack.push(EVIL);
    let refused = raw(http, "GET", "/api/events", &hijack).await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    // Without an Origin (a client library), the same handshake succeeds.
    let mut stream = TcpStream::connect(http).await.unwrap();
    let mut request = format!("GET /api/events HTTP/1.1\r\nHost: {http}\r\n");
    for (name, value) in upgrade {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until(&mut stream, "\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
}

#[tokio::test]
async fn a_name_added_in_the_config_passes() {
    let stack = Stack::builder()
        .service("http")
        .configure(|c| c.http.hosts = vec!["mail.example.test".into()])
        .start()
        .await
        .unwrap();
    let http = stack.addr("http");
    let ok = raw(
        http,
        "GET",
        "/api/v1/info",
        &[("Host", "mail.example.test:8025")],
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let refused = raw(
        http,
        "GET",
        "/api/v1/info",
        &[("Host", "other.example.test")],
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
}

/// httpbin's routes answer any site, as httpbin does; no state route answers one, not even
/// to a preflight. Every state route of the router is asked, so a new one cannot leak.
#[tokio::test]
async fn cors_headers_go_to_httpbins_routes_and_never_to_the_state_routes() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let http = stack.addr("http");
    let preflight = [EVIL, ("Access-Control-Request-Method", "DELETE")];

    let echo = raw(http, "GET", "/get", &[EVIL]).await.to_ascii_lowercase();
    assert!(
        echo.contains("access-control-allow-origin: http://evil.example"),
        "{echo}"
    );
    assert!(
        echo.contains("access-control-allow-credentials: true"),
        "{echo}"
    );
    let allowed = raw(http, "OPTIONS", "/delete", &preflight).await;
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(
        allowed
            .to_ascii_lowercase()
            .contains("access-control-allow-methods: delete"),
        "{allowed}"
    );

    let mut asked = 0;
    for path in router_paths() {
        if !(path.starts_with("/api/")
            || path.starts_with("/view/")
            || path == "/metrics"
            || path == "/mail")
        {
            continue;
        }
        // /api/v1/wait would wait for mail: a short timeout keeps the walk quick.
        let path = path.replace("{}", "1") + "?timeout=1ms";
        for (method, headers) in [("GET", &[EVIL][..]), ("OPTIONS", &preflight[..])] {
            let response = raw_head(http, method, &path, headers).await;
            assert!(
                !response.to_ascii_lowercase().contains("access-control-"),
                "{method} {path}: {response}"
            );
            asked += 1;
        }
    }
    assert!(
        asked > 40,
        "only {asked} requests: did the walk find the routes?"
    );
}

/// The state routes of a row of `service`: every route of the router that reads or changes
/// switchboard's state there (found by reading the router's source, so a route added later
/// is walked too).
fn state_paths(service: &str) -> Vec<String> {
    let keep = |path: &String| match service {
        "http" => {
            path.starts_with("/api/")
                || path.starts_with("/view/")
                || path == "/metrics"
                || path == "/mail"
        }
        "toxiproxy" => ["/proxies", "/populate", "/reset", "/version"]
            .iter()
            .any(|prefix| path.starts_with(prefix)),
        "stubs" => path.starts_with("/__admin"),
        other => panic!("no state routes on {other}"),
    };
    router_paths().into_iter().filter(keep).collect()
}

/// The routes of a row of `service` that only `[control] allow` may change: the control
/// API (ports, toxics, reset, chaos), and the whole of Toxiproxy's API and WireMock's admin
/// API. (The mail API is not among them: like Mailpit's, it answers whoever reaches it,
/// behind the cross-site and rebinding guards.)
fn control_paths(service: &str) -> Vec<String> {
    let control = |path: &String| {
        service != "http"
            || ["/api/ports", "/api/reset", "/api/v1/chaos"]
                .iter()
                .any(|prefix| path.starts_with(prefix))
    };
    state_paths(service).into_iter().filter(control).collect()
}

const CHANGES: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

/// Every route of the router under `/api/` (and `/metrics`, the mail views) refuses a
/// cross-site request with every method that could change something: a route added later
/// cannot forget the guard. A method the route does not have gets 405, which changes
/// nothing either. The same on Toxiproxy's API and WireMock's admin API, on their rows.
#[tokio::test]
async fn every_state_route_is_guarded_against_cross_site_requests() {
    for (service, refused, _) in
        walk_rows(state_paths, None, &CHANGES, &[EVIL], "another site").await
    {
        assert!(refused >= 10, "{service}: only {refused} refusals");
    }
}

/// A page on a name that resolves to this machine (DNS rebinding) reads nothing and changes
/// nothing: every state route refuses a `Host` that is not one of switchboard's names, with
/// every method, reads included.
#[tokio::test]
async fn every_state_route_refuses_a_rebinding_host_name() {
    let rebound = ("Host", "attacker.example:8025");
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let rows = walk_rows(state_paths, None, &methods, &[rebound], "DNS rebinding").await;
    for (service, refused, routes) in rows {
        assert!(
            refused >= routes,
            "{service}: {refused} refusals for {routes} routes"
        );
    }
}

/// A client outside `[control] allow` (here: everyone but 192.0.2.0/24, so this test's own
/// loopback client) changes nothing through any control route, on any row.
#[tokio::test]
async fn every_control_route_refuses_clients_outside_control_allow() {
    let rows = walk_rows(
        control_paths,
        Some("192.0.2.0/24"),
        &CHANGES,
        &[],
        "[control] allow",
    );
    for (service, refused, routes) in rows.await {
        assert!(
            refused >= routes,
            "{service}: {refused} refusals for {routes} routes"
        );
    }
}

/// Walk `paths` on a row of each service with state routes (its `[control] allow` narrowed
/// to `control_allow` if given), as [`walk`] does: for each, how many requests were refused
/// and how many routes there were.
async fn walk_rows(
    paths: fn(&str) -> Vec<String>,
    control_allow: Option<&str>,
    methods: &[&str],
    headers: &[(&str, &str)],
    reason: &str,
) -> Vec<(&'static str, usize, usize)> {
    let mut rows = Vec::new();
    for service in ["http", "toxiproxy", "stubs"] {
        let stack = Stack::builder()
            .service(service)
            .configure(|c| {
                if let Some(range) = control_allow {
                    c.control.allow = vec![range.parse().unwrap()];
                }
            })
            .start()
            .await
            .unwrap();
        let paths = paths(service);
        let refused = walk(stack.addr(service), &paths, methods, headers, reason).await;
        rows.push((service, refused, paths.len()));
    }
    rows
}

/// Send each of `methods` to each of `paths` with these extra headers: each answer is 403
/// saying `reason`, or 405 (not a method of the route, which changes nothing). How many
/// were refused.
async fn walk(
    addr: SocketAddr,
    paths: &[String],
    methods: &[&str],
    headers: &[(&str, &str)],
    reason: &str,
) -> usize {
    let mut refused = 0;
    for path in paths {
        // /api/v1/wait would wait for mail: a short timeout keeps the walk quick.
        let path = path.replace("{}", "1") + "?timeout=1ms";
        for method in methods {
            let mut stream = send_raw(addr, method, &path, headers).await;
            let head = read_until(&mut stream, "\r\n\r\n").await;
            match &head[..12] {
                "HTTP/1.1 403" => {
                    // A refusal closes (the request said `Connection: close`): read it all.
                    let answer = head + &read_to_close(&mut stream).await;
                    assert!(answer.contains(reason), "{method} {path}: {answer}");
                    refused += 1;
                }
                "HTTP/1.1 405" => {}
                _ => panic!("{method} {path} with {headers:?} is not refused: {head}"),
            }
        }
    }
    refused
}

/// Issue 42, item 1: the tricks that made the guard read one name while the router served
/// another, or read none. Every route of every row, public ones included, answers each with
/// 400: a `Host` with user info, two `Host`s, a `Host` with bytes outside the host grammar,
/// and an HTTP/1.1 request with no `Host` at all.
#[tokio::test]
async fn every_route_refuses_a_host_that_is_not_exactly_one_host_and_port() {
    let tricks: [&[(&str, &str)]; 3] = [
        &[("Host", "evil.example@127.0.0.1")],
        &[("Host", "127.0.0.1"), ("Host", "evil.example")],
        &[("Host", "caf\u{e9}.localhost")],
    ];
    let stack = Stack::start(&["http", "stubs", "toxiproxy"]).await.unwrap();
    let mut asked = 0;
    for service in ["http", "stubs", "toxiproxy"] {
        let addr = stack.addr(service);
        for path in router_paths() {
            let path = path.replace("{}", "1");
            for headers in tricks {
                let answer = raw_head(addr, "GET", &path, headers).await;
                assert!(
                    answer.starts_with("HTTP/1.1 400"),
                    "{service} {path} {headers:?}: {answer}"
                );
                asked += 1;
            }
            let answer = bare(
                addr,
                &format!("GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert!(
                answer.starts_with("HTTP/1.1 400"),
                "{service} {path}: {answer}"
            );
            assert!(answer.contains("Host"), "{answer}");
        }
    }
    assert!(
        asked > 300,
        "only {asked} requests: did the walk find the routes?"
    );
}

/// `request`, exactly as written, on a new connection: the whole answer.
async fn bare(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    read_to_close(&mut stream).await
}

/// HTTP/1.0 needs no `Host`, so a request typed by hand with `nc` still reaches the public
/// routes; a state route needs a name to judge, and answers 400 without one.
#[tokio::test]
async fn http_1_0_without_a_host_reaches_the_public_routes_only() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let http = stack.addr("http");
    for path in ["/healthz", "/get", "/status/418"] {
        let answer = bare(http, &format!("GET {path} HTTP/1.0\r\n\r\n")).await;
        assert_ne!(&answer[9..12], "400", "{path}: {answer}");
    }
    for path in ["/api/ports", "/api/v1/messages", "/metrics"] {
        let answer = bare(http, &format!("GET {path} HTTP/1.0\r\n\r\n")).await;
        assert!(answer.starts_with("HTTP/1.0 400"), "{path}: {answer}");
        assert!(answer.contains("needs a Host"), "{path}: {answer}");
    }
}

/// An `Origin` that is not one plain origin of this server counts as another site on every
/// state route of every row: one with user info (the old guard compared only its host), two
/// `Origin`s (the old guard read the first), and `Sec-Fetch-Site` in another case.
#[tokio::test]
async fn every_state_route_counts_a_disguised_origin_as_another_site() {
    for disguise in [
        vec![("Origin", "http://evil.example@127.0.0.1")],
        vec![("Origin", "http://127.0.0.1"), EVIL],
        vec![("Sec-Fetch-Site", "Cross-Site")],
    ] {
        for (service, refused, _) in
            walk_rows(state_paths, None, &CHANGES, &disguise, "another site").await
        {
            assert!(
                refused >= 10,
                "{service} {disguise:?}: only {refused} refusals"
            );
        }
    }
}

/// Over HTTP/2 the server is named by `:authority`; a `Host` that names another is refused
/// rather than one of the two being believed.
#[tokio::test]
async fn http2_with_an_authority_and_a_host_that_disagree_is_refused() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let http = stack.addr("http");
    let stream = TcpStream::connect(http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for (path, host, status) in [
        ("/api/v1/messages", "rebind.evil.example", 400),
        ("/healthz", "rebind.evil.example", 400),
        ("/api/v1/messages", "127.0.0.1", 200),
    ] {
        let request = hyper::Request::get(format!("http://127.0.0.1{path}"))
            .header("host", host)
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            status,
            "{path} with Host {host}"
        );
    }
}

/// Issue 42, item 7: no body of switchboard's may be read by a browser as another type
/// than it says (an echo sniffed as HTML): every route of every row answers with
/// `X-Content-Type-Options: nosniff`, refusals and errors included.
#[tokio::test]
async fn every_route_tells_browsers_not_to_sniff() {
    let stack = Stack::start(&["http", "stubs", "toxiproxy"]).await.unwrap();
    let mut asked = 0;
    for service in ["http", "stubs", "toxiproxy"] {
        let addr = stack.addr(service);
        for path in router_paths() {
            // /api/v1/wait would wait for mail: a short timeout keeps the walk quick.
            let path = path.replace("{}", "1") + "?timeout=1ms";
            let head = raw_head(addr, "GET", &path, &[]).await.to_ascii_lowercase();
            assert!(
                head.contains("x-content-type-options: nosniff"),
                "{service} {path}: {head}"
            );
            // Issue 43, item 9: scanners and people can name the service.
            assert!(
                head.contains("server: switchboard"),
                "{service} {path}: {head}"
            );
            asked += 1;
        }
    }
    assert!(
        asked > 200,
        "only {asked} requests: did the walk find the routes?"
    );
}

/// `[http] server_header` names the service in every response; `""` sends none, and a
/// stub that sets its own `Server` keeps it.
#[tokio::test]
async fn the_server_header_is_a_setting_and_a_stub_may_set_its_own() {
    let stack = Stack::builder()
        .service("http")
        .service("stubs")
        .configure(|c| c.http.server_header = String::new())
        .start()
        .await
        .unwrap();
    let head = raw_head(stack.addr("http"), "GET", "/healthz", &[]).await;
    assert!(!head.to_ascii_lowercase().contains("server:"), "{head}");

    let stack = Stack::start(&["stubs"]).await.unwrap();
    let stub = serde_json::json!({
        "request": {"url": "/own"},
        "response": {"status": 200, "headers": {"Server": "nginx/1.22.1"}}
    });
    let added = crate::http_client()
        .post(stack.url("stubs", "/__admin/mappings"))
        .json(&stub)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status().as_u16(), 201);
    let head = raw_head(stack.addr("stubs"), "GET", "/own", &[]).await;
    assert!(head.contains("Server: nginx/1.22.1"), "{head}");
    assert!(!head.contains("Server: switchboard"), "{head}");
}
