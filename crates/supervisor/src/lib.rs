//! The supervisor owns every listening socket and hands each accepted connection to the
//! service of its port. Ports that are not in its table have no socket, so the kernel
//! refuses connections to them.
//!
//! It knows services only as `Arc<dyn Service>`: it never builds one. The app reads the
//! configuration, binds the table here, builds the services and hands them over:
//!
//! ```text
//! let supervisor = Supervisor::bind(&table, settings, events)?;   // sockets open
//! let services = app::wire(&config, &supervisor)?;                 // port → service
//! supervisor.run(services, shutdown).await;                        // serve, then drain
//! ```
//!
//! # Layout
//!
//! A connection's way in, from the kernel to the service, and the modules that carry it. Each
//! module uses only those above it in this list: the chain runs one way.
//!
//! - `settings.rs`: [`SupervisorSettings`], the `[supervisor]` table.
//! - `port.rs`: one port: its row ([`PortSpec`]), rules, limits and toxics, the whole
//!   admission decision for a connection (serve, refuse politely, or drop), and draining
//!   ports (ask their connections to finish, wait up to a deadline, cut what is left).
//! - `blackhole.rs`: a port that listens and never answers: its queue kept full with
//!   connections of its own, so the kernel drops every knock, as a dropping firewall would.
//! - `bind.rs`: opening listening sockets, all of them before any is served, with errors a
//!   newcomer can act on.
//! - `gate.rs`: between accept and service: asks the port, attaches the toxics, gives the
//!   connection its id, span and events, and runs the service in a task of its own.
//! - `listener.rs`: one accept loop per port: room for the connection first (back-pressure),
//!   then accept, with backoff when the system runs short.
//! - `datagram.rs`: a UDP port's receive loop, UDP's gate and listener in one: each
//!   datagram judged by the port's rules and rate, answered with at most one datagram.
//! - `table.rs`: the [`PortTable`] that control sees (add, remove, close, open, toxics,
//!   reset, status) and the listeners the run loop owns, which carry out its requests; ports
//!   added while running get their services from the app's [`ServiceFactory`].
//! - `lib.rs` (this file): [`Supervisor`]: bind, run, and draining at shutdown (stop
//!   accepting, then `port.rs`'s drain of every port), which removing one port does for
//!   that port alone.

mod bind;
mod blackhole;
mod datagram;
mod gate;
mod listener;
mod port;
mod settings;
mod table;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use switchboard_core::{Budget, EventBus};
use tokio::sync::mpsc;

pub use bind::BindError;
pub use port::PortSpec;
pub use settings::SupervisorSettings;
pub use switchboard_core::BLACKHOLE;
pub use table::{PortTable, ServiceFactory, Services};

use crate::gate::Gate;
use crate::port::{Port, drain};
use crate::table::{Listeners, Request};

/// One listening socket: which port, which service, which address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listening {
    pub port: u16,
    pub protocol: switchboard_core::Protocol,
    pub service: &'static str,
    pub addr: SocketAddr,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Connections still open when the shutdown deadline passed, closed by force.
    pub connections_cut: usize,
}

/// Every listening socket of the port table, bound and ready to serve.
pub struct Supervisor {
    table: Arc<PortTable>,
    /// Each port's sockets (in table order), bound but not yet accepting.
    sockets: Vec<bind::Sockets>,
    requests: mpsc::UnboundedReceiver<Request>,
    gate: Arc<Gate>,
    settings: SupervisorSettings,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("listening", &self.listening())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Open every listening socket of `table`. From here the kernel completes handshakes
    /// and queues connections; [`run`](Self::run) starts accepting them. If any socket
    /// cannot be opened, none stays open.
    ///
    /// Must be called from within a Tokio runtime.
    pub fn bind(
        table: &[PortSpec],
        settings: SupervisorSettings,
        events: EventBus,
    ) -> Result<Self, BindError> {
        let bound = bind::bind_all(table, settings.blackhole_wait)?;
        let mut ports = Vec::with_capacity(bound.len());
        let mut sockets = Vec::with_capacity(bound.len());
        for bound in bound {
            let port = Port::new(
                &bound.spec,
                (bound.port, bound.addrs()),
                port::Origin::StartUp,
                &settings,
                &events,
            );
            table::announce(&events, &port);
            port.set_listening(true);
            ports.push(Arc::new(port));
            sockets.push(bound.sockets);
        }
        let (table, requests) = PortTable::new(ports, events.clone());
        Ok(Self {
            table: Arc::new(table),
            sockets,
            requests,
            gate: Arc::new(Gate::new(events, Budget::new(settings.max_buffered_bytes))),
            settings,
        })
    }

    /// Every listening socket, in port-table order.
    pub fn listening(&self) -> Vec<Listening> {
        self.table
            .ports()
            .iter()
            .flat_map(|port| {
                port.addrs.iter().map(|&addr| Listening {
                    port: port.number,
                    protocol: port.protocol,
                    service: port.service,
                    addr,
                })
            })
            .collect()
    }

    /// The port each row of the table was bound to, in table order (the kernel's choice for
    /// a row with port 0).
    pub fn bound_ports(&self) -> Vec<u16> {
        self.table.ports().iter().map(|p| p.number).collect()
    }

    /// The event stream; subscribe before [`run`](Self::run) to see every connection.
    pub fn events(&self) -> &EventBus {
        &self.gate.events
    }

    /// The port table: close and open ports, change toxics, reset, read the status. What
    /// the control API and the test harness use; it answers once [`run`](Self::run) runs.
    pub fn control(&self) -> Arc<PortTable> {
        self.table.clone()
    }

    /// Serve with `services` until `signal` completes, then shut down gracefully: close
    /// every listener first (new connections are refused from then on), ask services to
    /// finish, wait for open connections up to `[supervisor] shutdown_timeout`, and close
    /// what is left.
    pub async fn run(self, services: Services, signal: impl Future<Output = ()>) -> Stopped {
        let Self {
            table,
            sockets,
            mut requests,
            gate,
            settings,
        } = self;
        let mut listeners =
            Listeners::start(gate.clone(), table.clone(), sockets, services, &settings);
        tokio::pin!(signal);
        loop {
            tokio::select! {
                () = &mut signal => break,
                Some(request) = requests.recv() => listeners.answer(request).await,
            }
        }
        // Control requests from now on are answered "shutting down".
        drop(requests);
        tracing::info!("closing every listener: from now on the kernel refuses new connections");
        listeners.close_all().await;
        let timeout = settings.shutdown_timeout;
        let deadline = humantime::format_duration(timeout);
        let open = gate.connections.len();
        if open > 0 {
            tracing::info!("waiting up to {deadline} for {open} open connection(s) to finish");
        }
        let connections_cut = drain(&table.ports(), &gate.connections, timeout).await;
        if connections_cut > 0 {
            tracing::warn!(
                "shutdown deadline of {deadline} passed; closed {connections_cut} connection(s) still open"
            );
        }
        tracing::info!("stopped");
        Stopped { connections_cut }
    }
}
