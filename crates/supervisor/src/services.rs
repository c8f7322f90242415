//! Every service switchboard can put behind a port, by name.
//!
//! Adding a service is one crate and one line in [`SERVICES`]; the port table (built-in or
//! from a config file) then refers to it by that name.

use std::sync::Arc;

use switchboard_core::Service;
use switchboard_echo::EchoService;
use switchboard_http::{HttpApp, HttpService};

/// What a service may need when it is built.
pub(crate) struct ServiceContext {
    /// The HTTP application, shared by every service that answers HTTP.
    pub(crate) http_app: HttpApp,
}

type Build = fn(&ServiceContext) -> Arc<dyn Service>;

/// Name → how to build it.
const SERVICES: &[(&str, Build)] = &[
    ("http", |cx| Arc::new(HttpService::new(cx.http_app.clone()))),
    ("echo", |_| Arc::new(EchoService)),
];

/// The names a port table may use, in the order they were added.
pub fn names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|&(name, _)| name)
}

/// Build the service called `name`; `None` if there is no such service.
pub(crate) fn build(name: &str, cx: &ServiceContext) -> Option<Arc<dyn Service>> {
    SERVICES
        .iter()
        .find(|&&(n, _)| n == name)
        .map(|&(_, build)| build(cx))
}
