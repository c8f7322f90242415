//! Graceful shutdown: listeners close first, in-flight requests finish, the rest is cut at
//! the deadline.

use std::time::Duration;

use switchboard_core::EventKind;

use switchboard_testkit::Stack;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{PATIENCE, assert_refused, next_event, read_to_close, read_until};

#[tokio::test]
async fn in_flight_request_finishes_while_new_connections_are_refused() {
    let mut stack = Stack::start(&["http"]).await.unwrap();
    let addr = stack.addr("http");
    let mut events = stack.events().subscribe();
    let mut in_flight = switchboard_testkit::client::request_in_flight(stack.addr("http")).await;

    stack.request_shutdown();
    next_event(&mut events, |e| {
        matches!(e.kind, EventKind::PortClosed { .. })
    })
    .await;
    assert_refused(addr).await;

    // The request that was already being handled completes normally.
    in_flight.write_all(b"hello").await.unwrap();
    let answer = read_to_close(&mut in_flight).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains(r#""data":"hello""#), "{answer}");

    let stopped = tokio::time::timeout(PATIENCE, stack.shutdown())
        .await
        .unwrap();
    assert_eq!(stopped.connections_cut, 0);
}

#[tokio::test]
async fn idle_connections_do_not_hold_up_shutdown() {
    // A long deadline: shutdown must not wait for it when nothing is in flight.
    let mut stack = Stack::builder()
        .service("http")
        .configure(|c| c.supervisor.shutdown_timeout = Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let mut idle = TcpStream::connect(stack.addr("http")).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut idle, "ok\n").await;

    stack.request_shutdown();
    let stopped = tokio::time::timeout(PATIENCE, stack.shutdown())
        .await
        .expect("shutdown waited for an idle keep-alive connection");
    assert_eq!(stopped.connections_cut, 0);
    assert_eq!(read_to_close(&mut idle).await, "");
}

#[tokio::test]
async fn connections_still_open_at_the_deadline_are_cut() {
    let mut stack = Stack::builder()
        .service("http")
        .configure(|c| c.supervisor.shutdown_timeout = Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    // The handler waits for a body that never comes.
    let mut stuck = switchboard_testkit::client::request_in_flight(stack.addr("http")).await;

    stack.request_shutdown();
    let stopped = tokio::time::timeout(PATIENCE, stack.shutdown())
        .await
        .expect("shutdown did not end at its deadline");
    assert_eq!(stopped.connections_cut, 1);
    let rest = read_to_close(&mut stuck).await;
    assert!(!rest.contains("200 OK"), "{rest}");
}
