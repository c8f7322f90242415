//! HTTPS: the local CA, certificate checks by real clients, ALPN, and the handshake's limits.

use std::error::Error as _;
use std::time::Duration;

use reqwest::{Client, StatusCode, Version};
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use switchboard_core::EventKind;
use switchboard_testkit::Stack;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use x509_parser::prelude::FromDer;

use crate::{json_of, next_event, read_to_close, tls_client_config, trust_only};

async fn https_stack() -> Stack {
    Stack::start(&["https"]).await.unwrap()
}

/// A client that trusts only the stack's CA and reaches the https port as `name`.
fn client_for(stack: &Stack, tls: rustls::ClientConfig, name: &str) -> Client {
    crate::client_builder()
        .tls_backend_preconfigured(tls)
        .resolve(name, stack.addr("https"))
        .build()
        .unwrap()
}

fn url(stack: &Stack, name: &str, path: &str) -> String {
    format!("https://{name}:{}{path}", stack.addr("https").port())
}

/// The whole chain of an error, so that assertions can look for rustls's reason.
fn chain(error: &reqwest::Error) -> String {
    let mut text = format!("{error:?}");
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(&format!(" / {inner:?}"));
        source = inner.source();
    }
    text
}

#[tokio::test]
async fn a_client_trusting_the_ca_gets_http2_by_name_and_by_address() {
    let stack = https_stack().await;
    let tls = tls_client_config(Some(stack.ca_pem()), &[b"h2", b"http/1.1"]);
    let client = client_for(&stack, tls, "localhost");

    let response = client
        .get(url(&stack, "localhost", "/whoami?format=json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    let who: Value = response.json().await.unwrap();
    assert_eq!(who["service"], "https");
    assert_eq!(who["protocol"], "HTTP/2.0");
    assert_eq!(who["tls"]["alpn"], "h2");
    assert_eq!(who["tls"]["sni"], "localhost");
    assert_eq!(who["tls"]["version"], "TLSv1.3");
    assert!(who["tls"]["cipher"].as_str().unwrap().starts_with("TLS13_"));

    let get = json_of(client.get(url(&stack, "localhost", "/get"))).await;
    assert_eq!(get["url"], url(&stack, "localhost", "/get"));

    // By address: the certificate names 127.0.0.1 too; clients send no SNI for an IP.
    let by_ip = json_of(client.get(stack.url("https", "/whoami?format=json"))).await;
    assert_eq!(by_ip["tls"]["sni"], Value::Null);
    assert_eq!(by_ip["tls"]["alpn"], "h2");
}

#[tokio::test]
async fn http1_is_served_when_it_is_all_the_client_offers() {
    let stack = https_stack().await;
    let tls = tls_client_config(Some(stack.ca_pem()), &[b"http/1.1"]);
    let client = crate::client_builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .build()
        .unwrap();
    let response = client
        .get(stack.url("https", "/whoami?format=json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    let who: Value = response.json().await.unwrap();
    assert_eq!(who["tls"]["alpn"], "http/1.1");
    assert_eq!(who["protocol"], "HTTP/1.1");
}

#[tokio::test]
async fn tls_1_2_is_accepted() {
    let stack = https_stack().await;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls12 = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(trust_only(Some(stack.ca_pem())))
        .with_no_client_auth();
    let client = client_for(&stack, tls12, "localhost");
    let who = json_of(client.get(url(&stack, "localhost", "/whoami?format=json"))).await;
    assert_eq!(who["tls"]["version"], "TLSv1.2");
}

#[tokio::test]
async fn a_client_without_the_ca_refuses_the_certificate() {
    let stack = https_stack().await;
    let client = client_for(&stack, tls_client_config(None, &[b"h2"]), "localhost");
    let error = client
        .get(url(&stack, "localhost", "/"))
        .send()
        .await
        .unwrap_err();
    let text = chain(&error);
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn a_client_asking_for_another_name_refuses_the_certificate() {
    let stack = https_stack().await;
    let tls = tls_client_config(Some(stack.ca_pem()), &[b"h2"]);
    let client = client_for(&stack, tls, "other.example.test");
    let error = client
        .get(url(&stack, "other.example.test", "/"))
        .send()
        .await
        .unwrap_err();
    let text = chain(&error);
    assert!(text.contains("NotValidForName"), "{text}");
}

#[tokio::test]
async fn a_silent_client_is_closed_at_the_handshake_timeout() {
    let stack = Stack::builder()
        .service("https")
        .configure(|c| c.https.handshake_timeout = Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let mut events = stack.events().subscribe();
    let mut silent = TcpStream::connect(stack.addr("https")).await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, "");
    let EventKind::TlsFailed { reason, .. } = next_event(&mut events, |e| {
        matches!(e.kind, EventKind::TlsFailed { .. })
    })
    .await
    .kind
    else {
        unreachable!()
    };
    assert!(reason.contains("handshake_timeout"), "{reason}");
}

#[tokio::test]
async fn garbage_on_the_tls_port_does_not_disturb_other_connections() {
    let stack = https_stack().await;
    let tls = tls_client_config(Some(stack.ca_pem()), &[b"h2"]);
    let client = client_for(&stack, tls, "localhost");
    let mut events = stack.events().subscribe();

    // Plain HTTP, and then random bytes, where a TLS ClientHello should be.
    let mut plain = TcpStream::connect(stack.addr("https")).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut noise = TcpStream::connect(stack.addr("https")).await.unwrap();
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = noise.write_all(&bytes).await;

    let status = client
        .get(url(&stack, "localhost", "/healthz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);

    read_to_close(&mut plain).await;
    read_to_close(&mut noise).await;
    // Both bad handshakes are reported.
    for _ in 0..2 {
        next_event(&mut events, |e| {
            matches!(e.kind, EventKind::TlsFailed { .. })
        })
        .await;
    }
}

#[tokio::test]
async fn the_page_over_https_shows_the_tls_details() {
    let stack = https_stack().await;
    let client = client_for(
        &stack,
        tls_client_config(Some(stack.ca_pem()), &[b"h2"]),
        "localhost",
    );
    let html = crate::text_of(client.get(url(&stack, "localhost", "/"))).await;
    assert!(html.contains("Encrypted with TLS: <code>TLSv1.3"), "{html}");
}

#[tokio::test]
async fn a_restart_keeps_the_ca_so_clients_keep_trusting() {
    let dir = tempfile::tempdir().unwrap();
    let first = Stack::builder()
        .service("https")
        .certs_dir(dir.path())
        .start()
        .await
        .unwrap();
    let trusted = first.ca_pem().to_owned();
    first.shutdown().await;

    let second = Stack::builder()
        .service("https")
        .certs_dir(dir.path())
        .start()
        .await
        .unwrap();
    assert_eq!(second.ca_pem(), trusted);
    let client = client_for(
        &second,
        tls_client_config(Some(&trusted), &[b"h2"]),
        "localhost",
    );
    let status = client
        .get(url(&second, "localhost", "/healthz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_ca_is_served_at_ca_pem_for_clients_elsewhere_to_trust() {
    let stack = Stack::start(&["http", "https"]).await.unwrap();
    let response = crate::http_client()
        .get(stack.url("http", "/ca.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-pem-file");
    let fetched = response.text().await.unwrap();
    assert_eq!(fetched, stack.ca_pem());
    // What was fetched is enough to trust the https port.
    let client = client_for(
        &stack,
        tls_client_config(Some(&fetched), &[b"h2"]),
        "localhost",
    );
    let who = json_of(client.get(url(&stack, "localhost", "/whoami?format=json"))).await;
    assert_eq!(who["service"], "https");

    // Its revocation list: signed by that CA, revoking nothing.
    let response = crate::http_client()
        .get(stack.url("http", "/ca.crl"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pkix-crl");
    let der = response.bytes().await.unwrap();
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    let ca_der = rustls_pki_types::CertificateDer::pem_slice_iter(fetched.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&ca_der).unwrap();
    crl.verify_signature(ca.public_key()).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
}

#[tokio::test]
async fn without_a_tls_port_there_is_no_ca_to_serve() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let response = crate::http_client()
        .get(stack.url("http", "/ca.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("no local CA"));
}

/// Session tickets: a client that keeps them resumes (no certificate, no new key exchange),
/// in TLS 1.3 and 1.2, connection after connection; the server counts every resumed
/// handshake in `/metrics`, and the log and events say `resumed`.
#[tokio::test]
async fn clients_resume_sessions_from_tickets_and_the_server_counts_them() {
    use rustls::HandshakeKind::{Full, Resumed};
    use tokio::io::AsyncReadExt;

    let stack = Stack::start(&["http", "https"]).await.unwrap();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(trust_only(Some(stack.ca_pem())))
            .with_no_client_auth();
        // One config, so one session cache: what a pool or a browser keeps between connections.
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let mut kinds = Vec::new();
        for _ in 0..3 {
            let tcp = TcpStream::connect(stack.addr("https")).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            // Read to the end: TLS 1.3 tickets arrive after the handshake.
            let mut answer = Vec::new();
            tls.read_to_end(&mut answer).await.unwrap();
            assert!(answer.starts_with(b"HTTP/1.1 200"), "{version:?}");
            kinds.push(tls.get_ref().1.handshake_kind().unwrap());
        }
        assert_eq!(kinds, [Full, Resumed, Resumed], "{version:?}");
    }
    let metrics =
        crate::text_of(crate::http_client().get(format!("http://{}/metrics", stack.addr("http"))))
            .await;
    let https = stack.addr("https").port();
    let count = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("port=\"{https}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no {name} for port {https} in:\n{metrics}"))
            .to_owned()
    };
    assert_eq!(count("switchboard_tls_handshakes_total"), "6");
    assert_eq!(count("switchboard_tls_handshakes_resumed_total"), "4");
}
