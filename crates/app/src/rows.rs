//! One row of the port table: the keys every row has ([`PortRow`]), read here, and the keys
//! of its service, handed to the service's crate ([`services`]). A row comes from the config
//! file (`[[port]]`, each error placed at its key) or as JSON through the control API
//! (`POST /api/ports`, Toxiproxy's API: each error names its key).

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_core::{AccessRules, Cidr, InvalidRow, Protocol};
use switchboard_faults::{Toxic, ToxicSpec};
use switchboard_supervisor::PortSpec;

use crate::keys::{KeyError, Shared, keys_of, unknown_field};
use crate::services::{self, Owned};

/// The keys every row of the port table has: as a `[[port]]` table of the config file,
/// or as JSON through the control API. The rest of a row belongs to its service.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRow {
    pub port: u16,
    /// `tcp` (the default) or `udp`.
    #[serde(default)]
    pub protocol: Protocol,
    pub service: String,
    #[serde(default)]
    pub bind: Vec<IpAddr>,
    pub max_connections: Option<usize>,
    #[serde(default)]
    pub allow: Vec<Cidr>,
    #[serde(default)]
    pub deny: Vec<Cidr>,
    pub max_per_source: Option<u32>,
    pub max_rate: Option<u32>,
    #[serde(default)]
    pub toxics: Vec<ToxicSpec>,
    /// The row's name in the Toxiproxy API (default `<service>-<port>`).
    pub name: Option<String>,
    /// No byte either way for this long ends a connection (services without clocks of
    /// their own; default `[supervisor] idle_timeout`).
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
}

/// What is wrong with a row: its service, or another of its keys.
#[derive(Debug)]
pub(crate) enum RowError {
    Service(String),
    Other(String),
}

impl From<InvalidRow> for RowError {
    fn from(e: InvalidRow) -> Self {
        RowError::Other(e.message)
    }
}

impl From<RowError> for InvalidRow {
    fn from(e: RowError) -> Self {
        match e {
            RowError::Service(message) | RowError::Other(message) => InvalidRow::new(message),
        }
    }
}

/// The row `json` (a `[[port]]` row as JSON, as the control API takes it) as the supervisor
/// takes it; `max_connections` is `default_max` unless the row says. A row added through an
/// API is marked `runtime`.
pub fn port_spec(json: Value, default_max: usize) -> Result<PortSpec, InvalidRow> {
    let Value::Object(mut object) = json else {
        return Err(InvalidRow::new("a [[port]] row is a JSON object"));
    };
    let common = keys_of::<PortRow>();
    let mut own = Map::new();
    for key in object.keys().cloned().collect::<Vec<_>>() {
        if !common.contains(&key.as_str())
            && let Some(value) = object.remove(&key)
        {
            own.insert(key, value);
        }
    }
    let row: PortRow = serde_json::from_value(Value::Object(object))
        .map_err(|e| InvalidRow::new(format!("not a [[port]] row: {e}")))?;
    let service = row.service()?;
    let owned = match services::keys_of(service) {
        Some(keys) => {
            let mine = (keys.names)();
            if let Some(key) = own.keys().find(|k| !mine.contains(&k.as_str())) {
                return Err(InvalidRow::new(not_this_services(key, service, mine)));
            }
            (keys.read)(own)?
        }
        None => match own.keys().next() {
            Some(key) => return Err(InvalidRow::new(not_this_services(key, service, &[]))),
            None => Owned::default(),
        },
    };
    let mut spec = row.spec(default_max, owned)?;
    spec.runtime = true;
    Ok(spec)
}

/// A `[[port]]` row of the config file, its common keys read and its service's keys handed
/// to the service; an error keeps the place of the key it blames.
pub(crate) fn read_toml(table: &mut Shared<'_>) -> Result<(PortRow, Owned), KeyError> {
    let row: PortRow = table.take()?;
    let service = row.service().map_err(|e| KeyError {
        span: table.span_of("service"),
        message: e.to_string(),
    })?;
    // A key of another service's rows (or of nobody's) is named first: a proxy row given
    // `command` is told whose key that is, not that it lacks `upstream`.
    let mine = services::keys_of(service).map_or(&[][..], |k| (k.names)());
    if let Some((key, span)) = table.left().find(|(key, _)| !mine.contains(key)) {
        return Err(KeyError {
            span: Some(span),
            message: not_this_services(key, service, mine),
        });
    }
    let owned = match services::keys_of(service) {
        Some(keys) => {
            let own = table.take_rest()?;
            (keys.read)(own).map_err(|e| KeyError {
                // At the key it blames, else at the row's port.
                span: e.key.and_then(|key| table.span_of(key)),
                message: e.message,
            })?
        }
        None => Owned::default(),
    };
    Ok((row, owned))
}

/// Why `key` is not a key of `service`'s rows: another service's (and whose), or nobody's.
fn not_this_services(key: &str, service: &str, mine: &[&str]) -> String {
    if let Some(keys) = services::all_keys().find(|k| (k.names)().contains(&key)) {
        return format!("`{key}` is for {}, not {service}", keys.rows);
    }
    let mut known: Vec<&str> = keys_of::<PortRow>().to_vec();
    known.extend(mine);
    for keys in services::all_keys() {
        for name in (keys.names)() {
            if !known.contains(name) {
                known.push(name);
            }
        }
    }
    unknown_field(key, &known)
}

impl PortRow {
    /// The service the row names, as the table knows it.
    fn service(&self) -> Result<&'static str, RowError> {
        let name = self.service.as_str();
        services::names().find(|s| *s == name).ok_or_else(|| {
            RowError::Service(format!(
                "unknown service \"{name}\" in `service`; known services: {}",
                services::names().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// The row as the supervisor takes it, with its service's own keys (`owned`);
    /// `max_connections` is `default_max` unless given.
    pub(crate) fn spec(&self, default_max: usize, owned: Owned) -> Result<PortSpec, RowError> {
        let (service, port) = (self.service()?, self.port);
        for (key, zero) in [
            ("max_connections", self.max_connections == Some(0)),
            ("max_per_source", self.max_per_source == Some(0)),
            ("max_rate", self.max_rate == Some(0)),
        ] {
            if zero {
                return Err(RowError::Other(format!("`{key}` must be at least 1")));
            }
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return Err(RowError::Other(
                "`idle_timeout` must be more than zero".into(),
            ));
        }
        if let Some(name) = &self.name
            && (name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)))
        {
            return Err(RowError::Other(format!(
                "`name` \"{name}\": use letters, digits, _ - and . (it is part of URLs)"
            )));
        }
        let mut toxics: Vec<Toxic> = Vec::new();
        for spec in &self.toxics {
            let toxic = Toxic::from_spec(spec.clone())
                .map_err(|e| RowError::Other(format!("a toxic of port {port}: {e}")))?;
            if toxics.iter().any(|t| t.name == toxic.name) {
                return Err(RowError::Other(format!(
                    "port {port} has two toxics named \"{}\"; give each its own `name`",
                    toxic.name
                )));
            }
            toxics.push(toxic);
        }
        if self.protocol == Protocol::Udp {
            self.check_udp(service)?;
        }
        if service == switchboard_supervisor::BLACKHOLE {
            self.check_blackhole()?;
        }
        Ok(PortSpec {
            port,
            protocol: self.protocol,
            service,
            bind: self.bind.clone(),
            max_connections: self.max_connections.unwrap_or(default_max),
            rules: AccessRules {
                allow: self.allow.clone(),
                deny: self.deny.clone(),
            },
            max_per_source: self.max_per_source,
            max_rate: self.max_rate,
            toxics,
            name: self.name.clone(),
            runtime: false,
            keys: owned.keys,
            target: owned.target,
            idle_timeout: self.idle_timeout,
        })
    }

    /// What a UDP row may not have: a service without a UDP form, or a key about
    /// connections or byte streams (UDP has neither).
    fn check_udp(&self, service: &str) -> Result<(), RowError> {
        if !services::answers_datagrams(service) {
            return Err(RowError::Service(format!(
                "the {service} service has no UDP form; over UDP: {}",
                services::names()
                    .filter(|s| services::answers_datagrams(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for (key, given) in [
            ("max_connections", self.max_connections.is_some()),
            ("max_per_source", self.max_per_source.is_some()),
            ("toxics", !self.toxics.is_empty()),
            ("idle_timeout", self.idle_timeout.is_some()),
        ] {
            if given {
                return Err(RowError::Other(format!(
                    "`{key}` is for TCP rows: UDP has no connections or byte streams \
                     (limit datagrams per source with `max_rate`)"
                )));
            }
        }
        Ok(())
    }

    /// What a blackhole row may not have: a key about connections, since it never accepts
    /// one (the kernel drops every knock before switchboard could see it).
    fn check_blackhole(&self) -> Result<(), RowError> {
        for (key, given) in [
            ("max_connections", self.max_connections.is_some()),
            ("max_per_source", self.max_per_source.is_some()),
            ("max_rate", self.max_rate.is_some()),
            ("allow", !self.allow.is_empty()),
            ("deny", !self.deny.is_empty()),
            ("toxics", !self.toxics.is_empty()),
            ("idle_timeout", self.idle_timeout.is_some()),
        ] {
            if given {
                return Err(RowError::Other(format!(
                    "`{key}` has no effect on a blackhole row: it never accepts a connection \
                     (the kernel drops every knock before switchboard sees it)"
                )));
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowError::Service(message) | RowError::Other(message) => f.write_str(message),
        }
    }
}
