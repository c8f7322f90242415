//! `switchboard probe` against a local stack: open (and what answered), refused, a listener
//! that never answers, a port whose queue is full (timeout); the JSON shape; `--wait`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;
use switchboard_probe::{State, probe, probe_all};
use switchboard_testkit::Stack;

const TIMEOUT: Duration = Duration::from_millis(500);

fn localhost() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

use crate::free_port;

#[tokio::test]
async fn open_ports_say_what_answered() {
    let stack = Stack::start(&["http", "https", "smtp"]).await.unwrap();
    let ports = [
        stack.addr("http").port(),
        stack.addr("https").port(),
        stack.addr("smtp").port(),
    ];
    let findings = probe_all("localhost", &[localhost()], &ports, TIMEOUT).await;
    let services: Vec<_> = findings
        .iter()
        .map(|f| (f.state, f.service.as_deref()))
        .collect();
    assert_eq!(
        services,
        [
            (State::Open, Some("http")),
            (State::Open, Some("https")),
            (State::Open, Some("smtp"))
        ],
        "{findings:#?}"
    );
    assert!(
        findings[0].detail.starts_with("HTTP/1.1 200 OK"),
        "{}",
        findings[0].detail
    );
    assert!(
        findings[1].detail.contains("ALPN h2"),
        "{}",
        findings[1].detail
    );
    assert!(
        findings[1]
            .detail
            .contains("issued by CN=switchboard local CA"),
        "{}",
        findings[1].detail
    );
    assert!(
        findings[2].detail.ends_with("ESMTP switchboard"),
        "{}",
        findings[2].detail
    );
}

#[tokio::test]
async fn a_port_nobody_listens_on_is_refused() {
    let port = free_port();
    let finding = probe("localhost", SocketAddr::new(localhost(), port), TIMEOUT).await;
    assert_eq!(finding.state, State::Refused);
    assert_eq!(finding.service, None);
}

#[tokio::test]
async fn a_listener_that_never_answers_is_open_but_unnamed() {
    // The kernel completes the handshake for a listening socket even if its program never
    // accepts or speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let finding = probe("localhost", silent.local_addr().unwrap(), TIMEOUT).await;
    assert_eq!(finding.state, State::Open);
    assert_eq!(finding.service, None);
    assert!(
        finding.detail.contains("neither a banner, HTTP, nor TLS"),
        "{}",
        finding.detail
    );
}

#[tokio::test]
async fn a_full_queue_looks_like_a_firewall_timeout() {
    // A listener with a backlog of 0 that never accepts: once one connection waits in its
    // queue, the kernel drops further SYNs, exactly as a dropping firewall would.
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::new(localhost(), 0).into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let _queued = std::net::TcpStream::connect(addr).unwrap();
    let finding = probe("localhost", addr, Duration::from_millis(300)).await;
    assert_eq!(finding.state, State::Timeout, "{finding:?}");
    assert_eq!(finding.detail, "no answer within 300 ms");
}

async fn run_probe(args: &[String]) -> (Option<i32>, String) {
    let output = crate::switchboard()
        .command()
        .arg("probe")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[tokio::test]
async fn json_output_and_wait_exit_codes() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let open = stack.addr("http").port().to_string();
    let closed = free_port().to_string();

    let (code, out) = run_probe(&[
        "127.0.0.1".into(),
        open.clone(),
        closed.clone(),
        "--json".into(),
    ])
    .await;
    assert_eq!(code, Some(0));
    let findings: Value = serde_json::from_str(&out).unwrap();
    let findings = findings.as_array().unwrap();
    assert_eq!(findings.len(), 2);
    for f in findings {
        for key in ["port", "address", "state", "service", "detail"] {
            assert!(f.get(key).is_some(), "no {key} in {f}");
        }
    }
    assert_eq!(findings[0]["state"], "open");
    assert_eq!(findings[0]["service"], "http");
    assert_eq!(findings[1]["state"], "refused");

    let (code, _) = run_probe(&[
        "127.0.0.1".into(),
        open.clone(),
        "--wait".into(),
        "5".into(),
    ])
    .await;
    assert_eq!(code, Some(0), "every port open: exit 0 at once");
    let (code, out) = run_probe(&[
        "127.0.0.1".into(),
        open,
        closed,
        "--wait".into(),
        "0.3".into(),
    ])
    .await;
    assert_eq!(
        code,
        Some(1),
        "a port stayed closed: exit 1 after the wait\n{out}"
    );
    assert!(out.contains("refused"), "{out}");

    let (code, _) = run_probe(&["no-such-host.invalid".into(), "80".into()]).await;
    assert_eq!(code, Some(2));
}

/// `probe --udp`, as a user runs it: a UDP echo that answers is open; a UDP port nobody
/// binds is closed (the kernel's "port unreachable"); each says so in one line.
#[tokio::test]
async fn probe_udp_tells_open_from_closed() {
    let echo = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let open = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, out) = run_probe(&[
        "127.0.0.1".into(),
        open.to_string(),
        closed.to_string(),
        "--udp".into(),
        "--json".into(),
        "--timeout".into(),
        "2000".into(),
    ])
    .await;
    assert_eq!(code, Some(0), "{out}");
    let findings: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(findings[0]["protocol"], "udp");
    assert_eq!(findings[0]["state"], "open");
    assert_eq!(findings[1]["state"], "closed");
    let (_, text) = run_probe(&["127.0.0.1".into(), closed.to_string(), "--udp".into()]).await;
    assert!(text.contains("port unreachable"), "{text}");
}

/// `probe --udp` against switchboard's own UDP rows, as a learner runs it: echo answers
/// (open); discard takes the datagram and says nothing, which UDP cannot tell from a
/// firewall that drops it (open|filtered).
#[tokio::test]
async fn probe_udp_against_switchboard_s_own_udp_rows() {
    let config = "[[port]]\nport = 0\nprotocol = \"udp\"\nservice = \"echo\"\nbind = [\"127.0.0.1\"]\n\n\
                  [[port]]\nport = 0\nprotocol = \"udp\"\nservice = \"discard\"\nbind = [\"127.0.0.1\"]\n";
    let server = crate::switchboard().start(config, &[]).await;
    let (echo, discard) = (server.addr("echo/udp"), server.addr("discard/udp"));
    let (code, out) = run_probe(&[
        "127.0.0.1".into(),
        echo.port().to_string(),
        discard.port().to_string(),
        "--udp".into(),
        "--json".into(),
        "--timeout".into(),
        "300".into(),
    ])
    .await;
    assert_eq!(code, Some(0), "{out}");
    let findings: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(findings[0]["state"], "open", "{out}");
    assert!(
        findings[0]["detail"]
            .as_str()
            .unwrap()
            .contains("switchboard probe"),
        "echo sent the probe's datagram back: {out}"
    );
    assert_eq!(findings[1]["state"], "open|filtered", "{out}");
    server.assert_no_panic();
}

/// `probe --from`: the knock comes from the address given (as a rule that admits some
/// sources only sees it), and an address of the other family is named as the problem.
#[tokio::test]
async fn probe_from_knocks_from_the_address_given() {
    let stack = Stack::builder()
        .service("smtp")
        .port(|row| row.rules.allow = vec!["127.0.0.9/32".parse().unwrap()])
        .start()
        .await
        .unwrap();
    let port = stack.addr("smtp").port().to_string();
    let from = |address: &str| ["127.0.0.1", &port, "--json", "--from", address].map(String::from);

    let (_, out) = run_probe(&from("127.0.0.9")).await;
    let allowed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(allowed[0]["service"], "smtp", "{allowed}");
    let (_, out) = run_probe(&from("127.0.0.10")).await;
    let denied: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(denied[0]["state"], "open", "{denied}");
    assert_ne!(denied[0]["service"], "smtp", "{denied}");

    let (_, out) = run_probe(&from("::1")).await;
    let mismatch: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(mismatch[0]["state"], "error", "{mismatch}");
    let detail = mismatch[0]["detail"].as_str().unwrap();
    assert!(detail.contains("another address family"), "{detail}");
}
