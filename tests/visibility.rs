//! Making ports visible: the event stream (each kind), its SSE framing, the metrics, the
//! page, and `switchboard ports`.

use std::io::ErrorKind;
use std::net::SocketAddr;

use serde_json::Value;
use switchboard_core::{Event, EventKind};
use switchboard_mail::MessageCaptured;
use switchboard_testkit::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{
    Chat, Seen, http_client, json_of, next_event, read_until, send_mail, tls_client_config,
};

async fn full_stack() -> Stack {
    Stack::builder()
        .service("http")
        .service("https")
        .service("smtp")
        .service("echo")
        .configure(|c| {
            let echo = c.ports.iter_mut().find(|p| p.service == "echo").unwrap();
            echo.max_connections = 1;
            echo.rules.deny = vec!["127.0.0.66".parse().unwrap()];
        })
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_kind_of_event_is_in_the_stream() {
    let mut stack = full_stack().await;
    let mut seen = Seen::new(&stack);

    // Opened and closed, with bytes each way.
    let mut echo = TcpStream::connect(stack.addr("echo")).await.unwrap();
    echo.write_all(b"ping").await.unwrap();
    echo.read_exact(&mut [0u8; 4]).await.unwrap();
    let Event {
        port,
        service,
        kind: EventKind::ConnectionOpened { peer, .. },
        ..
    } = seen
        .find(|e| e.service == "echo" && matches!(e.kind, EventKind::ConnectionOpened { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        (port, service, peer),
        (
            stack.addr("echo").port(),
            "echo",
            echo.local_addr().unwrap()
        )
    );

    // The port is full with one connection: the next one is turned away.
    let second = TcpStream::connect(stack.addr("echo")).await.unwrap();
    let EventKind::ConnectionLimited { limit, .. } = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionLimited { .. }))
        .await
        .kind
    else {
        unreachable!()
    };
    assert_eq!(limit, "max_connections");
    // A source the rules deny is closed before it reaches the service.
    let _denied = crate::connect_from("127.0.0.66", stack.addr("echo")).await;
    let EventKind::ConnectionDenied { rule, .. } = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionDenied { .. }))
        .await
        .kind
    else {
        unreachable!()
    };
    assert_eq!(rule, "deny 127.0.0.66/32");
    drop(echo);
    let EventKind::ConnectionClosed {
        bytes_in,
        bytes_out,
        error,
        ..
    } = seen
        .find(|e| e.service == "echo" && matches!(e.kind, EventKind::ConnectionClosed { .. }))
        .await
        .kind
    else {
        unreachable!()
    };
    assert_eq!((bytes_in, bytes_out, error), (4, 4, None));
    drop(second);

    // TLS done, and TLS failed.
    let client = crate::client_builder()
        .tls_backend_preconfigured(tls_client_config(Some(stack.ca_pem()), &[b"h2"]))
        .build()
        .unwrap();
    client
        .get(stack.url("https", "/healthz"))
        .send()
        .await
        .unwrap();
    let EventKind::TlsEstablished { tls, .. } = seen
        .find(|e| matches!(e.kind, EventKind::TlsEstablished { .. }))
        .await
        .kind
    else {
        unreachable!()
    };
    assert_eq!(tls.alpn.as_deref(), Some("h2"));
    let mut plain = TcpStream::connect(stack.addr("https")).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    seen.find(|e| matches!(e.kind, EventKind::TlsFailed { .. }))
        .await;

    // A captured message.
    let id = send_mail(
        stack.addr("smtp"),
        "a@x.test",
        &["b@x.test"],
        "Subject: e\r\n\r\nx\r\n",
    )
    .await;
    let MessageCaptured {
        message_id,
        from,
        to,
        ..
    } = seen.find_said(|_: &MessageCaptured| true).await;
    assert_eq!(
        (message_id, from, to),
        (id, "a@x.test".to_owned(), vec!["b@x.test".to_owned()])
    );

    // Bound ports show as listening (the table marks each port it binds); closing them at
    // shutdown is an event per socket.
    let table = json_of(http_client().get(stack.url("http", "/api/ports"))).await;
    assert!(
        table["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "listening")
    );
    stack.request_shutdown();
    let EventKind::PortClosed { addr, .. } = seen
        .find(|e| matches!(e.kind, EventKind::PortClosed { .. }))
        .await
        .kind
    else {
        unreachable!()
    };
    assert!(
        stack.addrs("http").contains(&addr)
            || stack.addrs("https").contains(&addr)
            || stack.addrs("smtp").contains(&addr)
            || stack.addrs("echo").contains(&addr)
    );
}

/// Open `/api/events` on a raw socket and return it after the response head.
async fn open_feed(addr: SocketAddr) -> TcpStream {
    let mut feed = TcpStream::connect(addr).await.unwrap();
    feed.write_all(
        b"GET /api/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_until(&mut feed, "\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/event-stream"), "{head}");
    feed
}

#[tokio::test]
async fn server_sent_events_are_named_json_objects() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let mut feed = open_feed(stack.addr("http")).await;
    // The feed is subscribed once its head is out; this mail comes after.
    send_mail(
        stack.addr("smtp"),
        "a@x.test",
        &["b@x.test"],
        "Subject: sse\r\n\r\nx\r\n",
    )
    .await;
    // Each event is one chunk of the (chunked) response: a name line and a data line.
    let text = read_until(&mut feed, r#""kind":"message_captured""#).await;
    let block = text.split("event: message_captured\n").nth(1).unwrap();
    let data = block
        .lines()
        .next()
        .unwrap()
        .strip_prefix("data: ")
        .unwrap();
    let json: Value = serde_json::from_str(data).unwrap();
    assert_eq!(json["kind"], "message_captured");
    assert_eq!(json["from"], "a@x.test");
    assert!(json["at"].as_str().unwrap().ends_with('Z'));
    // The smtp connection's own events came through the same stream, before it.
    assert!(text.contains("event: connection_opened\ndata: {"), "{text}");
}

#[tokio::test]
async fn metrics_are_labelled_by_port_protocol_and_service() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let mut events = stack.events().subscribe();
    send_mail(
        stack.addr("smtp"),
        "a@x.test",
        &["b@x.test"],
        "Subject: m\r\n\r\nx\r\n",
    )
    .await;
    // The client has read QUIT's reply; wait until the server has closed its side too.
    next_event(&mut events, |e| {
        e.service == "smtp" && matches!(e.kind, EventKind::ConnectionClosed { .. })
    })
    .await;
    let smtp = stack.addr("smtp").port();
    let http = stack.addr("http").port();
    let response = http_client()
        .get(stack.url("http", "/metrics"))
        .send()
        .await
        .unwrap();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    for line in [
        format!(
            "switchboard_connections_accepted_total{{port=\"{smtp}\",protocol=\"tcp\",service=\"smtp\"}} 1"
        ),
        format!(
            "switchboard_connections_active{{port=\"{smtp}\",protocol=\"tcp\",service=\"smtp\"}} 0"
        ),
        format!(
            "switchboard_messages_captured_total{{port=\"{smtp}\",protocol=\"tcp\",service=\"smtp\"}} 1"
        ),
        format!(
            "switchboard_connections_active{{port=\"{http}\",protocol=\"tcp\",service=\"http\"}} 1"
        ),
    ] {
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
    assert!(text.contains(&format!(
        "switchboard_received_bytes_total{{port=\"{smtp}\",protocol=\"tcp\",service=\"smtp\"}} "
    )));
}

#[tokio::test]
async fn the_page_is_a_building_directory() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    chat.cmd("NOOP").await; // one connection open now, counted
    let http = stack.addr("http");
    let mut socket = TcpStream::connect(http).await.unwrap();
    let me = socket.local_addr().unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let html = crate::read_to_close(&mut socket).await;
    let smtp = stack.addr("smtp").port();
    for needle in [
        "<caption>Ports at localhost: who answers, and how busy they are</caption>".to_owned(),
        format!(
            r#"<tr data-port="{smtp}" data-service="smtp" data-protocol="tcp" data-state="listening" data-sign="✉ mail slot">"#
        ),
        r#"<td data-field="state">listening</td>"#.to_owned(),
        // The picture above the table: the scripts draw it from the table's rows.
        r#"<figure id="building" data-host="localhost">"#.to_owned(),
        r#"<script src="/assets/building.js" defer></script>"#.to_owned(),
        // The unbound well-known ports, and what happens there.
        r#"<tr class="unbound" data-port="21" data-service="ftp""#.to_owned(),
        r#"<tr class="unbound" data-port="22" data-service="ssh""#.to_owned(),
        format!("<code>{me}</code>"),
        format!("<code>{http}</code>"),
        format!("swaks --server localhost:{smtp} --to you@example.test"),
        "curl -v telnet://localhost:21".to_owned(),
        r#"<ol id="feed" aria-live="polite""#.to_owned(),
        r#"<script src="/assets/page.js" defer></script>"#.to_owned(),
    ] {
        assert!(html.contains(&needle), "missing {needle} in\n{html}");
    }
    // The smtp row counts the connection we hold: one now, one in total.
    let row = html
        .split(&format!(r#"<tr data-port="{smtp}" "#))
        .nth(1)
        .unwrap();
    assert!(row.contains(r#"<td data-field="active">1</td>"#), "{row}");
    // Port 21 is refused on this machine unless something else listens there: the page
    // must say which, truthfully.
    let refused = std::net::TcpStream::connect("127.0.0.1:21")
        .err()
        .is_some_and(|e| e.kind() == ErrorKind::ConnectionRefused);
    let row21 = html.split(r#"data-port="21" "#).nth(1).unwrap();
    assert_eq!(row21.contains("nobody listens here"), refused, "{row21}");

    for (path, kind) in [
        ("/assets/page.js", "text/javascript"),
        ("/assets/page.css", "text/css"),
    ] {
        let asset = http_client()
            .get(stack.url("http", path))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), 200);
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
}
