//! Ports made on demand: `POST /api/ports` binds and serves a new row while switchboard runs,
//! `DELETE /api/ports/{port}` closes one and drains its connections, and the table, the
//! events and the kernel agree at once.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::EventKind;
use switchboard_testkit::Stack;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::http::http_stack;
use crate::{Seen, assert_refused};

/// An echo row on loopback, the kernel choosing the port.
fn echo_row() -> Value {
    json!({"port": 0, "service": "echo", "bind": ["127.0.0.1"]})
}

async fn add(stack: &Stack, row: &Value) -> reqwest::Response {
    crate::http_client()
        .post(stack.url("http", "/api/ports"))
        .json(row)
        .send()
        .await
        .unwrap()
}

async fn remove(stack: &Stack, port: u16) -> reqwest::Response {
    crate::http_client()
        .delete(stack.url("http", &format!("/api/ports/{port}")))
        .send()
        .await
        .unwrap()
}

async fn table(stack: &Stack) -> Vec<Value> {
    let ports = crate::json_of(crate::http_client().get(stack.url("http", "/api/ports"))).await;
    ports["ports"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_port_added_at_run_time_is_served_shown_and_announced() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let mut seen = Seen::new(&stack);

    let added = add(&stack, &echo_row()).await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let row: Value = added.json().await.unwrap();
    let port = row["port"].as_u64().unwrap() as u16;
    assert_ne!(port, 0, "the answer gives the port the kernel chose");
    assert_eq!(
        (row["service"].as_str(), row["state"].as_str()),
        (Some("echo"), Some("listening"))
    );

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut client = TcpStream::connect(addr).await.unwrap();
    crate::assert_echoes(&mut client, b"made on demand").await;

    let listed = table(&stack).await;
    assert!(
        listed
            .iter()
            .any(|p| p["port"] == port && p["service"] == "echo"),
        "{listed:?}"
    );
    seen.find(|e| e.port == port && matches!(e.kind, EventKind::PortBound { .. }))
        .await;
    seen.find(|e| e.port == port && matches!(e.kind, EventKind::ConnectionOpened { .. }))
        .await;
}

#[tokio::test]
async fn a_port_in_use_gets_409_with_the_bind_errors_text() {
    let stack = Stack::start(&["http"]).await.unwrap();

    // Another program holds this one.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let row = json!({"port": taken, "service": "echo", "bind": ["127.0.0.1"]});
    let response = add(&stack, &row).await;
    crate::assert_answer(
        response,
        StatusCode::CONFLICT,
        &format!("address already in use — another program is already listening on port {taken}"),
    )
    .await;

    // switchboard serves this one itself.
    let own = stack.addr("http").port();
    let row = json!({"port": own, "service": "echo"});
    let response = add(&stack, &row).await;
    crate::assert_answer(response, StatusCode::CONFLICT, "already serves").await;

    // A name names one row.
    let named = json!({"port": 0, "service": "echo", "bind": ["127.0.0.1"], "name": "twin"});
    assert_eq!(add(&stack, &named).await.status(), StatusCode::CREATED);
    let response = add(&stack, &named).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let error: Value = response.json().await.unwrap();
    assert_eq!(
        error["error"],
        "a port named \"twin\" is already in the table; choose another name"
    );
}

#[tokio::test]
async fn bad_rows_get_400_naming_the_key() {
    let stack = Stack::start(&["http"]).await.unwrap();
    for (row, words) in [
        (json!({"port": 0, "service": "gopher"}), "known services"),
        (
            json!({"port": 0, "service": "echo", "max_rate": 0}),
            "max_rate",
        ),
        (
            json!({"port": 0, "service": "echo", "colour": "red"}),
            "colour",
        ),
        (json!({"service": "echo"}), "port"),
    ] {
        let response = add(&stack, &row).await;
        crate::assert_answer(response, StatusCode::BAD_REQUEST, words).await;
    }
}

#[tokio::test]
async fn a_removed_port_refuses_new_clients_and_drains_the_open_ones() {
    let stack = http_stack(|c| c.supervisor.shutdown_timeout = Duration::from_secs(30)).await;
    let row: Value = add(&stack, &echo_row()).await.json().await.unwrap();
    let port = row["port"].as_u64().unwrap() as u16;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut open = TcpStream::connect(addr).await.unwrap();
    crate::assert_echoes(&mut open, b"before").await;
    let mut seen = Seen::new(&stack);

    assert_eq!(remove(&stack, port).await.status(), StatusCode::NO_CONTENT);
    assert_refused(addr).await;
    assert!(!table(&stack).await.iter().any(|p| p["port"] == port));
    seen.find(|e| e.port == port && matches!(e.kind, EventKind::PortClosed { .. }))
        .await;

    // Draining, as at shutdown: the echo service was asked to finish, so it closes its side
    // (and the connection's end is accounted for).
    let mut rest = Vec::new();
    open.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    seen.find(|e| e.port == port && matches!(e.kind, EventKind::ConnectionClosed { .. }))
        .await;

    assert_eq!(remove(&stack, port).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn adding_and_removing_answer_only_to_control_allow() {
    let stack = http_stack(|c| c.control.allow = vec!["192.0.2.0/24".parse().unwrap()]).await;
    let response = add(&stack, &echo_row()).await;
    crate::assert_answer(response, StatusCode::FORBIDDEN, "[control] allow").await;
    let own = stack.addr("http").port();
    let response = remove(&stack, own).await;
    crate::assert_answer(response, StatusCode::FORBIDDEN, "[control] allow").await;
}

#[tokio::test]
async fn a_removed_ports_connections_are_cut_at_the_shutdown_deadline() {
    let stack = http_stack(|c| c.supervisor.shutdown_timeout = Duration::from_millis(200)).await;
    let row = json!({"port": 0, "service": "http", "bind": ["127.0.0.1"]});
    let row: Value = add(&stack, &row).await.json().await.unwrap();
    let port = row["port"].as_u64().unwrap() as u16;
    let mut seen = Seen::new(&stack);

    // A request that takes longer than the deadline, in flight when the port goes.
    let slow = tokio::spawn(
        crate::http_client()
            .get(format!("http://127.0.0.1:{port}/delay/5"))
            .send(),
    );
    seen.find(|e| e.port == port && matches!(e.kind, EventKind::ConnectionOpened { .. }))
        .await;
    assert_eq!(remove(&stack, port).await.status(), StatusCode::NO_CONTENT);

    let closed = seen
        .find(|e| e.port == port && matches!(e.kind, EventKind::ConnectionClosed { .. }))
        .await;
    let EventKind::ConnectionClosed { error, .. } = closed.kind else {
        unreachable!()
    };
    assert!(
        error.as_deref().is_some_and(|e| e.contains("deadline")),
        "{error:?}"
    );
    assert!(slow.await.unwrap().is_err(), "the cut request failed");
}

#[tokio::test]
async fn udp_rows_are_listed_but_come_from_the_config_file_only() {
    let stack = Stack::builder()
        .service("http")
        .udp_service("echo")
        .start()
        .await
        .unwrap();
    let udp = table(&stack)
        .await
        .into_iter()
        .find(|p| p["protocol"] == "udp")
        .expect("the UDP row is in /api/ports");
    assert_eq!(
        (udp["service"].as_str(), udp["state"].as_str()),
        (Some("echo"), Some("listening"))
    );
    let mut row = echo_row();
    row["protocol"] = "udp".into();
    let answer = add(&stack, &row).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let text = answer.text().await.unwrap();
    assert!(
        text.contains("UDP rows come from the config file"),
        "{text}"
    );
}
