//! Limits per port and per client address: over a limit, a service turns the connection
//! away in its own terms (HTTP 503 with Retry-After, SMTP 421 4.7.0), and only when even
//! refusing is saturated does switchboard stop accepting (back-pressure: the kernel queues).

use std::net::SocketAddr;

use switchboard_core::EventKind;
use switchboard_testkit::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Chat, PATIENCE, Seen, connect_from, read_to_close, read_until};

/// A keep-alive HTTP connection that has been served once and stays open.
async fn held_http(addr: SocketAddr, source: &str) -> TcpStream {
    let mut stream = connect_from(source, addr).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut stream, "ok\n").await;
    stream
}

async fn get(addr: SocketAddr, source: &str) -> String {
    let mut stream = connect_from(source, addr).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut stream).await
}

#[tokio::test]
async fn over_max_connections_http_answers_503_with_retry_after() {
    let stack = Stack::builder()
        .service("http")
        .port(|p| p.max_connections = 1)
        .start()
        .await
        .unwrap();
    let addr = stack.addr("http");
    let mut seen = Seen::new(&stack);
    let held = held_http(addr, "127.0.0.1").await;

    let refused = get(addr, "127.0.0.1").await;
    assert!(
        refused.starts_with("HTTP/1.1 503 Service Unavailable"),
        "{refused}"
    );
    assert!(refused.contains("Retry-After: 1"), "{refused}");
    assert!(refused.contains("max_connections = 1"), "{refused}");
    let EventKind::ConnectionLimited { limit, .. } = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionLimited { .. }))
        .await
        .kind
    else {
        unreachable!()
    };
    assert_eq!(limit, "max_connections");

    // The slot frees when the held connection ends; then the next one is served.
    drop(held);
    seen.find(|e| matches!(e.kind, EventKind::ConnectionClosed { .. }))
        .await;
    assert!(get(addr, "127.0.0.1").await.starts_with("HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn over_max_connections_smtp_answers_421() {
    let stack = Stack::builder()
        .service("smtp")
        .port(|p| p.max_connections = 1)
        .start()
        .await
        .unwrap();
    let (_held, greeting) = Chat::connect(stack.addr("smtp")).await;
    assert!(greeting.starts_with("220 "));
    let (mut second, reply) = Chat::connect(stack.addr("smtp")).await;
    assert!(
        reply.starts_with("421 4.7.0 ")
            && reply.ends_with(
                "too many connections to this port (max_connections = 1); try again later"
            ),
        "{reply}"
    );
    assert_eq!(second.rest().await, "");
}

#[tokio::test]
async fn a_service_without_a_protocol_for_refusals_just_closes() {
    let stack = Stack::builder()
        .service("echo")
        .port(|p| p.max_connections = 1)
        .start()
        .await
        .unwrap();
    let mut held = TcpStream::connect(stack.addr("echo")).await.unwrap();
    held.write_all(b"x").await.unwrap();
    held.read_exact(&mut [0u8; 1]).await.unwrap();
    let mut second = TcpStream::connect(stack.addr("echo")).await.unwrap();
    let _ = second.write_all(b"hello?").await;
    assert_eq!(read_to_close(&mut second).await, "");
}

#[tokio::test]
async fn max_per_source_counts_each_client_address() {
    let stack = Stack::builder()
        .service("http")
        .port(|p| p.max_per_source = Some(1))
        .start()
        .await
        .unwrap();
    let addr = stack.addr("http");
    let _held = held_http(addr, "127.0.0.2").await;
    let second = get(addr, "127.0.0.2").await;
    assert!(second.starts_with("HTTP/1.1 503"), "{second}");
    assert!(second.contains("max_per_source = 1"), "{second}");
    // Another address has its own count.
    assert!(get(addr, "127.0.0.3").await.starts_with("HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn max_rate_limits_new_connections_per_second_per_source() {
    let stack = Stack::builder()
        .service("http")
        .port(|p| p.max_rate = Some(2))
        .start()
        .await
        .unwrap();
    let addr = stack.addr("http");
    // Two at once are within the rate (a burst of up to `max_rate`); the third is not.
    // (Three connections take far less than the half second in which one more is allowed.)
    assert!(get(addr, "127.0.0.4").await.starts_with("HTTP/1.1 200"));
    assert!(get(addr, "127.0.0.4").await.starts_with("HTTP/1.1 200"));
    let third = get(addr, "127.0.0.4").await;
    assert!(third.starts_with("HTTP/1.1 503"), "{third}");
    assert!(third.contains("max_rate = 2 per second"), "{third}");
    assert!(
        get(addr, "127.0.0.5").await.starts_with("HTTP/1.1 200"),
        "another address"
    );
}

#[tokio::test]
async fn when_even_refusing_is_full_switchboard_stops_accepting() {
    // One connection served, one refusal in progress (a TLS client that never says hello
    // holds its refusal for the handshake timeout): the port is saturated.
    let stack = Stack::builder()
        .service("https")
        .port(|p| p.max_connections = 1)
        .configure(|c| c.supervisor.max_refusals = 1)
        .start()
        .await
        .unwrap();
    let addr = stack.addr("https");
    let mut seen = Seen::new(&stack);
    let served = TcpStream::connect(addr).await.unwrap();
    seen.find(|e| matches!(e.kind, EventKind::ConnectionOpened { .. }))
        .await;
    let _refusing = TcpStream::connect(addr).await.unwrap();
    seen.find(|e| matches!(e.kind, EventKind::ConnectionLimited { .. }))
        .await;
    let EventKind::PortAtLimit { limit, .. } = seen
        .find(|e| matches!(e.kind, EventKind::PortAtLimit { .. }))
        .await
        .kind
    else {
        unreachable!()
    };
    assert_eq!(limit, 1);

    // The kernel still completes this handshake (the socket listens), but switchboard does
    // not accept it until the served connection ends.
    let _waiting = TcpStream::connect(addr).await.unwrap();
    drop(served);
    let opened = tokio::time::timeout(PATIENCE, async {
        loop {
            if let EventKind::ConnectionOpened { .. } = seen
                .find(|e| matches!(e.kind, EventKind::ConnectionOpened { id, .. } if id > 1))
                .await
                .kind
            {
                break;
            }
        }
    })
    .await;
    assert!(
        opened.is_ok(),
        "the queued connection was accepted once a slot freed"
    );
}
