//! The counters: Prometheus metrics counted from the event stream as each event is
//! emitted. They are the only counts switchboard keeps: `/metrics` renders them, and the port
//! table's `accepted`, `active`, `denied` and `limited` are read from them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Event, EventKind};
use crate::Protocol;

/// Every metric is labelled with the port, its protocol and the service behind it.
#[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
struct PortLabels {
    port: u16,
    protocol: &'static str,
    service: &'static str,
}

/// Hashes the port number alone: equal labels still hash alike, and only 7/tcp and 7/udp
/// (or a port whose service changed) share a hash, which the map then tells apart. Every
/// connection looks its port's counters up several times, and hashing the two names as well
/// was most of each lookup.
impl std::hash::Hash for PortLabels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u16(self.port);
    }
}

type PerPort<M> = Family<PortLabels, M>;

/// The metrics `/metrics` serves.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    accepted: PerPort<Counter>,
    active: PerPort<Gauge>,
    received: PerPort<Counter>,
    sent: PerPort<Counter>,
    at_limit: PerPort<Counter>,
    denied: PerPort<Counter>,
    limited: PerPort<Counter>,
    tls_handshakes: PerPort<Counter>,
    tls_resumed: PerPort<Counter>,
    tls_failures: PerPort<Counter>,
    messages: PerPort<Counter>,
    upstream_sent: PerPort<Counter>,
    upstream_received: PerPort<Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let mut metrics = Self {
            registry: Registry::default(),
            accepted: PerPort::default(),
            active: PerPort::default(),
            received: PerPort::default(),
            sent: PerPort::default(),
            at_limit: PerPort::default(),
            denied: PerPort::default(),
            limited: PerPort::default(),
            tls_handshakes: PerPort::default(),
            tls_resumed: PerPort::default(),
            tls_failures: PerPort::default(),
            messages: PerPort::default(),
            upstream_sent: PerPort::default(),
            upstream_received: PerPort::default(),
        };
        registry.register(
            "connections_accepted",
            "Connections accepted",
            metrics.accepted.clone(),
        );
        registry.register(
            "connections_active",
            "Connections open now",
            metrics.active.clone(),
        );
        registry.register(
            "received_bytes",
            "Bytes received from clients, counted when a connection closes",
            metrics.received.clone(),
        );
        registry.register(
            "sent_bytes",
            "Bytes sent to clients, counted when a connection closes",
            metrics.sent.clone(),
        );
        registry.register(
            "port_at_limit",
            "Times a port had every connection slot taken",
            metrics.at_limit.clone(),
        );
        registry.register(
            "connections_denied",
            "Connections closed at once by an access rule",
            metrics.denied.clone(),
        );
        registry.register(
            "connections_limited",
            "Connections turned away by a limit (max_connections, max_per_source, max_rate)",
            metrics.limited.clone(),
        );
        registry.register(
            "tls_handshakes",
            "TLS handshakes completed",
            metrics.tls_handshakes.clone(),
        );
        registry.register(
            "tls_handshakes_resumed",
            "TLS handshakes that resumed an earlier session from a ticket (no certificate, \
             no new key exchange): a part of tls_handshakes",
            metrics.tls_resumed.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            metrics.tls_failures.clone(),
        );
        registry.register(
            "messages_captured",
            "Mail messages accepted and stored",
            metrics.messages.clone(),
        );
        registry.register(
            "upstream_sent_bytes",
            "Bytes a proxy sent on to its upstream, counted when the upstream leg closes",
            metrics.upstream_sent.clone(),
        );
        registry.register(
            "upstream_received_bytes",
            "Bytes a proxy received from its upstream, counted when the upstream leg closes",
            metrics.upstream_received.clone(),
        );
        metrics.registry = registry;
        metrics
    }

    /// The OpenMetrics text exposition, which Prometheus reads.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// A port's connection counts so far.
    pub fn port(&self, port: u16, protocol: Protocol, service: &'static str) -> PortCounts {
        let labels = PortLabels {
            port,
            protocol: protocol.as_str(),
            service,
        };
        PortCounts {
            accepted: self.accepted.get_or_create(&labels).get(),
            active: u64::try_from(self.active.get_or_create(&labels).get()).unwrap_or(0),
            denied: self.denied.get_or_create(&labels).get(),
            limited: self.limited.get_or_create(&labels).get(),
        }
    }

    /// The content type of [`render`](Self::render)'s output.
    pub const CONTENT_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";
}

/// A port's connection counts, as the port table shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounts {
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections open right now.
    pub active: u64,
    /// Connections closed at once by an access rule.
    pub denied: u64,
    /// Connections turned away by a limit.
    pub limited: u64,
}

impl Metrics {
    /// Count one event.
    pub(super) fn count(&self, event: &Event) {
        let labels = PortLabels {
            port: event.port,
            protocol: event.protocol.as_str(),
            service: event.service,
        };
        match &event.kind {
            EventKind::ConnectionOpened { .. } => {
                self.accepted.get_or_create(&labels).inc();
                self.active.get_or_create(&labels).inc();
            }
            EventKind::ConnectionClosed {
                bytes_in,
                bytes_out,
                ..
            } => {
                self.active.get_or_create(&labels).dec();
                self.received.get_or_create(&labels).inc_by(*bytes_in);
                self.sent.get_or_create(&labels).inc_by(*bytes_out);
            }
            // A datagram is UDP's connection: counted as accepted, never open.
            EventKind::Datagram {
                bytes_in,
                bytes_out,
                ..
            } => {
                self.accepted.get_or_create(&labels).inc();
                self.received.get_or_create(&labels).inc_by(*bytes_in);
                self.sent.get_or_create(&labels).inc_by(*bytes_out);
            }
            EventKind::PortAtLimit { .. } => {
                self.at_limit.get_or_create(&labels).inc();
            }
            EventKind::ConnectionDenied { .. } => {
                self.denied.get_or_create(&labels).inc();
            }
            EventKind::ConnectionLimited { .. } => {
                self.limited.get_or_create(&labels).inc();
            }
            EventKind::TlsEstablished { tls, .. } => {
                self.tls_handshakes.get_or_create(&labels).inc();
                if tls.resumed {
                    self.tls_resumed.get_or_create(&labels).inc();
                }
            }
            EventKind::TlsFailed { .. } => {
                self.tls_failures.get_or_create(&labels).inc();
            }
            EventKind::PortBound { .. } => {
                // Make the port's series exist (at zero) from the start.
                let _ = self.accepted.get_or_create(&labels);
                let _ = self.active.get_or_create(&labels);
            }
            EventKind::Service(said) => {
                let tally = said.tally();
                for (family, by) in [
                    (&self.messages, tally.messages),
                    (&self.upstream_sent, tally.upstream_sent),
                    (&self.upstream_received, tally.upstream_received),
                ] {
                    if by > 0 {
                        family.get_or_create(&labels).inc_by(by);
                    }
                }
            }
            EventKind::PortClosed { .. }
            | EventKind::ConnectionReset { .. }
            | EventKind::FaultStarted { .. }
            | EventKind::FaultEnded { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn one_port_number_under_other_labels_is_counted_apart() {
        // The labels hash by port number alone, so these three share a hash.
        let metrics = Metrics::new();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let opened = EventKind::ConnectionOpened {
            id: 1,
            peer,
            local: peer,
        };
        metrics.count(&Event::new(7, "echo", opened.clone()));
        metrics.count(&Event::new(7, "echo", opened.clone()));
        metrics.count(&Event::new(7, "discard", opened));
        metrics.count(
            &Event::new(
                7,
                "echo",
                EventKind::Datagram {
                    peer,
                    bytes_in: 1,
                    bytes_out: 1,
                },
            )
            .on(Protocol::Udp),
        );
        assert_eq!(metrics.port(7, Protocol::Tcp, "echo").accepted, 2);
        assert_eq!(metrics.port(7, Protocol::Tcp, "discard").accepted, 1);
        assert_eq!(metrics.port(7, Protocol::Udp, "echo").accepted, 1);
        assert_eq!(metrics.port(7, Protocol::Udp, "discard").accepted, 0);
    }

    #[test]
    fn events_become_labelled_series() {
        let metrics = Metrics::new();
        let peer = "127.0.0.1:5000".parse().unwrap();
        let smtp = |kind| Event::new(25, "smtp", kind);
        metrics.count(&smtp(EventKind::PortBound {
            addr: "0.0.0.0:25".parse().unwrap(),
        }));
        metrics.count(&smtp(EventKind::ConnectionOpened {
            id: 1,
            peer,
            local: "127.0.0.1:25".parse().unwrap(),
        }));
        let captured = super::super::tests::Told { count: 1 };
        metrics.count(&smtp(EventKind::Service(crate::Said::new(captured))));
        metrics.count(&smtp(EventKind::ConnectionClosed {
            id: 1,
            peer,
            bytes_in: 100,
            bytes_out: 40,
            duration: std::time::Duration::ZERO,
            error: None,
        }));
        metrics.count(&Event::new(
            443,
            "https",
            EventKind::TlsFailed {
                id: 2,
                peer,
                reason: "x".into(),
            },
        ));
        let text = metrics.render();
        for line in [
            r#"switchboard_connections_accepted_total{port="25",protocol="tcp",service="smtp"} 1"#,
            r#"switchboard_connections_active{port="25",protocol="tcp",service="smtp"} 0"#,
            r#"switchboard_received_bytes_total{port="25",protocol="tcp",service="smtp"} 100"#,
            r#"switchboard_sent_bytes_total{port="25",protocol="tcp",service="smtp"} 40"#,
            r#"switchboard_messages_captured_total{port="25",protocol="tcp",service="smtp"} 1"#,
            r#"switchboard_tls_handshake_failures_total{port="443",protocol="tcp",service="https"} 1"#,
            "# TYPE switchboard_connections_active gauge",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert_eq!(
            metrics.port(25, Protocol::Tcp, "smtp"),
            PortCounts {
                accepted: 1,
                active: 0,
                denied: 0,
                limited: 0
            }
        );
    }
}
