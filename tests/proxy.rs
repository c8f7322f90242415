//! The proxy service between a client and a real upstream started by the test: bytes arrive
//! exactly both ways, a half-close passes on, a dead upstream closes the client at once,
//! toxics act per direction, and proxies made through the API reach only allowed upstreams.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::EventKind;

use switchboard_proxy::{ProxyRow, UpstreamClosed};
use switchboard_testkit::{Stack, Toxic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::Seen;

/// A stack whose `proxy` port connects to `upstream`, configured as the file would.
async fn proxy_to(upstream: SocketAddr) -> Stack {
    Stack::builder()
        .service("http")
        .service("proxy")
        .port(|row| {
            row.set_keys(&ProxyRow {
                upstream: Some(upstream.to_string()),
            })
        })
        .configure(|c| c.proxy.connect_timeout = Duration::from_millis(500))
        .start()
        .await
        .unwrap()
}

/// An upstream that reads until the client finishes sending, then answers how many bytes it
/// got and closes: it sees a half-close only if the proxy passes it on.
async fn counting_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                stream.read_to_end(&mut got).await.unwrap();
                let answer = format!("got {} bytes, sum {}", got.len(), sum(&got));
                stream.write_all(answer.as_bytes()).await.unwrap();
            });
        }
    });
    addr
}

fn sum(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

#[tokio::test]
async fn bytes_cross_exactly_and_a_half_close_reaches_the_upstream() {
    let upstream = counting_upstream().await;
    let stack = proxy_to(upstream).await;
    let mut seen = Seen::new(&stack);
    let mut client = TcpStream::connect(stack.addr("proxy")).await.unwrap();
    let sent: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    client.write_all(&sent).await.unwrap();
    client.shutdown().await.unwrap(); // done sending; the answer still comes back
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    assert_eq!(
        answer,
        format!("got {} bytes, sum {}", sent.len(), sum(&sent))
    );

    // Both legs are accounted for: the client's, and the proxy's own to the upstream.
    let UpstreamClosed {
        upstream: named,
        bytes_up,
        bytes_down,
        closed_first,
        ..
    } = seen.find_said(|_: &UpstreamClosed| true).await;
    assert_eq!(named, upstream.to_string());
    assert_eq!(
        (bytes_up, bytes_down),
        (sent.len() as u64, answer.len() as u64)
    );
    assert_eq!(closed_first, "client");
    let metrics = crate::text_of(crate::http_client().get(stack.url("http", "/metrics"))).await;
    let port = stack.addr("proxy").port();
    assert!(
        metrics.contains(&format!(
            "switchboard_upstream_sent_bytes_total{{port=\"{port}\",protocol=\"tcp\",service=\"proxy\"}} {}",
            sent.len()
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_proxy_in_front_of_switchboards_own_http_port_serves_http() {
    let upstream = Stack::start(&["http", "echo"]).await.unwrap();
    let stack = proxy_to(upstream.addr("http")).await;
    let body = crate::json_of(
        crate::http_client().get(format!("http://{}/get?via=proxy", stack.addr("proxy"))),
    )
    .await;
    assert_eq!(body["args"]["via"], "proxy");

    // A megabyte through an echo upstream comes back byte for byte.
    let stack = proxy_to(upstream.addr("echo")).await;
    let mut client = TcpStream::connect(stack.addr("proxy")).await.unwrap();
    let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let (mut read, mut write) = client.split();
    let writing = async {
        write.write_all(&sent).await.unwrap();
        write.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let reading = read.read_to_end(&mut back);
    let ((), read) = tokio::join!(writing, reading);
    read.unwrap();
    assert!(back == sent, "{} bytes came back, not the same", back.len());
}

/// Connect to the proxy, see the connection closed without a byte, and return the error its
/// "closed" event gives.
async fn closed_at_once(stack: &Stack) -> Option<String> {
    let mut seen = Seen::new(stack);
    let mut client = TcpStream::connect(stack.addr("proxy")).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(crate::PATIENCE, client.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    let closed = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionClosed { .. }) && e.service == "proxy")
        .await;
    match closed.kind {
        EventKind::ConnectionClosed { error, .. } => error,
        _ => unreachable!("found by its kind"),
    }
}

#[tokio::test]
async fn a_dead_upstream_closes_the_client_at_once_and_says_why() {
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = gone.local_addr().unwrap();
    drop(gone);
    let stack = proxy_to(upstream).await;
    let error = closed_at_once(&stack).await;
    assert_eq!(
        error.as_deref(),
        Some(format!("upstream {upstream} refused the connection").as_str())
    );
}

#[tokio::test]
async fn an_upstream_that_never_accepts_is_given_up_after_connect_timeout() {
    // A listener whose queue is full: the kernel drops further handshakes, so a connect
    // waits (as behind a dropping firewall).
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(0).unwrap();
    let upstream = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let connect =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(upstream));
        if let Ok(Ok(stream)) = connect.await {
            fillers.push(stream);
        }
    }
    let stack = proxy_to(upstream).await;
    let error = closed_at_once(&stack).await;
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("[proxy] connect_timeout")),
        "{error:?}"
    );
    drop(socket);
}

#[tokio::test]
async fn toxics_act_on_the_direction_they_name() {
    let upstream = Stack::start(&["echo"]).await.unwrap();
    let stack = proxy_to(upstream.addr("echo")).await;
    let round_trip = |stack: &Stack| {
        let addr = stack.addr("proxy");
        async move {
            let mut client = TcpStream::connect(addr).await.unwrap();
            let started = Instant::now();
            crate::assert_echoes(&mut client, b"ping").await;
            started.elapsed()
        }
    };
    // Latency on the client's bytes to the upstream only.
    stack
        .add_toxic(
            "proxy",
            Toxic::latency(Duration::from_millis(300)).upstream(),
        )
        .unwrap();
    assert!(round_trip(&stack).await >= Duration::from_millis(300));
    stack.remove_toxic("proxy", "latency_upstream").unwrap();

    // Bandwidth on the bytes coming back: 64 KB at 100 KB/s take over half a second.
    stack.add_toxic("proxy", Toxic::bandwidth(100)).unwrap();
    let mut client = TcpStream::connect(stack.addr("proxy")).await.unwrap();
    let started = Instant::now();
    crate::assert_echoes(&mut client, &vec![b'x'; 64 * 1024]).await;
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn a_proxy_made_through_the_api_reaches_only_allowed_upstreams() {
    let upstream = Stack::start(&["echo"]).await.unwrap();
    let stack = Stack::start(&["http"]).await.unwrap();
    let client = crate::http_client();
    let add = |row: Value| {
        client
            .post(stack.url("http", "/api/ports"))
            .json(&row)
            .send()
    };

    let echo = upstream.addr("echo");
    let added = add(
        json!({"port": 0, "service": "proxy", "bind": ["127.0.0.1"], "upstream": echo.to_string()}),
    )
    .await
    .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let row: Value = added.json().await.unwrap();
    assert_eq!(row["upstream"], echo.to_string());
    let port = row["port"].as_u64().unwrap() as u16;
    let mut through = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    crate::assert_echoes(&mut through, b"via the api").await;

    // An address on none of this machine's networks: refused, naming the setting.
    let local = |ip: &str| {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        if_addrs::get_if_addrs().unwrap().iter().any(|i| {
            let prefix = match &i.addr {
                if_addrs::IfAddr::V4(v4) => v4.prefixlen,
                if_addrs::IfAddr::V6(v6) => v6.prefixlen,
            };
            let range: switchboard_core::Cidr = format!("{}/{prefix}", i.ip()).parse().unwrap();
            range.contains(ip)
        })
    };
    let outside = ["198.51.100.7", "203.0.113.7"]
        .into_iter()
        .find(|ip| !local(ip))
        .unwrap();
    let refused =
        add(json!({"port": 0, "service": "proxy", "upstream": format!("{outside}:5432")}))
            .await
            .unwrap();
    crate::assert_answer(refused, StatusCode::FORBIDDEN, "[proxy] allow_upstreams").await;

    let missing = add(json!({"port": 0, "service": "proxy"})).await.unwrap();
    crate::assert_answer(missing, StatusCode::BAD_REQUEST, "needs `upstream`").await;
}

#[tokio::test]
async fn allow_upstreams_narrows_what_the_api_may_proxy_to() {
    let stack = Stack::builder()
        .service("http")
        .configure(|c| c.proxy.allow_upstreams = vec!["127.0.0.2/32".into()])
        .start()
        .await
        .unwrap();
    let refused = crate::http_client()
        .post(stack.url("http", "/api/ports"))
        .json(&json!({"port": 0, "service": "proxy", "upstream": "127.0.0.1:5432"}))
        .send()
        .await
        .unwrap();
    crate::assert_answer(refused, StatusCode::FORBIDDEN, "[proxy] allow_upstreams").await;
}

/// An address outside `[proxy] allow_upstreams`, spelled as an attacker would to slip past
/// a check that compares text: decimal, hexadecimal, octal, short forms, IPv4 inside IPv6.
/// Through the control API and Toxiproxy's, each is refused; the same spellings of an
/// allowed address pass, and the proxy reaches what was checked.
#[tokio::test]
async fn other_spellings_of_an_address_meet_the_same_guard() {
    let upstream = Stack::start(&["echo"]).await.unwrap();
    let echo = upstream.addr("echo").port();
    let stack = Stack::builder()
        .service("http")
        .service("toxiproxy")
        .configure(|c| c.proxy.allow_upstreams = vec!["127.0.0.0/8".into()])
        .start()
        .await
        .unwrap();
    let client = crate::http_client();
    // 198.51.100.7 (TEST-NET-2), which nothing here may reach.
    let outside = [
        "3325256711",
        "0xc6336407",
        "0xc6.0x33.0x64.0x07",
        "0306.063.0144.07",
        "198.51.25607",
        "[::ffff:198.51.100.7]",
        "[::ffff:c633:6407]",
    ];
    for (i, host) in outside.iter().enumerate() {
        let upstream = format!("{host}:80");
        let refused = client
            .post(stack.url("http", "/api/ports"))
            .json(&json!({"port": 0, "service": "proxy", "upstream": upstream}))
            .send()
            .await
            .unwrap();
        crate::assert_answer(refused, StatusCode::FORBIDDEN, "[proxy] allow_upstreams").await;
        let refused = client
            .post(stack.url("toxiproxy", "/proxies"))
            .json(&json!({"name": format!("p{i}"), "listen": "127.0.0.1:0", "upstream": upstream}))
            .send()
            .await
            .unwrap();
        crate::assert_answer(refused, StatusCode::FORBIDDEN, "[proxy] allow_upstreams").await;
    }
    // 127.0.0.1, as a decimal number and inside IPv6: allowed, and reached.
    for host in ["2130706433", "[::ffff:127.0.0.1]"] {
        let added = client
            .post(stack.url("http", "/api/ports"))
            .json(
                &json!({"port": 0, "service": "proxy", "bind": ["127.0.0.1"],
                          "upstream": format!("{host}:{echo}")}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), StatusCode::CREATED, "{host}");
        let row: Value = added.json().await.unwrap();
        let port = row["port"].as_u64().unwrap() as u16;
        let mut through = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        crate::assert_echoes(&mut through, host.as_bytes()).await;
    }
}
