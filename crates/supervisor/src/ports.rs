//! The live port table: each port's configuration, counts, listeners, limits and toxics,
//! and what can be done to it while switchboard runs (close, open, toxics, reset).
//!
//! The counts are kept from the event stream ([`Observer`]), never beside it; the control
//! actions ([`PortControl`]) are what the HTTP control API and the test harness call.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_core::{
    AccessRules, Chaos, ControlError, Event, Observer, PortControl, PortDirectory, PortState,
    PortStatus, Refusal, Service, Toxic, ToxicSet, Triggers,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bind::{BoundPort, listen};
use crate::gate::Gate;
use crate::listener::accept_loop;

/// One port at run time.
pub(crate) struct Port {
    pub(crate) number: u16,
    pub(crate) name: &'static str,
    /// Where it listens (or listened, while closed).
    pub(crate) addrs: Vec<SocketAddr>,
    /// Set once the services are built (they are built after the port table, which they see).
    service: OnceLock<Arc<dyn Service>>,
    pub(crate) rules: AccessRules,
    max_connections: usize,
    max_per_source: Option<u32>,
    max_rate: Option<u32>,
    pub(crate) toxics: watch::Sender<ToxicSet>,
    /// Connections being served: one permit each.
    slots: Arc<Semaphore>,
    /// Connections being turned away politely: one permit each.
    pub(crate) refusals: Arc<Semaphore>,
    /// Open connections per client address, for `max_per_source`.
    sources: Mutex<HashMap<IpAddr, u32>>,
    rate: Option<DefaultKeyedRateLimiter<IpAddr>>,
    listeners: tokio::sync::Mutex<Listeners>,
    counts: Counts,
}

#[derive(Default)]
struct Counts {
    listening: AtomicUsize,
    accepted: AtomicU64,
    active: AtomicU64,
    denied: AtomicU64,
    limited: AtomicU64,
}

/// A port's sockets: bound but not yet accepting (before `run`), or accepting.
#[derive(Default)]
struct Listeners {
    idle: Vec<std::net::TcpListener>,
    running: Vec<(CancellationToken, JoinHandle<()>)>,
}

/// What lets a connection in: a slot on the port, and a place in its source's count.
pub(crate) struct Admission {
    pub(crate) _slot: OwnedSemaphorePermit,
    pub(crate) _source: Option<SourceCount>,
}

/// Keeps a connection counted against its client address until it ends.
pub(crate) struct SourceCount {
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
    pub(crate) fn new(bound: BoundPort, max_refusals: usize) -> Self {
        let spec = &bound.spec;
        let addrs = bound.addrs();
        Self {
            number: bound.port,
            name: spec.service,
            addrs,
            service: OnceLock::new(),
            rules: spec.rules.clone(),
            max_connections: spec.max_connections,
            max_per_source: spec.max_per_source,
            max_rate: spec.max_rate,
            toxics: watch::Sender::new(spec.toxics.clone().into()),
            slots: Arc::new(Semaphore::new(spec.max_connections)),
            refusals: Arc::new(Semaphore::new(max_refusals)),
            sources: Mutex::new(HashMap::new()),
            rate: spec
                .max_rate
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::keyed(Quota::per_second(n))),
            listeners: tokio::sync::Mutex::new(Listeners {
                idle: bound.listeners,
                running: Vec::new(),
            }),
            counts: Counts::default(),
        }
    }

    pub(crate) fn set_service(&self, service: Arc<dyn Service>) {
        let _ = self.service.set(service);
    }

    pub(crate) fn service(&self) -> Option<&Arc<dyn Service>> {
        self.service.get()
    }

    /// Let a connection from `ip` in, or say which limit it is over.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refusal> {
        if let (Some(rate), Some(max)) = (&self.rate, self.max_rate)
            && rate.check_key(&ip).is_err()
        {
            // Forget addresses that have not connected lately, so the table stays small.
            if rate.len() > 10_000 {
                rate.retain_recent();
            }
            return Err(Refusal::MaxRate(max));
        }
        let source = match self.max_per_source {
            None => None,
            Some(max) => {
                let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
                let count = sources.entry(ip).or_insert(0);
                if *count >= max {
                    return Err(Refusal::MaxPerSource(max));
                }
                *count += 1;
                Some(SourceCount {
                    port: self.clone(),
                    ip,
                })
            }
        };
        // On failure `source` is dropped here, which takes the count back.
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::MaxConnections(self.max_connections))?;
        Ok(Admission {
            _slot: slot,
            _source: source,
        })
    }

    /// Neither a slot to serve nor one to refuse politely is free.
    pub(crate) fn saturated(&self) -> bool {
        self.slots.available_permits() == 0 && self.refusals.available_permits() == 0
    }

    /// Wait until a connection could be served or refused again.
    pub(crate) async fn unsaturated(&self) {
        tokio::select! {
            permit = self.slots.acquire() => drop(permit),
            permit = self.refusals.acquire() => drop(permit),
        }
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }

    fn status(&self) -> PortStatus {
        PortStatus {
            port: self.number,
            service: self.name,
            protocol: "tcp",
            addresses: self.addrs.clone(),
            state: if self.counts.listening.load(Ordering::Relaxed) > 0 {
                PortState::Listening
            } else {
                PortState::Closed
            },
            accepted: self.counts.accepted.load(Ordering::Relaxed),
            active: self.counts.active.load(Ordering::Relaxed),
            denied: self.counts.denied.load(Ordering::Relaxed),
            limited: self.counts.limited.load(Ordering::Relaxed),
            rules: self.rules.describe(),
            toxics: self
                .toxics
                .borrow()
                .iter()
                .map(|t| t.name.clone())
                .collect(),
        }
    }
}

/// Every port, and what acts on all of them.
pub(crate) struct Ports {
    pub(crate) list: Vec<Arc<Port>>,
    gate: Arc<Gate>,
    chaos: Chaos,
    /// Triggers given at start-up, restored by reset.
    initial_chaos: Triggers,
    started: AtomicBool,
    stopping: AtomicBool,
}

impl Ports {
    pub(crate) fn new(list: Vec<Arc<Port>>, gate: Arc<Gate>, chaos: Chaos) -> Self {
        let initial_chaos = chaos.get();
        Self {
            list,
            gate,
            chaos,
            initial_chaos,
            started: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        }
    }

    fn find(&self, number: u16) -> Result<&Arc<Port>, ControlError> {
        self.list
            .iter()
            .find(|p| p.number == number)
            .ok_or(ControlError::NoSuchPort(number))
    }

    /// Start accepting on every bound socket.
    pub(crate) async fn start(&self) {
        self.started.store(true, Ordering::SeqCst);
        for port in &self.list {
            let mut listeners = port.listeners.lock().await;
            let idle = std::mem::take(&mut listeners.idle);
            for socket in idle {
                if let Some(running) = self.spawn(port, socket) {
                    listeners.running.push(running);
                }
            }
        }
    }

    fn spawn(
        &self,
        port: &Arc<Port>,
        socket: std::net::TcpListener,
    ) -> Option<(CancellationToken, JoinHandle<()>)> {
        let addr = socket.local_addr().ok()?;
        let socket = match tokio::net::TcpListener::from_std(socket) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::error!(%addr, %error, "cannot serve this socket");
                return None;
            }
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            port.clone(),
            self.gate.clone(),
            socket,
            addr,
            stop.clone(),
        ));
        Some((stop, task))
    }

    /// Close a port's sockets and wait until they are closed.
    async fn stop(&self, port: &Port) {
        let mut listeners = port.listeners.lock().await;
        for socket in std::mem::take(&mut listeners.idle) {
            let addr = socket.local_addr().ok();
            drop(socket);
            if let Some(addr) = addr {
                self.gate.events.emit(Event::PortClosed {
                    port: port.number,
                    service: port.name,
                    addr,
                });
            }
        }
        for (stop, task) in std::mem::take(&mut listeners.running) {
            stop.cancel();
            let _ = task.await; // the loop closes its socket and says so
        }
    }

    /// Close every port (shutdown): from now on control cannot open any.
    pub(crate) async fn close_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for port in &self.list {
            self.stop(port).await;
        }
    }

    async fn open(&self, port: &Arc<Port>) -> Result<(), ControlError> {
        let mut listeners = port.listeners.lock().await;
        if !listeners.idle.is_empty() || !listeners.running.is_empty() {
            return Ok(()); // already listening
        }
        let mut sockets = Vec::with_capacity(port.addrs.len());
        for addr in &port.addrs {
            let socket = listen(*addr).map_err(|error| ControlError::Bind {
                port: port.number,
                reason: format!("{addr}: {error}"),
            })?;
            sockets.push(socket);
        }
        for socket in sockets {
            let addr = socket.local_addr().ok();
            if self.started.load(Ordering::SeqCst) {
                if let Some(running) = self.spawn(port, socket) {
                    listeners.running.push(running);
                }
            } else {
                listeners.idle.push(socket);
            }
            if let Some(addr) = addr {
                self.gate.events.emit(Event::PortBound {
                    port: port.number,
                    service: port.name,
                    addr,
                });
            }
        }
        Ok(())
    }

    fn not_stopping(&self) -> Result<(), ControlError> {
        match self.stopping.load(Ordering::SeqCst) {
            true => Err(ControlError::ShuttingDown),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl PortControl for Ports {
    async fn close_port(&self, number: u16) -> Result<(), ControlError> {
        self.not_stopping()?;
        let port = self.find(number)?;
        self.stop(port).await;
        Ok(())
    }

    async fn open_port(&self, number: u16) -> Result<(), ControlError> {
        self.not_stopping()?;
        let port = self.find(number)?.clone();
        self.open(&port).await
    }

    fn toxics(&self, number: u16) -> Result<Vec<Toxic>, ControlError> {
        Ok(self.find(number)?.toxics.borrow().to_vec())
    }

    fn add_toxic(&self, number: u16, toxic: Toxic) -> Result<Toxic, ControlError> {
        let port = self.find(number)?;
        let mut result = Ok(toxic.clone());
        port.toxics.send_if_modified(|set| {
            if set.iter().any(|t| t.name == toxic.name) {
                result = Err(ControlError::ToxicExists {
                    port: number,
                    name: toxic.name.clone(),
                });
                return false;
            }
            *set = set.iter().cloned().chain([toxic.clone()]).collect();
            true
        });
        if result.is_ok() {
            tracing::info!(port = number, toxic = %toxic.name, "toxic added: {} on {}", toxic.kind.type_name(), toxic.stream.as_str());
        }
        result
    }

    fn update_toxic(
        &self,
        number: u16,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<Toxic, ControlError> {
        let port = self.find(number)?;
        let mut result = Err(ControlError::NoSuchToxic {
            port: number,
            name: name.to_owned(),
        });
        port.toxics.send_if_modified(|set| {
            let Some(current) = set.iter().find(|t| t.name == name) else {
                return false;
            };
            match current.patched(patch) {
                Ok(updated) => {
                    *set = set
                        .iter()
                        .map(|t| {
                            if t.name == name {
                                updated.clone()
                            } else {
                                t.clone()
                            }
                        })
                        .collect();
                    result = Ok(updated);
                    true
                }
                Err(message) => {
                    result = Err(ControlError::Invalid(message));
                    false
                }
            }
        });
        result
    }

    fn remove_toxic(&self, number: u16, name: &str) -> Result<(), ControlError> {
        let port = self.find(number)?;
        let removed = port.toxics.send_if_modified(|set| {
            let before = set.len();
            *set = set.iter().filter(|t| t.name != name).cloned().collect();
            set.len() != before
        });
        match removed {
            true => {
                tracing::info!(port = number, toxic = name, "toxic removed");
                Ok(())
            }
            false => Err(ControlError::NoSuchToxic {
                port: number,
                name: name.to_owned(),
            }),
        }
    }

    async fn reset(&self) -> Result<(), ControlError> {
        self.not_stopping()?;
        for port in &self.list {
            port.toxics.send_if_modified(|set| {
                let had = !set.is_empty();
                *set = Arc::from(Vec::new());
                had
            });
            self.open(port).await?;
        }
        let _ = self.chaos.set(self.initial_chaos);
        tracing::info!("reset: no toxics, every port open, chaos triggers as configured");
        Ok(())
    }
}

impl Observer for Ports {
    fn observe(&self, event: &Event) {
        let number = match event {
            Event::PortBound { port, .. }
            | Event::PortClosed { port, .. }
            | Event::ConnectionOpened { port, .. }
            | Event::ConnectionClosed { port, .. }
            | Event::ConnectionDenied { port, .. }
            | Event::ConnectionLimited { port, .. } => *port,
            _ => return,
        };
        let Ok(port) = self.find(number) else {
            return;
        };
        let counts = &port.counts;
        match event {
            Event::PortBound { .. } => {
                counts.listening.fetch_add(1, Ordering::Relaxed);
            }
            Event::PortClosed { .. } => {
                let _ = counts
                    .listening
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            }
            Event::ConnectionOpened { .. } => {
                counts.accepted.fetch_add(1, Ordering::Relaxed);
                counts.active.fetch_add(1, Ordering::Relaxed);
            }
            Event::ConnectionClosed { .. } => {
                counts.active.fetch_sub(1, Ordering::Relaxed);
            }
            Event::ConnectionDenied { .. } => {
                counts.denied.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                counts.limited.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl PortDirectory for Ports {
    fn ports(&self) -> Vec<PortStatus> {
        let mut ports: Vec<_> = self.list.iter().map(|p| p.status()).collect();
        ports.sort_by_key(|p| p.port);
        ports
    }
}
