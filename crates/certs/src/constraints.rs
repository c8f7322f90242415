//! What the local CA may sign for: its name constraints (RFC 5280, section 4.2.1.10).
//!
//! Every machine that trusts the CA would accept whatever its key signs. Without
//! constraints, a stolen `ca-key.pem` could sign for any site, for every browser on those
//! machines; with them, clients refuse a certificate for a name outside the CA's own
//! subtrees, whoever signed it. The subtrees are the names a local test rig uses:
//!
//! - `localhost` and every name below it, and the reserved `test` and `internal` domains
//!   (RFC 6761, and ICANN's private-use `.internal`);
//! - loopback, and the private and unique-local ranges (compose networks hand out
//!   addresses from them, and change them);
//! - the names the CA was created for (`--name`), and this machine's host name.
//!
//! A name below a DNS subtree matches it whole labels at a time: `test` permits `a.test`
//! and `b.a.test`, never `attest`.

use std::net::IpAddr;

use rcgen::{CidrSubnet, GeneralSubtree, NameConstraints};

/// The DNS subtrees every local CA permits.
const DOMAINS: [&str; 3] = ["localhost", "test", "internal"];

/// The address ranges every local CA permits: loopback, the private IPv4 ranges (RFC
/// 1918) and IPv6 unique-local addresses (RFC 4193).
const RANGES: [(IpAddr, u8); 6] = [
    (IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)), 8),
    (IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 128),
    (IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 0)), 8),
    (IpAddr::V4(std::net::Ipv4Addr::new(172, 16, 0, 0)), 12),
    (IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 0, 0)), 16),
    (
        IpAddr::V6(std::net::Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)),
        7,
    ),
];

/// What a CA permits: DNS subtrees and address ranges. Read back from a certificate, or
/// made for a new CA by [`Permitted::for_names`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permitted {
    pub domains: Vec<String>,
    pub ranges: Vec<(IpAddr, u8)>,
}

impl Permitted {
    /// The subtrees of a new CA that will sign for `names` (the server certificate's):
    /// the fixed ones, and each name they do not already cover.
    pub(crate) fn for_names(names: &[String]) -> Self {
        let mut permitted = Self {
            domains: DOMAINS.iter().map(|d| (*d).to_owned()).collect(),
            ranges: RANGES.to_vec(),
        };
        for name in names {
            if permitted.permits(name) {
                continue;
            }
            match name.parse::<IpAddr>() {
                Ok(ip) => permitted
                    .ranges
                    .push((ip, if ip.is_ipv4() { 32 } else { 128 })),
                Err(_) => {
                    let domain = name.strip_prefix("*.").unwrap_or(name);
                    permitted.domains.push(domain.to_ascii_lowercase());
                }
            }
        }
        permitted
    }

    /// Whether a certificate for `name` (a DNS name, a wildcard or an IP address) is
    /// within these subtrees.
    pub fn permits(&self, name: &str) -> bool {
        match name.parse::<IpAddr>() {
            Ok(ip) => self
                .ranges
                .iter()
                .any(|&(net, prefix)| within(ip, net, prefix)),
            Err(_) => {
                let name = name
                    .strip_prefix("*.")
                    .unwrap_or(name)
                    .trim_end_matches('.');
                self.domains.iter().any(|domain| below(name, domain))
            }
        }
    }

    /// As rcgen writes them into the CA certificate.
    pub(crate) fn to_constraints(&self) -> NameConstraints {
        let dns = self
            .domains
            .iter()
            .map(|d| GeneralSubtree::DnsName(d.clone()));
        let ip = self.ranges.iter().map(|&(net, prefix)| {
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(net, prefix))
        });
        NameConstraints {
            permitted_subtrees: dns.chain(ip).collect(),
            excluded_subtrees: Vec::new(),
        }
    }

    /// One line for people: `localhost, test, …, 127.0.0.0/8, …`.
    pub fn describe(&self) -> String {
        let ranges = self
            .ranges
            .iter()
            .map(|(net, prefix)| format!("{net}/{prefix}"));
        self.domains
            .iter()
            .cloned()
            .chain(ranges)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether `name` is `domain` or below it, whole labels, in any case.
fn below(name: &str, domain: &str) -> bool {
    name.eq_ignore_ascii_case(domain)
        || name.len() > domain.len()
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.'
            && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain)
}

/// Whether `ip` is in `net/prefix`.
fn within(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (ip, net, bits) = match (ip.to_canonical(), net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            (u128::from(ip.to_bits()), u128::from(net.to_bits()), 32)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => (ip.to_bits(), net.to_bits(), 128),
        _ => return false,
    };
    let host_bits = bits - u32::from(prefix.min(bits as u8));
    ip.checked_shr(host_bits).unwrap_or(0) == net.checked_shr(host_bits).unwrap_or(0)
}

/// The subtrees a CA certificate permits, read from its name constraints extension; `None`
/// when it has none (it may sign for anything).
pub(crate) fn read(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<Permitted> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let constraints = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::NameConstraints(nc) => Some(nc),
            _ => None,
        })?;
    let mut permitted = Permitted {
        domains: Vec::new(),
        ranges: Vec::new(),
    };
    for subtree in constraints.permitted_subtrees.iter().flatten() {
        match &subtree.base {
            GeneralName::DNSName(domain) => permitted.domains.push((*domain).to_owned()),
            GeneralName::IPAddress(bytes) => {
                let half = bytes.len() / 2;
                let (addr, mask) = bytes.split_at(half);
                let prefix = mask.iter().map(|b| b.count_ones()).sum::<u32>();
                let addr = match half {
                    4 => <[u8; 4]>::try_from(addr).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(addr).ok().map(IpAddr::from),
                    _ => None,
                };
                if let (Some(addr), Ok(prefix)) = (addr, u8::try_from(prefix)) {
                    permitted.ranges.push((addr, prefix));
                }
            }
            _ => {}
        }
    }
    Some(permitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_subtrees_cover_local_names_and_private_addresses_only() {
        let permitted = Permitted::for_names(&[]);
        for name in [
            "localhost",
            "app.localhost",
            "mail.switchboard.test",
            "*.svc.internal",
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "10.1.2.3",
            "172.20.0.5",
            "192.168.1.1",
            "fd00::7",
        ] {
            assert!(permitted.permits(name), "{name}");
        }
        for name in [
            "example.com",
            "localhost.example.com",
            "attest",
            "internal.example",
            "8.8.8.8",
            "172.32.0.1",
            "2001:db8::1",
            "::2",
        ] {
            assert!(!permitted.permits(name), "{name}");
        }
    }

    #[test]
    fn names_the_ca_is_made_for_are_added_once() {
        let names: Vec<String> = ["localhost", "builder-7", "*.dev.example", "203.0.113.9"]
            .map(String::from)
            .to_vec();
        let permitted = Permitted::for_names(&names);
        assert!(permitted.permits("builder-7"));
        assert!(permitted.permits("a.dev.example"));
        assert!(permitted.permits("203.0.113.9"));
        assert!(!permitted.permits("203.0.113.10"));
        assert!(!permitted.permits("example"));
        assert_eq!(permitted.domains.len(), DOMAINS.len() + 2, "{permitted:?}");
    }
}
