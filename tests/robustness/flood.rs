//! Floods: more connections than `max_connections` and `max_per_source` allow. The ones
//! over a limit are turned away politely (HTTP 503 with Retry-After, SMTP 421 4.7.0), the
//! server's memory stays bounded, and once the flood stops everyone is served again.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use crate::{one_at_a_time, wait_for_active};
use switchboard_testkit::client::{connect_from, read_to_close};

/// Client addresses of the flood: 127.0.0.11 to 127.0.0.20.
const SOURCES: u8 = 10;
/// Connections from each.
const PER_SOURCE: usize = 40;
const MAX_CONNECTIONS: usize = 50;
const MAX_PER_SOURCE: usize = 20;
/// The server's resident memory must stay under this during the flood.
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

fn source(i: u8) -> String {
    format!("127.0.0.{}", 11 + i)
}

/// One request that holds its connection for a second when it is admitted.
async fn held_request(addr: SocketAddr, from: String) -> (String, String) {
    let mut stream = connect_from(&from, addr).await;
    stream
        .write_all(b"GET /delay/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    (from, read_to_close(&mut stream).await)
}

#[tokio::test]
async fn an_http_flood_is_refused_politely_within_a_memory_bound_and_then_served() {
    let _turn = one_at_a_time().await;
    let config = format!(
        "[[port]]\nport = 0\nservice = \"http\"\nbind = [\"127.0.0.1\"]\n\
         max_connections = {MAX_CONNECTIONS}\nmax_per_source = {MAX_PER_SOURCE}\n"
    );
    let server = crate::switchboard().start(&config, &[]).await;
    let http = server.addr("http");
    let (before, _) = server.memory_kib();

    let mut flood = JoinSet::new();
    for i in 0..SOURCES {
        for _ in 0..PER_SOURCE {
            flood.spawn(held_request(http, source(i)));
        }
    }
    let mut served: HashMap<String, usize> = HashMap::new();
    let mut refused = 0;
    while let Some(result) = flood.join_next().await {
        let (from, response) = result.unwrap();
        if response.starts_with("HTTP/1.1 200 OK") {
            *served.entry(from).or_default() += 1;
        } else {
            assert!(
                response.starts_with("HTTP/1.1 503 Service Unavailable")
                    && response.contains("Retry-After: 1"),
                "neither served nor refused politely: {response}"
            );
            refused += 1;
        }
    }
    let (_, peak) = server.memory_kib();
    let total_served: usize = served.values().sum();
    assert_eq!(total_served + refused, usize::from(SOURCES) * PER_SOURCE);
    assert!(refused > 0, "the flood never reached a limit");
    assert!(total_served > 0, "nobody was served");
    // Each request holds its slot for a second, and all were sent at once: the limits
    // bound how many were served in each second, not in total. So only the memory tells
    // whether the flood was held within bounds.
    assert!(
        peak < MEMORY_BOUND_KIB,
        "peak memory {peak} KiB (started at {before} KiB) during a flood of {} connections",
        usize::from(SOURCES) * PER_SOURCE
    );
    println!(
        "flood: {total_served} served, {refused} refused; memory {before} KiB, peak {peak} KiB"
    );

    // The flood is over: the port's count returns to this request alone, and every
    // source is served again.
    wait_for_active(http, http.port(), |n| n == 1).await;
    for i in 0..SOURCES {
        let (_, response) = held_request(http, source(i)).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    }
    server.assert_no_panic();
}

#[tokio::test]
async fn an_smtp_flood_from_one_address_gets_421_beyond_max_per_source() {
    let _turn = one_at_a_time().await;
    let config = "[[port]]\nport = 0\nservice = \"smtp\"\nbind = [\"127.0.0.1\"]\n\
                  max_per_source = 5\n\n[[port]]\nport = 0\nservice = \"http\"\n\
                  bind = [\"127.0.0.1\"]\n";
    let server = crate::switchboard().start(config, &[]).await;
    let (smtp, http) = (server.addr("smtp"), server.addr("http"));

    // Five sessions are held open; thirty more from the same address are turned away.
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut stream = connect_from("127.0.0.30", smtp).await;
        switchboard_testkit::client::read_until(&mut stream, "220 ").await;
        held.push(stream);
    }
    let mut flood = JoinSet::new();
    for _ in 0..30 {
        flood.spawn(async move {
            let mut stream = connect_from("127.0.0.30", smtp).await;
            read_to_close(&mut stream).await
        });
    }
    while let Some(answer) = flood.join_next().await {
        let answer = answer.unwrap();
        assert!(answer.starts_with("421 4.7.0 "), "{answer}");
        assert!(answer.contains("max_per_source = 5"), "{answer}");
    }
    // Another address is not affected, and when the held sessions end the first is
    // served again.
    let mut other = connect_from("127.0.0.31", smtp).await;
    switchboard_testkit::client::read_until(&mut other, "220 ").await;
    drop(held);
    wait_for_active(http, smtp.port(), |n| n == 1).await;
    let mut again = connect_from("127.0.0.30", smtp).await;
    switchboard_testkit::client::read_until(&mut again, "220 ").await;
    server.assert_no_panic();
}
