//! Slow clients: hundreds of connections that send a request head or a command a byte at a
//! time, or nothing at all. A normal client is served while they are all connected, and
//! each of them is closed by the documented timeout, not before.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::{http_get, one_at_a_time, wait_for_active};
use switchboard_testkit::binary::port_table;
use switchboard_testkit::client::{PATIENCE, read_to_close};

/// How many slow connections of each kind, per service.
const SLOW: usize = 100;
const TIMEOUT: Duration = Duration::from_secs(2);
fn config() -> String {
    port_table(&["http", "smtp"])
        + "[http]\nheader_read_timeout = \"2s\"\nkeep_alive_timeout = \"2s\"\n\n\
           [smtp]\ncommand_timeout = \"2s\"\n"
}

/// Connect, send `head`, then one byte of `filler` every 100 ms, never finishing; return
/// what the server sent and how long it kept the connection.
async fn trickle(addr: SocketAddr, head: &'static [u8], filler: u8) -> (String, Duration) {
    let started = Instant::now();
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    let writing = tokio::spawn(async move {
        if writer.write_all(head).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(&[filler]).await.is_err() {
                return;
            }
        }
    });
    let received = read_to_close(&mut reader).await;
    writing.abort();
    (received, started.elapsed())
}

/// Connect and say nothing.
async fn silent(addr: SocketAddr) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let received = read_to_close(&mut stream).await;
    (received, started.elapsed())
}

/// Every slow connection's outcome, once the server has closed them all.
async fn outcomes(mut slow: JoinSet<(String, Duration)>) -> Vec<(String, Duration)> {
    let mut all = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while let Some(outcome) = slow.join_next().await {
            all.push(outcome.unwrap());
        }
    })
    .await
    .expect("slow connections were still open long after their timeout");
    all
}

#[tokio::test]
async fn slow_http_clients_do_not_delay_others_and_are_closed_by_the_timeouts() {
    let _turn = one_at_a_time().await;
    let server = crate::switchboard().start(&config(), &[]).await;
    let http = server.addr("http");

    let mut slow = JoinSet::new();
    for _ in 0..SLOW {
        slow.spawn(trickle(http, b"GET / HTTP/1.1\r\nX-Slow: ", b'a'));
        slow.spawn(silent(http));
    }
    // Served while every slow connection is open: /api/ports counts them, and this one.
    let active = wait_for_active(http, http.port(), |n| n > 2 * SLOW as u64).await;
    assert!(active > 2 * SLOW as u64);
    assert!(http_get(http, "/healthz").await.ends_with("ok\n"));

    for (received, lasted) in outcomes(slow).await {
        assert_eq!(received, "", "a slow client got an answer");
        assert!(
            lasted >= TIMEOUT - Duration::from_millis(100),
            "closed after {lasted:?}"
        );
    }
    assert!(
        server
            .logs
            .transcript()
            .contains("http header_read_timeout")
    );
    assert!(server.logs.transcript().contains("http keep_alive_timeout"));
    server.assert_no_panic();
}

#[tokio::test]
async fn slow_smtp_clients_do_not_delay_others_and_get_421_at_the_command_timeout() {
    let _turn = one_at_a_time().await;
    let server = crate::switchboard().start(&config(), &[]).await;
    let (http, smtp) = (server.addr("http"), server.addr("smtp"));

    let mut slow = JoinSet::new();
    for _ in 0..SLOW {
        slow.spawn(trickle(smtp, b"EHLO ", b'a'));
        slow.spawn(silent(smtp));
    }
    wait_for_active(http, smtp.port(), |n| n >= 2 * SLOW as u64).await;
    let mut normal = TcpStream::connect(smtp).await.unwrap();
    normal
        .write_all(
            b"EHLO ok\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n\
              Subject: served\r\n\r\nbody\r\n.\r\nQUIT\r\n",
        )
        .await
        .unwrap();
    let transcript = read_to_close(&mut normal).await;
    assert!(
        transcript.contains("250 2.0.0 OK: queued as"),
        "{transcript}"
    );

    for (received, lasted) in outcomes(slow).await {
        assert!(
            received.ends_with("421 4.4.2 Timeout waiting for a command, closing connection\r\n"),
            "{received}"
        );
        assert!(
            lasted >= TIMEOUT - Duration::from_millis(100),
            "closed after {lasted:?}"
        );
    }
    server.assert_no_panic();
}
