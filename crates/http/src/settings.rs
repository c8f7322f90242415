use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{Cidr, InvalidSetting};

/// Limits and timeouts of the HTTP service: the `[http]` table of the config file.
///
/// Every value has a default that suits a test server on a laptop; docs/configuration.md lists
/// them.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// A request head (request line and headers) must arrive completely within this time,
    /// counted from its first byte. Slow-header ("slowloris") clients are closed after it.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection with no request in progress and nothing arriving is closed after this
    /// long (HTTP/1.1 keep-alive and HTTP/2 alike, and a client that connects and sends nothing).
    #[serde(with = "humantime_serde")]
    pub keep_alive_timeout: Duration,
    /// Largest request head accepted, in bytes; larger ones get `431`. At least 8192
    /// (hyper's smallest HTTP/1 read buffer).
    pub max_header_bytes: usize,
    /// Largest request body accepted, in bytes; larger ones get `413`.
    pub max_body_bytes: usize,
    /// Bytes a second a request body must keep up once `body_grace` is spent; slower
    /// ones get `408` (`body.rs`).
    pub min_body_rate: u64,
    /// How long any request body may keep the server waiting before `min_body_rate` applies.
    #[serde(with = "humantime_serde")]
    pub body_grace: Duration,
    /// Well-known ports the page lists although switchboard does not listen on them, to
    /// show what happens where nobody listens.
    pub show_unbound: Vec<u16>,
    /// Knocks on the page's doors (`POST /api/knock/{port}`) one client address may make
    /// per second; more get 429.
    pub knock_rate: u32,
    /// How long a knock waits for the kernel's answer before it says "timeout".
    #[serde(with = "humantime_serde")]
    pub knock_timeout: Duration,
    /// More names switchboard answers to on its control, mail and event routes, besides
    /// `localhost`, its IP addresses and its certificate's names (a guard against DNS
    /// rebinding). `*.example.test` allows every name below `example.test`.
    pub hosts: Vec<String>,
    /// The `Server` header of every response (a stub's own wins), so that scanners and
    /// people name the service; empty sends none.
    pub server_header: String,
}

/// `[http] server_header`'s default.
const SERVER: &str = "switchboard";

/// hyper cannot read HTTP/1 heads into a buffer smaller than this.
pub const MIN_HEADER_BYTES: usize = 8192;

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            min_body_rate: 1024,
            body_grace: Duration::from_secs(10),
            show_unbound: vec![21, 22],
            knock_rate: 5,
            knock_timeout: Duration::from_secs(2),
            hosts: Vec::new(),
            server_header: SERVER.to_owned(),
        }
    }
}

impl HttpSettings {
    /// Check the values that cannot be expressed by their types; the message names the key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(InvalidSetting::new(
                "max_header_bytes",
                format!(
                    "max_header_bytes = {} is below the minimum of {MIN_HEADER_BYTES}",
                    self.max_header_bytes
                ),
            ));
        }
        if self.knock_rate == 0 {
            return Err(InvalidSetting::new(
                "knock_rate",
                "knock_rate must be at least 1 (knocks a second per client)",
            ));
        }
        if self.min_body_rate == 0 {
            return Err(InvalidSetting::new(
                "min_body_rate",
                "min_body_rate must be at least 1 (bytes a second)",
            ));
        }
        for (key, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("keep_alive_timeout", self.keep_alive_timeout),
            ("knock_timeout", self.knock_timeout),
            ("body_grace", self.body_grace),
        ] {
            if value.is_zero() {
                return Err(InvalidSetting::new(
                    key,
                    format!("{key} must be longer than zero"),
                ));
            }
        }
        if let Some(bad) = self.hosts.iter().find(|name| {
            name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.*_".contains(c))
        }) {
            return Err(InvalidSetting::new(
                "hosts",
                format!(
                    "hosts: {bad:?} is not a host name; write the name alone, without a scheme \
                     or port (e.g. \"mail.example.test\" or \"*.example.test\")"
                ),
            ));
        }
        if http::HeaderValue::from_str(&self.server_header).is_err() {
            return Err(InvalidSetting::new(
                "server_header",
                format!(
                    "server_header = {:?} cannot be a header value: use printable ASCII, or \"\" \
                     to send no Server header",
                    self.server_header
                ),
            ));
        }
        Ok(())
    }

    /// [`server_header`](Self::server_header) as a header value, `None` when empty.
    pub(crate) fn server(&self) -> Option<http::HeaderValue> {
        // The default as a static value: copied per response without touching a counter.
        let value = match self.server_header.as_str() {
            SERVER => http::HeaderValue::from_static(SERVER),
            other => http::HeaderValue::from_str(other).ok()?,
        };
        (!value.is_empty()).then_some(value)
    }
}

/// The `[control]` table: who may use the control API (closing and opening ports, toxics,
/// reset, chaos). Anyone who can reach it can make switchboard refuse or mangle every
/// connection, so by default only this machine may.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ControlSettings {
    /// Address ranges that may use the control API; everyone else gets 403.
    pub allow: Vec<Cidr>,
    /// Whether the control API may add `exec` rows. An API that starts programs is a remote
    /// shell for whoever reaches it, so by default programs on ports come from the config
    /// file only.
    pub allow_exec: bool,
    /// The longest `POST /api/ports/{port}/close?for=` may close a port for; longer gets
    /// 400 (closing without `for` closes until the port is opened again).
    #[serde(with = "humantime_serde")]
    pub max_close_for: Duration,
}

impl Default for ControlSettings {
    fn default() -> Self {
        Self {
            allow: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            allow_exec: false,
            max_close_for: Duration::from_secs(24 * 60 * 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knocks_need_a_rate_and_a_timeout() {
        let zero_rate = HttpSettings {
            knock_rate: 0,
            ..HttpSettings::default()
        };
        assert!(
            zero_rate
                .validate()
                .unwrap_err()
                .message
                .contains("knock_rate")
        );
        let zero_wait = HttpSettings {
            knock_timeout: Duration::ZERO,
            ..HttpSettings::default()
        };
        assert!(
            zero_wait
                .validate()
                .unwrap_err()
                .message
                .contains("knock_timeout")
        );
    }

    #[test]
    fn a_zero_timeout_is_refused_by_its_key() {
        for (key, settings) in [
            (
                "keep_alive_timeout",
                HttpSettings {
                    keep_alive_timeout: Duration::ZERO,
                    ..HttpSettings::default()
                },
            ),
            (
                "header_read_timeout",
                HttpSettings {
                    header_read_timeout: Duration::ZERO,
                    ..HttpSettings::default()
                },
            ),
        ] {
            let error = settings.validate().unwrap_err();
            assert!(error.message.starts_with(key), "{error}");
        }
        assert_eq!(HttpSettings::default().validate(), Ok(()));
    }
}
