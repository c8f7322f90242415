//! Opening listening sockets, all of them before any is served, with errors a newcomer can
//! act on.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use switchboard_core::Protocol;

use crate::blackhole::{self, Hole};
use crate::port::PortSpec;

/// How many finished handshakes the kernel queues for us while we are busy (or at our
/// connection limit) before it starts dropping new ones.
const BACKLOG: i32 = 1024;

/// The service named by an error about a socket the service manager passed (socket
/// activation): no service of ours had asked for it.
const PASSED: &str = "";

/// One port of the table with its open sockets.
#[derive(Debug)]
pub(crate) struct BoundPort {
    pub(crate) spec: PortSpec,
    /// The port actually bound: `spec.port`, or the one the kernel chose for port 0.
    pub(crate) port: u16,
    pub(crate) sockets: Sockets,
}

/// A port's open sockets, one per address: listening TCP sockets, UDP sockets (which
/// do not listen: they receive), or a blackhole's listening sockets with their queues full.
#[derive(Debug)]
pub(crate) enum Sockets {
    Tcp(Vec<std::net::TcpListener>),
    Udp(Vec<std::net::UdpSocket>),
    Blackhole(Vec<Hole>),
}

impl Sockets {
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        match self {
            Sockets::Tcp(sockets) => sockets.iter().filter_map(|s| s.local_addr().ok()).collect(),
            Sockets::Udp(sockets) => sockets.iter().filter_map(|s| s.local_addr().ok()).collect(),
            Sockets::Blackhole(holes) => holes
                .iter()
                .filter_map(|h| h.listener.local_addr().ok())
                .collect(),
        }
    }

    /// Open the sockets of a `service` row of `protocol` on each of `addrs` (a closed port
    /// opening again); `blackhole_wait` as for [`bind_all`].
    pub(crate) fn open(
        protocol: Protocol,
        service: &str,
        addrs: &[SocketAddr],
        blackhole_wait: Duration,
    ) -> io::Result<Self> {
        let sockets = match protocol {
            Protocol::Tcp => {
                Sockets::Tcp(addrs.iter().map(|&a| listen(a)).collect::<Result<_, _>>()?)
            }
            Protocol::Udp => Sockets::Udp(
                addrs
                    .iter()
                    .map(|&a| receive(a))
                    .collect::<Result<_, _>>()?,
            ),
        };
        sockets.for_service(service, blackhole_wait)
    }

    /// A blackhole row's listening sockets become holes (their queues filled); other rows'
    /// sockets stay as they are.
    fn for_service(self, service: &str, blackhole_wait: Duration) -> io::Result<Self> {
        match self {
            Sockets::Tcp(listeners) if service == crate::BLACKHOLE => Ok(Sockets::Blackhole(
                blackhole::dig(listeners, blackhole_wait)?,
            )),
            sockets => Ok(sockets),
        }
    }
}

impl BoundPort {
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        self.sockets.addrs()
    }

    /// The port with its sockets made ready for its row's service (a blackhole's filled).
    fn for_service(self, blackhole_wait: Duration) -> Result<Self, BindError> {
        let Self {
            spec,
            port,
            sockets,
        } = self;
        let addr = sockets
            .addrs()
            .first()
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], port)));
        let sockets = sockets
            .for_service(spec.service, blackhole_wait)
            .map_err(|error| BindError {
                addr,
                protocol: spec.protocol,
                service: spec.service,
                error,
            })?;
        Ok(Self {
            spec,
            port,
            sockets,
        })
    }
}

/// Open every listener of the table; a blackhole row's queue is filled, waiting up to
/// `blackhole_wait` for the kernel to drop a knock of its own. If one fails, the ones
/// already open are closed again (dropped) before the error is returned: either the whole
/// table listens or nothing does.
///
/// Sockets passed by a service manager (systemd's socket activation, `LISTEN_FDS`) are
/// used instead of binding: a socket whose name (`LISTEN_FDNAMES`, a `.socket` unit's
/// `FileDescriptorName=`) is a row's name is that row's; the others go to the rows whose port
/// (and address, where the row names addresses) they match. A passed socket that no row is
/// for is an error naming it.
pub(crate) fn bind_all(
    ports: &[PortSpec],
    blackhole_wait: Duration,
) -> Result<Vec<BoundPort>, BindError> {
    let mut passed = passed_sockets()?;
    let bound = ports
        .iter()
        .map(|spec| match adopt(spec, &mut passed) {
            Some(adopted) => adopted.for_service(blackhole_wait),
            None => bind_port(spec, blackhole_wait),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(socket) = passed.first() {
        return Err(BindError {
            addr: socket.addr,
            protocol: Protocol::Tcp,
            service: PASSED,
            error: io::Error::other("passed by the service manager, but no row is for it"),
        });
    }
    Ok(bound)
}

/// A listening socket a service manager passed.
#[derive(Debug)]
struct Passed {
    addr: SocketAddr,
    /// Its name in `LISTEN_FDNAMES`, if the manager gave names.
    name: Option<String>,
    listener: std::net::TcpListener,
}

/// The listening TCP sockets a service manager passed (`LISTEN_FDS`; `LISTEN_PID`, when
/// set, must be this process), with their addresses and names.
fn passed_sockets() -> Result<Vec<Passed>, BindError> {
    let mut fds = listenfd::ListenFd::from_env();
    // One name per descriptor, in order, separated by colons (sd_listen_fds_with_names(3)).
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|names| names.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let unusable = |index: usize, error: io::Error| BindError {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        protocol: Protocol::Tcp,
        service: PASSED,
        error: io::Error::other(format!(
            "descriptor {} passed by the service manager (LISTEN_FDS) is not a listening TCP \
             socket: {error}",
            index + 3
        )),
    };
    let mut sockets = Vec::new();
    for index in 0..fds.len() {
        let Some(listener) = fds
            .take_tcp_listener(index)
            .map_err(|e| unusable(index, e))?
        else {
            continue;
        };
        let addr = listener.local_addr().map_err(|e| unusable(index, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| unusable(index, e))?;
        let name = names.get(index).filter(|n| !n.is_empty()).cloned();
        match &name {
            Some(name) => {
                tracing::info!(%addr, "adopting {addr} ({name}), passed by the service manager")
            }
            None => tracing::info!(%addr, "adopting {addr}, passed by the service manager"),
        }
        sockets.push(Passed {
            addr,
            name,
            listener,
        });
    }
    Ok(sockets)
}

/// The passed sockets that are `spec`'s: those named as the row is, else those on its port
/// at its addresses (if it names any). None when there are none (the row is bound as
/// usual).
fn adopt(spec: &PortSpec, passed: &mut Vec<Passed>) -> Option<BoundPort> {
    if spec.protocol != Protocol::Tcp {
        return None;
    }
    let row_name = spec
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", spec.service, spec.port));
    let named: Vec<Passed> = passed
        .extract_if(.., |p| p.name.as_deref() == Some(row_name.as_str()))
        .collect();
    let mine = match named.is_empty() {
        false => named,
        true if spec.port == 0 => return None,
        true => passed
            .extract_if(.., |p| {
                p.addr.port() == spec.port
                    && (spec.bind.is_empty() || spec.bind.contains(&p.addr.ip()))
            })
            .collect(),
    };
    let port = mine.first()?.addr.port();
    Some(BoundPort {
        spec: spec.clone(),
        port,
        sockets: Sockets::Tcp(mine.into_iter().map(|p| p.listener).collect()),
    })
}

pub(crate) fn bind_port(spec: &PortSpec, blackhole_wait: Duration) -> Result<BoundPort, BindError> {
    let explicit = !spec.bind.is_empty();
    // By default: one socket per address family, so `ss -ltn` shows both 0.0.0.0 and [::].
    let addrs = if explicit {
        spec.bind.clone()
    } else {
        vec![
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ]
    };
    let mut port = spec.port;
    let (mut tcp, mut udp) = (Vec::new(), Vec::new());
    for ip in addrs {
        let addr = SocketAddr::new(ip, port);
        // Keep the socket; the address it was bound to.
        let opened = match spec.protocol {
            Protocol::Tcp => listen(addr).and_then(|socket| {
                let bound = socket.local_addr()?;
                tcp.push(socket);
                Ok(bound)
            }),
            Protocol::Udp => receive(addr).and_then(|socket| {
                let bound = socket.local_addr()?;
                udp.push(socket);
                Ok(bound)
            }),
        };
        match opened {
            // Port 0: the kernel picked a port for the first address; use the same one for
            // the other addresses so the port means one thing.
            Ok(bound) => port = bound.port(),
            Err(error) if !explicit && ip.is_ipv6() && ipv6_unavailable(&error) => {
                tracing::warn!(
                    "IPv6 is not available here ({error}); port {port} listens on IPv4 only"
                );
            }
            Err(error) => {
                return Err(BindError {
                    addr,
                    protocol: spec.protocol,
                    service: spec.service,
                    error,
                });
            }
        }
    }
    let sockets = match spec.protocol {
        Protocol::Tcp => Sockets::Tcp(tcp),
        Protocol::Udp => Sockets::Udp(udp),
    };
    BoundPort {
        spec: spec.clone(),
        port,
        sockets,
    }
    .for_service(blackhole_wait)
}

/// A listening TCP socket on `addr`.
pub(crate) fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = open(addr, Protocol::Tcp)?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// A UDP socket bound to `addr`. UDP has no listen(): a bound socket receives every
/// datagram sent to its address and port.
pub(crate) fn receive(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    Ok(open(addr, Protocol::Udp)?.into())
}

/// A non-blocking socket of `protocol` bound to `addr`.
fn open(addr: SocketAddr, protocol: Protocol) -> io::Result<Socket> {
    let (kind, number) = match protocol {
        Protocol::Tcp => (Type::STREAM, socket2::Protocol::TCP),
        Protocol::Udp => (Type::DGRAM, socket2::Protocol::UDP),
    };
    let socket = Socket::new(Domain::for_address(addr), kind, Some(number))?;
    if addr.is_ipv6() {
        // Otherwise [::] would also take IPv4 traffic and collide with 0.0.0.0.
        socket.set_only_v6(true)?;
    }
    if protocol == Protocol::Tcp {
        // Allows binding again right after a restart while old connections sit in
        // TIME_WAIT. (It does not allow two live listeners on one port.) Not for UDP: there
        // it would let a second program bind the same port and silently share its
        // datagrams, instead of hearing "address in use".
        socket.set_reuse_address(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

fn ipv6_unavailable(error: &io::Error) -> bool {
    // EAFNOSUPPORT: no IPv6 in the kernel; EADDRNOTAVAIL: IPv6 disabled (often in containers).
    matches!(error.raw_os_error(), Some(97 | 99))
}

/// A listening socket could not be opened.
#[derive(Debug)]
pub struct BindError {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub service: &'static str,
    pub error: io::Error,
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let threshold = unprivileged_port_start();
        let text = explain(self.addr, self.service, &self.error, threshold);
        match self.protocol {
            Protocol::Tcp => f.write_str(&text),
            // The same words, with UDP's way to find the holder of a port.
            Protocol::Udp => f.write_str(&text.replace("ss -ltnp", "ss -lunp")),
        }
    }
}

/// The kernel's lowest port that needs no privilege (`net.ipv4.ip_unprivileged_port_start`),
/// if this system says.
fn unprivileged_port_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Word a bind failure so that someone new to ports knows what happened and what to do.
/// `threshold` is the lowest unprivileged port, when known.
fn explain(addr: SocketAddr, service: &str, error: &io::Error, threshold: Option<u16>) -> String {
    let port = addr.port();
    if service == PASSED {
        return match port {
            0 => error.to_string(),
            _ => format!(
                "{addr} was passed by the service manager (socket activation: LISTEN_FDS), but \
                 no row of the port table is for port {port}.\n\
                 Add a [[port]] for {port} to the config file, or leave {addr} out of the \
                 .socket unit."
            ),
        };
    }
    match error.kind() {
        io::ErrorKind::PermissionDenied if port < threshold.unwrap_or(1024) => {
            let sysctl = match threshold {
                Some(t) => {
                    format!("on this machine the sysctl net.ipv4.ip_unprivileged_port_start is {t}")
                }
                None => "the limit is the sysctl net.ipv4.ip_unprivileged_port_start".to_owned(),
            };
            format!(
                "cannot listen on port {port} ({addr}) for the {service} service: permission denied.\n\
                 Ports below 1024 are privileged: only root, or a program with the capability \
                 CAP_NET_BIND_SERVICE, may listen on them ({sysctl}).\n\
                 Fixes, pick one:\n  \
                   - run as root:                 sudo switchboard serve\n  \
                   - grant the capability once:   sudo setcap cap_net_bind_service=+ep \"$(command -v switchboard)\"\n  \
                   - use unprivileged ports:      switchboard serve --port-offset 8000   (80 → 8080, 443 → 8443, 25 → 8025)"
            )
        }
        io::ErrorKind::AddrInUse => format!(
            "cannot listen on {addr} for the {service} service: address already in use — \
             another program is already listening on port {port}.\n\
             Find it with:   ss -ltnp 'sport = :{port}'\n\
             Then stop that program, or {}",
            match service {
                // Its clients look for it on its own port, so the offset leaves it there.
                "toxiproxy" =>
                    "give switchboard a config file that moves or leaves out the \
                                toxiproxy row (--port-offset does not move it: Toxiproxy's \
                                clients look for 8474).",
                _ => "move switchboard's ports with --port-offset N or a config file.",
            }
        ),
        io::ErrorKind::AddrNotAvailable => format!(
            "cannot listen on {addr} for the {service} service: no network interface of this \
             machine has the address {ip}.\n\
             Check --bind or `bind` in the config file; `ip addr` lists this machine's addresses.",
            ip = addr.ip()
        ),
        _ => format!("cannot listen on {addr} for the {service} service: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[supervisor] blackhole_wait` (no row here is a blackhole).
    const WAIT: Duration = Duration::from_millis(200);

    fn spec(port: u16, bind: &[&str]) -> PortSpec {
        let mut spec = PortSpec::new(port, "http", 10);
        spec.bind = bind.iter().map(|a| a.parse().unwrap()).collect();
        spec
    }

    #[test]
    fn permission_denied_below_1024_explains_privileged_ports_and_fixes() {
        let error = io::Error::from(io::ErrorKind::PermissionDenied);
        let text = explain("0.0.0.0:80".parse().unwrap(), "http", &error, Some(1024));
        assert!(
            text.starts_with(
                "cannot listen on port 80 (0.0.0.0:80) for the http service: permission denied."
            ),
            "{text}"
        );
        for needle in [
            "Ports below 1024 are privileged",
            "CAP_NET_BIND_SERVICE",
            "net.ipv4.ip_unprivileged_port_start is 1024",
            "sudo switchboard serve",
            "setcap cap_net_bind_service=+ep",
            "--port-offset 8000",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn permission_denied_above_the_threshold_is_not_called_privileged() {
        let error = io::Error::from(io::ErrorKind::PermissionDenied);
        let text = explain("0.0.0.0:8080".parse().unwrap(), "http", &error, Some(1024));
        assert!(!text.contains("privileged"), "{text}");
        assert!(text.contains("8080"), "{text}");
    }

    #[test]
    fn address_in_use_says_how_to_find_the_holder() {
        let error = io::Error::from(io::ErrorKind::AddrInUse);
        let text = explain("127.0.0.1:8080".parse().unwrap(), "http", &error, None);
        assert!(text.contains("127.0.0.1:8080"), "{text}");
        assert!(text.contains("address already in use"), "{text}");
        assert!(text.contains("ss -ltnp 'sport = :8080'"), "{text}");
        let text = explain("[::]:8474".parse().unwrap(), "toxiproxy", &error, None);
        assert!(text.contains("--port-offset does not move it"), "{text}");
    }

    #[test]
    fn binding_a_busy_port_fails_and_releases_the_others() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = held.local_addr().unwrap().port();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let free_port = free.local_addr().unwrap().port();
        drop(free);

        let err = bind_all(
            &[spec(free_port, &["127.0.0.1"]), spec(busy, &["127.0.0.1"])],
            WAIT,
        )
        .unwrap_err();
        assert_eq!(err.error.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(err.addr.port(), busy);
        // The port bound before the failure was closed again.
        let refused = std::net::TcpStream::connect(("127.0.0.1", free_port)).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn a_busy_udp_port_is_in_use_and_says_how_to_find_the_holder() {
        // A UDP port whose TCP twin is free right now (other tests' connections take TCP
        // ports from the same range, and this test binds the twin below).
        let (_held, busy) = std::iter::repeat_with(|| {
            let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = held.local_addr().unwrap().port();
            (held, port)
        })
        .take(50)
        .find(|(_, port)| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a UDP port whose TCP twin is free");
        let mut row = spec(busy, &["127.0.0.1"]);
        row.protocol = Protocol::Udp;
        let err = bind_all(&[row], WAIT).unwrap_err();
        assert_eq!(err.error.kind(), io::ErrorKind::AddrInUse);
        let text = err.to_string();
        assert!(
            text.contains(&format!("ss -lunp 'sport = :{busy}'")),
            "{text}"
        );
        // The same number over TCP is another port, free.
        let bound = bind_all(&[spec(busy, &["127.0.0.1"])], WAIT);
        assert!(bound.is_ok(), "{bound:?}");
    }

    #[test]
    fn port_zero_uses_one_kernel_chosen_port_for_every_address() {
        let bound = bind_all(&[spec(0, &["127.0.0.1", "127.0.0.2"])], WAIT).unwrap();
        let addrs = bound[0].addrs();
        assert_eq!(addrs.len(), 2);
        assert_ne!(addrs[0].port(), 0);
        assert_eq!(addrs[0].port(), addrs[1].port());
        assert_eq!(bound[0].port, addrs[0].port());
    }
}
