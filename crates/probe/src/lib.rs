//! The client's side of the story: resolve a name to its addresses, connect to each port,
//! and say what happened — who answered (a banner, an HTTP response, a TLS handshake), or
//! why nobody did (refused, timed out, unreachable).
//!
//! It only ever connects to the host it is given.
//!
//! # Layout
//!
//! - `lib.rs`: [`resolve`], [`probe`], and the text and JSON reports.
//! - `classify.rs`: what a server's first bytes say about it (pure, fuzzable).
//! - `knock.rs`: [`Knock`], how long to wait and from which address.
//! - `tls.rs`: a TLS handshake that reports the certificate instead of judging it.
//! - `sockets.rs`: the server's side: the kernel's table of listening sockets, from
//!   `/proc/net/tcp`, and which process holds each.

mod classify;
mod knock;
pub mod sockets;
mod tls;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use classify::{Identified, WELL_KNOWN, classify, printable, well_known};
pub use knock::Knock;

/// What happened at one address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Something accepted the connection.
    Open,
    /// A reset came back: nothing listens there.
    Refused,
    /// Nothing came back within the timeout.
    Timeout,
    /// The network has no route to the address.
    Unreachable,
    /// Something else went wrong; the detail says what.
    Error,
    /// UDP: the kernel answered "port unreachable": nothing listens (the UDP form of
    /// refused).
    Closed,
    /// UDP: silence. A listener that does not answer and a firewall that drops look the same.
    #[serde(rename = "open|filtered")]
    OpenFiltered,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Refused => "refused",
            State::Timeout => "timeout",
            State::Unreachable => "unreachable",
            State::Error => "error",
            State::Closed => "closed",
            State::OpenFiltered => "open|filtered",
        }
    }

    /// One line for a learner: what this state means.
    pub fn explanation(self) -> &'static str {
        match self {
            State::Open => "something accepted the connection: a program listens on that port",
            State::Refused => {
                "the machine answered with a reset: nothing listens on that port, or a firewall rejects (the kernel said no)"
            }
            State::Timeout => {
                "nothing came back at all (what nmap calls filtered): a firewall dropping the packets, a port whose queue is full (switchboard's blackhole row imitates a drop that way), or a host that is down"
            }
            State::Unreachable => "the network has no route to that address",
            State::Error => "the connection failed for another reason",
            State::Closed => {
                "the machine answered \"port unreachable\": nothing listens on that UDP port (the kernel said no)"
            }
            State::OpenFiltered => {
                "silence: UDP cannot tell a program that does not answer from a firewall that drops"
            }
        }
    }
}

/// The probe of one address and port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `tcp` or `udp`.
    pub protocol: &'static str,
    pub port: u16,
    pub address: IpAddr,
    pub state: State,
    /// What answered, when something did and said who it is.
    pub service: Option<String>,
    /// The service usually on this port (IANA), whether or not it answered.
    pub usual: Option<&'static str>,
    /// What it said, or why nothing did.
    pub detail: String,
}

impl Finding {
    fn new(
        protocol: &'static str,
        addr: SocketAddr,
        state: State,
        service: Option<String>,
        detail: String,
    ) -> Self {
        Self {
            protocol,
            port: addr.port(),
            address: addr.ip(),
            state,
            service,
            usual: well_known(addr.port()),
            detail,
        }
    }
}

/// Every address `host` resolves to (A and AAAA records, or the address itself).
pub async fn resolve(host: &str) -> io::Result<Vec<IpAddr>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut addresses = Vec::new();
    for addr in tokio::net::lookup_host((host, 0)).await? {
        if !addresses.contains(&addr.ip()) {
            addresses.push(addr.ip());
        }
    }
    Ok(addresses)
}

/// Probe every port at every address, all at once; results in port order, then address
/// order. `host` is the name the user gave (for the HTTP Host header and TLS SNI).
pub async fn probe_all(
    host: &str,
    addresses: &[IpAddr],
    ports: &[u16],
    knock: impl Into<Knock>,
) -> Vec<Finding> {
    let knock = knock.into();
    let probes = ports.iter().flat_map(|&port| {
        addresses
            .iter()
            .map(move |&ip| probe(host, SocketAddr::new(ip, port), knock))
    });
    futures_util::future::join_all(probes).await
}

/// Connect to `addr` and find out what is there.
pub async fn probe(host: &str, addr: SocketAddr, knock: impl Into<Knock>) -> Finding {
    let knock = knock.into();
    let timeout = knock.timeout;
    let finding = |state, service, detail| Finding::new("tcp", addr, state, service, detail);
    let stream = match tokio::time::timeout(timeout, knock.connect(addr)).await {
        Err(_) => {
            return finding(
                State::Timeout,
                None,
                format!("no answer within {} ms", timeout.as_millis()),
            );
        }
        Ok(Err(error)) => {
            let state = match error.kind() {
                io::ErrorKind::ConnectionRefused => State::Refused,
                io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                    State::Unreachable
                }
                _ => State::Error,
            };
            return finding(state, None, error.to_string());
        }
        Ok(Ok(stream)) => stream,
    };
    let (service, detail) = identify(host, addr, stream, knock).await;
    finding(State::Open, service, detail)
}

/// Probe every UDP port at every address, all at once; results in port order.
pub async fn probe_all_udp(
    addresses: &[IpAddr],
    ports: &[u16],
    knock: impl Into<Knock>,
) -> Vec<Finding> {
    let knock = knock.into();
    let probes = ports.iter().flat_map(|&port| {
        addresses
            .iter()
            .map(move |&ip| probe_udp(SocketAddr::new(ip, port), knock))
    });
    futures_util::future::join_all(probes).await
}

/// Send one datagram to `addr` and listen: an answer means open; an ICMP "port
/// unreachable" (which Linux reports on a connected UDP socket as "connection refused")
/// means closed; silence means open|filtered, as nmap reports it.
pub async fn probe_udp(addr: SocketAddr, knock: impl Into<Knock>) -> Finding {
    let knock = knock.into();
    let timeout = knock.timeout;
    let finding = |state, service, detail| Finding::new("udp", addr, state, service, detail);
    let local = match knock.local(addr) {
        Ok(local) => local,
        Err(error) => return finding(State::Error, None, error.to_string()),
    };
    let socket = match tokio::net::UdpSocket::bind(local).await {
        Ok(socket) => socket,
        Err(error) => return finding(State::Error, None, format!("no UDP socket: {error}")),
    };
    if let Err(error) = socket.connect(addr).await {
        return finding(State::Error, None, error.to_string());
    }
    if let Err(error) = socket.send(b"switchboard probe\r\n").await {
        let state = match error.kind() {
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                State::Unreachable
            }
            _ => State::Error,
        };
        return finding(state, None, error.to_string());
    }
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(timeout, socket.recv(&mut buf)).await {
        Err(_) => finding(
            State::OpenFiltered,
            None,
            format!("no answer within {} ms", timeout.as_millis()),
        ),
        Ok(Ok(n)) => {
            let said = printable(&String::from_utf8_lossy(&buf[..n]));
            finding(State::Open, None, format!("it answered {n} bytes: {said}"))
        }
        Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionRefused => finding(
            State::Closed,
            None,
            "port unreachable (ICMP): nothing listens there".to_owned(),
        ),
        Ok(Err(error)) => finding(State::Error, None, error.to_string()),
    }
}

/// Find out who answered: a banner, else an HTTP response, else a TLS handshake.
async fn identify(
    host: &str,
    addr: SocketAddr,
    mut stream: TcpStream,
    knock: Knock,
) -> (Option<String>, String) {
    let timeout = knock.timeout;
    let mut buf = vec![0u8; 4096];
    // Servers that speak first (SMTP, FTP, SSH) do so at once.
    let banner_wait = timeout.min(Duration::from_millis(700));
    match tokio::time::timeout(banner_wait, stream.read(&mut buf)).await {
        Ok(Ok(0)) => return (None, "it closed the connection without a word".to_owned()),
        Ok(Ok(n)) => {
            return match classify(&buf[..n]) {
                Some(found) => (Some(found.service.to_owned()), found.detail),
                None => (
                    None,
                    format!(
                        "it said: {}",
                        printable(&String::from_utf8_lossy(&buf[..n]))
                    ),
                ),
            };
        }
        Ok(Err(error)) => return (None, format!("reading failed: {error}")),
        Err(_) => {} // silent: it waits for the client to speak
    }

    let request = format!(
        "HEAD / HTTP/1.1\r\nHost: {}\r\nUser-Agent: switchboard-probe\r\nConnection: close\r\n\r\n",
        host_header(host, addr)
    );
    if stream.write_all(request.as_bytes()).await.is_ok()
        && let Ok(Ok(n)) = tokio::time::timeout(timeout, stream.read(&mut buf)).await
        && let Some(found) = classify(&buf[..n]).filter(|f| f.service == "http")
    {
        return (Some(found.service.to_owned()), found.detail);
    }
    drop(stream);

    match tls::handshake(host, addr, knock).await {
        Ok(report) => (Some(report.service.to_owned()), report.detail),
        Err(reason) => (
            None,
            format!("it answered neither a banner, HTTP, nor TLS ({reason})"),
        ),
    }
}

fn host_header(host: &str, addr: SocketAddr) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", addr.port()),
        _ => format!("{host}:{}", addr.port()),
    }
}

/// The findings as a table with a legend, for people.
pub fn render_text(host: &str, addresses: &[IpAddr], findings: &[Finding]) -> String {
    let list: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    let mut out = format!("{host} resolves to {}\n\n", list.join(", "));
    let width = addresses
        .iter()
        .map(|a| a.to_string().len())
        .max()
        .unwrap_or(7)
        .max(7);
    out.push_str(&format!(
        "{:<6} {:<width$}  {:<11} {:<12} WHAT HAPPENED\n",
        "PORT", "ADDRESS", "STATE", "SERVICE"
    ));
    for f in findings {
        let service = match (&f.service, f.usual) {
            (Some(service), _) => service.clone(),
            (None, Some(usual)) => format!("({usual})"),
            (None, None) => "-".to_owned(),
        };
        out.push_str(&format!(
            "{:<6} {:<width$}  {:<11} {:<12} {}\n",
            f.port,
            f.address.to_string(),
            f.state.as_str(),
            service,
            f.detail
        ));
    }
    let mut seen: Vec<State> = Vec::new();
    for f in findings {
        if !seen.contains(&f.state) {
            seen.push(f.state);
        }
    }
    out.push('\n');
    for state in seen {
        out.push_str(&format!(
            "{:<11}  {}\n",
            state.as_str(),
            state.explanation()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_report_explains_the_states_it_shows() {
        let findings = vec![
            Finding {
                protocol: "tcp",
                port: 21,
                address: "127.0.0.1".parse().unwrap(),
                state: State::Refused,
                service: None,
                usual: Some("ftp"),
                detail: "Connection refused (os error 111)".into(),
            },
            Finding {
                protocol: "tcp",
                port: 25,
                address: "127.0.0.1".parse().unwrap(),
                state: State::Open,
                service: Some("smtp".into()),
                usual: Some("smtp"),
                detail: "220 mx ESMTP switchboard".into(),
            },
        ];
        let text = render_text("localhost", &["127.0.0.1".parse().unwrap()], &findings);
        assert!(
            text.starts_with("localhost resolves to 127.0.0.1\n"),
            "{text}"
        );
        assert!(
            text.contains("21     127.0.0.1  refused     (ftp)"),
            "{text}"
        );
        assert!(
            text.contains("25     127.0.0.1  open        smtp         220 mx ESMTP switchboard"),
            "{text}"
        );
        assert!(
            text.contains("refused      the machine answered with a reset"),
            "{text}"
        );
        assert!(
            !text.contains("timeout "),
            "only states that occurred are explained: {text}"
        );
    }

    /// A UDP port nobody binds answers with ICMP "port unreachable"; one whose program
    /// answers is open; one whose program stays silent is open|filtered.
    #[tokio::test]
    async fn udp_tells_closed_from_open_from_silence() {
        let timeout = Duration::from_millis(300);
        let closed = {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.local_addr().unwrap()
        }; // dropped: nothing is bound there now
        assert_eq!(probe_udp(closed, timeout).await.state, State::Closed);

        let answering = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let open = answering.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let (n, from) = answering.recv_from(&mut buf).await.unwrap();
            answering.send_to(&buf[..n], from).await.unwrap();
        });
        let found = probe_udp(open, timeout).await;
        assert_eq!((found.state, found.protocol), (State::Open, "udp"));
        assert!(
            found.detail.contains("switchboard probe"),
            "{}",
            found.detail
        );

        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let found = probe_udp(silent.local_addr().unwrap(), timeout).await;
        assert_eq!(found.state, State::OpenFiltered);
        assert_eq!(serde_json::to_value(found.state).unwrap(), "open|filtered");
    }

    #[test]
    fn findings_serialize_with_the_documented_fields() {
        let finding = Finding {
            protocol: "tcp",
            port: 80,
            address: "::1".parse().unwrap(),
            state: State::Timeout,
            service: None,
            usual: Some("http"),
            detail: "no answer within 1000 ms".into(),
        };
        let json = serde_json::to_value(&finding).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"protocol": "tcp", "port": 80, "address": "::1", "state": "timeout", "service": null, "usual": "http", "detail": "no answer within 1000 ms"})
        );
    }

    #[tokio::test]
    async fn names_and_literals_resolve() {
        assert_eq!(
            resolve("127.0.0.1").await.unwrap(),
            ["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            resolve("[::1]").await.unwrap(),
            ["::1".parse::<IpAddr>().unwrap()]
        );
        assert!(
            resolve("localhost")
                .await
                .unwrap()
                .iter()
                .all(|ip| ip.is_loopback())
        );
    }
}
