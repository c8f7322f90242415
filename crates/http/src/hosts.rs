//! The names switchboard answers to on its state routes (a guard against DNS rebinding).

use std::net::IpAddr;

/// The names switchboard answers to on its state routes: `localhost` and every
/// `*.localhost` name (they always mean this machine), any IP address (a rebinding needs a
/// name), and the names it was given: the certificate's and `[http] hosts`. A name
/// `*.example.test` allows every name below `example.test`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HostNames {
    names: Vec<String>,
}

impl HostNames {
    pub(crate) fn new(names: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        Self {
            names: names.into_iter().map(|n| normalize(n.as_ref())).collect(),
        }
    }

    /// Whether `host` (as in a `Host` header, without the port) names this server.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = normalize(host);
        if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            return true;
        }
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        self.names.iter().any(|name| match name.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
            None => *name == host,
        })
    }
}

pub(crate) fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}
