//! Who may connect: allow and deny lists of address ranges, in the spirit of xinetd's
//! `only_from` / `no_access` and tcp_wrappers. switchboard applies them after the kernel has
//! accepted a connection, so they are application-level rules, not a packet filter: the
//! client's handshake succeeds and the connection is then closed at once.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

/// An address range: `192.0.2.0/24`, `2001:db8::/32`, or one address (`127.0.0.2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Whether the range holds `ip`. IPv4 clients reaching an IPv6 socket appear as
    /// `::ffff:a.b.c.d`; ranges are written for the IPv4 address, so that is what is matched.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(Cidr(net.trunc()));
        }
        text.parse::<IpAddr>()
            .map(|ip| Cidr(IpNet::from(ip)))
            .map_err(|_| format!("\"{text}\" is not an address or a range like 192.0.2.0/24"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A port's allow and deny lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessRules {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
}

/// What the rules say about an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Denied; the rule that decided, in words.
    Deny(String),
}

impl AccessRules {
    /// The most specific range that contains the address decides; on a tie, deny wins. An
    /// address no range contains is allowed, unless there is an allow list (then only what
    /// it lists may connect).
    pub fn verdict(&self, ip: IpAddr) -> Verdict {
        fn best(list: &[Cidr], ip: IpAddr) -> Option<&Cidr> {
            list.iter()
                .filter(|c| c.contains(ip))
                .max_by_key(|c| c.prefix_len())
        }
        match (best(&self.allow, ip), best(&self.deny, ip)) {
            (Some(allow), Some(deny)) if allow.prefix_len() > deny.prefix_len() => Verdict::Allow,
            (_, Some(deny)) => Verdict::Deny(format!("deny {deny}")),
            (Some(_), None) => Verdict::Allow,
            (None, None) if self.allow.is_empty() => Verdict::Allow,
            (None, None) => Verdict::Deny("not in allow".to_owned()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// The rules in words: `allow 127.0.0.0/8`, `deny 127.0.0.3/32`.
    pub fn describe(&self) -> Vec<String> {
        self.allow
            .iter()
            .map(|c| format!("allow {c}"))
            .chain(self.deny.iter().map(|c| format!("deny {c}")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> AccessRules {
        AccessRules {
            allow: allow.iter().map(|c| c.parse().unwrap()).collect(),
            deny: deny.iter().map(|c| c.parse().unwrap()).collect(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn no_rules_allow_everyone() {
        assert_eq!(
            AccessRules::default().verdict(ip("203.0.113.9")),
            Verdict::Allow
        );
    }

    #[test]
    fn an_allow_list_admits_only_what_it_lists() {
        let r = rules(&["127.0.0.2"], &[]);
        assert_eq!(r.verdict(ip("127.0.0.2")), Verdict::Allow);
        assert_eq!(
            r.verdict(ip("127.0.0.3")),
            Verdict::Deny("not in allow".into())
        );
    }

    #[test]
    fn the_most_specific_range_wins() {
        let r = rules(&["127.0.0.2/32"], &["127.0.0.0/8"]);
        assert_eq!(
            r.verdict(ip("127.0.0.2")),
            Verdict::Allow,
            "the /32 allow beats the /8 deny"
        );
        assert_eq!(
            r.verdict(ip("127.0.0.3")),
            Verdict::Deny("deny 127.0.0.0/8".into())
        );
        let r = rules(&["10.0.0.0/8"], &["10.1.0.0/16"]);
        assert_eq!(
            r.verdict(ip("10.1.2.3")),
            Verdict::Deny("deny 10.1.0.0/16".into())
        );
        assert_eq!(r.verdict(ip("10.2.0.1")), Verdict::Allow);
        let tie = rules(&["192.0.2.0/24"], &["192.0.2.0/24"]);
        assert!(
            matches!(tie.verdict(ip("192.0.2.1")), Verdict::Deny(_)),
            "deny wins a tie"
        );
    }

    #[test]
    fn ipv4_clients_on_ipv6_sockets_match_ipv4_rules() {
        let r = rules(&[], &["127.0.0.3"]);
        assert!(matches!(
            r.verdict(ip("::ffff:127.0.0.3")),
            Verdict::Deny(_)
        ));
    }

    #[test]
    fn ranges_parse_and_explain_mistakes() {
        assert_eq!(
            "192.0.2.77/24".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert!(
            "localhost"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("not an address")
        );
        assert_eq!(
            rules(&["127.0.0.1"], &["0.0.0.0/0"]).describe(),
            ["allow 127.0.0.1/32", "deny 0.0.0.0/0"]
        );
    }
}
