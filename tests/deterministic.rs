//! Faults that happen exactly when a test says: a port refused for a given time then open
//! again, and exactly the next N connections reset.

use std::io::ErrorKind;
use std::time::Duration;

use reqwest::StatusCode;
use switchboard_core::EventKind;
use switchboard_testkit::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{PATIENCE, Seen, assert_refused, http_client};

async fn control(stack: &Stack, path: &str) -> reqwest::Response {
    http_client()
        .post(stack.url("http", path))
        .send()
        .await
        .unwrap()
}

/// What a client sees of one connection: the error kind, or the first line of an answer.
async fn knock(addr: std::net::SocketAddr) -> Result<String, ErrorKind> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.kind())?;
    // The reset may come while writing or while reading.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .map_err(|e| e.kind())?;
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).await.map_err(|e| e.kind())?;
    Ok(String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test]
async fn exactly_the_next_n_connections_are_reset_then_service_goes_on() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();
    let echo = stack.addr("echo");
    let mut seen = Seen::new(&stack);
    let armed = control(&stack, &format!("/api/ports/{}/reset?next=3", echo.port())).await;
    assert_eq!(armed.status(), StatusCode::OK);

    for _ in 0..3 {
        let mut stream = TcpStream::connect(echo).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .unwrap();
        assert_eq!(
            read.map_err(|e| e.kind()).err(),
            Some(ErrorKind::ConnectionReset)
        );
    }
    let mut fourth = TcpStream::connect(echo).await.unwrap();
    crate::assert_echoes(&mut fourth, b"served again").await;
    let last = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionReset { left: 0, .. }))
        .await;
    assert_eq!(last.port, echo.port());

    // On HTTP the same: the client's request meets a reset, not an answer.
    let http = stack.addr("http");
    control(&stack, &format!("/api/ports/{}/reset?next=1", http.port())).await;
    assert_eq!(knock(http).await, Err(ErrorKind::ConnectionReset));
    assert_eq!(knock(http).await.as_deref(), Ok("HTTP/1.1 200 OK"));

    let missing = control(&stack, &format!("/api/ports/{}/reset", echo.port())).await;
    crate::assert_answer(missing, StatusCode::BAD_REQUEST, "?next=").await;
}

#[tokio::test]
async fn a_port_closed_for_a_while_is_refused_then_opens_by_itself() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();
    let echo = stack.addr("echo");
    let closed = control(
        &stack,
        &format!("/api/ports/{}/close?for=300ms", echo.port()),
    )
    .await;
    assert_eq!(closed.status(), StatusCode::OK);
    assert_refused(echo).await;

    // Open again without being asked: wait for it (no fixed sleep).
    let reopened = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(mut stream) = TcpStream::connect(echo).await {
                crate::assert_echoes(&mut stream, b"back").await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reopened.is_ok(), "the port did not open again");

    let bad = control(
        &stack,
        &format!("/api/ports/{}/close?for=soon", echo.port()),
    )
    .await;
    crate::assert_answer(bad, StatusCode::BAD_REQUEST, "for=soon").await;
}

#[tokio::test]
async fn deterministic_faults_say_when_they_start_and_when_they_end() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();
    let echo = stack.addr("echo");
    let mut seen = Seen::new(&stack);

    control(&stack, &format!("/api/ports/{}/reset?next=1", echo.port())).await;
    let detail = crate::fault_event(&mut seen, echo.port(), "reset", true).await;
    assert!(detail.contains("next 1 connection"), "{detail}");
    let _ = TcpStream::connect(echo).await.unwrap();
    let reason = crate::fault_event(&mut seen, echo.port(), "reset", false).await;
    assert!(reason.contains("was reset"), "{reason}");

    control(
        &stack,
        &format!("/api/ports/{}/close?for=100ms", echo.port()),
    )
    .await;
    let detail = crate::fault_event(&mut seen, echo.port(), "close", true).await;
    assert!(detail.contains("refused for 100ms"), "{detail}");
    let reason = crate::fault_event(&mut seen, echo.port(), "close", false).await;
    assert!(reason.contains("open again after 100ms"), "{reason}");
    let mut client = TcpStream::connect(echo).await.unwrap();
    crate::assert_echoes(&mut client, b"open").await;
}

#[tokio::test]
async fn a_timed_reopen_leaves_a_later_close_alone() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();
    let echo = stack.addr("echo");
    let mut seen = Seen::new(&stack);
    control(
        &stack,
        &format!("/api/ports/{}/close?for=200ms", echo.port()),
    )
    .await;
    control(&stack, &format!("/api/ports/{}/open", echo.port())).await;
    control(&stack, &format!("/api/ports/{}/close", echo.port())).await;
    // The timer has decided (the event says so) and must have left the port closed.
    let reason = crate::fault_event(&mut seen, echo.port(), "close", false).await;
    assert!(
        reason.contains("opened or closed again meanwhile"),
        "{reason}"
    );
    assert_refused(echo).await;
}
