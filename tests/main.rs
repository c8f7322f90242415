//! End-to-end scenarios, one file each: a whole stack started in-process through
//! `switchboard-testkit`, or the built `switchboard` binary, spoken to by real clients
//! (reqwest and raw sockets). Every test binds port 0; none sleeps to wait for start-up.

// In tests a failed unwrap, expect or panic is a failed assertion, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod binary;
mod blackhole;
mod browser;
mod caps;
mod chaos;
mod classic;
mod deadlines;
mod deterministic;
mod dispatch;
mod docs;
mod exec;
mod hostile;
mod http;
mod httpbin;
mod httpbin_wire;
mod https;
mod knock;
mod limits;
mod mail_api;
mod mailpit;
mod modules;
mod probe;
mod proxy;
mod qotd;
mod runtime_ports;
mod shutdown;
mod site;
mod smtp;
mod smtp_clients;
mod stubs;
mod toxics;
mod toxiproxy;
mod visibility;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
pub(crate) use switchboard_testkit::client::{PATIENCE, connect_from, read_to_close, read_until};

use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;
use switchboard_testkit::binary::Binary;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The `switchboard` binary this package built: the one under test.
fn switchboard() -> Binary {
    Binary::at(env!("CARGO_BIN_EXE_switchboard"))
}

/// Assert that nothing listens on `addr`: the kernel refuses connections to it.
///
/// A listening socket closed a moment ago can live on for a moment more in a child process
/// that another test is starting (fork copies every descriptor, exec closes them), and a
/// connection made then is reset instead of refused. So a connection that succeeds must end
/// without a byte, and a later attempt must be refused; a server that still listens keeps
/// the connection open and fails the test at `PATIENCE`.
async fn assert_refused(addr: SocketAddr) {
    let refused = tokio::time::timeout(PATIENCE, async {
        loop {
            match TcpStream::connect(addr).await {
                Err(error) if error.kind() == ErrorKind::ConnectionRefused => return,
                Err(error) => panic!("connecting to {addr}: {error}, not refused"),
                Ok(mut stream) => match stream.read(&mut [0u8; 1]).await {
                    Ok(0) | Err(_) => continue,
                    Ok(_) => panic!("{addr} answered: something still listens there"),
                },
            }
        }
    })
    .await;
    assert!(refused.is_ok(), "{addr} still accepts connections");
}

/// Send `bytes` to an echo service and assert that they come back unchanged.
async fn assert_echoes(stream: &mut TcpStream, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    stream.write_all(bytes).await.unwrap();
    let mut back = vec![0u8; bytes.len()];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(back, bytes);
}

/// Send a request that must succeed and return its JSON body.
async fn json_of(request: RequestBuilder) -> Value {
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

/// Send a request that must succeed and return its body as text.
async fn text_of(request: RequestBuilder) -> String {
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.text().await.unwrap()
}

/// Send a request and return only its status.
async fn status_of(request: RequestBuilder) -> StatusCode {
    request.send().await.unwrap().status()
}

/// A root store holding only `ca_pem`'s certificates (empty without it).
fn trust_only(ca_pem: Option<&str>) -> rustls::RootCertStore {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    roots
}

/// A rustls client configuration that trusts only `ca_pem` (nothing at all without it) and
/// offers `alpn`; the ring provider, like the server.
fn tls_client_config(ca_pem: Option<&str>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(trust_only(ca_pem))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A reqwest client builder. reqwest's rustls backend needs a crypto provider chosen; ours is
/// ring, as in the server.
fn client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// A plain HTTP client.
fn http_client() -> reqwest::Client {
    client_builder().build().unwrap()
}

/// Assert a response's status, and that its body says `words` (a refusal names its reason:
/// the config key of a cap, the part of the request that was wrong).
async fn assert_answer(response: reqwest::Response, status: StatusCode, words: &str) {
    assert_eq!(response.status(), status);
    let body = response.text().await.unwrap();
    assert!(body.contains(words), "{body:?} does not say {words:?}");
}

/// A plain HTTP client that does not follow redirects, to look at the first answer.
pub(crate) fn first_hop_client() -> reqwest::Client {
    client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A raw SMTP conversation: send lines, read whole replies (multi-line ones joined by `\n`).
struct Chat<S> {
    stream: tokio::io::BufReader<S>,
}

impl Chat<tokio::net::TcpStream> {
    /// Connect and read the greeting.
    async fn connect(addr: std::net::SocketAddr) -> (Self, String) {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut chat = Chat::over(stream);
        let greeting = chat.reply().await;
        (chat, greeting)
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Chat<S> {
    fn over(stream: S) -> Self {
        Self {
            stream: tokio::io::BufReader::new(stream),
        }
    }

    /// Write bytes as they are (several commands at once, message data, …).
    async fn send(&mut self, text: &str) {
        use tokio::io::AsyncWriteExt;
        self.stream
            .get_mut()
            .write_all(text.as_bytes())
            .await
            .unwrap();
    }

    /// One complete reply.
    async fn reply(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        let mut lines = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            loop {
                let mut line = String::new();
                let n = self.stream.read_line(&mut line).await.unwrap();
                assert!(n > 0, "connection closed; replies so far: {lines:?}");
                let line = line.trim_end().to_owned();
                let last = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line);
                if last {
                    break;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no reply; so far: {lines:?}"));
        lines.join("\n")
    }

    /// Send one command line and read its reply.
    async fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    /// Read until the server closes the connection.
    async fn rest(&mut self) -> String {
        read_to_close(&mut self.stream).await
    }

    fn into_inner(self) -> S {
        self.stream.into_inner()
    }
}

/// Send one message over plain SMTP; return the ID it was queued as.
async fn send_mail(addr: std::net::SocketAddr, from: &str, to: &[&str], data: &str) -> String {
    let (mut chat, _) = Chat::connect(addr).await;
    assert!(chat.cmd("EHLO tests.example").await.starts_with("250"));
    assert!(
        chat.cmd(&format!("MAIL FROM:<{from}>"))
            .await
            .starts_with("250")
    );
    for rcpt in to {
        assert!(
            chat.cmd(&format!("RCPT TO:<{rcpt}>"))
                .await
                .starts_with("250")
        );
    }
    assert!(chat.cmd("DATA").await.starts_with("354"));
    chat.send(data).await;
    let queued = chat.cmd(".").await;
    let id = queued
        .strip_prefix("250 2.0.0 OK: queued as ")
        .unwrap_or_else(|| panic!("not queued: {queued}"))
        .to_owned();
    chat.cmd("QUIT").await;
    id
}

/// The next event that `wanted` accepts; earlier ones are skipped.
async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<switchboard_core::Timed>>,
    wanted: impl Fn(&switchboard_core::Event) -> bool,
) -> switchboard_core::Event {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let timed = events
                .recv()
                .await
                .expect("the event stream ended or lagged");
            if wanted(&timed.event) {
                return timed.event.clone();
            }
        }
    })
    .await
    .expect("the event did not come")
}

/// Every event since subscribing, kept, so that a test can look for events in any order.
struct Seen {
    events: tokio::sync::broadcast::Receiver<std::sync::Arc<switchboard_core::Timed>>,
    seen: Vec<switchboard_core::Event>,
}

impl Seen {
    fn new(stack: &switchboard_testkit::Stack) -> Self {
        Self {
            events: stack.events().subscribe(),
            seen: Vec::new(),
        }
    }

    /// How many of the events seen so far `wanted` accepts.
    fn count(&self, wanted: impl Fn(&switchboard_core::Event) -> bool) -> usize {
        self.seen.iter().filter(|e| wanted(e)).count()
    }

    /// The first event of a service's own of type `T` that `wanted` accepts, seen already
    /// or still to come.
    async fn find_said<T: switchboard_core::ServiceEvent + Clone>(
        &mut self,
        wanted: impl Fn(&T) -> bool,
    ) -> T {
        let event = self.find(|e| e.get::<T>().is_some_and(&wanted)).await;
        event.get::<T>().cloned().expect("found by its type")
    }

    /// The first event `wanted` accepts, seen already or still to come.
    async fn find(
        &mut self,
        wanted: impl Fn(&switchboard_core::Event) -> bool,
    ) -> switchboard_core::Event {
        if let Some(event) = self.seen.iter().find(|e| wanted(e)) {
            return event.clone();
        }
        tokio::time::timeout(PATIENCE, async {
            loop {
                let timed = self
                    .events
                    .recv()
                    .await
                    .expect("the event stream ended or lagged");
                self.seen.push(timed.event.clone());
                if wanted(&timed.event) {
                    return timed.event.clone();
                }
            }
        })
        .await
        .expect("the event did not come")
    }
}

/// A route or documented path with its parameters blanked: `/message/{id}` → `/message/{}`,
/// and `/view/{ID}.html` → `/view/{}` (a segment with a parameter is the parameter).
pub(crate) fn blank_parameters(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.contains('{') {
            true => "{}",
            false => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every path the routers serve, read from the routes' source (`.route("/path", …)`) in
/// every crate: the http crate's and each HTTP product's (Mailpit's API, …); and httpbin's,
/// which its crate lists (its routes are a table).
pub(crate) fn router_paths() -> BTreeSet<String> {
    let mut paths: BTreeSet<_> = switchboard_httpbin::paths().map(blank_parameters).collect();
    let mut dirs: Vec<_> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .unwrap()
        .map(|crate_dir| crate_dir.unwrap().path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            match path.is_dir() {
                true => dirs.push(path),
                false => files.push(path),
            }
        }
    }
    for file in files {
        let source = std::fs::read_to_string(file).unwrap();
        for call in source.split(".route(").skip(1) {
            let literal = call.trim_start();
            if let Some(rest) = literal.strip_prefix('"') {
                let path = &rest[..rest.find('"').unwrap()];
                paths.insert(blank_parameters(path));
            }
        }
    }
    paths
}

/// The `detail` or `reason` of the next start or end of `fault` on `port`.
pub(crate) async fn fault_event(seen: &mut Seen, port: u16, fault: &str, started: bool) -> String {
    let event = seen
        .find(|e| {
            e.port == port
                && match &e.kind {
                    switchboard_core::EventKind::FaultStarted { fault: f, .. } => {
                        started && f == fault
                    }
                    switchboard_core::EventKind::FaultEnded { fault: f, .. } => {
                        !started && f == fault
                    }
                    _ => false,
                }
        })
        .await;
    match event.kind {
        switchboard_core::EventKind::FaultStarted { detail: words, .. }
        | switchboard_core::EventKind::FaultEnded { reason: words, .. } => words,
        _ => unreachable!(),
    }
}

/// A TCP port of 127.0.0.1 that was free a moment ago: nothing listens there.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A POST to `url` from another site's page is refused (403) by the cross-site guard.
pub(crate) async fn assert_cross_site_refused(url: String) {
    let answer = http_client()
        .post(url)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_answer(answer, StatusCode::FORBIDDEN, "another site").await;
}
