//! One port of the table: its row (service, addresses, rules, limits, toxics) and the whole
//! decision about each connection that arrives on it.
//!
//! A listener first takes a [`Ticket`] — a slot to serve a connection, or, when every slot is
//! taken, a slot to turn one away politely — and only then accepts. [`Port::admit`] then
//! decides with that ticket in hand: serve, refuse, or drop. The permit a listener waited
//! for is the one its connection keeps.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_core::{
    AccessRules, Deadlines, Event, EventBus, EventKind, OwnKeys, PortState, PortStatus, Protocol,
    Refusal, RowKeys, Service, Shutdown, Signal, Target, Verdict,
};
use switchboard_faults::{PortToxics, Toxic};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::SupervisorSettings;

/// One row of the port table: which port, which service, which addresses, and the rules,
/// limits and faults that apply to its connections.
#[derive(Clone, Debug)]
pub struct PortSpec {
    /// The port; 0 asks the kernel for any free port (tests use this).
    pub port: u16,
    /// TCP (connections) or UDP (datagrams): 7/tcp and 7/udp are two rows.
    pub protocol: Protocol,
    /// The name of the service that answers it (`http`, `smtp`, …).
    pub service: &'static str,
    /// The addresses to listen on; empty means every address, IPv4 and IPv6.
    pub bind: Vec<IpAddr>,
    /// Most connections served at once on this port; more are turned away politely.
    pub max_connections: usize,
    /// Who may connect (empty: anyone).
    pub rules: AccessRules,
    /// Most connections at once from one client address (TCP only: UDP has none).
    pub max_per_source: Option<u32>,
    /// Most new connections (on UDP: datagrams) per second from one client address.
    pub max_rate: Option<u32>,
    /// Faults from the start.
    pub toxics: Vec<Toxic>,
    /// The row's name, as the Toxiproxy API lists it; none: `<service>-<port>`.
    pub name: Option<String>,
    /// Added while switchboard runs, through an API (not from the table it started with): a
    /// service may trust such a row less (a proxy checks its upstream at each connect).
    pub runtime: bool,
    /// The service's own keys of the row (a proxy's `upstream`, an exec row's `command`), as
    /// its crate read them: opaque here, handed to the service's builder.
    pub keys: Option<Arc<dyn OwnKeys>>,
    /// What the row serves, as its service says, for showing (`upstream`, `command`).
    pub target: Option<Target>,
    /// How long a connection may pass no byte either way, for services without clocks of
    /// their own; none: `[supervisor] idle_timeout`.
    pub idle_timeout: Option<Duration>,
}

impl PortSpec {
    /// A port with no rules, limits beyond `max_connections`, or toxics.
    pub fn new(port: u16, service: &'static str, max_connections: usize) -> Self {
        Self {
            port,
            protocol: Protocol::Tcp,
            service,
            bind: Vec::new(),
            max_connections,
            rules: AccessRules::default(),
            max_per_source: None,
            max_rate: None,
            toxics: Vec::new(),
            name: None,
            runtime: false,
            keys: None,
            target: None,
            idle_timeout: None,
        }
    }

    /// Give the row its service's own keys, as a program building a table would (the
    /// config file's rows get theirs from the app, checked).
    pub fn set_keys<K: RowKeys + Clone>(&mut self, keys: &K) {
        self.target = keys.target();
        self.keys = Some(Arc::new(keys.clone()));
    }
}

/// Where a port comes from: the table switchboard started with, or the control API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    StartUp,
    Runtime,
}

/// One port at run time.
pub(crate) struct Port {
    /// The port actually bound (the kernel's choice for a row with port 0).
    pub(crate) number: u16,
    pub(crate) protocol: Protocol,
    pub(crate) service: &'static str,
    /// Its name: given, or `<service>-<port>`.
    name: String,
    origin: Origin,
    /// Where it listens (or listened, while closed).
    pub(crate) addrs: Vec<SocketAddr>,
    /// What it serves, as its service says.
    target: Option<Target>,
    rules: AccessRules,
    max_connections: usize,
    max_per_source: Option<u32>,
    max_rate: Option<u32>,
    /// The port's toxics.
    pub(crate) toxics: Arc<PortToxics>,
    /// Connections being served: one permit each.
    slots: Arc<Semaphore>,
    /// Connections being turned away politely: one permit each.
    refusals: Arc<Semaphore>,
    /// The clocks of its connections: `[supervisor] write_timeout`, and the row's
    /// `idle_timeout` for services without clocks of their own.
    deadlines: Deadlines,
    /// Open connections per client address, for `max_per_source`.
    sources: Mutex<HashMap<IpAddr, u32>>,
    rate: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Whether the kernel has listening sockets for it now.
    listening: AtomicBool,
    /// Connections still to be reset at once on purpose (`reset?next=N`).
    reset_next: AtomicU32,
    /// How many times it was closed: a timed reopen only reopens the close it followed.
    pub(crate) closes: AtomicU64,
    /// Its connections' tasks, and the signals that end them: raised for every port at
    /// shutdown, or for this one when it is removed while switchboard runs.
    pub(crate) connections: TaskTracker,
    /// Handed to its services: finish what is in flight.
    pub(crate) shutdown: Shutdown,
    /// Raised to drop every open connection at once: when the drain's deadline passes, or
    /// when the port is disabled the Toxiproxy way. Connections take the current one when
    /// they start; cutting raises it and puts a fresh one in its place.
    cut: Mutex<Signal>,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("number", &self.number)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// What a listener holds while it accepts: room for one more connection.
#[derive(Debug)]
pub(crate) enum Ticket {
    /// A connection slot: the next connection can be served.
    Serve(OwnedSemaphorePermit),
    /// Every slot is taken, but the next connection can be turned away politely.
    Refuse(OwnedSemaphorePermit),
}

/// What happens to an accepted connection.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Serve it; the slot and the source's count are held until it ends.
    Serve(Admitted),
    /// Over a limit: let the service say so in its protocol's terms, holding a refusal slot.
    Refuse(Refusal, OwnedSemaphorePermit),
    /// Over a limit, and even the refusal slots are taken: close it.
    Drop(Refusal),
    /// An access rule denies the client (the rule, in words): close it at once.
    Deny(String),
}

/// Why a datagram was dropped before its service saw it.
#[derive(Debug, PartialEq)]
pub(crate) enum Dropped {
    /// An access rule denies the source (the rule, in words).
    Denied(String),
    /// The source sends faster than `max_rate`.
    Limited(Refusal),
}

/// What lets a connection in: a slot on the port, and a place in its source's count.
#[derive(Debug)]
pub(crate) struct Admitted {
    _slot: OwnedSemaphorePermit,
    _source: Option<SourceCount>,
}

/// Keeps a connection counted against its client address until it ends.
#[derive(Debug)]
struct SourceCount {
    port: Arc<Port>,
    ip: IpAddr,
}

impl Drop for SourceCount {
    fn drop(&mut self) {
        let mut sources = self.port.sources.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = sources.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                sources.remove(&self.ip);
            }
        }
    }
}

impl Port {
    pub(crate) fn new(
        spec: &PortSpec,
        (number, addrs): (u16, Vec<SocketAddr>),
        origin: Origin,
        settings: &SupervisorSettings,
        events: &EventBus,
    ) -> Self {
        Self {
            number,
            protocol: spec.protocol,
            service: spec.service,
            name: spec
                .name
                .clone()
                .unwrap_or_else(|| format!("{}-{number}", spec.service)),
            origin,
            addrs,
            target: spec.target.clone(),
            rules: spec.rules.clone(),
            max_connections: spec.max_connections,
            max_per_source: spec.max_per_source,
            max_rate: spec.max_rate,
            toxics: PortToxics::new(number, spec.service, events.clone(), spec.toxics.clone()),
            slots: Arc::new(Semaphore::new(spec.max_connections)),
            refusals: Arc::new(Semaphore::new(settings.max_refusals)),
            deadlines: Deadlines {
                write_timeout: settings.write_timeout,
                idle_timeout: Some(spec.idle_timeout.unwrap_or(settings.idle_timeout)),
            },
            sources: Mutex::new(HashMap::new()),
            rate: spec
                .max_rate
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::keyed(Quota::per_second(n))),
            listening: AtomicBool::new(false),
            reset_next: AtomicU32::new(0),
            closes: AtomicU64::new(0),
            connections: TaskTracker::new(),
            shutdown: Shutdown::new(),
            cut: Mutex::new(Signal::new()),
        }
    }

    /// The clocks of a connection to `service` on this port.
    pub(crate) fn deadlines(&self, service: &dyn Service) -> Deadlines {
        Deadlines {
            idle_timeout: self
                .deadlines
                .idle_timeout
                .filter(|_| !service.keeps_own_clocks()),
            ..self.deadlines
        }
    }

    /// The port's name: given, or `<service>-<port>`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// An event of this port.
    pub(crate) fn event(&self, kind: EventKind) -> Event {
        Event::new(self.number, self.service, kind).on(self.protocol)
    }

    /// Whether a datagram from `ip` may reach the service: the access rules first, then
    /// `max_rate`. (UDP has no connections to count, hence no slots and no per-source
    /// count: only the rate.)
    pub(crate) fn admit_datagram(&self, ip: IpAddr) -> Result<(), Dropped> {
        if let Verdict::Deny(rule) = self.rules.verdict(ip) {
            return Err(Dropped::Denied(rule));
        }
        self.over_rate(ip).map_err(Dropped::Limited)
    }

    /// The signal that drops the connections starting now (see [`Port::cut_connections`]).
    pub(crate) fn cut_signal(&self) -> Signal {
        self.cut.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Drop every open connection at once; connections that start later are not affected.
    pub(crate) fn cut_connections(&self) {
        let old = std::mem::take(&mut *self.cut.lock().unwrap_or_else(|p| p.into_inner()));
        old.raise();
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Room for one more connection now, if there is any.
    pub(crate) fn try_ticket(&self) -> Option<Ticket> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Some(Ticket::Serve(slot));
        }
        self.refusals
            .clone()
            .try_acquire_owned()
            .ok()
            .map(Ticket::Refuse)
    }

    /// Wait until there is room for one more connection.
    pub(crate) async fn ticket(&self) -> Ticket {
        // Neither semaphore is ever closed, so acquiring cannot fail; should it ever, the
        // branch waits for the other one instead.
        tokio::select! {
            Ok(slot) = self.slots.clone().acquire_owned() => Ticket::Serve(slot),
            Ok(refusal) = self.refusals.clone().acquire_owned() => Ticket::Refuse(refusal),
        }
    }

    /// Decide what happens to a connection from `ip`, with the room the listener held.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr, ticket: Ticket) -> Admission {
        if let Verdict::Deny(rule) = self.rules.verdict(ip) {
            return Admission::Deny(rule);
        }
        // A slot may have freed up while the listener waited with a refusal slot.
        let ticket = match ticket {
            Ticket::Refuse(refusal) => match self.slots.clone().try_acquire_owned() {
                Ok(slot) => Ticket::Serve(slot),
                Err(_) => Ticket::Refuse(refusal),
            },
            serve => serve,
        };
        let slot = match ticket {
            Ticket::Serve(slot) => slot,
            Ticket::Refuse(refusal) => {
                return Admission::Refuse(Refusal::MaxConnections(self.max_connections), refusal);
            }
        };
        match self.over_source_limits(ip) {
            Ok(source) => Admission::Serve(Admitted {
                _slot: slot,
                _source: source,
            }),
            Err(why) => {
                drop(slot); // turning a connection away does not take a serving slot
                match self.refusals.clone().try_acquire_owned() {
                    Ok(refusal) => Admission::Refuse(why, refusal),
                    Err(_) => Admission::Drop(why),
                }
            }
        }
    }

    /// Check `max_rate` and `max_per_source` for `ip`; on success the connection is counted
    /// against its source until the returned count is dropped.
    fn over_source_limits(self: &Arc<Self>, ip: IpAddr) -> Result<Option<SourceCount>, Refusal> {
        self.over_rate(ip)?;
        let Some(max) = self.max_per_source else {
            return Ok(None);
        };
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let count = sources.entry(ip).or_insert(0);
        if *count >= max {
            return Err(Refusal::MaxPerSource(max));
        }
        *count += 1;
        Ok(Some(SourceCount {
            port: self.clone(),
            ip,
        }))
    }

    /// Check `max_rate` for `ip`, counting this arrival.
    fn over_rate(&self, ip: IpAddr) -> Result<(), Refusal> {
        if let (Some(rate), Some(max)) = (&self.rate, self.max_rate)
            && rate.check_key(&ip).is_err()
        {
            // Forget addresses that have not connected lately, so the table stays small.
            if rate.len() > 10_000 {
                rate.retain_recent();
            }
            return Err(Refusal::MaxRate(max));
        }
        Ok(())
    }

    /// Reset the next `count` connections at once; how many were still to reset before.
    pub(crate) fn reset_next(&self, count: u32) -> u32 {
        self.reset_next.swap(count, Ordering::Relaxed)
    }

    /// Whether this connection is one to reset, and how many are left after it.
    pub(crate) fn take_reset(&self) -> Option<u32> {
        self.reset_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .ok()
            .map(|before| before - 1)
    }

    pub(crate) fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Relaxed);
    }

    /// The port as `/api/ports` shows it; `counts` come from the event stream's metrics.
    pub(crate) fn status(&self, counts: switchboard_core::PortCounts) -> PortStatus {
        PortStatus {
            port: self.number,
            service: self.service,
            name: self.name.clone(),
            runtime: self.origin == Origin::Runtime,
            protocol: self.protocol,
            addresses: self.addrs.clone(),
            state: if self.listening.load(Ordering::Relaxed) {
                PortState::Listening
            } else {
                PortState::Closed
            },
            accepted: counts.accepted,
            active: counts.active,
            denied: counts.denied,
            limited: counts.limited,
            rules: self.rules.describe(),
            toxics: self.toxics.names(),
            target: self.target.clone(),
        }
    }
}

/// Ask the connections of `ports` to finish, wait for `tasks` up to `timeout`, then close
/// what is left; how many were closed that way. Shutdown drains every port (and every
/// connection task); removing a port drains that one.
pub(crate) async fn drain(ports: &[Arc<Port>], tasks: &TaskTracker, timeout: Duration) -> usize {
    for port in ports {
        port.shutdown.request();
    }
    tasks.close();
    match tokio::time::timeout(timeout, tasks.wait()).await {
        Ok(()) => 0,
        Err(_) => {
            let cut = tasks.len();
            for port in ports {
                port.cut_connections();
            }
            tasks.wait().await;
            cut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(spec: PortSpec, max_refusals: usize) -> Arc<Port> {
        Arc::new(Port::new(
            &spec,
            (spec.port, Vec::new()),
            Origin::StartUp,
            &SupervisorSettings {
                max_refusals,
                ..SupervisorSettings::default()
            },
            &EventBus::new(),
        ))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn the_slot_a_listener_waited_for_is_the_one_its_connection_holds() {
        let port = port(PortSpec::new(1, "echo", 1), 1);
        let Some(ticket @ Ticket::Serve(_)) = port.try_ticket() else {
            panic!("the first ticket serves");
        };
        // The one slot is held by the listener: the next ticket can only refuse.
        assert!(matches!(port.try_ticket(), Some(Ticket::Refuse(_))));
        let admitted = port.admit(ip("127.0.0.1"), ticket);
        assert!(matches!(admitted, Admission::Serve(_)));
        assert!(matches!(port.try_ticket(), Some(Ticket::Refuse(_))));
        drop(admitted);
        assert!(matches!(port.try_ticket(), Some(Ticket::Serve(_))));
    }

    #[tokio::test]
    async fn a_refusal_ticket_serves_when_a_slot_freed_meanwhile() {
        let port = port(PortSpec::new(1, "echo", 1), 1);
        let serving = port.admit(ip("127.0.0.1"), port.try_ticket().unwrap());
        let refuse = port.try_ticket().unwrap();
        assert!(matches!(refuse, Ticket::Refuse(_)));
        drop(serving);
        assert!(matches!(
            port.admit(ip("127.0.0.1"), refuse),
            Admission::Serve(_)
        ));
    }

    #[tokio::test]
    async fn full_slots_refuse_politely_then_drop() {
        let port = port(PortSpec::new(1, "echo", 1), 1);
        let _serving = port.admit(ip("127.0.0.1"), port.try_ticket().unwrap());
        let refused = port.admit(ip("127.0.0.1"), port.try_ticket().unwrap());
        assert!(matches!(
            refused,
            Admission::Refuse(Refusal::MaxConnections(1), _)
        ));
        assert!(port.try_ticket().is_none(), "no room to serve or refuse");
        drop(refused);
        assert!(port.try_ticket().is_some());
    }

    #[tokio::test]
    async fn per_source_limits_refuse_without_taking_a_serving_slot() {
        let mut spec = PortSpec::new(1, "echo", 10);
        spec.max_per_source = Some(1);
        let port = port(spec, 1);
        let first = port.admit(ip("127.0.0.2"), port.try_ticket().unwrap());
        assert!(matches!(first, Admission::Serve(_)));
        let second = port.admit(ip("127.0.0.2"), port.try_ticket().unwrap());
        assert!(matches!(
            second,
            Admission::Refuse(Refusal::MaxPerSource(1), _)
        ));
        // Another address is not affected, and the refusal's slot was given back.
        assert!(matches!(
            port.admit(ip("127.0.0.3"), port.try_ticket().unwrap()),
            Admission::Serve(_)
        ));
        let _refusing = second;
        assert!(matches!(
            port.admit(ip("127.0.0.2"), port.try_ticket().unwrap()),
            Admission::Drop(Refusal::MaxPerSource(1))
        ));
        drop(first);
        assert!(matches!(
            port.admit(ip("127.0.0.2"), port.try_ticket().unwrap()),
            Admission::Serve(_)
        ));
    }

    #[tokio::test]
    async fn access_rules_deny_before_any_limit() {
        let mut spec = PortSpec::new(1, "echo", 1);
        spec.rules.deny = vec!["127.0.0.3".parse().unwrap()];
        let port = port(spec, 1);
        match port.admit(ip("::ffff:127.0.0.3"), port.try_ticket().unwrap()) {
            Admission::Deny(rule) => assert_eq!(rule, "deny 127.0.0.3/32"),
            other => panic!("{other:?}"),
        }
        // The ticket went back with the denied connection.
        assert!(matches!(port.try_ticket(), Some(Ticket::Serve(_))));
    }
}
