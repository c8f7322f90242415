//! The supervisor owns every listening socket and hands each accepted connection to the
//! service its port names. Ports that are not in its table have no socket, so the kernel
//! refuses connections to them.
//!
//! ```text
//! kernel ──accept──▶ Listener ──▶ Gate ──▶ Service::serve(conn, shutdown)
//! ```
//!
//! # Layout
//!
//! - `config.rs`: [`Config`], the port table and settings, from defaults or a TOML file.
//! - `bind.rs`: opening every listener before serving any, with errors that explain.
//! - `listener.rs`: one accept loop per socket: back-pressure, accept backoff.
//! - `gate.rs`: between accept and service: access rules, limits, toxics, ids, spans,
//!   events, the task.
//! - `ports.rs`: the live port table: counts (from events), limits, toxics, listeners, and
//!   the control actions (close, open, toxics, reset).
//! - `services.rs`: service names → services; adding a service is one line there.
//! - `signal.rs`: SIGINT and SIGTERM as one future.
//!
//! A [`Supervisor`] is used in two steps: [`Supervisor::bind`] opens every socket (so the
//! caller learns the addresses, and bind errors surface before anything is served), then
//! [`Supervisor::run`] serves until a shutdown signal and shuts down gracefully.

mod bind;
pub mod config;
mod gate;
mod listener;
mod ports;
mod services;
mod signal;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use switchboard_certs::{CertError, Source, TlsSettings};
use switchboard_core::{Chaos, Event, EventBus, Metrics, PortControl, Service};
use switchboard_http::{HttpApp, PublishedCa, Shared};
use switchboard_mail::{MailError, MailStore};

pub use bind::{BindError, explain as explain_bind_error};
pub use config::{Config, ConfigError, LogSettings, PortSpec};
pub use services::names as service_names;
pub use signal::shutdown_signal;

use crate::gate::Gate;
use crate::ports::{Port, Ports};
use crate::services::ServiceContext;

/// Why switchboard could not start. Every variant is the user's to fix (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("the port table names the service \"{0}\", which switchboard does not have")]
    UnknownService(&'static str),
    #[error(transparent)]
    Certs(#[from] CertError),
    #[error("the {0} service needs a certificate, but none was loaded")]
    NoCertificate(&'static str),
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// One listening socket: which service, which address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listening {
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
    config: Config,
    ports: Arc<Ports>,
    gate: Arc<Gate>,
    events: EventBus,
    mail: MailStore,
    chaos: Chaos,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("listening", &self.listening())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Open every listening socket of `config`'s port table. From here the kernel completes
    /// handshakes and queues connections; [`run`](Self::run) starts accepting them. If any
    /// socket cannot be opened, none stays open.
    ///
    /// Must be called from within a Tokio runtime.
    pub fn bind(config: Config) -> Result<Self, Error> {
        // Certificates before sockets: a certificate problem then leaves nothing bound.
        let (identity, local_ca) = if config.ports.iter().any(|p| services::uses_tls(p.service)) {
            let tls = TlsSettings {
                crl_url: config.crl_url(),
                ..config.tls.clone()
            };
            let (identity, source) = switchboard_certs::load(&tls, &[])?;
            log_certificate(&source);
            let local_ca = match source {
                Source::LocalCa(ca) => Some(Arc::new(PublishedCa {
                    pem: ca.ca_pem,
                    crl_der: ca.crl_der,
                })),
                Source::Provided(_) => None,
            };
            (Some(identity), local_ca)
        } else {
            (None, None)
        };
        let mail = MailStore::open(&config.mail)?;
        let chaos = Chaos::new(config.smtp.chaos.into());
        let bound = bind::bind_all(&config.ports)?;

        // The event bus comes first (everything emits), its observers last (they need the
        // port table, which needs the gate, which needs the bus).
        let events = EventBus::new();
        let gate = Arc::new(Gate::new(events.clone()));
        let list: Vec<Arc<Port>> = bound
            .into_iter()
            .map(|b| Arc::new(Port::new(b, config.supervisor.max_refusals)))
            .collect();
        let ports = Arc::new(Ports::new(list, gate.clone(), chaos.clone()));
        let metrics = Arc::new(Metrics::new());
        events.set_observers(vec![ports.clone(), metrics.clone()]);

        let shared = Shared {
            ports: ports.clone(),
            control: ports.clone(),
            mail: mail.clone(),
            events: events.clone(),
            metrics,
            chaos: chaos.clone(),
            control_settings: config.control.clone(),
            local_ca,
        };
        let cx = ServiceContext {
            config: &config,
            events: events.clone(),
            http_app: HttpApp::new(shared, config.http.clone()),
            identity,
            mail: mail.clone(),
            chaos: chaos.clone(),
        };
        // One instance per service, shared by every port that names it.
        let mut services: HashMap<&'static str, Arc<dyn Service>> = HashMap::new();
        for port in &ports.list {
            let service = match services.get(port.name) {
                Some(service) => service.clone(),
                None => {
                    let service = services::build(port.name, &cx)?;
                    services.insert(port.name, service.clone());
                    service
                }
            };
            port.set_service(service);
        }
        drop(cx);

        for port in &ports.list {
            for &addr in &port.addrs {
                events.emit(Event::PortBound {
                    port: port.number,
                    service: port.name,
                    addr,
                });
            }
        }
        Ok(Self {
            config,
            ports,
            gate,
            events,
            mail,
            chaos,
        })
    }

    /// Every listening socket, in port-table order.
    pub fn listening(&self) -> Vec<Listening> {
        self.ports
            .list
            .iter()
            .flat_map(|port| {
                port.addrs.iter().map(|&addr| Listening {
                    service: port.name,
                    addr,
                })
            })
            .collect()
    }

    /// The captured mail.
    pub fn mail(&self) -> &MailStore {
        &self.mail
    }

    /// The event stream; subscribe before [`run`](Self::run) to see every connection.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Close and open ports, change toxics, reset: what the control API does.
    pub fn control(&self) -> Arc<dyn PortControl> {
        self.ports.clone()
    }

    /// The SMTP chaos triggers.
    pub fn chaos(&self) -> &Chaos {
        &self.chaos
    }

    /// Serve until `signal` completes, then shut down gracefully: close every listener
    /// first (new connections are refused from then on), ask services to finish, wait for
    /// open connections up to `[supervisor] shutdown_timeout`, and close what is left.
    pub async fn run(self, signal: impl Future<Output = ()>) -> Stopped {
        self.ports.start().await;
        signal.await;
        tracing::info!("closing every listener: from now on the kernel refuses new connections");
        self.ports.close_all().await;

        let gate = &self.gate;
        let timeout = self.config.supervisor.shutdown_timeout;
        let open = gate.connections.len();
        if open > 0 {
            tracing::info!(
                "waiting up to {} for {open} open connection(s) to finish",
                humantime_secs(timeout)
            );
        }
        gate.shutdown.request();
        gate.connections.close();
        let connections_cut = match tokio::time::timeout(timeout, gate.connections.wait()).await {
            Ok(()) => 0,
            Err(_) => {
                let cut = gate.connections.len();
                tracing::warn!(
                    "shutdown deadline of {} passed; closing {cut} connection(s) still open",
                    humantime_secs(timeout)
                );
                gate.deadline_passed.raise();
                gate.connections.wait().await;
                cut
            }
        };
        tracing::info!("stopped");
        Stopped { connections_cut }
    }
}

/// Say where the certificate came from, and how a client can trust it.
fn log_certificate(source: &Source) {
    match source {
        Source::LocalCa(ca) => {
            let ca_path = ca.paths.ca_cert.display();
            tracing::info!(
                path = %ca_path, sha256 = %ca.ca.sha256,
                "local CA {ca_path} ({}); clients that trust it trust switchboard, \
                 e.g. curl --cacert {ca_path} https://localhost/",
                ca.ca_action
            );
            tracing::info!(
                path = %ca.paths.server_cert.display(),
                "server certificate {} ({}) for {}, valid until {}",
                ca.paths.server_cert.display(),
                ca.server_action,
                ca.server.names.join(", "),
                ca.server.not_after.date()
            );
        }
        Source::Provided(info) => tracing::info!(
            path = %info.path.display(),
            "serving your certificate {} for {}, valid until {}",
            info.path.display(),
            info.names.join(", "),
            info.not_after.date()
        ),
    }
}

fn humantime_secs(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs_f64())
}
