//! One receive loop per UDP port, over all of its sockets (one per address): UDP's
//! counterpart of `listener.rs` and `gate.rs` together.
//!
//! UDP has no connections, so there is nothing to accept and nothing to keep: each datagram
//! is judged on its own (the port's access rules, then its `max_rate` per source), answered
//! by the service with at most one datagram, counted, and forgotten. A datagram that is
//! denied or over the rate is dropped in silence — answering it would tell a scanner the
//! port is open — and counted.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use switchboard_core::{DatagramService, EventBus, EventKind};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::port::{Dropped, Port};

/// The largest datagram UDP can carry over IPv4 (65 535 bytes less the IP and UDP headers).
const MAX_DATAGRAM: usize = 65_507;

/// A UDP port's sockets and what answers them.
pub(crate) struct DatagramLoop {
    pub(crate) port: Arc<Port>,
    pub(crate) service: Arc<dyn DatagramService>,
    pub(crate) events: EventBus,
    pub(crate) sockets: Vec<(UdpSocket, SocketAddr)>,
    /// `[supervisor] udp_max_answer`: answers are cut to this many bytes, or to the size of
    /// the datagram they answer if that is more.
    pub(crate) max_answer: usize,
}

impl DatagramLoop {
    /// Answer datagrams until `stop`; then close the sockets: from that moment the kernel
    /// answers datagrams to this port with ICMP port unreachable.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        let mut first = 0;
        loop {
            let received = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                received = receive_any(&self.sockets, &mut buffer, first) => received,
            };
            // Start with the next socket next time, so that a busy address cannot starve
            // the port's other addresses.
            first = first.wrapping_add(1);
            match received {
                (Ok((len, peer)), socket) => self.answer(socket, peer, &buffer[..len]),
                (Err(error), socket) => {
                    // An ICMP error for an answer sent earlier (the peer's port was closed)
                    // surfaces on the next receive; it concerns that peer only.
                    let addr = self.sockets[socket].1;
                    tracing::debug!(%addr, %error, "receiving a datagram failed");
                }
            }
        }
        for (socket, addr) in std::mem::take(&mut self.sockets) {
            drop(socket);
            self.events
                .emit(self.port.event(EventKind::PortClosed { addr }));
        }
    }

    /// Judge one datagram from `peer` that came in on socket `socket`, and answer it.
    fn answer(&self, socket: usize, peer: SocketAddr, datagram: &[u8]) {
        let event = match self.port.admit_datagram(peer.ip().to_canonical()) {
            Err(Dropped::Denied(rule)) => EventKind::ConnectionDenied { peer, rule },
            Err(Dropped::Limited(why)) => EventKind::ConnectionLimited {
                peer,
                limit: why.key(),
            },
            Ok(()) => {
                let mut sent = 0;
                if let Some(mut answer) = self.service.answer(datagram) {
                    answer.truncate(self.max_answer.max(datagram.len()));
                    // Never wait to send: if the socket's buffer is full the answer is lost,
                    // as a datagram on a busy network may be, and the port goes on.
                    match self.sockets[socket].0.try_send_to(&answer, peer) {
                        Ok(n) => sent = n,
                        Err(error) => tracing::debug!(%peer, %error, "answer not sent"),
                    }
                }
                EventKind::Datagram {
                    peer,
                    bytes_in: datagram.len() as u64,
                    bytes_out: sent as u64,
                }
            }
        };
        self.events.emit(self.port.event(event));
    }
}

/// The next datagram on any of `sockets`, trying them from `first` on: its length and
/// sender, and the index of the socket it came in on.
async fn receive_any(
    sockets: &[(UdpSocket, SocketAddr)],
    buffer: &mut [u8],
    first: usize,
) -> (io::Result<(usize, SocketAddr)>, usize) {
    poll_fn(|cx| {
        for i in 0..sockets.len() {
            let index = first.wrapping_add(i) % sockets.len();
            let mut read = ReadBuf::new(buffer);
            if let Poll::Ready(result) = sockets[index].0.poll_recv_from(cx, &mut read) {
                let len = read.filled().len();
                return Poll::Ready((result.map(|peer| (len, peer)), index));
            }
        }
        Poll::Pending
    })
    .await
}
