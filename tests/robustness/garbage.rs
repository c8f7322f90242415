//! Garbage and truncation on every port: noise, NUL bytes, overlong lines, TLS records that
//! lie about their length, half a handshake, clients that vanish or reset in every phase of
//! every protocol. Afterwards every port serves normally, no connection is left open, no
//! message from a client that vanished was stored, and nothing panicked.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::{body_json, http_get, one_at_a_time, wait_for_active};
use switchboard_testkit::binary::port_table;
use switchboard_testkit::client::{PATIENCE, read_to_close, read_until};

fn config() -> String {
    port_table(&["http", "https", "smtp", "smtps", "echo"])
        + "[http]\nheader_read_timeout = \"1s\"\nkeep_alive_timeout = \"1s\"\n\n\
           [https]\nhandshake_timeout = \"1s\"\n\n\
           [smtp]\ncommand_timeout = \"1s\"\ndata_timeout = \"1s\"\nhandshake_timeout = \"1s\"\n"
}

/// How a client leaves after sending its bytes.
#[derive(Clone, Copy, Debug)]
enum Leave {
    /// Closes its side (FIN) and reads until the server closes too.
    Close,
    /// Resets the connection (RST) at once.
    Reset,
}

/// Send `bytes` (as far as the server takes them) and leave.
async fn attack(addr: SocketAddr, bytes: &[u8], leave: Leave) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    finish(stream, leave).await;
}

async fn finish(mut stream: TcpStream, leave: Leave) {
    match leave {
        Leave::Close => {
            let _ = stream.shutdown().await;
            // The server may still answer (an error reply); it must then close.
            read_to_close(&mut stream).await;
        }
        Leave::Reset => {
            stream.set_zero_linger().unwrap();
            drop(stream);
        }
    }
}

/// The first bytes a real TLS client sends: a ClientHello for `localhost`.
fn client_hello() -> Vec<u8> {
    let mut connection = rustls::ClientConnection::new(
        Arc::new(client_config(None)),
        "localhost".try_into().unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    connection.write_tls(&mut hello).unwrap();
    hello
}

fn client_config(ca_pem: Option<&str>) -> rustls::ClientConfig {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Garbage that any port may receive.
fn noise_of_every_kind() -> Vec<(&'static str, Vec<u8>)> {
    let mut random = fastrand::Rng::with_seed(0x005b_0a4d);
    let hello = client_hello();
    let mut lying_record = vec![0x16, 0x03, 0x01, 0xff, 0xff];
    lying_record.extend(std::iter::repeat_with(|| random.u8(..)).take(16));
    let mut short_record = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    short_record.extend_from_slice(&[1; 10]);
    let mut long_line = vec![b'A'; 1 << 20];
    long_line.extend_from_slice(b"\r\n");
    vec![
        ("nothing", Vec::new()),
        (
            "random bytes",
            std::iter::repeat_with(|| random.u8(..))
                .take(64 * 1024)
                .collect(),
        ),
        ("NUL bytes", vec![0; 4096]),
        ("a 1 MiB line", long_line),
        ("CR and LF alone", b"\r\r\r\n\n\n\r\n\r\n".repeat(100)),
        ("a TLS record longer than TLS allows", lying_record),
        ("a TLS record shorter than its length", short_record),
        ("half a ClientHello", hello[..hello.len() / 2].to_vec()),
        ("a whole ClientHello", hello),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("an SMTP command", b"EHLO x\r\n".to_vec()),
    ]
}

/// A TLS session with the server's CA trusted.
pub(crate) async fn tls(
    addr: SocketAddr,
    ca_pem: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let connector = TlsConnector::from(Arc::new(client_config(Some(ca_pem))));
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// One SMTP message sent in full; the server's whole side of the conversation.
async fn smtp_message(
    stream: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin),
) -> String {
    stream
        .write_all(
            b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n\
              Subject: legit\r\n\r\nbody\r\n.\r\nQUIT\r\n",
        )
        .await
        .unwrap();
    read_to_close(stream).await
}

#[tokio::test]
async fn garbage_and_truncation_on_every_port_leave_the_server_serving() {
    let _turn = one_at_a_time().await;
    let server = crate::switchboard().start(&config(), &[]).await;
    let ca = std::fs::read_to_string(server.dir().join("certs/ca.pem")).unwrap();
    let ports = ["http", "https", "smtp", "smtps", "echo"].map(|s| (s, server.addr(s)));

    // Every kind of noise, to every port, with either ending.
    for (name, bytes) in noise_of_every_kind() {
        for (service, addr) in ports {
            for leave in [Leave::Close, Leave::Reset] {
                tokio::time::timeout(PATIENCE, attack(addr, &bytes, leave))
                    .await
                    .unwrap_or_else(|_| panic!("{name} to {service} ({leave:?}) hung"));
            }
        }
    }

    // HTTP, cut at every phase.
    let http = server.addr("http");
    for (phase, bytes) in [
        ("mid-request-line", &b"GET /anyth"[..]),
        (
            "mid-headers",
            b"GET /anything HTTP/1.1\r\nHost: x\r\nX-Half: ",
        ),
        (
            "mid-body",
            b"POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf",
        ),
        (
            "mid-chunk",
            b"POST /anything HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
        ),
    ] {
        for leave in [Leave::Close, Leave::Reset] {
            tokio::time::timeout(PATIENCE, attack(http, bytes, leave))
                .await
                .unwrap_or_else(|_| panic!("HTTP {phase} ({leave:?}) hung"));
        }
    }
    // A client that resets while the response is on its way.
    let mut reading = TcpStream::connect(http).await.unwrap();
    reading
        .write_all(b"GET /bytes/100000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    reading.read_exact(&mut [0; 100]).await.unwrap();
    finish(reading, Leave::Reset).await;

    // HTTPS: a handshake begun and abandoned, and a request cut after the handshake.
    let https = server.addr("https");
    for leave in [Leave::Close, Leave::Reset] {
        let mut stream = TcpStream::connect(https).await.unwrap();
        stream.write_all(&client_hello()).await.unwrap();
        stream.read_exact(&mut [0; 5]).await.unwrap(); // the ServerHello began
        finish(stream, leave).await;
    }
    let mut cut = tls(https, &ca).await;
    cut.write_all(b"POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nab")
        .await
        .unwrap();
    let (tcp, _) = cut.into_inner();
    finish(tcp, Leave::Reset).await;

    // SMTP, cut after every command, and in the middle of a message.
    let smtp = server.addr("smtp");
    let script: [&[u8]; 6] = [
        b"",
        b"EHLO x\r\n",
        b"EHLO x\r\nMAIL FROM:<a@x.test>\r\n",
        b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n",
        b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n",
        b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\nSubject: vanished\r\n\r\nhalf a mess",
    ];
    for bytes in script {
        for leave in [Leave::Close, Leave::Reset] {
            let mut stream = TcpStream::connect(smtp).await.unwrap();
            read_until(&mut stream, "220 ").await;
            stream.write_all(bytes).await.unwrap();
            if !bytes.is_empty() {
                // Wait for the reply to the last command, so the cut comes after it.
                read_until(
                    &mut stream,
                    if bytes.ends_with(b"DATA\r\n") {
                        "354 "
                    } else {
                        "\r\n"
                    },
                )
                .await;
            }
            finish(stream, leave).await;
        }
    }
    // STARTTLS answered, then the client vanishes before or during the handshake.
    for hello in [Vec::new(), client_hello()[..20].to_vec()] {
        let mut stream = TcpStream::connect(smtp).await.unwrap();
        stream.write_all(b"EHLO x\r\nSTARTTLS\r\n").await.unwrap();
        read_until(&mut stream, "220 2.0.0").await;
        stream.write_all(&hello).await.unwrap();
        finish(stream, Leave::Reset).await;
    }

    // Every port still serves, and nothing is left open.
    assert!(http_get(http, "/healthz").await.ends_with("ok\n"));
    let mut secure = tls(https, &ca).await;
    secure
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_to_close(&mut secure).await.ends_with("ok\n"));
    let mut plain = TcpStream::connect(smtp).await.unwrap();
    assert!(
        smtp_message(&mut plain)
            .await
            .contains("250 2.0.0 OK: queued as")
    );
    let mut implicit = tls(server.addr("smtps"), &ca).await;
    assert!(
        smtp_message(&mut implicit)
            .await
            .contains("250 2.0.0 OK: queued as")
    );
    let mut echo = TcpStream::connect(server.addr("echo")).await.unwrap();
    echo.write_all(b"still here").await.unwrap();
    let mut back = [0; 10];
    tokio::time::timeout(PATIENCE, echo.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"still here");
    drop(echo);

    for (service, addr) in ports {
        let expected = u64::from(service == "http");
        wait_for_active(http, addr.port(), |n| n == expected).await;
    }
    // Only the two messages sent in full were stored: none from a client that vanished.
    let messages = body_json(&http_get(http, "/api/v1/messages").await);
    assert_eq!(messages["total"], 2, "{messages}");
    server.assert_no_panic();
}
