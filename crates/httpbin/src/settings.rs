//! httpbin's limits: keys of the `[http]` table, which httpbin's endpoints answer 400 past
//! (naming the key).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{InvalidSetting, PortDirectory, Protocol};

/// What every handler reads its limits from.
pub(crate) type AppState = Arc<HttpbinSettings>;

/// The limits of httpbin's endpoints; their keys are in the config file's `[http]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpbinSettings {
    /// Longest wait `/delay/{seconds}` will do, and longest `delay` plus `duration` of
    /// `/drip` and `/sse`; longer ones get 400.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Most bytes `/bytes/{n}`, `/stream-bytes/{n}`, `/range/{n}` and `/drip` will send;
    /// more get 400.
    pub max_bytes: usize,
    /// Most lines `/stream/{n}` and events `/sse` will send; more get 400.
    pub max_stream_lines: u32,
    /// Largest message `/websocket/echo` takes; a larger one closes the socket (1009).
    pub max_websocket_message_bytes: usize,
    /// Longest a `/websocket/echo` session lasts; then the server closes it (1008).
    #[serde(with = "humantime_serde")]
    pub max_websocket_duration: Duration,
    /// Most links `/links/{n}/{offset}` will put on a page; more get 400.
    pub max_links: u32,
    /// Longest chain `/redirect/{n}` and its relatives will make; longer ones get 400.
    pub max_redirects: u32,
    /// Hosts besides switchboard itself that `/redirect-to` may send a client to; a URL on
    /// any other host gets 403, so that the endpoint is not an open redirect.
    pub redirect_hosts: Vec<String>,
    /// switchboard's own ports: `/redirect-to` may send a client to any of them on the
    /// host it named. Not a key: the http crate gives it the port table.
    #[serde(skip)]
    pub own_ports: OwnPorts,
}

/// switchboard's own TCP ports, read from its port table when asked (ports open and close
/// while it runs); none until the http crate hands the table over.
#[derive(Clone, Default)]
pub struct OwnPorts(Option<Arc<dyn Fn(u16) -> bool + Send + Sync>>);

impl OwnPorts {
    /// The TCP ports of `table`.
    pub fn of(table: Arc<dyn PortDirectory>) -> Self {
        Self::listed_by(move |port| {
            table
                .ports()
                .iter()
                .any(|p| p.port == port && p.protocol == Protocol::Tcp)
        })
    }

    /// The ports `listed` says yes to.
    pub fn listed_by(listed: impl Fn(u16) -> bool + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(listed)))
    }

    /// Whether switchboard listens on TCP port `port`.
    pub(crate) fn contains(&self, port: u16) -> bool {
        self.0.as_ref().is_some_and(|listed| listed(port))
    }
}

impl std::fmt::Debug for OwnPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnPorts")
    }
}

/// Settings compare by their keys; the port table is not one.
impl PartialEq for OwnPorts {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for OwnPorts {}

impl Default for HttpbinSettings {
    fn default() -> Self {
        Self {
            max_delay: Duration::from_secs(10),
            max_bytes: 100 * 1024,
            max_stream_lines: 100,
            max_websocket_message_bytes: 64 * 1024,
            max_websocket_duration: Duration::from_secs(60),
            max_links: 256,
            max_redirects: 100,
            redirect_hosts: Vec::new(),
            own_ports: OwnPorts::default(),
        }
    }
}

impl HttpbinSettings {
    /// Check the values that cannot be expressed by their types; the message names the key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.max_websocket_message_bytes == 0 {
            return Err(InvalidSetting::new(
                "max_websocket_message_bytes",
                "max_websocket_message_bytes must be at least 1 (64 KiB by default)",
            ));
        }
        if self.max_websocket_duration.is_zero() {
            return Err(InvalidSetting::new(
                "max_websocket_duration",
                "max_websocket_duration must be longer than zero",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_limit_is_refused_by_its_key() {
        for (key, settings) in [
            (
                "max_websocket_duration",
                HttpbinSettings {
                    max_websocket_duration: Duration::ZERO,
                    ..HttpbinSettings::default()
                },
            ),
            (
                "max_websocket_message_bytes",
                HttpbinSettings {
                    max_websocket_message_bytes: 0,
                    ..HttpbinSettings::default()
                },
            ),
        ] {
            let error = settings.validate().unwrap_err();
            assert!(error.message.starts_with(key), "{error}");
            assert_eq!(error.key, key);
        }
        assert_eq!(HttpbinSettings::default().validate(), Ok(()));
    }
}
