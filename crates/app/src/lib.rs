//! switchboard wired together, in one place: read and check the configuration, load the
//! certificate, open the mail store, bind the port table, build every service and hand them
//! to the supervisor. The `switchboard` binary and the test harness both start this, so tests
//! start exactly what users start.
//!
//! ```text
//! let app = App::bind(config)?;   // certificates, mail, sockets, services: all or nothing
//! app.run(shutdown).await;        // serve until the signal, then drain
//! ```
//!
//! # Layout
//!
//! - `config.rs`: [`Config`], the port table and every setting, from defaults or TOML.
//! - `error.rs`: [`Error`], why switchboard could not start, and [`ConfigError`].
//! - `keys.rs`: tables whose keys several crates own (`[http]`, `[[port]]`), shared out.
//! - `rows.rs`: one row of the port table: the keys every row has ([`PortRow`]), from TOML
//!   or from the control API's JSON ([`port_spec`]).
//! - `services.rs`: service names → services, and wiring them to the bound ports; adding a
//!   service is one line there.
//! - `lib.rs` (this file): [`App`]: the order things are built in, and [`Control`].

mod config;
mod error;
mod keys;
mod rows;
mod services;

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_certs::{Source, TlsSettings};
use switchboard_core::{ControlError, EventBus, PortControl, PortStatus};
use switchboard_http::{HttpApp, MailWeb, Products, PublishedCa, Shared, ToxiproxyApi, WireMock};
use switchboard_mail::{Chaos, MailStore};
use switchboard_proxy::{ProxyRow, UpstreamGuard};
use switchboard_stubs::Stubs;
use switchboard_supervisor::{PortTable, Supervisor};

pub use config::{AuthPolicy, Config, DEFAULT_PORTS, LogSettings, Preset};
pub use error::{ConfigError, Error};
pub use rows::{PortRow, port_spec};
pub use services::names as service_names;
pub use switchboard_supervisor::{Listening, PortSpec, Stopped, SupervisorSettings};

use crate::services::ServiceContext;

/// A switchboard with every port bound and every service built, ready to run.
#[derive(Debug)]
pub struct App {
    supervisor: Supervisor,
    services: switchboard_supervisor::Services,
    control: Arc<Control>,
    mail: MailStore,
    stubs: Stubs,
}

impl App {
    /// Build everything `config` asks for. Certificates and the mail store come first, so
    /// that a problem with either leaves no port bound; then the sockets, so that a port
    /// that cannot be bound is reported before anything is served.
    ///
    /// Must be called from within a Tokio runtime.
    pub fn bind(config: Config) -> Result<Self, Error> {
        let (identity, local_ca) = load_certificate(&config)?;
        let mail = MailStore::open(&config.mail)?;
        let chaos = Chaos::new(config.smtp.chaos);
        let events = EventBus::new();
        mail.announce_to(events.clone());

        let upstream_guard =
            Arc::new(UpstreamGuard::from_settings(&config.proxy).map_err(Error::Proxy)?);
        let (stubs, warnings) = Stubs::load(config.stubs.clone()).map_err(Error::Stubs)?;
        for warning in warnings {
            tracing::warn!("[stubs] skipped {warning}");
        }

        let supervisor =
            Supervisor::bind(&config.ports, config.supervisor.clone(), events.clone())?;
        let control = Arc::new(Control {
            table: supervisor.control(),
            chaos: chaos.clone(),
            events: events.clone(),
            max_connections: config.supervisor.max_connections,
            upstream_guard: upstream_guard.clone(),
            allow_exec: config.control.allow_exec,
        });
        let shared = Shared {
            ports: control.table.clone(),
            control: control.clone(),
            toxics: control.table.clone(),
            mail: mail.clone(),
            events: events.clone(),
            control_settings: config.control.clone(),
            server_names: switchboard_certs::default_names()
                .into_iter()
                .chain(config.tls.names.iter().cloned())
                .collect(),
            local_ca,
        };
        let mailpit = MailWeb::new(
            mail.clone(),
            chaos.clone(),
            events.clone(),
            control.table.clone(),
            config.mailpit.clone(),
        );
        let toxiproxy = ToxiproxyApi::new(
            control.table.clone(),
            control.clone(),
            control.table.clone(),
        );
        let wiremock = WireMock::new(
            stubs.clone(),
            events.clone(),
            config.http.max_body_bytes,
            config.httpbin.max_delay,
        );
        let products = Products {
            httpbin: config.httpbin.clone(),
            mailpit,
            toxiproxy,
            wiremock,
        };
        let http_app = HttpApp::new(shared, config.http.clone(), products);
        let bound = supervisor.bound_ports();
        let rows: Vec<(u16, &PortSpec)> = bound.into_iter().zip(&config.ports).collect();
        let factory = services::Factory::new(ServiceContext {
            events,
            http_app,
            https: config.https.clone(),
            smtp: config.smtp.clone(),
            proxy: config.proxy.clone(),
            identity,
            mail: mail.clone(),
            chaos,
            upstream_guard,
        });
        let services = services::wire(&rows, factory)?;
        Ok(Self {
            supervisor,
            services,
            control,
            mail,
            stubs,
        })
    }

    /// Every listening socket, in port-table order.
    pub fn listening(&self) -> Vec<Listening> {
        self.supervisor.listening()
    }

    /// The captured mail.
    pub fn mail(&self) -> &MailStore {
        &self.mail
    }

    /// The stubs of the `stubs` rows, and their request journal.
    pub fn stubs(&self) -> &Stubs {
        &self.stubs
    }

    /// The event stream; subscribe before [`run`](Self::run) to see every connection.
    pub fn events(&self) -> &EventBus {
        self.supervisor.events()
    }

    /// What the control API does: close and open ports, toxics, chaos, reset.
    pub fn control(&self) -> Arc<Control> {
        self.control.clone()
    }

    /// Serve until `signal` completes, then shut down gracefully.
    pub async fn run(self, signal: impl Future<Output = ()>) -> Stopped {
        self.supervisor.run(self.services, signal).await
    }
}

/// Changing switchboard while it runs: the port table's control, and the SMTP chaos
/// triggers, which a reset also puts back as they started.
#[derive(Debug)]
pub struct Control {
    table: Arc<PortTable>,
    chaos: Chaos,
    /// Where a reset says which chaos faults it ended.
    events: EventBus,
    /// `[supervisor] max_connections`: the default of a row added at run time.
    max_connections: usize,
    /// Where proxies added at run time may connect.
    upstream_guard: Arc<UpstreamGuard>,
    /// `[control] allow_exec`: whether rows added at run time may run programs.
    allow_exec: bool,
}

impl Control {
    /// Ports: toxics and status.
    pub fn table(&self) -> &PortTable {
        &self.table
    }

    /// The row `row` as the supervisor would take it through the API, or why it is refused:
    /// its keys, no programs unless `[control] allow_exec`, and a proxy's upstream within
    /// `[proxy] allow_upstreams`.
    async fn checked(&self, row: serde_json::Value) -> Result<PortSpec, ControlError> {
        let spec = rows::port_spec(row, self.max_connections)
            .map_err(|e| ControlError::Invalid(e.message))?;
        if spec.service == "exec" && !self.allow_exec {
            return Err(ControlError::Forbidden(
                "the API does not add exec rows: a program on a port, started by whoever can \
                 reach this API, would be a remote shell. Put the row in the config file, or \
                 set [control] allow_exec = true if everyone who reaches the API may run \
                 programs here"
                    .into(),
            ));
        }
        // A proxy made through the API connects only where [proxy] allow_upstreams lets it:
        // checked now, and again at each connect (the row is `runtime`; a name may resolve
        // elsewhere later).
        if let Some(row) = spec.keys.as_deref().and_then(|k| k.downcast::<ProxyRow>()) {
            self.upstream_guard
                .check(row.address())
                .await
                .map_err(|e| ControlError::Forbidden(e.to_string()))?;
        }
        Ok(spec)
    }

    /// The SMTP chaos triggers (Mailpit's model).
    pub fn chaos(&self) -> &Chaos {
        &self.chaos
    }
}

#[async_trait]
impl PortControl for Control {
    async fn close_port(&self, port: u16) -> Result<(), ControlError> {
        self.table.close_port(port).await
    }

    async fn open_port(&self, port: u16) -> Result<(), ControlError> {
        self.table.open_port(port).await
    }

    async fn close_port_for(
        &self,
        port: u16,
        reopen_after: std::time::Duration,
    ) -> Result<(), ControlError> {
        self.table.close_port_for(port, reopen_after).await
    }

    async fn reset_next(&self, port: u16, count: u32) -> Result<(), ControlError> {
        self.table.reset_next(port, count)
    }

    async fn reset(&self) -> Result<(), ControlError> {
        let before = self.chaos.get();
        self.table.reset().await?;
        self.chaos.reset();
        tracing::info!("reset: chaos triggers as configured");
        let after = self.chaos.get();
        switchboard_mail::announce_chaos(
            &self.events,
            &*self.table,
            before,
            after,
            "removed by a reset",
        );
        Ok(())
    }

    async fn add_port(&self, row: serde_json::Value) -> Result<PortStatus, ControlError> {
        let spec = self.checked(row).await?;
        self.table.add_port(spec).await
    }

    async fn check_port(&self, row: serde_json::Value) -> Result<(), ControlError> {
        self.checked(row).await.map(drop)
    }

    async fn remove_port(&self, port: u16) -> Result<(), ControlError> {
        self.table.remove_port(port).await
    }

    async fn disable_port(&self, port: u16) -> Result<(), ControlError> {
        self.table.disable_port(port).await
    }
}

/// The server certificate, when a port of the table uses TLS; and the local CA to publish,
/// when the certificate is switchboard's own.
fn load_certificate(
    config: &Config,
) -> Result<
    (
        Option<switchboard_certs::Identity>,
        Option<Arc<PublishedCa>>,
    ),
    Error,
> {
    if !config.ports.iter().any(services::uses_tls) {
        return Ok((None, None));
    }
    let tls = TlsSettings {
        crl_url: config.crl_url(),
        ..config.tls.clone()
    };
    let (identity, source) = switchboard_certs::load(&tls)?;
    log_certificate(&source);
    let local_ca = match source {
        Source::LocalCa(ca) => Some(Arc::new(PublishedCa {
            pem: ca.ca_pem,
            crl_der: ca.crl_der,
        })),
        Source::Provided(_) => None,
    };
    Ok((Some(identity), local_ca))
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
