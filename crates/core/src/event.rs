use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::TlsInfo;
use tokio::sync::broadcast;

/// Something that happened on a port. One type for everything, so that the log, the live
/// feed and the counters can never disagree about what happened.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A listening socket was opened: from now on the kernel completes TCP handshakes for
    /// this address and port and queues the connections for the supervisor.
    PortBound {
        port: u16,
        service: &'static str,
        addr: SocketAddr,
    },
    /// A listening socket was closed: the kernel now refuses new connections to it.
    PortClosed {
        port: u16,
        service: &'static str,
        addr: SocketAddr,
    },
    /// The supervisor accepted a connection and handed it to the port's service.
    ConnectionOpened {
        id: u64,
        port: u16,
        service: &'static str,
        peer: SocketAddr,
        local: SocketAddr,
    },
    /// A TLS handshake completed: the connection is now encrypted.
    TlsEstablished {
        id: u64,
        port: u16,
        service: &'static str,
        peer: SocketAddr,
        tls: TlsInfo,
    },
    /// A TLS handshake failed or timed out; the connection is closed.
    TlsFailed {
        id: u64,
        port: u16,
        service: &'static str,
        peer: SocketAddr,
        reason: String,
    },
    /// The SMTP service accepted a message (replied 250) and stored it.
    MessageCaptured {
        id: u64,
        port: u16,
        service: &'static str,
        peer: SocketAddr,
        /// The store's ID of the message, for `/api/v1/message/{ID}`.
        message_id: String,
        from: String,
        to: Vec<String>,
        size: usize,
    },
    /// A connection ended, for whatever reason; `error` says why if it was not a clean end.
    ConnectionClosed {
        id: u64,
        port: u16,
        service: &'static str,
        peer: SocketAddr,
        bytes_in: u64,
        bytes_out: u64,
        #[serde(rename = "duration_ms", serialize_with = "millis")]
        duration: Duration,
        error: Option<String>,
    },
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

impl Event {
    /// Write the event to the tracing log, worded for a person watching the terminal.
    fn log(&self) {
        match self {
            Event::PortBound {
                port,
                service,
                addr,
            } => tracing::info!(
                %addr, port, service,
                "listening on {addr} — the kernel now hands connections for port {port} to the {service} service"
            ),
            Event::PortClosed {
                port,
                service,
                addr,
            } => tracing::info!(
                %addr, port, service,
                "closed {addr} — the kernel now refuses new connections to port {port}"
            ),
            Event::ConnectionOpened {
                port,
                service,
                peer,
                ..
            } => tracing::info!("connection opened: {peer} → port {port} ({service})"),
            Event::TlsEstablished { tls, .. } => {
                tracing::info!("TLS handshake done: {tls}");
            }
            // The connection's closing line says the same at info level; this one is for
            // debugging, so that a port scan does not double the log.
            Event::TlsFailed { reason, .. } => {
                tracing::debug!(%reason, "TLS handshake failed: {reason}");
            }
            Event::MessageCaptured {
                message_id,
                from,
                to,
                size,
                ..
            } => tracing::info!(
                message_id,
                "message captured: {message_id} from <{from}> to <{}>, {size} bytes",
                to.join(">, <")
            ),
            Event::ConnectionClosed {
                port,
                service,
                peer,
                bytes_in,
                bytes_out,
                duration,
                error,
                ..
            } => {
                let duration_us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
                let summary = format!(
                    "connection closed: {peer} → port {port} ({service}), \
                     {bytes_in} bytes in, {bytes_out} bytes out, {ms:.1} ms",
                    ms = duration.as_secs_f64() * 1000.0
                );
                match error {
                    None => tracing::info!(bytes_in, bytes_out, duration_us, "{summary}"),
                    Some(error) => tracing::info!(
                        bytes_in, bytes_out, duration_us, %error,
                        "{summary}, ended by: {error}"
                    ),
                }
            }
        }
    }
}

/// Where events are published. Cloning is cheap; every clone publishes to the same stream.
///
/// Publishing never waits: each subscriber has a bounded buffer, and one that falls behind
/// is told how many events it missed instead of slowing the server down.
#[derive(Clone, Debug)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
}

/// How many events a subscriber may fall behind before it starts missing some.
const SUBSCRIBER_BUFFER: usize = 1024;

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self { sender }
    }

    /// Log the event and deliver it to every current subscriber.
    pub fn emit(&self, event: Event) {
        event.log();
        // An error only means nobody subscribes right now, which is fine.
        let _ = self.sender.send(Arc::new(event));
    }

    /// Receive every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_emitted_events() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        bus.emit(Event::PortBound {
            port: 80,
            service: "http",
            addr,
        });
        let event = rx.recv().await.unwrap();
        assert!(matches!(*event, Event::PortBound { port: 80, .. }));
    }

    #[test]
    fn serializes_with_kind_tag_and_millis() {
        let event = Event::ConnectionClosed {
            id: 7,
            port: 80,
            service: "http",
            peer: "127.0.0.1:5000".parse().unwrap(),
            bytes_in: 10,
            bytes_out: 20,
            duration: Duration::from_millis(1500),
            error: None,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["kind"], "connection_closed");
        assert_eq!(json["duration_ms"], 1500.0);
        assert_eq!(json["bytes_out"], 20);
        assert_eq!(json["peer"], "127.0.0.1:5000");
    }
}
