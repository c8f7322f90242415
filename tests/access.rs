//! Access rules per port (allow and deny ranges; the most specific wins), applied after the
//! kernel has accepted a connection, and the guard of the control API.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::Value;
use switchboard_core::{Cidr, EventKind};
use switchboard_testkit::Stack;
use tokio::io::AsyncWriteExt;

use crate::connect_from;
use crate::{Seen, read_to_close};

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|c| c.parse().unwrap()).collect()
}

async fn answer(addr: SocketAddr, source: &str, request: &str) -> String {
    let mut stream = connect_from(source, addr).await;
    let _ = stream.write_all(request.as_bytes()).await;
    read_to_close(&mut stream).await
}

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn allow_and_deny_by_source_address() {
    // The article's firewall: an admin port reachable from one address only.
    let stack = Stack::builder()
        .service("http")
        .port(|p| {
            p.rules.allow = cidrs(&["127.0.0.2"]);
            p.rules.deny = cidrs(&["127.0.0.0/8"]);
        })
        .start()
        .await
        .unwrap();
    let addr = stack.addr("http");
    let mut seen = Seen::new(&stack);

    assert!(
        answer(addr, "127.0.0.2", HEALTHZ)
            .await
            .starts_with("HTTP/1.1 200 OK")
    );
    // Denied: the TCP handshake succeeded (the kernel accepted), then the connection was
    // closed without a word: no HTTP answer at all.
    assert_eq!(answer(addr, "127.0.0.3", HEALTHZ).await, "");
    let EventKind::ConnectionDenied { peer, rule, .. } = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionDenied { .. }))
        .await
        .kind
    else {
        unreachable!()
    };
    assert_eq!(peer.ip().to_string(), "127.0.0.3");
    assert_eq!(rule, "deny 127.0.0.0/8");
}

#[tokio::test]
async fn the_port_table_and_page_say_rules_are_not_a_firewall() {
    let stack = Stack::builder()
        .service("http")
        .port(|p| p.rules.deny = cidrs(&["127.0.0.9"]))
        .start()
        .await
        .unwrap();
    assert_eq!(answer(stack.addr("http"), "127.0.0.9", HEALTHZ).await, "");
    let table: Value =
        crate::json_of(crate::http_client().get(stack.url("http", "/api/ports"))).await;
    let row = &table["ports"][0];
    assert_eq!(row["rules"], serde_json::json!(["deny 127.0.0.9/32"]));
    assert_eq!(row["denied"], 1);
    let page = answer(
        stack.addr("http"),
        "127.0.0.1",
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(page.contains("deny 127.0.0.9/32"), "{page}");
    assert!(page.contains("not a firewall"), "{page}");
}

#[tokio::test]
async fn the_control_api_answers_only_to_control_allow() {
    let stack = Stack::builder()
        .service("http")
        .configure(|c| c.control.allow = cidrs(&["127.0.0.1"]))
        .start()
        .await
        .unwrap();
    let addr = stack.addr("http");
    let reset = "POST /api/reset HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let outsider = answer(addr, "127.0.0.7", reset).await;
    assert!(outsider.starts_with("HTTP/1.1 403 Forbidden"), "{outsider}");
    assert!(outsider.contains("127.0.0.7 is not in it"), "{outsider}");
    let toxics = format!(
        "GET /api/ports/{}/toxics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    assert!(
        answer(addr, "127.0.0.7", &toxics)
            .await
            .starts_with("HTTP/1.1 403")
    );
    // The read-only views stay open to everyone.
    assert!(
        answer(addr, "127.0.0.7", HEALTHZ)
            .await
            .starts_with("HTTP/1.1 200")
    );
    // And the allowed address may.
    let insider = crate::http_client()
        .post(stack.url("http", "/api/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(insider.status(), StatusCode::NO_CONTENT);
}
