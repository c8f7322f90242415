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

    /// Whether `host` (as in a `Host` header, without the port) names this server. Without
    /// allocating: it runs on every request.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.trim().trim_end_matches('.');
        if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            return true;
        }
        if host.eq_ignore_ascii_case("localhost") || is_below(host, "localhost") {
            return true;
        }
        self.names.iter().any(|name| match name.strip_prefix("*.") {
            Some(domain) => is_below(host, domain),
            None => host.eq_ignore_ascii_case(name),
        })
    }
}

/// Whether `host` is a name below `domain` (`a.b.test` below `b.test`), in any case.
fn is_below(host: &str, domain: &str) -> bool {
    let Some(cut) = host.len().checked_sub(domain.len() + 1) else {
        return false;
    };
    let (sub, dot_domain) = host.as_bytes().split_at(cut);
    !sub.is_empty()
        && dot_domain[0] == b'.'
        && dot_domain[1..].eq_ignore_ascii_case(domain.as_bytes())
}

pub(crate) fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}
