//! Every service switchboard can put behind a port, by name, and the wiring of services to
//! the bound ports.
//!
//! Adding a service is one crate and one line in [`SERVICES`]; the port table (built-in or
//! from a config file, or a row added through an API) then refers to it by that name. A
//! service whose rows have keys of their own names their type in its line (`keys`): the
//! type, in the service's crate, parses and checks them ([`RowKeys`]); the app reads the
//! keys every row has and hands it the rest.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard_certs::Identity;
use switchboard_classic::{ChargenService, DaytimeService, DiscardService, TimeService};
use switchboard_core::{
    BoxError, DatagramService, EventBus, InvalidRow, OwnKeys, Protocol, RowKeys, Service, Target,
};
use switchboard_echo::EchoService;
use switchboard_exec::{ExecService, Program};
use switchboard_http::{HttpApp, HttpService};
use switchboard_https::{HttpsService, HttpsSettings};
use switchboard_mail::{Chaos, MailStore};
use switchboard_proxy::{ProxyRow, ProxyService, ProxySettings, UpstreamGuard};
use switchboard_smtp::{SmtpService, SmtpSettings};
use switchboard_supervisor::{BLACKHOLE, PortSpec, ServiceFactory, Services};
use switchboard_wiremock::StubsRow;

use crate::error::Error;

/// What a service may need when it is built: kept for as long as switchboard runs, since
/// ports added at run time need their services built then.
pub(crate) struct ServiceContext {
    pub(crate) events: EventBus,
    /// The HTTP application, shared by every service that answers HTTP.
    pub(crate) http_app: HttpApp,
    pub(crate) https: HttpsSettings,
    pub(crate) smtp: SmtpSettings,
    pub(crate) proxy: ProxySettings,
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

/// One service: its name, whether it needs a certificate, the keys its rows have of their
/// own (then each row gets an instance of its own; services without keys share one), and
/// how to build it; and, for the few that also answer UDP rows, their datagram form.
struct Entry {
    name: &'static str,
    uses_tls: bool,
    keys: Option<Keys>,
    build: Build,
    udp: Option<fn() -> Arc<dyn DatagramService>>,
}

/// Every service, one line each.
#[rustfmt::skip]
const SERVICES: &[Entry] = &[
    Entry { name: "http",  uses_tls: false, keys: None, build: http, udp: None },
    Entry { name: "https", uses_tls: true,  keys: None, build: https, udp: None },
    Entry { name: "smtp",  uses_tls: true,  keys: None, build: smtp, udp: None },
    Entry { name: "smtps", uses_tls: true,  keys: None, build: smtps, udp: None },
    Entry { name: "echo",  uses_tls: false, keys: None, build: |_, _| Ok(Arc::new(EchoService)), udp: Some(|| Arc::new(EchoService)) },
    Entry { name: "discard", uses_tls: false, keys: None, build: |_, _| Ok(Arc::new(DiscardService)), udp: Some(|| Arc::new(DiscardService)) },
    Entry { name: "daytime", uses_tls: false, keys: None, build: |_, _| Ok(Arc::new(DaytimeService)), udp: Some(|| Arc::new(DaytimeService)) },
    Entry { name: "chargen", uses_tls: false, keys: None, build: |_, _| Ok(Arc::new(ChargenService::default())), udp: Some(|| Arc::new(ChargenService::default())) },
    Entry { name: "time",  uses_tls: false, keys: None, build: |_, _| Ok(Arc::new(TimeService)), udp: Some(|| Arc::new(TimeService)) },
    Entry { name: "proxy", uses_tls: false, keys: Some(keys::<ProxyRow>("proxies")), build: proxy, udp: None },
    Entry { name: "toxiproxy", uses_tls: false, keys: None, build: toxiproxy, udp: None },
    Entry { name: "stubs", uses_tls: false, keys: Some(keys::<StubsRow>("stubs rows; for HTTP inside TLS use the https service")), build: stubs, udp: None },
    Entry { name: "exec",  uses_tls: false, keys: Some(keys::<Program>("exec rows (a program on a port)")), build: exec, udp: None },
    Entry { name: "qotd",  uses_tls: false, keys: Some(keys::<switchboard_qotd::QotdRow>("qotd rows")), build: |_, row| Ok(Arc::new(switchboard_qotd::QotdService::new(&row_keys(row)?))), udp: None },
];

/// How the app reads the keys a service's rows have of their own, for the service's type.
pub(crate) struct Keys {
    /// Whose keys they are, for "`command` is for exec rows (a program on a port), not http".
    pub(crate) rows: &'static str,
    pub(crate) names: fn() -> &'static [&'static str],
    /// Read and check the keys, given as JSON: from the control API, or a config file's
    /// row turned into JSON (an error names its key, so that the file's can point at it).
    pub(crate) read: fn(Map<String, Value>) -> Result<Owned, InvalidRow>,
}

/// A row's own keys, read and checked by their type, and what the row serves.
#[derive(Debug, Default)]
pub(crate) struct Owned {
    pub(crate) keys: Option<Arc<dyn OwnKeys>>,
    pub(crate) target: Option<Target>,
}

const fn keys<T: RowKeys>(rows: &'static str) -> Keys {
    Keys {
        rows,
        names: crate::keys::keys_of::<T>,
        read: read::<T>,
    }
}

/// The keys `map` as the type `T`, checked; an error names the key it is about.
fn read<T: RowKeys>(map: Map<String, Value>) -> Result<Owned, InvalidRow> {
    let keys: T = checked(map)?;
    Ok(Owned {
        target: keys.target(),
        keys: Some(Arc::new(keys)),
    })
}

fn checked<T: RowKeys>(map: Map<String, Value>) -> Result<T, InvalidRow> {
    let keys: T = serde_path_to_error::deserialize(Value::Object(map)).map_err(|error| {
        let key = match error.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => crate::keys::keys_of::<T>()
                .iter()
                .find(|k| *k == key)
                .copied(),
            _ => None,
        };
        let message = error.into_inner().to_string();
        match key {
            Some(key) => InvalidRow::at(key, message),
            None => InvalidRow::new(message),
        }
    })?;
    keys.check()?;
    Ok(keys)
}

/// A row's own keys as its service's type: as read with the row, or for a row built in code
/// without them, the type's defaults (as a row that gives none of its keys).
fn row_keys<T: RowKeys + Clone>(row: &PortSpec) -> Result<T, Error> {
    match row.keys.as_deref().and_then(|keys| keys.downcast::<T>()) {
        Some(keys) => Ok(keys.clone()),
        None => checked(Map::new()).map_err(|e| Error::Row(row.port, e)),
    }
}

/// A program on a port: the row's command, run for each connection.
fn exec(cx: &ServiceContext, row: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    let program: Program = row_keys(row)?;
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
    let keys: StubsRow = row_keys(row)?;
    if !keys.tls {
        return Ok(Arc::new(HttpService::stubs(&cx.http_app)));
    }
    let tls = switchboard_certs::server_config(cx.identity("stubs")?, switchboard_https::ALPN)?;
    let service = HttpsService::new(
        tls,
        cx.http_app.stubs(),
        cx.https.clone(),
        cx.events.clone(),
    );
    Ok(Arc::new(service.named("stubs")))
}

/// A proxy to the row's upstream; rows added through an API are guarded at each connect.
fn proxy(cx: &ServiceContext, row: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    let keys: ProxyRow = row_keys(row)?;
    let guard = row.runtime.then(|| cx.upstream_guard.clone());
    Ok(Arc::new(ProxyService::new(
        keys.address().to_owned(),
        &cx.proxy,
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
    Ok(Arc::new(HttpsService::new(
        tls,
        cx.http_app.clone(),
        cx.https.clone(),
        cx.events.clone(),
    )))
}

/// SMTP with STARTTLS (no ALPN: SMTP clients do not negotiate protocols).
fn smtp(cx: &ServiceContext, _: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    let tls = switchboard_certs::server_config(cx.identity("smtp")?, &[])?;
    let (mail, chaos, events) = (cx.mail.clone(), cx.chaos.clone(), cx.events.clone());
    Ok(Arc::new(SmtpService::new(
        cx.smtp.clone(),
        mail,
        chaos,
        Some(tls),
        events,
    )))
}

/// SMTP inside TLS from the first byte (submissions, usually port 465).
fn smtps(cx: &ServiceContext, _: &PortSpec) -> Result<Arc<dyn Service>, Error> {
    let tls = switchboard_certs::server_config(cx.identity("smtps")?, &[])?;
    let (mail, chaos, events) = (cx.mail.clone(), cx.chaos.clone(), cx.events.clone());
    Ok(Arc::new(SmtpService::implicit_tls(
        cx.smtp.clone(),
        mail,
        chaos,
        tls,
        events,
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

/// The keys of the service called `name`'s own, if its rows have any.
pub(crate) fn keys_of(name: &str) -> Option<&'static Keys> {
    SERVICES
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.keys.as_ref())
}

/// Every service that has keys of its own, with them.
pub(crate) fn all_keys() -> impl Iterator<Item = &'static Keys> {
    SERVICES.iter().filter_map(|e| e.keys.as_ref())
}

/// Whether the service called `name` also answers UDP rows.
pub(crate) fn answers_datagrams(name: &str) -> bool {
    SERVICES.iter().any(|e| e.name == name && e.udp.is_some())
}

/// Whether `row` is served inside TLS: by its service, or by its own keys.
pub(crate) fn uses_tls(row: &PortSpec) -> bool {
    let Some(entry) = SERVICES.iter().find(|e| e.name == row.service) else {
        return false;
    };
    entry.uses_tls || row.keys.as_ref().is_some_and(|keys| keys.need_tls())
}

/// Builds services by name: one instance per service, shared by every port that names it
/// (one per row for services whose rows have keys of their own), at start-up and for ports
/// added later.
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
        if entry.keys.is_some() {
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
    fn service(&mut self, row: &PortSpec) -> Result<Arc<dyn Service>, BoxError> {
        Ok(self.build(row)?)
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
        .map(|udp| udp())
        .ok_or_else(|| unknown(format!("{}/udp", row.service)))
}
