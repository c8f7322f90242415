//! Each port reaches its own service; a port nobody binds is refused by the kernel, and so
//! is a port switchboard stops serving.

use serde_json::Value;
use switchboard_testkit::Stack;

use crate::json_of;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn each_port_reaches_its_own_service() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();

    let who: Value =
        json_of(crate::http_client().get(stack.url("http", "/whoami?format=json"))).await;
    assert_eq!(who["service"], "http");
    assert_eq!(who["local"], stack.addr("http").to_string());

    // The same bytes sent to the echo port come back unchanged: no HTTP there.
    let mut echo = TcpStream::connect(stack.addr("echo")).await.unwrap();
    crate::assert_echoes(&mut echo, b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n").await;
}

#[tokio::test]
async fn a_port_nobody_binds_is_refused() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();
    // A port that was free a moment ago and that switchboard does not have in its table.
    let unbound = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    assert_ne!(unbound, stack.addr("http"));
    crate::assert_refused(unbound).await;
    // The port that is bound still answers.
    let status = crate::http_client()
        .get(stack.url("http", "/healthz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    // Switchboard unbinds a port of its own: from then on the kernel refuses it, as it does
    // any port nobody binds, while the other port goes on answering.
    let echo = stack.addr("echo");
    let mut before = TcpStream::connect(echo).await.unwrap();
    before.write_all(b"x").await.unwrap();
    before.read_exact(&mut [0u8; 1]).await.unwrap();
    stack.close("echo").await.unwrap();
    crate::assert_refused(echo).await;
    let ports: Value = json_of(crate::http_client().get(stack.url("http", "/api/ports"))).await;
    let row = ports["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["service"] == "echo")
        .unwrap()
        .clone();
    assert_eq!(row["state"], "closed", "{row}");
    // A connection accepted before the close goes on.
    before.write_all(b"y").await.unwrap();
    let mut answer = [0u8; 1];
    before.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"y");
    // Listening again, on the same port.
    stack.open("echo").await.unwrap();
    let mut after = TcpStream::connect(echo).await.unwrap();
    after.write_all(b"z").await.unwrap();
    after.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"z");
}

#[tokio::test]
async fn the_port_table_counts_connections_per_port() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();
    let ports_url = stack.url("http", "/api/ports");
    let client = crate::http_client();

    // Hold an echo connection open, and prove the service has it before counting.
    let mut echo = TcpStream::connect(stack.addr("echo")).await.unwrap();
    echo.write_all(b"x").await.unwrap();
    echo.read_exact(&mut [0u8; 1]).await.unwrap();

    let table: Value = json_of(client.get(&ports_url)).await;
    let ports = table["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2);
    let row = |service: &str| {
        ports
            .iter()
            .find(|p| p["service"] == service)
            .unwrap_or_else(|| panic!("no {service} row in {table}"))
            .clone()
    };
    let http = row("http");
    assert_eq!(http["port"], stack.addr("http").port());
    assert_eq!(http["protocol"], "tcp");
    assert_eq!(http["state"], "listening");
    assert_eq!(http["addresses"][0], stack.addr("http").to_string());
    assert_eq!(http["accepted"], 1, "this request's connection");
    assert_eq!(http["active"], 1);
    let echo_row = row("echo");
    assert_eq!(echo_row["accepted"], 1);
    assert_eq!(echo_row["active"], 1);

    // The client reuses its connection: still one accepted on the http port.
    let table: Value = json_of(client.get(&ports_url)).await;
    let http = table["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["service"] == "http")
        .unwrap()
        .clone();
    assert_eq!(http["accepted"], 1);
}
