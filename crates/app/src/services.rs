//! Every service switchboard can put behind a port, by name, and the wiring of services to
//! the bound ports.
//!
//! Adding a service is one crate and one line in [`SERVICES`]; the port table (built-in or
//! from a config file) then refers to it by that name.

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_certs::Identity;
use switchboard_core::{EventBus, Service};
use switchboard_echo::EchoService;
use switchboard_http::{HttpApp, HttpService};
use switchboard_https::HttpsService;
use switchboard_mail::{Chaos, MailStore};
use switchboard_smtp::SmtpService;
use switchboard_supervisor::{Listening, Services};

use crate::{Config, Error};

/// What a service may need when it is built.
pub(crate) struct ServiceContext<'a> {
    pub(crate) config: &'a Config,
    pub(crate) events: EventBus,
    /// The HTTP application, shared by every service that answers HTTP.
    pub(crate) http_app: HttpApp,
    /// The server certificate; loaded only when a port in the table uses TLS.
    pub(crate) identity: Option<Identity>,
    /// Where captured mail goes.
    pub(crate) mail: MailStore,
    /// The SMTP chaos triggers.
    pub(crate) chaos: Chaos,
}

impl ServiceContext<'_> {
    fn identity(&self, service: &'static str) -> Result<&Identity, Error> {
        self.identity.as_ref().ok_or(Error::NoCertificate(service))
    }
}

type Build = fn(&ServiceContext<'_>) -> Result<Arc<dyn Service>, Error>;

/// One service: its name, whether it needs a certificate, and how to build it.
struct Entry {
    name: &'static str,
    uses_tls: bool,
    build: Build,
}

/// Every service, one line each.
#[rustfmt::skip]
const SERVICES: &[Entry] = &[
    Entry { name: "http",  uses_tls: false, build: http },
    Entry { name: "https", uses_tls: true,  build: https },
    Entry { name: "smtp",  uses_tls: true,  build: smtp },
    Entry { name: "smtps", uses_tls: true,  build: smtps },
    Entry { name: "echo",  uses_tls: false, build: |_| Ok(Arc::new(EchoService)) },
];

fn http(cx: &ServiceContext<'_>) -> Result<Arc<dyn Service>, Error> {
    Ok(Arc::new(HttpService::new(cx.http_app.clone())))
}

fn https(cx: &ServiceContext<'_>) -> Result<Arc<dyn Service>, Error> {
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
fn smtp(cx: &ServiceContext<'_>) -> Result<Arc<dyn Service>, Error> {
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
fn smtps(cx: &ServiceContext<'_>) -> Result<Arc<dyn Service>, Error> {
    let tls = switchboard_certs::server_config(cx.identity("smtps")?, &[])?;
    let settings = cx.config.smtp.clone();
    let (mail, chaos, events) = (cx.mail.clone(), cx.chaos.clone(), cx.events.clone());
    Ok(Arc::new(SmtpService::implicit_tls(
        settings, mail, chaos, tls, events,
    )))
}

/// The names a port table may use, in the order they were added.
pub fn names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|e| e.name)
}

/// Whether the service called `name` needs a certificate.
pub(crate) fn uses_tls(name: &str) -> bool {
    SERVICES.iter().any(|e| e.name == name && e.uses_tls)
}

/// Give every bound port its service: one instance per service, shared by every port that
/// names it.
pub(crate) fn wire(listening: &[Listening], cx: &ServiceContext<'_>) -> Result<Services, Error> {
    let mut built: HashMap<&'static str, Arc<dyn Service>> = HashMap::new();
    let mut services = Services::new();
    for socket in listening {
        let service = match built.get(socket.service) {
            Some(service) => service.clone(),
            None => {
                let entry = SERVICES
                    .iter()
                    .find(|e| e.name == socket.service)
                    .ok_or(Error::UnknownService(socket.service))?;
                let service = (entry.build)(cx)?;
                built.insert(socket.service, service.clone());
                service
            }
        };
        services.insert(socket.port, service);
    }
    Ok(services)
}
