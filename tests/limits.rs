//! Connection limits at the supervisor: a port at `max_connections` stops accepting, and the
//! kernel holds further connections in its queue until a slot frees.

use std::time::Duration;

use serde_json::Value;
use switchboard_testkit::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{PATIENCE, json_of};

async fn echo_counts(stack: &Stack) -> (u64, u64) {
    let table = json_of(crate::http_client().get(stack.url("http", "/api/ports"))).await;
    let echo = table["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["service"] == "echo")
        .cloned()
        .unwrap_or(Value::Null);
    (
        echo["accepted"].as_u64().unwrap(),
        echo["active"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_full_port_queues_new_connections_until_a_slot_frees() {
    let stack = Stack::builder()
        .service("http")
        .service("echo")
        .configure(|c| {
            let echo = c.ports.iter_mut().find(|p| p.service == "echo").unwrap();
            echo.max_connections = 1;
        })
        .start()
        .await
        .unwrap();

    let mut first = TcpStream::connect(stack.addr("echo")).await.unwrap();
    first.write_all(b"a").await.unwrap();
    first.read_exact(&mut [0u8; 1]).await.unwrap();

    // The kernel completes the handshake (the socket is listening), but switchboard does
    // not accept while the port is full, so nothing comes back.
    let mut second = TcpStream::connect(stack.addr("echo")).await.unwrap();
    second.write_all(b"b").await.unwrap();
    let mut buf = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut buf)).await;
    assert!(
        early.is_err(),
        "the second connection was served while the port was full"
    );
    assert_eq!(echo_counts(&stack).await, (1, 1));

    // A slot frees: the queued connection is accepted and served.
    drop(first);
    tokio::time::timeout(PATIENCE, second.read_exact(&mut buf))
        .await
        .expect("the queued connection was never served")
        .unwrap();
    assert_eq!(&buf, b"b");
    assert_eq!(echo_counts(&stack).await, (2, 1));
}
