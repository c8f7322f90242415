//! The port table: every port, its listeners, and what can be done to them while switchboard
//! runs (close, open, toxics, reset).
//!
//! [`PortTable`] is what others hold: the HTTP control API and the test harness call its
//! [`PortControl`], [`ToxicControl`] and [`PortDirectory`]. The listeners themselves, and the
//! services that answer them, belong to the supervisor's run loop ([`Listeners`]): a request
//! to close or open a port is sent there and answered when it is done. So the table needs no
//! services to exist, and nothing is ever half set up.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use std::sync::RwLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use switchboard_core::{
    BoxError, ControlError, DatagramService, EventBus, EventKind, PortDirectory, PortStatus,
    Protocol, Service,
};
use switchboard_faults::{Toxic, ToxicControl};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bind::{Sockets, bind_port};
use crate::blackhole;
use crate::datagram::DatagramLoop;
use crate::gate::Gate;
use crate::listener::Listener;
use crate::port::{Origin, Port, PortSpec};

/// Makes the service a port names: the app's, which knows how every service is built. The
/// supervisor asks it when a port is added while it runs.
pub trait ServiceFactory: Send + 'static {
    /// The service `row` names, or why there is none (unknown, or it needs a certificate
    /// that was not loaded): the app's own error, told to the caller in its words.
    fn service(&mut self, row: &PortSpec) -> Result<Arc<dyn Service>, BoxError>;
}

/// Which service answers each port, by port number and protocol: built by the app once the
/// ports are bound (so that it knows the numbers the kernel chose), handed to the
/// supervisor's `run`, with the factory that builds services for ports added later.
pub struct Services {
    by_port: HashMap<(u16, Protocol), Answerer>,
    factory: Box<dyn ServiceFactory>,
}

/// What answers a port: a service for TCP connections, one for UDP datagrams, or nobody
/// (a blackhole row, whose queue the supervisor keeps full).
#[derive(Clone)]
enum Answerer {
    Connections(Arc<dyn Service>),
    Datagrams(Arc<dyn DatagramService>),
    Nobody,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_port.keys()).finish()
    }
}

impl Services {
    /// No port's service yet; `factory` builds those of ports added while running.
    pub fn new(factory: Box<dyn ServiceFactory>) -> Self {
        Self {
            by_port: HashMap::new(),
            factory,
        }
    }

    /// `service` answers TCP port `port`.
    pub fn insert(&mut self, port: u16, service: Arc<dyn Service>) {
        self.by_port
            .insert((port, Protocol::Tcp), Answerer::Connections(service));
    }

    /// `service` answers UDP port `port`.
    pub fn insert_datagrams(&mut self, port: u16, service: Arc<dyn DatagramService>) {
        self.by_port
            .insert((port, Protocol::Udp), Answerer::Datagrams(service));
    }

    /// TCP port `port` is a [`BLACKHOLE`](crate::BLACKHOLE): nobody answers it.
    pub fn insert_blackhole(&mut self, port: u16) {
        self.by_port.insert((port, Protocol::Tcp), Answerer::Nobody);
    }
}

/// Every port of the table, and the way to its listeners.
pub struct PortTable {
    /// Changed only by the run loop (ports added and removed), read by everyone.
    ports: RwLock<Vec<Arc<Port>>>,
    events: EventBus,
    requests: mpsc::UnboundedSender<Request>,
}

impl std::fmt::Debug for PortTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ports().iter()).finish()
    }
}

/// What the table asks of the listeners.
#[derive(Debug)]
pub(crate) enum Request {
    Close(u16, Reply),
    Open(u16, Reply),
    /// Open every closed port (reset).
    OpenAll(Reply),
    Add(
        Box<PortSpec>,
        oneshot::Sender<Result<PortStatus, ControlError>>,
    ),
    Remove(u16, Reply),
}

type Reply = oneshot::Sender<Result<(), ControlError>>;

impl PortTable {
    /// The table of `ports`; control requests go to the receiver, which the run loop reads.
    pub(crate) fn new(
        ports: Vec<Arc<Port>>,
        events: EventBus,
    ) -> (Self, mpsc::UnboundedReceiver<Request>) {
        let (requests, receiver) = mpsc::unbounded_channel();
        (
            Self {
                ports: RwLock::new(ports),
                events,
                requests,
            },
            receiver,
        )
    }

    /// Every port now, in table order (ports added while running come last).
    pub(crate) fn ports(&self) -> Vec<Arc<Port>> {
        self.ports.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The TCP port `number`: the control API's per-port requests address TCP rows.
    fn find(&self, number: u16) -> Result<Arc<Port>, ControlError> {
        self.ports
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|p| p.number == number && p.protocol == Protocol::Tcp)
            .cloned()
            .ok_or(ControlError::NoSuchPort(number))
    }

    fn insert(&self, port: Arc<Port>) {
        self.ports
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(port);
    }

    fn remove(&self, number: u16) {
        self.ports
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| p.number != number || p.protocol != Protocol::Tcp);
    }

    /// Ask the run loop, and wait for its answer. Once it has stopped (shutdown), every
    /// request is answered "shutting down".
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, ControlError>>) -> Request,
    ) -> Result<T, ControlError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .map_err(|_| ControlError::ShuttingDown)?;
        answer.await.unwrap_or(Err(ControlError::ShuttingDown))
    }
}

/// What the app's control ([`PortControl`](switchboard_core::PortControl)) does to the table.
impl PortTable {
    /// Close a port's listeners: new connections are refused from now on; open ones go on.
    pub async fn close_port(&self, number: u16) -> Result<(), ControlError> {
        self.find(number)?;
        self.ask(|reply| Request::Close(number, reply)).await
    }

    /// Close a port now and open it again after `reopen_after`, unless it was opened and
    /// closed again meanwhile (then that later close stands).
    pub async fn close_port_for(
        self: &Arc<Self>,
        number: u16,
        reopen_after: Duration,
    ) -> Result<(), ControlError> {
        self.close_port(number).await?;
        let port = self.find(number)?;
        let this_close = port.closes.load(Ordering::Relaxed);
        let after = humantime::format_duration(reopen_after);
        let refused = format!("new connections refused for {after}");
        self.emit(&port, EventKind::fault_started("close", refused));
        let table = Arc::downgrade(self);
        let at = switchboard_core::deadline(reopen_after);
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let Some(table) = table.upgrade() else {
                return;
            };
            if port.closes.load(Ordering::Relaxed) != this_close {
                let why = "the port was opened or closed again meanwhile";
                table.emit(&port, EventKind::fault_ended("close", why));
                return;
            }
            match table.open_port(number).await {
                Ok(()) => {
                    let why = format!("open again after {after}");
                    table.emit(&port, EventKind::fault_ended("close", why));
                }
                // switchboard is stopping: staying closed is what is wanted then.
                Err(ControlError::ShuttingDown) => {}
                Err(error) => {
                    tracing::warn!(port = number, %error, "port {number} could not open again");
                    let why = format!("could not open again: {error}");
                    table.emit(&port, EventKind::fault_ended("close", why));
                }
            }
        });
        Ok(())
    }

    /// Accept the port's next `count` connections and reset each at once (0: stop).
    pub fn reset_next(&self, number: u16, count: u32) -> Result<(), ControlError> {
        let port = self.find(number)?;
        let before = port.reset_next(count);
        if before > 0 {
            let why = format!("replaced with {count} connection(s) left");
            self.emit(&port, EventKind::fault_ended("reset", why));
        }
        if count > 0 {
            let what = format!("the next {count} connection(s) accepted and reset at once");
            self.emit(&port, EventKind::fault_started("reset", what));
        }
        Ok(())
    }

    /// Listen on a closed port again, on the same addresses.
    pub async fn open_port(&self, number: u16) -> Result<(), ControlError> {
        self.find(number)?;
        self.ask(|reply| Request::Open(number, reply)).await
    }

    /// Close a port's listeners and drop its open connections at once (Toxiproxy's
    /// disable).
    pub async fn disable_port(&self, number: u16) -> Result<(), ControlError> {
        self.close_port(number).await?;
        self.find(number)?.cut_connections();
        Ok(())
    }

    /// No toxics, no resets to come, every port open (ports added while running stay).
    pub async fn reset(&self) -> Result<(), ControlError> {
        self.ask(Request::OpenAll).await?;
        for port in &self.ports() {
            port.toxics.clear();
            if port.reset_next(0) > 0 {
                self.emit(port, EventKind::fault_ended("reset", "stopped by a reset"));
            }
        }
        tracing::info!("reset: no toxics, every port open");
        Ok(())
    }

    fn emit(&self, port: &Port, kind: EventKind) {
        self.events.emit(port.event(kind));
    }

    /// Add a port: bind it (with the same errors as at start-up), give it its service and
    /// serve it; the answer is its row.
    pub async fn add_port(&self, spec: PortSpec) -> Result<PortStatus, ControlError> {
        self.ask(|reply| Request::Add(Box::new(spec), reply)).await
    }

    /// Remove a port: its listeners close at once, its connections drain in the background
    /// as at shutdown.
    pub async fn remove_port(&self, number: u16) -> Result<(), ControlError> {
        self.find(number)?;
        self.ask(|reply| Request::Remove(number, reply)).await
    }
}

impl ToxicControl for PortTable {
    fn toxics(&self, number: u16) -> Result<Vec<Toxic>, ControlError> {
        Ok(self.find(number)?.toxics.list())
    }

    fn add_toxic(&self, number: u16, toxic: Toxic) -> Result<Toxic, ControlError> {
        self.find(number)?.toxics.add(toxic)
    }

    fn update_toxic(
        &self,
        number: u16,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<Toxic, ControlError> {
        self.find(number)?.toxics.update(name, patch)
    }

    fn remove_toxic(&self, number: u16, name: &str) -> Result<(), ControlError> {
        self.find(number)?.toxics.remove(name)
    }
}

impl PortDirectory for PortTable {
    fn ports(&self) -> Vec<PortStatus> {
        let metrics = self.events.metrics();
        let mut ports: Vec<_> = self
            .ports()
            .iter()
            .map(|p| p.status(metrics.port(p.number, p.protocol, p.service)))
            .collect();
        ports.sort_by_key(|p| (p.port, p.protocol == Protocol::Udp));
        ports
    }
}

/// Every port's accept loop, owned by the supervisor's run loop, which answers the table's
/// requests with it.
pub(crate) struct Listeners {
    gate: Arc<Gate>,
    table: Arc<PortTable>,
    serving: Vec<Serving>,
    /// Builds the services of ports added while running.
    factory: Box<dyn ServiceFactory>,
    /// The `[supervisor]` table: limits and clocks of ports added later, how long a removed
    /// port's connections may take to finish (`shutdown_timeout`).
    settings: crate::settings::SupervisorSettings,
}

/// One port, the service that answers it, and its accept (or receive) loop while it
/// listens.
struct Serving {
    port: Arc<Port>,
    service: Answerer,
    accepting: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Listeners {
    /// Start accepting on every port's sockets (bound earlier, in the same order as
    /// `table`'s ports). A port that `services` does not name is closed, with an error.
    pub(crate) fn start(
        gate: Arc<Gate>,
        table: Arc<PortTable>,
        sockets: Vec<Sockets>,
        services: Services,
        settings: &crate::settings::SupervisorSettings,
    ) -> Self {
        let Services {
            mut by_port,
            factory,
        } = services;
        let ports = table.ports();
        let mut serving = Vec::with_capacity(ports.len());
        for (port, sockets) in ports.iter().zip(sockets) {
            let Some(service) = by_port.remove(&(port.number, port.protocol)) else {
                tracing::error!(
                    port = port.number,
                    "no {} service was wired to port {}; closing it",
                    port.service,
                    port.number
                );
                close_unserved(&gate.events, port, sockets);
                continue;
            };
            let mut entry = Serving {
                port: port.clone(),
                service,
                accepting: None,
            };
            entry.accept(&gate, sockets, settings.udp_max_answer);
            serving.push(entry);
        }
        Self {
            gate,
            table,
            serving,
            factory,
            settings: settings.clone(),
        }
    }

    /// Do what the table asked.
    pub(crate) async fn answer(&mut self, request: Request) {
        let (result, reply) = match request {
            Request::Close(number, reply) => (self.close(number).await, reply),
            Request::Open(number, reply) => {
                let result = match self.find(number) {
                    Ok(at) => self.open(at).await,
                    Err(error) => Err(error),
                };
                (result, reply)
            }
            Request::OpenAll(reply) => (self.open_all().await, reply),
            Request::Remove(number, reply) => (self.remove(number).await, reply),
            Request::Add(spec, reply) => {
                let _ = reply.send(self.add(&spec).await);
                return;
            }
        };
        let _ = reply.send(result);
    }

    /// Where TCP port `number` is in `serving`: the control API's per-port requests
    /// address TCP rows.
    fn find(&self, number: u16) -> Result<usize, ControlError> {
        self.serving
            .iter()
            .position(|s| s.port.number == number && s.port.protocol == Protocol::Tcp)
            .ok_or(ControlError::NoSuchPort(number))
    }

    /// Close a port's sockets and wait until they are closed.
    async fn close(&mut self, number: u16) -> Result<(), ControlError> {
        let at = self.find(number)?;
        let serving = &mut self.serving[at];
        serving.port.closes.fetch_add(1, Ordering::Relaxed);
        serving.stop().await;
        Ok(())
    }

    /// Listen on the closed port at `at` in `serving` again, on the addresses it had.
    async fn open(&mut self, at: usize) -> Result<(), ControlError> {
        let gate = self.gate.clone();
        let serving = &mut self.serving[at];
        if serving.accepting.is_some() {
            return Ok(());
        }
        let port = serving.port.clone();
        let (protocol, service, addrs) = (port.protocol, port.service, port.addrs.clone());
        let wait = self.settings.blackhole_wait;
        let sockets = blocking(move || Sockets::open(protocol, service, &addrs, wait))
            .await
            .map_err(|error| ControlError::Bind {
                port: port.number,
                reason: format!("cannot listen on port {} again: {error}", port.number),
            })?;
        announce(&gate.events, &port);
        serving.accept(&gate, sockets, self.settings.udp_max_answer);
        Ok(())
    }

    /// Open every closed port again (reset).
    async fn open_all(&mut self) -> Result<(), ControlError> {
        for at in 0..self.serving.len() {
            self.open(at).await?;
        }
        Ok(())
    }

    /// Bind a new port and serve it with the service it names.
    async fn add(&mut self, spec: &PortSpec) -> Result<PortStatus, ControlError> {
        // The kernel would say "address in use" only for addresses that overlap; a port
        // number means one service here, whatever the addresses.
        if spec.protocol != Protocol::Tcp {
            return Err(ControlError::Invalid(
                "UDP rows come from the config file; the API adds TCP rows".into(),
            ));
        }
        if spec.port != 0
            && self
                .serving
                .iter()
                .any(|s| s.port.number == spec.port && s.port.protocol == Protocol::Tcp)
        {
            return Err(ControlError::PortExists(spec.port));
        }
        if let Some(name) = &spec.name
            && self.serving.iter().any(|s| s.port.name() == name)
        {
            return Err(ControlError::NameExists(name.clone()));
        }
        let (row, wait) = (spec.clone(), self.settings.blackhole_wait);
        let bound = blocking(move || bind_port(&row, wait))
            .await
            .map_err(|reason| ControlError::Bind {
                port: spec.port,
                reason,
            })?;
        // Built for the row as bound (the kernel's number for port 0); if it cannot be
        // built, dropping `bound` closes the sockets again.
        let row = PortSpec {
            port: bound.port,
            ..spec.clone()
        };
        let service = match row.service {
            crate::BLACKHOLE => Answerer::Nobody,
            _ => Answerer::Connections(
                self.factory
                    .service(&row)
                    .map_err(|e| ControlError::Invalid(e.to_string()))?,
            ),
        };
        let port = Arc::new(Port::new(
            spec,
            (bound.port, bound.addrs()),
            Origin::Runtime,
            &self.settings,
            &self.gate.events,
        ));
        announce(&self.gate.events, &port);
        let mut entry = Serving {
            port: port.clone(),
            service,
            accepting: None,
        };
        entry.accept(&self.gate, bound.sockets, self.settings.udp_max_answer);
        self.serving.push(entry);
        self.table.insert(port.clone());
        tracing::info!(
            port = port.number,
            service = port.service,
            "port {} added: the {} service answers it",
            port.number,
            port.service
        );
        let metrics = self.gate.events.metrics();
        Ok(port.status(metrics.port(port.number, port.protocol, port.service)))
    }

    /// Remove a port: close its sockets now; its connections finish in the background, as
    /// at shutdown, within the same deadline.
    async fn remove(&mut self, number: u16) -> Result<(), ControlError> {
        let at = self.find(number)?;
        let mut serving = self.serving.remove(at);
        serving.stop().await;
        self.table.remove(number);
        let port = serving.port;
        let timeout = self.settings.shutdown_timeout;
        tokio::spawn(async move {
            let open = port.connections.len();
            tracing::info!(
                port = number,
                "port {number} removed; {open} connection(s) may finish"
            );
            let cut =
                crate::port::drain(std::slice::from_ref(&port), &port.connections, timeout).await;
            if cut > 0 {
                tracing::warn!(
                    port = number,
                    "port {number}: {cut} connection(s) cut at the deadline"
                );
            }
        });
        Ok(())
    }

    /// Close every port (shutdown).
    pub(crate) async fn close_all(&mut self) {
        for serving in &mut self.serving {
            serving.stop().await;
        }
    }
}

/// Run `open` on a thread where blocking is allowed: binding, and for a blackhole the wait
/// for its own dropped knock, must not hold up the run loop's thread. Its error in words.
async fn blocking<T, E>(open: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, String>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(open).await {
        Ok(opened) => opened.map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    }
}

/// Say that a port's sockets are bound (one event per address).
pub(crate) fn announce(events: &EventBus, port: &Port) {
    for &addr in &port.addrs {
        events.emit(port.event(EventKind::PortBound { addr }));
    }
}

impl Serving {
    /// Start the port's accept loop (TCP), receive loop (UDP) or blackhole on `sockets`.
    fn accept(&mut self, gate: &Arc<Gate>, sockets: Sockets, max_answer: usize) {
        let stop = CancellationToken::new();
        let task = match (&self.service, sockets) {
            (Answerer::Connections(service), Sockets::Tcp(sockets)) => {
                let listener = Listener {
                    port: self.port.clone(),
                    service: service.clone(),
                    gate: gate.clone(),
                    sockets: for_tokio(sockets, &self.port, tokio::net::TcpListener::from_std),
                };
                tokio::spawn(listener.run(stop.clone()))
            }
            (Answerer::Datagrams(service), Sockets::Udp(sockets)) => {
                let receiver = DatagramLoop {
                    port: self.port.clone(),
                    service: service.clone(),
                    events: gate.events.clone(),
                    sockets: for_tokio(sockets, &self.port, tokio::net::UdpSocket::from_std),
                    max_answer,
                };
                tokio::spawn(receiver.run(stop.clone()))
            }
            (Answerer::Nobody, Sockets::Blackhole(holes)) => {
                let (port, events) = (self.port.clone(), gate.events.clone());
                tokio::spawn(blackhole::hold(holes, port, events, stop.clone()))
            }
            (_, sockets) => {
                // The app builds each row's service for the row's protocol, so this is a
                // bug; say so rather than serve a port with the wrong kind of service.
                tracing::error!(
                    port = self.port.number,
                    "the {} service cannot answer {} sockets; closing them",
                    self.port.service,
                    self.port.protocol
                );
                close_unserved(&gate.events, &self.port, sockets);
                return;
            }
        };
        self.accepting = Some((stop, task));
        self.port.set_listening(true);
    }

    /// Stop the accept loop; it closes its sockets and says so.
    async fn stop(&mut self) {
        if let Some((stop, task)) = self.accepting.take() {
            stop.cancel();
            let _ = task.await;
        }
        self.port.set_listening(false);
    }
}

/// Bound sockets, ready for tokio, each with its address; one that cannot be served is left
/// out (logged).
fn for_tokio<S, T>(
    sockets: Vec<S>,
    port: &Port,
    convert: fn(S) -> io::Result<T>,
) -> Vec<(T, SocketAddr)>
where
    S: LocalAddr,
{
    sockets
        .into_iter()
        .filter_map(|socket| {
            let addr = socket.local_addr().ok()?;
            match convert(socket) {
                Ok(socket) => Some((socket, addr)),
                Err(error) => {
                    tracing::error!(%addr, %error, port = port.number, "cannot serve this socket");
                    None
                }
            }
        })
        .collect()
}

/// A bound std socket's address.
trait LocalAddr {
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

impl LocalAddr for std::net::TcpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        std::net::TcpListener::local_addr(self)
    }
}

impl LocalAddr for std::net::UdpSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        std::net::UdpSocket::local_addr(self)
    }
}

/// Close the sockets of a port that has no service, saying so.
fn close_unserved(events: &EventBus, port: &Port, sockets: Sockets) {
    let addrs = sockets.addrs();
    drop(sockets);
    for addr in addrs {
        events.emit(port.event(EventKind::PortClosed { addr }));
    }
    port.set_listening(false);
}
