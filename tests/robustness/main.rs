//! The robustness suite: switchboard under slow clients, floods, garbage, exhausted file
//! descriptors, signals and crashes. Every test runs the built binary as a child process,
//! so that it has its own limits, receives real signals and can be killed; every test is
//! bounded in connections and time, and uses loopback only. The tests are heavy, so they
//! take turns (`one_at_a_time`), and each asserts at the end that nothing panicked.

// In tests a failed unwrap, expect or panic is a failed assertion, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod crash;
mod exhaustion;
mod flood;
mod garbage;
mod hostile;
mod memory;
mod outbound;
mod signals;
mod slow;

use std::net::SocketAddr;

use serde_json::Value;
use switchboard_testkit::binary::Binary;
use switchboard_testkit::client::PATIENCE;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The `switchboard` binary this package built: the one under test.
fn switchboard() -> Binary {
    Binary::at(env!("CARGO_BIN_EXE_switchboard"))
}

/// Held by each test for its whole run: the suite's tests take turns.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    raise_descriptor_limit();
    TURN.lock().await
}

/// Hundreds of client connections need more descriptors than a default soft limit of 1024
/// leaves; raise it to the hard limit (the server, a child, inherits it).
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// A complete HTTP/1.1 exchange on a new connection: the whole response.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    switchboard_testkit::client::read_to_close(&mut stream).await
}

/// The JSON body of a complete HTTP response.
fn body_json(response: &str) -> Value {
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// Connections open now on `port`, as `/api/ports` reports (this request's own included).
async fn active_on(http: SocketAddr, port: u16) -> u64 {
    let ports = body_json(&http_get(http, "/api/ports").await);
    ports["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == port)
        .and_then(|p| p["active"].as_u64())
        .unwrap()
}

/// Ask `/api/ports` until `check` holds for the number of open connections on `port`.
async fn wait_for_active(http: SocketAddr, port: u16, check: impl Fn(u64) -> bool) -> u64 {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let active = active_on(http, port).await;
            if check(active) {
                return active;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("port {port} never reached the expected number of connections"))
}
