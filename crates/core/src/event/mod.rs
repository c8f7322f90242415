use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use tokio::sync::broadcast;

use crate::{Protocol, TlsInfo};

mod metrics;
mod said;
mod text;

pub use metrics::{Metrics, PortCounts};
pub use said::{Fields, Said, ServiceEvent, Tally, millis};
pub use text::{Addr, PortName};

/// Something that happened on a port. One type for everything, so that the log, the live
/// feed and the counters can never disagree about what happened.
///
/// Every event names its port and the service behind it; [`EventKind`] says what happened.
/// As JSON it is one flat object: `{"port": 80, "service": "http", "kind": "…", …}`.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub port: u16,
    /// `tcp` or `udp`: 7/tcp and 7/udp are two ports.
    pub protocol: Protocol,
    pub service: &'static str,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A listening socket was opened: from now on the kernel completes TCP handshakes for
    /// this address and port and queues the connections for the supervisor.
    PortBound { addr: SocketAddr },
    /// A listening socket was closed: the kernel now refuses new connections to it.
    PortClosed { addr: SocketAddr },
    /// Every connection slot of the port is taken: switchboard stops accepting, and new
    /// connections wait in the kernel's queue until one ends.
    PortAtLimit { limit: usize },
    /// An access rule of the port closed a connection at once: it never reached the service.
    /// (The kernel had already accepted it: this is not a packet filter.)
    ConnectionDenied {
        peer: SocketAddr,
        /// The rule that decided, e.g. `deny 127.0.0.3/32` or `not in allow`.
        rule: String,
    },
    /// A limit of the port turned a connection away (politely where the protocol can).
    ConnectionLimited {
        peer: SocketAddr,
        /// The config key of the limit: `max_connections`, `max_per_source`, `max_rate`.
        limit: &'static str,
    },
    /// A connection was accepted and reset at once, on purpose: the port was asked to reset
    /// its next connections (`left` more to go).
    ConnectionReset { peer: SocketAddr, left: u32 },
    /// A fault began on the port: a toxic was added, or the port was closed for a while or
    /// told to reset its next connections.
    FaultStarted {
        /// Which fault: a toxic's name, `close` or `reset`.
        fault: String,
        /// What it does, in words.
        detail: String,
    },
    /// A fault ended: it was removed, or it ran its course (its connections, its time).
    FaultEnded {
        fault: String,
        /// Why, in words.
        reason: String,
    },
    /// The supervisor accepted a connection and handed it to the port's service.
    ConnectionOpened {
        id: u64,
        peer: SocketAddr,
        local: SocketAddr,
    },
    /// A datagram came to a UDP port and its service answered it (`bytes_out` 0: with
    /// silence). UDP has no connections: each datagram is judged, counted and answered on
    /// its own.
    Datagram {
        peer: SocketAddr,
        bytes_in: u64,
        bytes_out: u64,
    },
    /// A TLS handshake completed: the connection is now encrypted.
    TlsEstablished {
        id: u64,
        peer: SocketAddr,
        tls: TlsInfo,
    },
    /// A TLS handshake failed or timed out; the connection is closed.
    TlsFailed {
        id: u64,
        peer: SocketAddr,
        reason: String,
    },
    /// A connection ended, for whatever reason; `error` says why if it was not a clean end.
    ConnectionClosed {
        id: u64,
        peer: SocketAddr,
        bytes_in: u64,
        bytes_out: u64,
        #[serde(rename = "duration_ms", serialize_with = "millis")]
        duration: Duration,
        error: Option<String>,
    },
    /// Something a service has to tell of its own (a message captured, a program started):
    /// its type is in its crate, and says itself ([`ServiceEvent`]).
    #[serde(untagged)]
    Service(Said),
}

impl Event {
    /// An event of TCP port `port`, whose service is `service`.
    pub fn new(port: u16, service: &'static str, kind: EventKind) -> Self {
        Self {
            port,
            protocol: Protocol::Tcp,
            service,
            kind,
        }
    }

    /// The same event, of a port of `protocol`.
    pub fn on(self, protocol: Protocol) -> Self {
        Self { protocol, ..self }
    }
}

impl Event {
    /// Write the event to the tracing log, worded for a person watching the terminal.
    fn log(&self) {
        let Event {
            port: number,
            protocol,
            service,
            kind,
        } = self;
        let port = PortName(*number, *protocol);
        match kind {
            EventKind::PortBound { addr } if *service == crate::BLACKHOLE => tracing::info!(
                %addr, port = number, %protocol, service,
                "listening on {addr} — but nobody accepts connections for port {port}: a \
                 blackhole, where the kernel drops every knock"
            ),
            EventKind::PortBound { addr } => tracing::info!(
                %addr, port = number, %protocol, service,
                "{} {addr} — the kernel now hands {} for port {port} to the {service} service",
                match protocol {
                    Protocol::Tcp => "listening on",
                    Protocol::Udp => "bound",
                },
                match protocol {
                    Protocol::Tcp => "connections",
                    Protocol::Udp => "datagrams",
                }
            ),
            EventKind::PortClosed { addr } => tracing::info!(
                %addr, port = number, %protocol, service,
                "closed {addr} — the kernel now {} to port {port}",
                match protocol {
                    Protocol::Tcp => "refuses new connections",
                    Protocol::Udp => "answers datagrams with ICMP port unreachable",
                }
            ),
            EventKind::PortAtLimit { limit } => tracing::warn!(
                port = number,
                service,
                limit,
                "port {port} ({service}) is at its limit of {limit} connections; new ones wait in the kernel's queue"
            ),
            EventKind::ConnectionDenied { peer, rule } if *protocol == Protocol::Udp => {
                tracing::info!(
                    %rule,
                    "datagram dropped: {peer} → port {port} ({service}) by the rule \"{rule}\"; the service never saw it"
                )
            }
            EventKind::ConnectionDenied { peer, rule } => tracing::info!(
                %rule,
                "connection denied: {peer} → port {port} ({service}) by the rule \"{rule}\"; closed before it reached the service"
            ),
            EventKind::ConnectionLimited { peer, limit } if *protocol == Protocol::Udp => {
                tracing::info!(
                    limit,
                    "datagram dropped: {peer} → port {port} ({service}) is over {limit}"
                )
            }
            EventKind::ConnectionLimited { peer, limit } => tracing::info!(
                limit,
                "connection turned away: {peer} → port {port} ({service}) is over {limit}"
            ),
            EventKind::ConnectionReset { peer, left } => tracing::info!(
                left,
                "connection reset on purpose: {peer} → port {port} ({service}); {left} more to reset"
            ),
            EventKind::FaultStarted { fault, detail } => tracing::info!(
                %fault,
                "fault started on port {port} ({service}): {fault}: {detail}"
            ),
            EventKind::FaultEnded { fault, reason } => tracing::info!(
                %fault,
                "fault ended on port {port} ({service}): {fault}: {reason}"
            ),
            // The lines every connection or datagram writes name the peer through `Addr`.
            EventKind::Datagram {
                peer,
                bytes_in,
                bytes_out,
            } => tracing::info!(
                bytes_in,
                bytes_out,
                "datagram: {peer} → port {port} ({service}), {bytes_in} bytes in, {bytes_out} bytes out",
                peer = Addr(*peer)
            ),
            EventKind::ConnectionOpened { peer, .. } => tracing::info!(
                "connection opened: {peer} → port {port} ({service})",
                peer = Addr(*peer)
            ),
            // The connection's span carries the TLS details from here on, so every later line
            // of the connection, its closing line included, shows them at info level; a line
            // of its own would add a third line to every short HTTPS connection.
            EventKind::TlsEstablished { tls, .. } => {
                tracing::debug!("TLS handshake done: {tls}");
            }
            // The connection's closing line says the same at info level; this one is for
            // debugging, so that a port scan does not double the log.
            EventKind::TlsFailed { reason, .. } => {
                tracing::debug!(%reason, "TLS handshake failed: {reason}");
            }
            EventKind::ConnectionClosed {
                peer,
                bytes_in,
                bytes_out,
                duration,
                error,
                ..
            } => {
                let duration_us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
                let ms = duration.as_secs_f64() * 1000.0;
                let peer = Addr(*peer);
                // Written straight into the line, not into a string first.
                let summary = format_args!(
                    "connection closed: {peer} → port {port} ({service}), \
                     {bytes_in} bytes in, {bytes_out} bytes out, {ms:.1} ms"
                );
                match error {
                    None => tracing::info!(bytes_in, bytes_out, duration_us, "{summary}"),
                    Some(error) => tracing::info!(
                        bytes_in, bytes_out, duration_us, %error,
                        "{summary}, ended by: {error}"
                    ),
                }
            }
            EventKind::Service(said) => said.log(port, service),
        }
    }
}

impl EventKind {
    /// A fault began: `fault` names it (a toxic's name, `close`, `reset`, `chaos Sender`, …),
    /// `detail` says what it does.
    pub fn fault_started(fault: impl Into<String>, detail: impl Into<String>) -> Self {
        EventKind::FaultStarted {
            fault: fault.into(),
            detail: detail.into(),
        }
    }

    /// A fault ended, and why.
    pub fn fault_ended(fault: impl Into<String>, reason: impl Into<String>) -> Self {
        EventKind::FaultEnded {
            fault: fault.into(),
            reason: reason.into(),
        }
    }

    /// The event's name: `connection_opened`, `port_bound`, … (the SSE event name, and the
    /// `kind` of its JSON).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::PortBound { .. } => "port_bound",
            EventKind::PortClosed { .. } => "port_closed",
            EventKind::PortAtLimit { .. } => "port_at_limit",
            EventKind::ConnectionDenied { .. } => "connection_denied",
            EventKind::ConnectionLimited { .. } => "connection_limited",
            EventKind::ConnectionReset { .. } => "connection_reset",
            EventKind::FaultStarted { .. } => "fault_started",
            EventKind::FaultEnded { .. } => "fault_ended",
            EventKind::ConnectionOpened { .. } => "connection_opened",
            EventKind::Datagram { .. } => "datagram",
            EventKind::TlsEstablished { .. } => "tls_established",
            EventKind::TlsFailed { .. } => "tls_failed",
            EventKind::ConnectionClosed { .. } => "connection_closed",
            EventKind::Service(said) => said.name(),
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
    s.serialize_str(&timestamp(*t))
}

/// How switchboard writes a moment: RFC 3339 in UTC with milliseconds, as Mailpit does
/// (`2026-11-26T10:00:00.123Z`). Events and the mail API both use it.
pub fn timestamp(t: impl Into<time::OffsetDateTime>) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.into()
        .to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// Where events are published. Cloning is cheap; every clone publishes to the same stream.
///
/// `emit` writes the log line, counts the event in the [`Metrics`] (synchronously, so the
/// counts are never behind and never miss one), and hands the event to every subscriber
/// (the live feed). Publishing never waits: each subscriber has a bounded buffer, and one
/// that falls behind is told how many events it missed instead of slowing the server down.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Timed>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.sender.receiver_count())
            .finish_non_exhaustive()
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
    /// A bus with fresh counters and no subscribers.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self {
            sender,
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Log the event, count it, and deliver it to every current subscriber.
    pub fn emit(&self, event: Event) {
        event.log();
        self.metrics.count(&event);
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

    /// The counts of everything emitted so far.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event::new(1, "s", kind)
    }

    /// A service's event, as a service's crate would define one.
    #[derive(Debug, Serialize)]
    pub(super) struct Told {
        pub(super) count: u64,
    }

    impl ServiceEvent for Told {
        fn name(&self) -> &'static str {
            "something_told"
        }

        fn log(&self, port: PortName, service: &'static str) {
            tracing::info!("told {} on port {port} ({service})", self.count);
        }

        fn tally(&self) -> Tally {
            Tally {
                messages: self.count,
                ..Tally::default()
            }
        }
    }

    #[test]
    fn a_service_event_is_one_flat_object_says_itself_and_is_found_by_its_type() {
        let told = Event::new(25, "smtp", EventKind::Service(Said::new(Told { count: 2 })));
        assert_eq!(
            serde_json::to_value(&told).unwrap(),
            serde_json::json!({"port": 25, "protocol": "tcp", "service": "smtp", "kind": "something_told", "count": 2})
        );
        assert_eq!(told.kind.name(), "something_told");
        assert_eq!(told.get::<Told>().map(|t| t.count), Some(2));
        let other = event(EventKind::PortAtLimit { limit: 1 });
        assert!(other.get::<Told>().is_none());
        assert_eq!(logged(vec![told]), "told 2 on port 25 (smtp)\n");
    }

    #[tokio::test]
    async fn subscribers_receive_emitted_events() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        bus.emit(Event::new(80, "http", EventKind::PortBound { addr }));
        let timed = rx.recv().await.unwrap();
        assert_eq!(timed.event.port, 80);
        assert!(matches!(timed.event.kind, EventKind::PortBound { .. }));
        assert!(timed.at <= SystemTime::now());
    }

    #[test]
    fn every_event_is_counted_even_without_subscribers() {
        let bus = EventBus::new();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        for id in [1, 2, 3] {
            bus.emit(Event::new(
                7,
                "echo",
                EventKind::ConnectionOpened {
                    id,
                    peer,
                    local: peer,
                },
            ));
        }
        assert_eq!(bus.metrics().port(7, Protocol::Tcp, "echo").accepted, 3);
    }

    #[test]
    fn every_kind_name_matches_its_json_tag() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let tls = TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "X".into(),
            alpn: None,
            sni: None,
            resumed: false,
        };
        let all = [
            event(EventKind::PortBound { addr: peer }),
            event(EventKind::PortClosed { addr: peer }),
            event(EventKind::PortAtLimit { limit: 1 }),
            event(EventKind::ConnectionDenied {
                peer,
                rule: "r".into(),
            }),
            event(EventKind::ConnectionLimited {
                peer,
                limit: "max_rate",
            }),
            event(EventKind::ConnectionOpened {
                id: 1,
                peer,
                local: peer,
            }),
            event(EventKind::Datagram {
                peer,
                bytes_in: 1,
                bytes_out: 1,
            }),
            event(EventKind::TlsEstablished { id: 1, peer, tls }),
            event(EventKind::TlsFailed {
                id: 1,
                peer,
                reason: "r".into(),
            }),
            event(EventKind::Service(Said::new(Told { count: 3 }))),
            event(EventKind::ConnectionClosed {
                id: 1,
                peer,
                bytes_in: 0,
                bytes_out: 0,
                duration: Duration::ZERO,
                error: None,
            }),
        ];
        for event in all {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["kind"], event.kind.name());
            assert_eq!(json["port"], 1);
            assert_eq!(json["service"], "s");
        }
    }

    #[test]
    fn timed_events_serialize_flat_with_their_time() {
        let timed = Timed {
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_687_200_123),
            event: Event::new(80, "http", EventKind::PortAtLimit { limit: 5 }),
        };
        let json = serde_json::to_value(&timed).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"at": "2026-11-26T10:00:00.123Z", "kind": "port_at_limit", "port": 80, "protocol": "tcp", "service": "http", "limit": 5})
        );
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds_before_the_epoch_too() {
        let before = time::OffsetDateTime::UNIX_EPOCH - time::Duration::milliseconds(1500);
        assert_eq!(timestamp(before), "1969-12-31T23:59:58.500Z");
    }

    /// The messages of the log lines `emit` writes, one a line.
    fn logged(events: Vec<Event>) -> String {
        #[derive(Clone, Default)]
        struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let lines = lines.clone();
                move || lines.clone()
            })
            .without_time()
            .with_level(false)
            .with_target(false)
            .with_ansi(false)
            .fmt_fields(tracing_subscriber::fmt::format::debug_fn(
                |w, field, value| {
                    if field.name() == "message" {
                        write!(w, "{value:?}")
                    } else {
                        Ok(())
                    }
                },
            ))
            .finish();
        let bus = EventBus::new();
        tracing::subscriber::with_default(subscriber, || {
            events.into_iter().for_each(|e| bus.emit(e))
        });
        let bytes = lines.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn log_lines_name_the_port_as_people_say_it_and_sum_up_a_connection() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let closed = |error: Option<&str>| {
            Event::new(
                80,
                "http",
                EventKind::ConnectionClosed {
                    id: 7,
                    peer,
                    bytes_in: 10,
                    bytes_out: 20,
                    duration: Duration::from_micros(1_500_250),
                    error: error.map(str::to_owned),
                },
            )
        };
        let datagram = Event::new(
            7,
            "echo",
            EventKind::Datagram {
                peer,
                bytes_in: 3,
                bytes_out: 3,
            },
        )
        .on(Protocol::Udp);
        assert_eq!(
            logged(vec![closed(None), closed(Some("reset by peer")), datagram]),
            "connection closed: 127.0.0.1:5000 → port 80 (http), 10 bytes in, 20 bytes out, 1500.2 ms\n\
             connection closed: 127.0.0.1:5000 → port 80 (http), 10 bytes in, 20 bytes out, 1500.2 ms, ended by: reset by peer\n\
             datagram: 127.0.0.1:5000 → port 7/udp (echo), 3 bytes in, 3 bytes out\n"
        );
    }

    #[test]
    fn serializes_with_kind_tag_and_millis() {
        let event = Event::new(
            80,
            "http",
            EventKind::ConnectionClosed {
                id: 7,
                peer: "127.0.0.1:5000".parse().unwrap(),
                bytes_in: 10,
                bytes_out: 20,
                duration: Duration::from_millis(1500),
                error: None,
            },
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["kind"], "connection_closed");
        assert_eq!(json["duration_ms"], 1500.0);
        assert_eq!(json["bytes_out"], 20);
        assert_eq!(json["peer"], "127.0.0.1:5000");
    }
}
