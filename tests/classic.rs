//! The classic inetd builtins over TCP and UDP, each against its RFC: discard says nothing,
//! daytime sends one line, time four bytes counting from 1900, chargen its rotating lines
//! (until the client closes, over TCP; one datagram of whole lines per datagram, over UDP),
//! echo the bytes it got. And UDP rows under the port table's rules, rates, caps and
//! shutdown, like TCP rows.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_core::{Event, EventKind, PortStatus, Protocol};
use switchboard_testkit::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::{PATIENCE, Seen};

/// Everything the service sends until it closes.
pub(crate) async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got))
        .await
        .expect("the service did not close")
        .unwrap();
    got
}

async fn stack() -> Stack {
    Stack::start(&["discard", "daytime", "chargen", "time"])
        .await
        .unwrap()
}

#[tokio::test]
async fn discard_takes_everything_and_says_nothing() {
    let stack = stack().await;
    let mut stream = TcpStream::connect(stack.addr("discard")).await.unwrap();
    stream.write_all(&[b'x'; 100_000]).await.unwrap();
    stream.shutdown().await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.is_empty(), "discard sent {} bytes", answer.len());
}

#[tokio::test]
async fn daytime_sends_one_line_and_closes() {
    let stack = stack().await;
    let mut stream = TcpStream::connect(stack.addr("daytime")).await.unwrap();
    let line = String::from_utf8(read_to_close(&mut stream).await).unwrap();
    let year = time::OffsetDateTime::now_utc().year().to_string();
    assert!(
        line.ends_with("-UTC\r\n") && line.contains(&year),
        "{line:?}"
    );
    assert_eq!(line.lines().count(), 1);
}

#[tokio::test]
async fn time_sends_seconds_since_1900() {
    let stack = stack().await;
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut stream = TcpStream::connect(stack.addr("time")).await.unwrap();
    let bytes = read_to_close(&mut stream).await;
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(bytes.len(), 4);
    let since_1900 = u64::from(u32::from_be_bytes(bytes.try_into().unwrap()));
    let unix = since_1900 - 2_208_988_800;
    assert!(
        (before..=after).contains(&unix),
        "{unix} not in {before}..={after}"
    );
}

#[tokio::test]
async fn chargen_sends_its_pattern_until_the_client_closes() {
    let stack = stack().await;
    let mut stream = TcpStream::connect(stack.addr("chargen")).await.unwrap();
    let mut lines = vec![0u8; 74 * 200];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut lines))
        .await
        .unwrap()
        .unwrap();
    for (n, line) in lines.chunks(74).enumerate() {
        assert!(line.ends_with(b"\r\n"), "line {n}");
        let first = line[0];
        assert_eq!(first, b' ' + (n % 95) as u8, "line {n} starts one further");
        assert!(line[..72].iter().all(|b| (b' '..=b'~').contains(b)));
    }
    // Input is ignored; closing ends the stream of lines.
    stream.write_all(b"ignored\r\n").await.unwrap();
    drop(stream);
    let mut again = TcpStream::connect(stack.addr("chargen")).await.unwrap();
    let mut first = [0u8; 74];
    again.read_exact(&mut first).await.unwrap();
    assert!(first.starts_with(b" !\"#"));
}

/// A UDP socket of our own on 127.0.0.1.
async fn udp_client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// Send `datagram` to `to` and wait for the one answer.
async fn ask(client: &UdpSocket, to: SocketAddr, datagram: &[u8]) -> Vec<u8> {
    client.send_to(datagram, to).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, from) = tokio::time::timeout(PATIENCE, client.recv_from(&mut buf))
        .await
        .expect("no answer came")
        .unwrap();
    assert_eq!(from, to, "the answer comes from the port asked");
    buf.truncate(n);
    buf
}

/// The `datagram` event for a datagram from `from` to the UDP port of `service`.
async fn datagram_event(seen: &mut Seen, service: &str, from: SocketAddr) -> Event {
    seen.find(|e| {
        e.service == service
            && e.protocol == Protocol::Udp
            && matches!(e.kind, EventKind::Datagram { peer, .. } if peer == from)
    })
    .await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn every_builtin_answers_over_udp_as_its_rfc_says() {
    // chargen's whole answer needs the cap raised from 64 (what an empty datagram gets by
    // default, `with_the_defaults_an_empty_datagram_gets_at_most_64_bytes_back`).
    let raised = Stack::builder().configure(|c| c.supervisor.udp_max_answer = 512);
    let stack = ["echo", "discard", "daytime", "chargen", "time"]
        .iter()
        .fold(raised, |b, name| b.udp_service(name))
        .start()
        .await
        .unwrap();
    let mut seen = Seen::new(&stack);
    let client = udp_client().await;
    let me = client.local_addr().unwrap();

    // echo: the same bytes, exactly, however many (up to a UDP datagram's size).
    let bytes: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 256) as u8).collect();
    assert_eq!(ask(&client, stack.udp_addr("echo"), &bytes).await, bytes);
    assert_eq!(ask(&client, stack.udp_addr("echo"), b"").await, b"");

    // daytime: one line, whatever the datagram said.
    let line = String::from_utf8(ask(&client, stack.udp_addr("daytime"), b"?").await).unwrap();
    let year = time::OffsetDateTime::now_utc().year().to_string();
    assert!(
        line.ends_with("-UTC\r\n") && line.contains(&year),
        "{line:?}"
    );

    // time: four bytes, seconds since 1900.
    let before = unix_now();
    let bytes = ask(&client, stack.udp_addr("time"), b"").await;
    let after = unix_now();
    let unix = u64::from(u32::from_be_bytes(bytes.try_into().unwrap())) - 2_208_988_800;
    assert!((before..=after).contains(&unix), "{unix}");

    // chargen: one datagram of whole lines (at most 512 characters), and the next one goes
    // on with the pattern.
    let first = ask(&client, stack.udp_addr("chargen"), b"").await;
    let second = ask(&client, stack.udp_addr("chargen"), b"").await;
    assert_eq!(first.len(), 6 * 74);
    let lines: Vec<&[u8]> = first.chunks(74).chain(second.chunks(74)).collect();
    for (n, line) in lines.iter().enumerate() {
        assert!(line.ends_with(b"\r\n"), "line {n}");
        assert_eq!(line[0], b' ' + n as u8, "line {n} starts one further");
    }

    // discard: the datagram is counted, and nothing is sent back.
    client
        .send_to(b"into the void", stack.udp_addr("discard"))
        .await
        .unwrap();
    let event = datagram_event(&mut seen, "discard", me).await;
    assert!(
        matches!(
            event.kind,
            EventKind::Datagram {
                bytes_in: 13,
                bytes_out: 0,
                ..
            }
        ),
        "{event:?}"
    );
    let echo = datagram_event(&mut seen, "echo", me).await;
    assert!(matches!(
        echo.kind,
        EventKind::Datagram {
            bytes_in: 4000,
            bytes_out: 4000,
            ..
        }
    ));
}

/// The UDP row of `service` as `/api/ports` shows it.
async fn udp_row(stack: &Stack, service: &str) -> PortStatus {
    stack
        .ports()
        .into_iter()
        .find(|p| p.service == service && p.protocol == Protocol::Udp)
        .expect("a UDP row")
}

#[tokio::test]
async fn a_tcp_and_a_udp_port_of_one_number_are_two_ports() {
    let number = crate::free_port();
    let stack = Stack::builder()
        .service("echo")
        .port(|row| row.port = number)
        .udp_service("daytime")
        .port(|row| row.port = number)
        .start()
        .await
        .unwrap();
    let mut tcp = TcpStream::connect(stack.addr("echo")).await.unwrap();
    tcp.write_all(b"over tcp").await.unwrap();
    let mut got = [0u8; 8];
    tcp.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"over tcp");
    let client = udp_client().await;
    let to = SocketAddr::from(([127, 0, 0, 1], number));
    let line = ask(&client, to, b"over udp").await;
    assert!(
        line.ends_with(b"-UTC\r\n"),
        "daytime answers UDP on the same number"
    );
    let rows: Vec<_> = stack
        .ports()
        .into_iter()
        .filter(|p| p.port == number)
        .map(|p| (p.protocol, p.service))
        .collect();
    assert_eq!(rows, [(Protocol::Tcp, "echo"), (Protocol::Udp, "daytime")]);
}

#[tokio::test]
async fn a_datagram_from_a_denied_source_is_dropped_and_counted() {
    let stack = Stack::builder()
        .udp_service("echo")
        .port(|row| {
            row.bind = vec![[127, 0, 0, 1].into()];
            row.rules.deny = vec!["127.0.0.3".parse().unwrap()];
        })
        .start()
        .await
        .unwrap();
    let mut seen = Seen::new(&stack);
    let denied = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    denied
        .send_to(b"let me in", stack.udp_addr("echo"))
        .await
        .unwrap();
    let event = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionDenied { .. }))
        .await;
    assert_eq!(event.protocol, Protocol::Udp);
    // Others are answered; the denied source got nothing (its answer would have come
    // before the event was emitted).
    let allowed = udp_client().await;
    assert_eq!(ask(&allowed, stack.udp_addr("echo"), b"hi").await, b"hi");
    let mut buf = [0u8; 64];
    assert!(denied.try_recv_from(&mut buf).is_err(), "nothing came back");
    let row = udp_row(&stack, "echo").await;
    assert_eq!((row.denied, row.accepted), (1, 1));
}

#[tokio::test]
async fn max_rate_limits_datagrams_per_source() {
    let stack = Stack::builder()
        .udp_service("echo")
        .port(|row| row.max_rate = Some(1))
        .start()
        .await
        .unwrap();
    let mut seen = Seen::new(&stack);
    let client = udp_client().await;
    assert_eq!(ask(&client, stack.udp_addr("echo"), b"one").await, b"one");
    client
        .send_to(b"two", stack.udp_addr("echo"))
        .await
        .unwrap();
    let event = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionLimited { .. }))
        .await;
    assert!(matches!(
        event.kind,
        EventKind::ConnectionLimited {
            limit: "max_rate",
            ..
        }
    ));
    // Another source has a rate of its own.
    let other = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    assert_eq!(ask(&other, stack.udp_addr("echo"), b"mine").await, b"mine");
    let row = udp_row(&stack, "echo").await;
    assert_eq!((row.accepted, row.limited), (2, 1));
}

/// A datagram's source can be forged: an empty one must not buy many bytes sent to whoever
/// it names. With the defaults, no answer is longer than 64 bytes or the datagram it answers.
#[tokio::test]
async fn with_the_defaults_an_empty_datagram_gets_at_most_64_bytes_back() {
    let stack = Stack::builder()
        .udp_service("chargen")
        .udp_service("daytime")
        .udp_service("time")
        .start()
        .await
        .unwrap();
    let client = udp_client().await;
    let lines = ask(&client, stack.udp_addr("chargen"), b"").await;
    assert_eq!(lines.len(), 64, "chargen's lines cut to 64 bytes");
    // The time still answers an empty datagram, whole.
    let day = ask(&client, stack.udp_addr("daytime"), b"").await;
    assert!(day.ends_with(b"-UTC\r\n"), "{day:?}");
    assert_eq!(ask(&client, stack.udp_addr("time"), b"").await.len(), 4);
    // A longer question may get as long an answer: that multiplies nothing.
    assert_eq!(
        ask(&client, stack.udp_addr("chargen"), &[b'?'; 300])
            .await
            .len(),
        300
    );
}

#[tokio::test]
async fn answers_are_capped_but_an_echo_is_never_cut() {
    let stack = Stack::builder()
        .udp_service("chargen")
        .udp_service("echo")
        .configure(|c| c.supervisor.udp_max_answer = 100)
        .start()
        .await
        .unwrap();
    let client = udp_client().await;
    let lines = ask(&client, stack.udp_addr("chargen"), b"x").await;
    assert_eq!(
        lines.len(),
        100,
        "chargen's 444 bytes cut to udp_max_answer"
    );
    // An answer as long as the datagram it answers adds no amplification.
    let big = vec![b'e'; 1000];
    assert_eq!(ask(&client, stack.udp_addr("echo"), &big).await, big);
}

#[tokio::test]
async fn at_shutdown_a_udp_port_closes_and_the_kernel_says_port_unreachable() {
    let mut stack = Stack::builder().udp_service("echo").start().await.unwrap();
    let addr = stack.udp_addr("echo");
    let mut seen = Seen::new(&stack);
    stack.request_shutdown();
    let closed = seen
        .find(|e| matches!(e.kind, EventKind::PortClosed { .. }))
        .await;
    assert_eq!(closed.protocol, Protocol::Udp);
    stack.shutdown().await;
    // A socket closed a moment ago can live on for a moment in a child process another test
    // is starting (see `assert_refused`): ask again until the kernel answers for the port.
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            let finding = switchboard_probe::probe_udp(addr, Duration::from_millis(200)).await;
            if finding.state.as_str() == "closed" {
                return finding;
            }
            assert_eq!(finding.state.as_str(), "open|filtered", "{finding:?}");
        }
    })
    .await;
    assert!(closed.is_ok(), "the kernel never said port unreachable");
}
