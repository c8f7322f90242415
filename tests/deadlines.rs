//! Every phase of a connection has a deadline: a client that goes quiet on a row whose
//! protocol has no clock of its own (`idle_timeout`), one that never reads what it asked for
//! (`[supervisor] write_timeout`), and one that sends a request body too slowly
//! (`[http] min_body_rate`) each lose their slot, so that a handful of them cannot hold a
//! port's `max_connections` for ever.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchboard_core::{Event, EventKind};
use switchboard_testkit::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Seen;
use crate::classic::read_to_close;

const SHORT: Duration = Duration::from_millis(500);

/// The error the connection from `local` (the client's own address) was closed with.
async fn closed_with(seen: &mut Seen, client: SocketAddr) -> String {
    let event = seen
        .find(|e: &Event| matches!(&e.kind, EventKind::ConnectionClosed { peer, .. } if *peer == client))
        .await;
    match event.kind {
        EventKind::ConnectionClosed { error, .. } => error.unwrap_or_default(),
        _ => unreachable!("found by its kind"),
    }
}

#[tokio::test]
async fn idle_clients_of_a_classic_row_lose_their_slots_at_idle_timeout() {
    let stack = Stack::builder()
        .service("echo")
        .port(|p| {
            p.max_connections = 2;
            p.idle_timeout = Some(SHORT);
        })
        .start()
        .await
        .unwrap();
    let mut seen = Seen::new(&stack);
    let echo = stack.addr("echo");
    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(echo).await.unwrap());
    }
    for stream in &mut idle {
        let local = stream.local_addr().unwrap();
        assert!(read_to_close(stream).await.is_empty());
        let error = closed_with(&mut seen, local).await;
        assert!(error.contains("idle_timeout"), "{error}");
    }
    assert!(started.elapsed() >= SHORT, "closed before idle_timeout");
    // Their slots are free again: a client is served.
    let mut client = TcpStream::connect(echo).await.unwrap();
    client.write_all(b"still here\n").await.unwrap();
    let mut answer = [0u8; 11];
    client.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"still here\n");
}

#[tokio::test]
async fn a_client_that_talks_is_not_idle() {
    let stack = Stack::builder()
        .service("echo")
        .port(|p| p.idle_timeout = Some(SHORT))
        .start()
        .await
        .unwrap();
    let mut client = TcpStream::connect(stack.addr("echo")).await.unwrap();
    let mut answer = [0u8; 1];
    // Four times the idle timeout in all, never more than half of it quiet.
    for _ in 0..8 {
        tokio::time::sleep(SHORT / 2).await;
        client.write_all(b"x").await.unwrap();
        client.read_exact(&mut answer).await.unwrap();
    }
}

#[tokio::test]
async fn http_keeps_its_own_clocks_not_the_idle_timeout() {
    let stack = Stack::builder()
        .service("http")
        .configure(|c| c.supervisor.idle_timeout = SHORT)
        .start()
        .await
        .unwrap();
    // /delay/1 passes no byte either way for a second: HTTP's clocks allow it.
    let body = crate::text_of(crate::http_client().get(stack.url("http", "/delay/1"))).await;
    assert!(body.contains("\"url\""), "{body}");
}

/// Ask for far more than the socket buffers hold, and never read it.
async fn never_reading(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let stream = TcpStream::connect(addr).await.unwrap();
    // A small receive window, so the server's writes stall soon.
    socket2::SockRef::from(&stream)
        .set_recv_buffer_size(4096)
        .unwrap();
    let mut stream = stream;
    stream.write_all(request).await.unwrap();
    stream
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_at_write_timeout() {
    let stack = Stack::builder()
        .service("http")
        .port(|p| p.max_connections = 1)
        .service("chargen")
        .configure(|c| c.supervisor.write_timeout = SHORT)
        .start()
        .await
        .unwrap();
    let mut seen = Seen::new(&stack);
    let http = stack.addr("http");
    // Pipelined requests for 100 KB each: megabytes that nobody reads.
    let requests = "GET /bytes/102400 HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
    let stalled = never_reading(http, requests.as_bytes()).await;
    let error = closed_with(&mut seen, stalled.local_addr().unwrap()).await;
    assert!(error.contains("write_timeout"), "{error}");
    // Its slot is free: the port's only slot serves the next client.
    let answer = crate::http_client()
        .get(stack.url("http", "/get"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    // chargen writes for ever: a client that never reads is cut too.
    let stalled = never_reading(stack.addr("chargen"), b"").await;
    let error = closed_with(&mut seen, stalled.local_addr().unwrap()).await;
    assert!(error.contains("write_timeout"), "{error}");
}

/// A POST of `length` bytes to `/post` whose head and first `first` bytes are sent now.
async fn post_started(addr: SocketAddr, length: usize, first: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /post HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b'a'; first]).await.unwrap();
    stream
}

#[tokio::test]
async fn a_body_slower_than_min_body_rate_gets_408() {
    let stack = Stack::builder()
        .service("http")
        .configure(|c| {
            c.http.min_body_rate = 100;
            c.http.body_grace = SHORT;
        })
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    let mut stream = post_started(stack.addr("http"), 10_000, 10).await;
    let (mut reader, mut writer) = stream.split();
    // A byte every 100 ms: 10 bytes a second, a tenth of the rate asked for.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b"a").await.is_err() {
                return;
            }
        }
    };
    let answer = tokio::select! {
        answer = switchboard_testkit::client::read_to_close(&mut reader) => answer,
        () = trickle => unreachable!("the trickle stops only when the server closes"),
    };
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("min_body_rate"), "{answer}");
    assert!(started.elapsed() >= SHORT, "cut before body_grace");
}

#[tokio::test]
async fn a_body_that_keeps_the_pace_is_read_whole() {
    let stack = Stack::builder()
        .service("http")
        .configure(|c| {
            c.http.min_body_rate = 1000;
            c.http.body_grace = SHORT;
        })
        .start()
        .await
        .unwrap();
    // 3,000 bytes over about 1.5 s: twice the pace asked for, three times the grace.
    let mut stream = post_started(stack.addr("http"), 3000, 0).await;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.write_all(&[b'a'; 200]).await.unwrap();
    }
    let answer = switchboard_testkit::client::read_until(&mut stream, "\"url\"").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn bodies_in_flight_share_max_buffered_bytes() {
    let stack = Stack::builder()
        .service("http")
        .configure(|c| c.supervisor.max_buffered_bytes = 100_000)
        .start()
        .await
        .unwrap();
    let http = stack.addr("http");
    let post = |size: usize| {
        crate::http_client()
            .post(stack.url("http", "/post"))
            .body(vec![b'b'; size])
            .send()
    };
    // Alone more than the budget: 503, and a later try may succeed.
    let over = post(150_000).await.unwrap();
    assert_eq!(over.status(), 503);
    assert_eq!(over.headers()["retry-after"], "1");
    assert!(over.text().await.unwrap().contains("max_buffered_bytes"));

    // One client holds 80,000 bytes of an unfinished body: the next 50,000 find no room.
    let mut holding = post_started(http, 90_000, 80_000).await;
    let refused = loop {
        let answer = post(50_000).await.unwrap();
        if answer.status() == 503 {
            break answer;
        }
        assert_eq!(answer.status(), 200);
    };
    assert!(refused.text().await.unwrap().contains("max_buffered_bytes"));
    // The first finishes and is answered; its bytes are given back.
    holding.write_all(&[b'a'; 10_000]).await.unwrap();
    let answer = switchboard_testkit::client::read_until(&mut holding, "\"url\"").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(holding);
    let answer = post(50_000).await.unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn a_message_that_finds_max_buffered_bytes_spent_gets_452_and_the_session_goes_on() {
    let stack = Stack::builder()
        .service("smtp")
        .configure(|c| c.supervisor.max_buffered_bytes = 100_000)
        .start()
        .await
        .unwrap();
    let (mut chat, _) = crate::Chat::connect(stack.addr("smtp")).await;
    assert!(chat.cmd("EHLO tests.example").await.starts_with("250"));
    for (size, reply) in [(150_000, "452 4.3.1"), (1000, "250 2.0.0")] {
        assert!(
            chat.cmd("MAIL FROM:<a@example.test>")
                .await
                .starts_with("250")
        );
        assert!(
            chat.cmd("RCPT TO:<b@example.test>")
                .await
                .starts_with("250")
        );
        assert!(chat.cmd("DATA").await.starts_with("354"));
        let line = format!("{}\r\n", "m".repeat(98));
        chat.send(&format!(
            "Subject: {size}\r\n\r\n{}",
            line.repeat(size / 100)
        ))
        .await;
        let answer = chat.cmd(".").await;
        assert!(answer.starts_with(reply), "{size}: {answer}");
    }
    assert_eq!(stack.mail().list().len(), 1, "only the message that fit");
}
