//! docs/ARCHITECTURE.md's worked example, run: the qotd service, added as one crate and one
//! line of the app's table, answers its rows with their own key, `quote`, which its crate
//! alone reads and checks; a row of another service may not have it.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_testkit::Stack;
use tokio::net::TcpStream;

use crate::classic::read_to_close;

/// Add `row` through the control API.
async fn add(stack: &Stack, row: Value) -> reqwest::Response {
    crate::http_client()
        .post(stack.url("http", "/api/ports"))
        .json(&row)
        .send()
        .await
        .unwrap()
}

/// What a client of `port` on loopback is sent before the service closes.
async fn quote_of(port: &Value) -> String {
    let port = port["port"].as_u64().unwrap() as u16;
    let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    String::from_utf8(read_to_close(&mut stream).await).unwrap()
}

#[tokio::test]
async fn a_qotd_row_sends_its_quote_and_closes() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let row = |quote: Option<&str>| {
        let mut row = json!({"port": 0, "service": "qotd", "bind": ["127.0.0.1"]});
        if let Some(quote) = quote {
            row["quote"] = quote.into();
        }
        row
    };
    let plain: Value = add(&stack, row(None)).await.json().await.unwrap();
    assert_eq!(
        quote_of(&plain).await,
        "A port is a door; a service is whoever answers it.\r\n"
    );
    let own: Value = add(&stack, row(Some("Ports are cheap.")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        own["quote"], "Ports are cheap.",
        "the table shows its target"
    );
    assert_eq!(quote_of(&own).await, "Ports are cheap.\r\n");
}

#[tokio::test]
async fn the_quote_key_is_the_qotd_crates_own() {
    let stack = Stack::start(&["http"]).await.unwrap();
    for (row, words) in [
        (
            json!({"port": 0, "service": "echo", "quote": "x"}),
            "`quote` is for qotd rows, not echo",
        ),
        (
            json!({"port": 0, "service": "qotd", "quote": ""}),
            "`quote` has 0 characters; give 1 to 511 (RFC 865)",
        ),
        (
            json!({"port": 0, "service": "qotd", "quote": 7}),
            "invalid type: integer `7`, expected a string",
        ),
    ] {
        crate::assert_answer(add(&stack, row).await, StatusCode::BAD_REQUEST, words).await;
    }
}
