//! How a probe knocks: how long it waits, and from which address it speaks.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

/// How to knock: how long to wait for each answer, and from which of this machine's
/// addresses. Without `from` the kernel picks the source address from its routes; with it,
/// the probe speaks as that address (`--from`, like nmap's `-S` or curl's `--interface`),
/// which is how a rule that admits some sources only is tried from both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knock {
    pub timeout: Duration,
    pub from: Option<IpAddr>,
}

impl From<Duration> for Knock {
    fn from(timeout: Duration) -> Self {
        Self {
            timeout,
            from: None,
        }
    }
}

impl Knock {
    /// The local address to bind for a socket to `addr`: `from`, or any address of the
    /// same family (the kernel's choice), always with a port of the kernel's choice.
    pub(crate) fn local(&self, addr: SocketAddr) -> io::Result<SocketAddr> {
        match (self.from, addr) {
            (Some(from), to) if from.is_ipv4() != to.is_ipv4() => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "--from {from} cannot reach {}: another address family",
                    to.ip()
                ),
            )),
            (Some(from), _) => Ok(SocketAddr::new(from, 0)),
            (None, SocketAddr::V4(_)) => Ok((std::net::Ipv4Addr::UNSPECIFIED, 0).into()),
            (None, SocketAddr::V6(_)) => Ok((std::net::Ipv6Addr::UNSPECIFIED, 0).into()),
        }
    }

    /// A TCP connection to `addr`, from `from` if given.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(self.local(addr)?)?;
        socket.connect(addr).await
    }
}
