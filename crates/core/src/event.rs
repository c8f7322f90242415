use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

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
    /// Every connection slot of the port is taken: switchboard stops accepting, and new
    /// connections wait in the kernel's queue until one ends.
    PortAtLimit {
        port: u16,
        service: &'static str,
        limit: usize,
    },
    /// An access rule of the port closed a connection at once: it never reached the service.
    /// (The kernel had already accepted it: this is not a packet filter.)
    ConnectionDenied {
        port: u16,
        service: &'static str,
        peer: SocketAddr,
        /// The rule that decided, e.g. `deny 127.0.0.3/32` or `not in allow`.
        rule: String,
    },
    /// A limit of the port turned a connection away (politely where the protocol can).
    ConnectionLimited {
        port: u16,
        service: &'static str,
        peer: SocketAddr,
        /// The config key of the limit: `max_connections`, `max_per_source`, `max_rate`.
        limit: &'static str,
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
            Event::PortAtLimit {
                port,
                service,
                limit,
            } => tracing::warn!(
                port,
                service,
                limit,
                "port {port} ({service}) is at its limit of {limit} connections; new ones wait in the kernel's queue"
            ),
            Event::ConnectionDenied {
                port,
                service,
                peer,
                rule,
            } => tracing::info!(
                %rule,
                "connection denied: {peer} → port {port} ({service}) by the rule \"{rule}\"; closed before it reached the service"
            ),
            Event::ConnectionLimited {
                port,
                service,
                peer,
                limit,
            } => tracing::info!(
                limit,
                "connection turned away: {peer} → port {port} ({service}) is over {limit}"
            ),
            Event::ConnectionOpened {
                port,
                service,
                peer,
                ..
            } => tracing::info!("connection opened: {peer} → port {port} ({service})"),
            // The connection's span carries the TLS details from here on, so every later line
            // of the connection, its closing line included, shows them at info level; a line
            // of its own would add a third line to every short HTTPS connection.
            Event::TlsEstablished { tls, .. } => {
                tracing::debug!("TLS handshake done: {tls}");
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

impl Event {
    /// The event's name: `connection_opened`, `port_bound`, … (the SSE event name).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::PortBound { .. } => "port_bound",
            Event::PortClosed { .. } => "port_closed",
            Event::PortAtLimit { .. } => "port_at_limit",
            Event::ConnectionDenied { .. } => "connection_denied",
            Event::ConnectionLimited { .. } => "connection_limited",
            Event::ConnectionOpened { .. } => "connection_opened",
            Event::TlsEstablished { .. } => "tls_established",
            Event::TlsFailed { .. } => "tls_failed",
            Event::MessageCaptured { .. } => "message_captured",
            Event::ConnectionClosed { .. } => "connection_closed",
        }
    }
}

/// An event and when it happened.
#[derive(Clone, Debug, Serialize)]
pub struct Timed {
    /// RFC 3339, UTC, milliseconds.
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    #[serde(flatten)]
    pub event: Event,
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let text = time::OffsetDateTime::from(*t)
        .format(format)
        .map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}

/// Something that keeps count of events as they happen (the port table, the metrics).
///
/// Observers are called synchronously inside [`EventBus::emit`], so their counts are never
/// behind and never lose an event; they must be quick and must not block.
pub trait Observer: Send + Sync + 'static {
    fn observe(&self, event: &Event);
}

/// Where events are published. Cloning is cheap; every clone publishes to the same stream.
///
/// `emit` writes the log line, updates every [`Observer`], and hands the event to every
/// subscriber (the live feed). Publishing never waits: each subscriber has a bounded buffer,
/// and one that falls behind is told how many events it missed instead of slowing the
/// server down.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Timed>>,
    /// Set once, before the first event that matters (see [`EventBus::set_observers`]).
    observers: Arc<OnceLock<Vec<Arc<dyn Observer>>>>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("observers", &self.observers.get().map_or(0, Vec::len))
            .field("subscribers", &self.sender.receiver_count())
            .finish()
    }
}

/// How many events a subscriber may fall behind before it starts missing some.
const SUBSCRIBER_BUFFER: usize = 1024;

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no observers yet.
    pub fn new() -> Self {
        Self::without_observers()
    }

    pub fn with_observers(observers: Vec<Arc<dyn Observer>>) -> Self {
        let bus = Self::without_observers();
        bus.set_observers(observers);
        bus
    }

    fn without_observers() -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self {
            sender,
            observers: Arc::new(OnceLock::new()),
        }
    }

    /// Give a bus made with [`EventBus::new`] its observers, once: for observers that can
    /// only be built after the bus (they hold things that need the bus). Later calls are
    /// ignored.
    pub fn set_observers(&self, observers: Vec<Arc<dyn Observer>>) {
        let _ = self.observers.set(observers);
    }

    /// Log the event, count it, and deliver it to every current subscriber.
    pub fn emit(&self, event: Event) {
        event.log();
        for observer in self.observers.get().into_iter().flatten() {
            observer.observe(&event);
        }
        // Building the shared copy costs an allocation; skip it when nobody listens.
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(Arc::new(Timed {
                at: SystemTime::now(),
                event,
            }));
        }
    }

    /// Receive every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Timed>> {
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
        let timed = rx.recv().await.unwrap();
        assert!(matches!(timed.event, Event::PortBound { port: 80, .. }));
        assert!(timed.at <= SystemTime::now());
    }

    #[test]
    fn observers_see_every_event_even_without_subscribers() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Count(AtomicUsize);
        impl Observer for Count {
            fn observe(&self, _: &Event) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let bus = EventBus::with_observers(vec![count.clone()]);
        for port in [1, 2, 3] {
            bus.emit(Event::PortAtLimit {
                port,
                service: "echo",
                limit: 1,
            });
        }
        assert_eq!(count.0.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn every_kind_name_matches_its_json_tag() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let tls = TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "X".into(),
            alpn: None,
            sni: None,
        };
        let all = [
            Event::PortBound {
                port: 1,
                service: "s",
                addr: peer,
            },
            Event::PortClosed {
                port: 1,
                service: "s",
                addr: peer,
            },
            Event::PortAtLimit {
                port: 1,
                service: "s",
                limit: 1,
            },
            Event::ConnectionOpened {
                id: 1,
                port: 1,
                service: "s",
                peer,
                local: peer,
            },
            Event::TlsEstablished {
                id: 1,
                port: 1,
                service: "s",
                peer,
                tls,
            },
            Event::TlsFailed {
                id: 1,
                port: 1,
                service: "s",
                peer,
                reason: "r".into(),
            },
            Event::MessageCaptured {
                id: 1,
                port: 1,
                service: "s",
                peer,
                message_id: "m".into(),
                from: "f".into(),
                to: vec![],
                size: 1,
            },
            Event::ConnectionClosed {
                id: 1,
                port: 1,
                service: "s",
                peer,
                bytes_in: 0,
                bytes_out: 0,
                duration: Duration::ZERO,
                error: None,
            },
        ];
        for event in all {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["kind"], event.kind());
            assert_eq!(json["port"], 1);
        }
    }

    #[test]
    fn timed_events_serialize_flat_with_their_time() {
        let timed = Timed {
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_687_200_123),
            event: Event::PortAtLimit {
                port: 80,
                service: "http",
                limit: 5,
            },
        };
        let json = serde_json::to_value(&timed).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"at": "2026-11-26T10:00:00.123Z", "kind": "port_at_limit", "port": 80, "service": "http", "limit": 5})
        );
        assert_eq!(timed.event.kind(), "port_at_limit");
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
