//! What the HTTP app's handlers share: what it shows and controls (owned elsewhere), its
//! settings, the products it serves, and what it keeps itself (the names it answers to,
//! the knocks it has seen).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_core::{EventBus, PortControl, PortDirectory};
use switchboard_faults::ToxicControl;
use switchboard_httpbin::HttpbinSettings;
use switchboard_mail::MailStore;
use switchboard_mailpit::MailWeb;
use switchboard_toxiproxy::ToxiproxyApi;
use switchboard_wiremock::WireMock;

use crate::hosts::HostNames;
use crate::settings::{ControlSettings, HttpSettings};

/// The products the HTTP service serves beside its own routes, each with its own settings
/// and state, built by the app.
#[derive(Debug)]
pub struct Products {
    /// httpbin's limits.
    pub httpbin: HttpbinSettings,
    /// The mail web: Mailpit's API, `/view/`, the mailbox page, Mailpit's events.
    pub mailpit: MailWeb,
    /// Toxiproxy's API, for `toxiproxy` rows.
    pub toxiproxy: ToxiproxyApi,
    /// The stubs and WireMock's admin API, for `stubs` rows.
    pub wiremock: WireMock,
}

/// What the HTTP app shows and controls, owned elsewhere: the port table (the supervisor's),
/// the captured mail and the chaos triggers (the mail store's), and the event stream with its
/// counters.
#[derive(Clone)]
pub struct Shared {
    pub ports: Arc<dyn PortDirectory>,
    pub control: Arc<dyn PortControl>,
    pub toxics: Arc<dyn ToxicControl>,
    pub mail: MailStore,
    pub events: EventBus,
    pub control_settings: ControlSettings,
    /// The names switchboard's certificate carries: its state routes answer to them (and to
    /// `[http] hosts`).
    pub server_names: Vec<String>,
    /// The local CA's certificate and revocation list, served at `/ca.pem` and `/ca.crl`;
    /// absent when no TLS port is configured or the certificate is the user's own.
    pub local_ca: Option<Arc<PublishedCa>>,
}

/// What the local CA publishes for clients.
#[derive(Debug)]
pub struct PublishedCa {
    /// The CA certificate, PEM: what clients trust.
    pub pem: String,
    /// Its revocation list, DER (it revokes nothing).
    pub crl_der: Vec<u8>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("mail", &self.mail)
            .finish_non_exhaustive()
    }
}

/// What handlers share: what the app shows and controls, and its settings.
///
/// The router clones its state for every request, so it is one `Arc`: one reference count
/// to bump instead of one per field.
#[derive(Clone)]
pub(crate) struct AppState(Arc<State>);

pub(crate) struct State {
    pub(crate) shared: Shared,
    pub(crate) settings: Arc<HttpSettings>,
    /// httpbin's limits.
    pub(crate) httpbin: switchboard_httpbin::HttpbinSettings,
    /// The mail web: Mailpit's API, `/view/`, the mailbox page, Mailpit's events.
    pub(crate) mailpit: switchboard_mailpit::MailWeb,
    /// Toxiproxy's API, for `toxiproxy` rows.
    pub(crate) toxiproxy: switchboard_toxiproxy::ToxiproxyApi,
    /// The stubs and WireMock's admin API, for `stubs` rows.
    pub(crate) wiremock: switchboard_wiremock::WireMock,
    /// The names the state routes answer to: `[http] hosts` and the certificate's.
    pub(crate) hosts: HostNames,
    /// Knocks on the picture's doors, per client address (`[http] knock_rate`).
    pub(crate) knocks: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
}

impl AppState {
    pub(crate) fn new(shared: Shared, settings: Arc<HttpSettings>, products: Products) -> Self {
        let hosts = HostNames::new(shared.server_names.iter().chain(&settings.hosts));
        let knocks = knock_limiter(settings.knock_rate);
        // `/redirect-to` may send a client to any of switchboard's ports.
        let httpbin = HttpbinSettings {
            own_ports: switchboard_httpbin::OwnPorts::of(shared.ports.clone()),
            ..products.httpbin
        };
        Self(Arc::new(State {
            shared,
            settings,
            httpbin,
            mailpit: products.mailpit,
            toxiproxy: products.toxiproxy,
            wiremock: products.wiremock,
            hosts,
            knocks,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
}

/// Knocks per client address: `[http] knock_rate` a second.
fn knock_limiter(per_second: u32) -> DefaultKeyedRateLimiter<IpAddr> {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_second(rate))
}
