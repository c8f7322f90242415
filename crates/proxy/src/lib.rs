//! The proxy service: each connection to its port is joined to a new connection of its own
//! to the row's upstream (`upstream = "127.0.0.1:5432"`), and bytes are copied both ways. The
//! port's toxics sit on the client's side of it, in Toxiproxy's sense: `upstream` toxics act
//! on the bytes from the client on their way to the upstream, `downstream` ones on the bytes
//! coming back. So an app under test can meet latency, resets or a trickle of bandwidth
//! between itself and its real database.
//!
//! ```text
//! client ──▶ port (toxics) ──▶ proxy ──▶ upstream
//!        ◀──                ◀──       ◀──
//! ```
//!
//! A half-close is passed on (when one side finishes sending, the other side's write half is
//! shut), and the connection ends when both directions are done, or at once if either side
//! resets. The upstream's name is resolved at each connect.
//!
//! Proxies connect out, so where they may connect is guarded: rows added through the control
//! API may reach only `[proxy] allow_upstreams` (by default this machine's own addresses and
//! networks); rows of the config file are the operator's and may name any upstream.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use switchboard_core::{
    BoxError, Cidr, Conn, Event, EventBus, InvalidRow, InvalidSetting, PortName, RowKeys, Service,
    ServiceEvent, Shutdown, Tally, Target,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `[proxy]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySettings {
    /// How long a proxy waits for its upstream to accept; then the client's connection is
    /// closed.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Where proxies added through the control API may connect: address ranges
    /// (`10.0.0.0/8`) and host names (`db.internal`). Empty: this machine's own addresses and
    /// the networks its interfaces are on (a compose network included), and loopback.
    pub allow_upstreams: Vec<String>,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            allow_upstreams: Vec::new(),
        }
    }
}

impl ProxySettings {
    /// Check what types cannot; the message names the key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.connect_timeout.is_zero() {
            return Err(InvalidSetting::new(
                "connect_timeout",
                "connect_timeout must be longer than zero",
            ));
        }
        // Only the listed entries: the default needs no checking (nor the interfaces read).
        UpstreamGuard::listed(&self.allow_upstreams).map(drop)
    }
}

/// Where API-made proxies may connect.
#[derive(Debug)]
pub struct UpstreamGuard {
    ranges: Vec<Cidr>,
    names: Vec<String>,
}

impl UpstreamGuard {
    /// The guard `[proxy] allow_upstreams` describes; with none listed, this machine's own
    /// networks (read from its interfaces here, once).
    pub fn from_settings(settings: &ProxySettings) -> Result<Self, InvalidSetting> {
        if settings.allow_upstreams.is_empty() {
            return Ok(Self {
                ranges: own_networks(),
                names: Vec::new(),
            });
        }
        Self::listed(&settings.allow_upstreams)
    }

    /// A guard of exactly these ranges and names; the message names a bad entry.
    fn listed(entries: &[String]) -> Result<Self, InvalidSetting> {
        let (mut ranges, mut names) = (Vec::new(), Vec::new());
        for entry in entries {
            let looks_like_address = entry.contains('/') || entry.parse::<IpAddr>().is_ok();
            match looks_like_address {
                true => ranges.push(entry.parse::<Cidr>().map_err(|e| {
                    InvalidSetting::new("allow_upstreams", format!("allow_upstreams: {e}"))
                })?),
                false if is_host_name(entry) => names.push(entry.to_ascii_lowercase()),
                false => {
                    return Err(InvalidSetting::new(
                        "allow_upstreams",
                        format!(
                            "allow_upstreams: {entry:?} is neither an address range nor a host \
                             name"
                        ),
                    ));
                }
            }
        }
        Ok(Self { ranges, names })
    }

    /// Whether `address` (`host:port`) may be reached: a listed name, or every address the
    /// name resolves to in an allowed range. The error names the setting.
    pub async fn check(&self, address: &str) -> Result<Vec<SocketAddr>, UpstreamError> {
        let resolved = resolve(address).await?;
        self.admit(address, resolved)
    }

    /// Whether `address` may be reached at what it resolved to: the proxy then connects to
    /// exactly these addresses, so a name cannot be checked at one and connect to another.
    /// A name of several addresses passes only if every one of them does.
    fn admit(
        &self,
        address: &str,
        resolved: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, UpstreamError> {
        let host = host_of(address);
        if self.names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
            return Ok(resolved);
        }
        match resolved
            .iter()
            .find(|a| !self.ranges.iter().any(|r| r.contains(a.ip())))
        {
            Some(outside) => Err(UpstreamError::NotAllowed {
                address: address.to_owned(),
                ip: outside.ip(),
            }),
            None => Ok(resolved),
        }
    }
}

/// Loopback, and every network this machine's interfaces are on.
fn own_networks() -> Vec<Cidr> {
    let mut ranges: Vec<Cidr> = ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect();
    for interface in if_addrs::get_if_addrs().unwrap_or_default() {
        let (ip, prefix) = match &interface.addr {
            if_addrs::IfAddr::V4(v4) => (IpAddr::V4(v4.ip), v4.prefixlen),
            if_addrs::IfAddr::V6(v6) => (IpAddr::V6(v6.ip), v6.prefixlen),
        };
        if let Ok(range) = format!("{ip}/{prefix}").parse() {
            ranges.push(range);
        }
    }
    ranges
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The host part of `host:port` (without brackets for `[::1]:5432`).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A proxy row's own key: where it connects.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyRow {
    /// `host:port`; a name is resolved at each connect.
    pub upstream: Option<String>,
}

impl ProxyRow {
    /// Where the proxy connects (a checked row always says).
    pub fn address(&self) -> &str {
        self.upstream.as_deref().unwrap_or_default()
    }
}

impl RowKeys for ProxyRow {
    fn check(&self) -> Result<(), InvalidRow> {
        match &self.upstream {
            None => Err(InvalidRow::new(
                "a proxy needs `upstream`: where to connect, as host:port",
            )),
            Some(address) => parse_upstream(address).map_err(|e| InvalidRow::at("upstream", e)),
        }
    }

    fn target(&self) -> Option<Target> {
        Some(Target {
            key: "upstream",
            value: self.address().to_owned(),
        })
    }
}

/// Check that `address` is `host:port`; the message says what is wrong.
fn parse_upstream(address: &str) -> Result<(), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!(
            "upstream {address:?} needs a port: write host:port"
        ));
    };
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!(
            "upstream {address:?} is not host:port (e.g. \"127.0.0.1:5432\" or \"db:5432\")"
        ));
    }
    Ok(())
}

async fn resolve(address: &str) -> Result<Vec<SocketAddr>, UpstreamError> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host(address)
        .await
        .map_err(|source| UpstreamError::Unresolved {
            address: address.to_owned(),
            source,
        })?
        .collect();
    match found.is_empty() {
        true => Err(UpstreamError::NoAddress(address.to_owned())),
        false => Ok(found),
    }
}

/// Why a proxy cannot reach its upstream, before it even tries to connect.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {address} cannot be resolved: {source}")]
    Unresolved {
        address: String,
        source: std::io::Error,
    },
    #[error("upstream {0} resolves to no address")]
    NoAddress(String),
    #[error("upstream {0} refused the connection")]
    Refused(String),
    #[error("upstream {address}: {source}")]
    Failed {
        address: String,
        source: std::io::Error,
    },
    #[error("upstream {address} did not accept within {after:?} ([proxy] connect_timeout)")]
    Timeout { address: String, after: Duration },
    /// A proxy made through the API may not connect there.
    #[error(
        "upstream {address} ({ip}) is not in [proxy] allow_upstreams, which limits where \
         proxies made through the API may connect"
    )]
    NotAllowed { address: String, ip: IpAddr },
}

/// One `proxy` row's service.
#[derive(Debug)]
pub struct ProxyService {
    upstream: String,
    connect_timeout: Duration,
    /// Where the upstream leg's end is told (`upstream_closed`).
    events: EventBus,
    /// For rows made through the API: checked again at each connect, since a name may
    /// resolve elsewhere later.
    guard: Option<Arc<UpstreamGuard>>,
}

impl ProxyService {
    pub fn new(
        upstream: String,
        settings: &ProxySettings,
        guard: Option<Arc<UpstreamGuard>>,
        events: EventBus,
    ) -> Self {
        Self {
            upstream,
            connect_timeout: settings.connect_timeout,
            events,
            guard,
        }
    }

    /// A connection to the upstream, or why there is none.
    async fn connect(&self) -> Result<TcpStream, UpstreamError> {
        let addrs = match &self.guard {
            Some(guard) => guard.check(&self.upstream).await?,
            None => resolve(&self.upstream).await?,
        };
        let address = || self.upstream.clone();
        let attempt = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&addrs[..]));
        match attempt.await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(UpstreamError::Refused(address()))
            }
            Ok(Err(source)) => Err(UpstreamError::Failed {
                address: address(),
                source,
            }),
            Err(_) => Err(UpstreamError::Timeout {
                address: address(),
                after: self.connect_timeout,
            }),
        }
    }
}

#[async_trait]
impl Service for ProxyService {
    fn name(&self) -> &'static str {
        "proxy"
    }

    /// Shutdown does not cut a proxied connection: it may finish until the deadline, as
    /// the protocol inside is the client's and the upstream's to end.
    async fn serve(self: Arc<Self>, conn: Conn, _shutdown: Shutdown) -> Result<(), BoxError> {
        let upstream = self.connect().await?;
        let info = conn.info.clone();
        let report = splice(conn.stream, upstream).await?;
        let closed = UpstreamClosed {
            id: info.id,
            upstream: self.upstream.clone(),
            bytes_up: report.up,
            bytes_down: report.down,
            closed_first: report.first,
        };
        self.events.emit(Event::said(&info, closed));
        Ok(())
    }
}

/// The `upstream_closed` event: a proxy's own connection to its upstream ended, the other
/// leg of connection `id`.
#[derive(Clone, Debug, Serialize)]
pub struct UpstreamClosed {
    pub id: u64,
    /// The upstream as the row names it (`host:port`).
    pub upstream: String,
    /// Bytes from the client on to the upstream.
    pub bytes_up: u64,
    /// Bytes from the upstream back to the client.
    pub bytes_down: u64,
    /// Which side finished sending first: `client` or `upstream`.
    pub closed_first: &'static str,
}

impl ServiceEvent for UpstreamClosed {
    fn name(&self) -> &'static str {
        "upstream_closed"
    }

    fn log(&self, port: PortName, service: &'static str) {
        let Self {
            upstream,
            bytes_up,
            bytes_down,
            closed_first,
            ..
        } = self;
        tracing::info!(
            %upstream, bytes_up, bytes_down, closed_first,
            "upstream leg closed: port {port} ({service}) → {upstream}, {bytes_up} bytes up, \
             {bytes_down} bytes down; the {closed_first} finished sending first"
        );
    }

    fn tally(&self) -> Tally {
        Tally {
            upstream_sent: self.bytes_up,
            upstream_received: self.bytes_down,
            ..Tally::default()
        }
    }
}

/// A direction's buffer starts at this size…
const FIRST_BUFFER: usize = 8 * 1024;
/// …and doubles up to this while reads fill it.
const MAX_BUFFER: usize = 64 * 1024;

/// Copy until `reader` ends, then shut `writer`'s sending side (the half-close passes on).
///
/// Almost all of a proxy's time is the kernel's, per system call and per wake-up
/// (bench/README.md), so a stream wants big reads; but most connections carry little, and a
/// big buffer each way is memory per connection. So the buffer starts small and doubles
/// while reads fill it; and it is read into as it comes from the allocator, never zeroed
/// first (zeroing two buffers was a fifth of a short connection's instructions).
async fn pipe<R, W>(reader: &mut R, writer: &mut W) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = Vec::with_capacity(FIRST_BUFFER);
    let mut total = 0u64;
    loop {
        // The buffer is empty here, so this reads at most `capacity` bytes.
        let n = reader.read_buf(&mut buffer).await?;
        if n == 0 {
            writer.shutdown().await?;
            return Ok(total);
        }
        writer.write_all(&buffer).await?;
        writer.flush().await?;
        total += n as u64;
        if n == buffer.capacity() && buffer.capacity() < MAX_BUFFER {
            // A new buffer, not a grown one: growing would copy the bytes already sent.
            buffer = Vec::with_capacity(2 * buffer.capacity());
        } else {
            buffer.clear();
        }
    }
}

/// What a spliced connection carried, and which side stopped sending first.
#[derive(Debug, PartialEq, Eq)]
struct Report {
    /// Bytes from the client to the upstream.
    up: u64,
    /// Bytes from the upstream to the client.
    down: u64,
    first: &'static str,
}

/// Copy both ways until both directions are done. A side that stops sending has the other
/// side's write half shut (the half-close passes on); an error either way ends both.
async fn splice<C, U>(client: C, upstream: U) -> std::io::Result<Report>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream);
    let to_upstream = pipe(&mut client_read, &mut upstream_write);
    let to_client = pipe(&mut upstream_read, &mut client_write);
    tokio::pin!(to_upstream, to_client);
    tokio::select! {
        up = &mut to_upstream => {
            let up = up?;
            Ok(Report { up, down: to_client.await?, first: "client" })
        }
        down = &mut to_client => {
            let down = down?;
            Ok(Report { up: to_upstream.await?, down, first: "upstream" })
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, duplex};

    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_name_passes_only_if_every_address_it_resolves_to_is_allowed() {
        let guard = UpstreamGuard::listed(&["127.0.0.0/8".into(), "db.test".into()]).unwrap();
        let both = addrs(&["127.0.0.1:5432", "198.51.100.7:5432"]);
        let refused = guard.admit("cache.test:5432", both.clone()).unwrap_err();
        assert!(refused.to_string().contains("198.51.100.7"), "{refused}");
        let local = addrs(&["127.0.0.1:5432", "127.0.0.2:5432"]);
        assert_eq!(
            guard.admit("cache.test:5432", local.clone()).ok(),
            Some(local)
        );
        // A listed name is the operator's word, wherever it resolves.
        assert_eq!(guard.admit("DB.test:5432", both.clone()).ok(), Some(both));
    }

    #[test]
    fn an_ipv4_address_written_as_ipv6_is_judged_as_the_ipv4_address() {
        let guard = UpstreamGuard::listed(&["127.0.0.0/8".into()]).unwrap();
        let outside = addrs(&["[::ffff:198.51.100.7]:80"]);
        assert!(guard.admit("[::ffff:198.51.100.7]:80", outside).is_err());
        let inside = addrs(&["[::ffff:127.0.0.1]:80"]);
        assert!(guard.admit("[::ffff:127.0.0.1]:80", inside).is_ok());
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_and_a_half_close_passes_on() {
        let (client, mut client_far) = duplex(64);
        let (upstream, mut upstream_far) = duplex(64);
        let spliced = tokio::spawn(splice(client, upstream));

        client_far.write_all(b"SELECT 1;").await.unwrap();
        client_far.shutdown().await.unwrap(); // the client is done sending
        let mut got = Vec::new();
        upstream_far.read_to_end(&mut got).await.unwrap();
        assert_eq!(
            got, b"SELECT 1;",
            "the upstream sees the bytes, then the end"
        );

        upstream_far.write_all(b"1 row").await.unwrap();
        upstream_far.shutdown().await.unwrap();
        let mut back = Vec::new();
        client_far.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"1 row");

        let report = spliced.await.unwrap().unwrap();
        assert_eq!(
            report,
            Report {
                up: 9,
                down: 5,
                first: "client"
            }
        );
    }

    #[tokio::test]
    async fn a_long_stream_crosses_intact_while_the_buffer_grows() {
        // A wide pipe, so that reads fill the buffer and it doubles up to its largest size.
        let (mut source, mut reader) = duplex(256 * 1024);
        let (mut writer, mut sink) = duplex(256 * 1024);
        let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let feeding = tokio::spawn({
            let sent = sent.clone();
            async move {
                source.write_all(&sent).await.unwrap();
                source.shutdown().await.unwrap();
            }
        });
        let piping = tokio::spawn(async move { pipe(&mut reader, &mut writer).await });
        let mut got = Vec::new();
        sink.read_to_end(&mut got).await.unwrap();
        feeding.await.unwrap();
        assert_eq!(piping.await.unwrap().unwrap(), sent.len() as u64);
        assert!(got == sent, "the bytes arrive whole and in order");
    }

    #[test]
    fn upstreams_are_host_and_port() {
        assert!(parse_upstream("127.0.0.1:5432").is_ok());
        assert!(parse_upstream("[::1]:6379").is_ok());
        assert!(parse_upstream("db.internal:5432").is_ok());
        assert!(
            parse_upstream("db.internal")
                .unwrap_err()
                .contains("needs a port")
        );
        assert!(parse_upstream(":80").is_err());
        assert!(parse_upstream("db:0").is_err());
        assert_eq!(host_of("[::1]:6379"), "::1");
    }

    #[tokio::test]
    async fn the_guard_allows_listed_ranges_and_names_and_names_its_setting() {
        let settings = ProxySettings {
            allow_upstreams: vec!["127.0.0.2/32".into(), "localhost".into()],
            ..ProxySettings::default()
        };
        let guard = UpstreamGuard::from_settings(&settings).unwrap();
        assert!(guard.check("127.0.0.2:80").await.is_ok());
        assert!(guard.check("localhost:80").await.is_ok());
        let refused = guard.check("127.0.0.3:80").await.unwrap_err();
        assert!(
            refused.to_string().contains("[proxy] allow_upstreams"),
            "{refused}"
        );

        let default = UpstreamGuard::from_settings(&ProxySettings::default()).unwrap();
        assert!(default.check("127.0.0.1:5432").await.is_ok());
        // A documentation address on none of this machine's networks (which differ by machine).
        let own = own_networks();
        let outside = ["198.51.100.1", "203.0.113.1", "192.0.2.1"]
            .into_iter()
            .find(|ip| !own.iter().any(|r| r.contains(ip.parse().unwrap())))
            .expect("this machine is on all three documentation networks");
        assert!(default.check(&format!("{outside}:5432")).await.is_err());

        let bad = ProxySettings {
            allow_upstreams: vec!["not a host!".into()],
            ..ProxySettings::default()
        };
        assert!(bad.validate().unwrap_err().message.contains("not a host!"));
        let zero = ProxySettings {
            connect_timeout: Duration::ZERO,
            ..ProxySettings::default()
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .message
                .starts_with("connect_timeout")
        );
    }
}
