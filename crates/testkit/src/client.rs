//! What a test's client does with a server: read until it closes, read until something
//! arrives, connect from a chosen loopback address, hold a request in flight. Every wait is
//! bounded by [`PATIENCE`], so a broken server fails the test instead of hanging it.

// A test helper reports failure by panicking, as assert! does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpSocket, TcpStream};

/// Generous bound for things that should happen at once; only reached when a test fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Read until the peer closes the connection (or resets it), returning what arrived.
pub async fn read_to_close(stream: &mut (impl AsyncRead + Unpin)) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server did not close the connection");
    String::from_utf8_lossy(&received).into_owned()
}

/// Read until `needle` has arrived, returning everything read so far.
pub async fn read_until(stream: &mut (impl AsyncRead + Unpin), needle: &str) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&received).contains(needle) {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "closed before {needle:?} arrived: {:?}",
                String::from_utf8_lossy(&received)
            );
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "{needle:?} did not arrive");
    String::from_utf8_lossy(&received).into_owned()
}

/// Connect from a chosen loopback address (127.0.0.2, 127.0.0.3, …): each is a different
/// client address as far as the server can tell.
pub async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// A request whose handler is running when this returns: with `Expect: 100-continue` the
/// server says "100 Continue" only once the handler asks for the body. Send the 5 bytes
/// of the body to let it finish.
pub async fn request_in_flight(addr: SocketAddr) -> TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\
              Expect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    read_until(&mut stream, "100 Continue\r\n\r\n").await;
    stream
}
