//! Every service switchboard can put behind a port, by name, and the wiring of services to
//! the bound ports.
//!
//! Adding a service is one crate and one line in [`SERVICES`]; the port table (built-in or
//! from a config file) then refers to it by that name.

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_certs::Identity;
use switchboard_classic::{ChargenService, DaytimeService, DiscardService, TimeService};
use switchboard_core::{DatagramService, EventBus, Protocol, Service};
use switchboard_echo::EchoService;
use switchboard_exec::ExecService;
use switchboard_http::{HttpApp, HttpService};
use switchboard_https::HttpsService;
use switchboard_mail::{Chaos, MailStore};
use switchboard_proxy::{ProxyService, UpstreamGuard};
use switchboard_smtp::SmtpService;
use switchboard_supervisor::{BLACKHOLE, PortSpec, ServiceFactory, Services};

use crate::{Config, Error};

/// What a service may need when it is built: kept for as long as switchboard runs, since
/// ports added at run time need their services built then.
pub(crate) struct ServiceContext {
    pub(crate) config: Config,
    pub(crate) events: EventBus,
    /// The HTTP application, shared by every service that answers HTTP.
    pub(crate) http_app: HttpApp,
    /// The server certificate; loaded only when a port in the table uses TLS.
    pub(crate) identity: Option<Identity>,
    /// Where captured mail goes.
    pub(crate) mail: MailStore,
    /// The SMTP chaos triggers.
    pub(crate) chaos: Chaos,
    /// Where proxies made through the API may connect.
    pub(crate) upstream_guard: Arc<UpstreamGuard>,
}

impl ServiceContext {
    fn identity(&self, service: &'static str) -> Result<&Identity, Error> {
        self.identity.as_ref().ok_or(Error::NoCertificate(service))
    }
}

type Build = fn(&ServiceContext, &PortSpec) -> Result<Arc<dyn Service>, Error>;

/// One service: its name, whether it needs a certificate, whether each row gets its own
/// instance (it has settings of its own in the row) or all rows share one, and how to build
/// it; and, for the few that also answer UDP rows, their datagram form.
struct Entry {
    name: &'static str,
    uses_tls: bool,
    per_row: bool,
    build: Build,
    udp: Option<fn() -> Arc<dyn DatagramService>>,
}

/// Every service, one line each.
#[rustfmt::skip]
const SERVICES: &[Entry] = &[
    Entry { name: "http",  uses_tls: false, per_row: false, build: http, udp: None },
    Entry { name: "https", uses_tls: true,  per_row: false, build: https, udp: None },
    Entry { name: "smtp",  uses_tls: true,  per_row: false, build: smtp, udp: None },
    Entry { name: "smtps", uses_tls: true,  per_row: false, build: smtps, udp: None },
    Entry { name: "echo",  uses_tls: false, per_row: false, build: |_, _| Ok(Arc::new(EchoService)), udp: Some(|| Arc::new(EchoService)) },
    Entry { name: "discard", uses_tls: false, per_row: false, build: |_, _| Ok(Arc::new(DiscardService)), udp: Some(|| Arc::new(DiscardService)) },
    Entry { name: "daytime", uses_tls: false, per_row: false, build: |_, _| Ok(Arc::new(DaytimeService)), udp: Some(|| Arc::new(DaytimeService)) },
    Entry { name: "chargen", uses_tls: false, per_row: false, build: |_, _| Ok(Arc::new(ChargenService::default())), udp: Some(|| Arc::new(ChargenService::default())) },
    Entry { name: "time",  uses_tls: false, per_row: false, build: |_, _| Ok(Arc::new(TimeService)), udp: Some(|| Arc::new(TimeService)) },
    Entry { name: "proxy", uses_tls: false, per_row: true,  build: proxy, udp: None },
    Entry { name: "toxiproxy", uses_tls: false, per_row: false, build: toxiproxy, udp: None },
    Entry { name: "stubs", uses_tls: false, per_row: true,  build: stubs, udp: None },
    Entry { name: "exec",  uses_tls: false, per_row: true,  build: exec, udp: None },
];

/// A program on a port: the row's command, run for each connection.
fn exec(cx: &ServiceContext, row: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    let program = row.exec.clone().ok_or(Error::NoCommand(row.port))?;
    let name = row
        .name
        .clone()
        .unwrap_or_else(|| format!("exec-{}", row.port));
    let service = ExecService::new(program, name, cx.events.clone())
        .map_err(|reason| Error::Exec(row.port, reason))?;
    Ok(Arc::new(service))
}

/// WireMock-style stubs; inside TLS on a row with `tls = true`.
fn stubs(cx: &ServiceContext, row: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    if !row.tls {
        return Ok(Arc::new(HttpService::stubs(&cx.http_app)));
    }
    let tls = switchboard_certs::server_config(cx.identity("stubs")?, switchboard_https::ALPN)?;
    let service = HttpsService::new(
        tls,
        cx.http_app.stubs(),
        cx.config.https.clone(),
        cx.events.clone(),
    );
    Ok(Arc::new(service.named("stubs")))
}

/// A proxy to the row's upstream; rows made through the API are guarded at each connect.
fn proxy(cx: &ServiceContext, row: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    let upstream = row.upstream.as_ref().ok_or(Error::NoUpstream(row.port))?;
    let guard = upstream.guarded.then(|| cx.upstream_guard.clone());
    Ok(Arc::new(ProxyService::new(
        upstream.address.clone(),
        &cx.config.proxy,
        guard,
        cx.events.clone(),
    )))
}

/// Toxiproxy's API, for the clients people already have.
fn toxiproxy(cx: &ServiceContext, _: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    Ok(Arc::new(HttpService::named(
        "toxiproxy",
        cx.http_app.toxiproxy(),
    )))
}

fn http(cx: &ServiceContext, _: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    Ok(Arc::new(HttpService::new(cx.http_app.clone())))
}

fn https(cx: &ServiceContext, _: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    let tls = switchboard_certs::server_config(cx.identity("https")?, switchboard_https::ALPN)?;
    let settings = cx.config.https.clone();
    Ok(Arc::new(HttpsService::new(
        tls,
        cx.http_app.clone(),
        settings,
        cx.events.clone(),
    )))
}

/// SMTP with STARTTLS (no ALPN: SMTP clients do not negotiate protocols).
fn smtp(cx: &ServiceContext, _: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    let tls = switchboard_certs::server_config(cx.identity("smtp")?, &[])?;
    let settings = cx.config.smtp.clone();
    let (mail, chaos, events) = (cx.mail.clone(), cx.chaos.clone(), cx.events.clone());
    Ok(Arc::new(SmtpService::new(
        settings,
        mail,
        chaos,
        Some(tls),
        events,
    )))
}

/// SMTP inside TLS from the first byte (submissions, usually port 465).
fn smtps(cx: &ServiceContext, _: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    let tls = switchboard_certs::server_config(cx.identity("smtps")?, &[])?;
    let settings = cx.config.smtp.clone();
    let (mail, chaos, events) = (cx.mail.clone(), cx.chaos.clone(), cx.events.clone());
    Ok(Arc::new(SmtpService::implicit_tls(
        settings, mail, chaos, tls, events,
    )))
}

/// A service switchboard does not have.
fn unknown(name: String) -> Error {
    let known = names().collect::<Vec<_>>().join(", ");
    Error::UnknownService { name, known }
}

/// The names a port table may use, in the order they were added; last, the blackhole,
/// which is not a service but the supervisor's own (nobody answers it).
pub fn names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|e| e.name).chain([BLACKHOLE])
}

/// Whether the service called `name` also answers UDP rows.
pub(crate) fn answers_datagrams(name: &str) -> bool {
    SERVICES.iter().any(|e| e.name == name && e.udp.is_some())
}

/// Whether the service called `name` needs a certificate.
pub(crate) fn uses_tls(name: &str) -> bool {
    SERVICES.iter().any(|e| e.name == name && e.uses_tls)
}

/// Builds services by name: one instance per service, shared by every port that names it,
/// at start-up and for ports added later.
pub(crate) struct Factory {
    cx: ServiceContext,
    built: HashMap<&'static str, Arc<dyn Service>>,
}

impl Factory {
    pub(crate) fn new(cx: ServiceContext) -> Self {
        Self {
            cx,
            built: HashMap::new(),
        }
    }

    pub(crate) fn build(&mut self, row: &PortSpec) -> Result<Arc<dyn Service>, Error> {
        let entry = SERVICES
            .iter()
            .find(|e| e.name == row.service)
            .ok_or_else(|| unknown(row.service.to_owned()))?;
        if entry.per_row {
            return (entry.build)(&self.cx, row);
        }
        if let Some(service) = self.built.get(entry.name) {
            return Ok(service.clone());
        }
        let service = (entry.build)(&self.cx, row)?;
        self.built.insert(entry.name, service.clone());
        Ok(service)
    }
}

impl ServiceFactory for Factory {
    fn service(&mut self, row: &PortSpec) -> Result<Arc<dyn Service>, String> {
        self.build(row).map_err(|e| e.to_string())
    }
}

/// Give every bound row (its port, and the row it was bound from) its service; the factory
/// stays with them, for ports added later.
pub(crate) fn wire(rows: &[(u16, &PortSpec)], mut factory: Factory) -> Result<Services, Error> {
    let mut tcp = Vec::with_capacity(rows.len());
    let mut udp = Vec::new();
    for &(port, row) in rows {
        // The row as bound: the kernel's number for port 0.
        let row = &PortSpec {
            port,
            ..row.clone()
        };
        match row.protocol {
            Protocol::Tcp if row.service == BLACKHOLE => tcp.push((port, None)),
            Protocol::Tcp => tcp.push((port, Some(factory.build(row)?))),
            Protocol::Udp => udp.push((port, datagram_service(row)?)),
        }
    }
    let mut services = Services::new(Box::new(factory));
    for (port, service) in tcp {
        match service {
            Some(service) => services.insert(port, service),
            None => services.insert_blackhole(port),
        }
    }
    for (port, service) in udp {
        services.insert_datagrams(port, service);
    }
    Ok(services)
}

/// The UDP form of the service a UDP row names.
fn datagram_service(row: &PortSpec) -> Result<Arc<dyn DatagramService>, Error> {
    SERVICES
        .iter()
        .find(|e| e.name == row.service)
        .and_then(|e| e.udp)
        .map(|build| build())
        .ok_or_else(|| unknown(format!("{}/udp", row.service)))
}
