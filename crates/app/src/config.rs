//! Configuration: the port table and the settings, from the built-in defaults or a TOML
//! file, then adjusted by command-line flags.
//!
//! ```toml
//! [[port]]
//! port = 80
//! service = "http"
//! bind = ["127.0.0.1", "::1"]   # optional; default: every address, IPv4 and IPv6
//! max_connections = 256          # optional; default: [supervisor] max_connections
//! allow = ["127.0.0.0/8"]        # optional access rules, applied after accept
//! deny = ["127.0.0.3"]
//! max_per_source = 10            # optional: connections at once per client address
//! max_rate = 20                  # optional: new connections per second per client address
//!
//! [[port.toxics]]                # optional faults, in Toxiproxy's model
//! type = "latency"
//! attributes = { latency = 200 }
//!
//! [supervisor]
//! shutdown_timeout = "10s"
//! max_connections = 512
//!
//! [http]
//! header_read_timeout = "10s"
//!
//! [https]
//! handshake_timeout = "10s"
//!
//! [tls]
//! dir = "certs"
//! names = ["switchboard.test"]
//! ```

use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::{IgnoredAny, IntoDeserializer};
use switchboard_certs::TlsSettings;
use switchboard_core::Protocol;
use switchboard_http::{ControlSettings, HttpSettings, HttpbinSettings, MailpitSettings};
use switchboard_https::HttpsSettings;
use switchboard_mail::MailSettings;
use switchboard_proxy::ProxySettings;
pub use switchboard_smtp::AuthPolicy;
use switchboard_smtp::SmtpSettings;
use switchboard_stubs::StubsSettings;
use switchboard_supervisor::{PortSpec, SupervisorSettings};
use toml::de::{DeTable, DeValue};

use crate::error::ConfigError;
use crate::keys::{self, KeyError};
use crate::rows::{self, RowError};

/// The port table switchboard serves when no config file names one: one line per service.
/// Toxiproxy's API sits on its own port, 8474, as its clients expect (it is above 1024, so
/// `--port-offset` leaves it where they look).
pub const DEFAULT_PORTS: &[(u16, &str)] = &[
    (80, "http"),
    (443, "https"),
    (25, "smtp"),
    (8474, "toxiproxy"),
];

/// Ports below this need privileges; `--port-offset` moves only them.
pub(crate) const PRIVILEGED_BELOW: u16 = 1024;

/// A ready-made table for a tool switchboard stands in for (`--preset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Mailpit's ports: SMTP 1025, HTTP 8025.
    Mailpit,
}

/// Everything switchboard needs to start: the port table and every service's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub ports: Vec<PortSpec>,
    pub supervisor: SupervisorSettings,
    /// `[http]`: the HTTP service's own keys; httpbin's limits, in the same table, are
    /// [`httpbin`](Self::httpbin).
    pub http: HttpSettings,
    pub httpbin: HttpbinSettings,
    /// The mail web's limits, in `[http]` too.
    pub mailpit: MailpitSettings,
    pub https: HttpsSettings,
    pub smtp: SmtpSettings,
    pub mail: MailSettings,
    pub tls: TlsSettings,
    pub control: ControlSettings,
    pub proxy: ProxySettings,
    pub stubs: StubsSettings,
    pub log: LogSettings,
}

/// The `[log]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Log lines waiting for the writer thread; when this many are queued (the terminal or
    /// pipe cannot keep up), further lines are dropped rather than slowing connections.
    pub queue_lines: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        // The writer's own default (128 000 lines) is 4 MB allocated and touched at
        // start-up, more than everything else switchboard holds when idle.
        Self { queue_lines: 8192 }
    }
}

impl Default for Config {
    /// The built-in table: [`DEFAULT_PORTS`] on every address, default settings.
    fn default() -> Self {
        let supervisor = SupervisorSettings::default();
        Self {
            ports: DEFAULT_PORTS
                .iter()
                .map(|&(port, service)| PortSpec::new(port, service, supervisor.max_connections))
                .collect(),
            supervisor,
            http: HttpSettings::default(),
            httpbin: HttpbinSettings::default(),
            mailpit: MailpitSettings::default(),
            https: HttpsSettings::default(),
            smtp: SmtpSettings::default(),
            mail: MailSettings::default(),
            tls: TlsSettings::default(),
            control: ControlSettings::default(),
            proxy: ProxySettings::default(),
            stubs: StubsSettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl Config {
    /// Read and check a config file. Its `[[port]]` tables replace the built-in table; a
    /// file without any keeps the built-in table and only changes settings.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parse config text; `origin` names it in error messages (usually the file's path).
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let source = Source { text, origin };
        let toml_error = |e: toml::de::Error| source.error(e.span(), e.message().to_owned());
        let located = |e: KeyError| source.error(e.span, e.message);
        let mut document = DeTable::parse(text).map_err(toml_error)?;
        // `[http]` is shared: the HTTP service's keys, httpbin's and the mail web's (keys.rs).
        let http = document.get_mut().remove("http");
        // `[[port]]` rows: the keys every row has, and the keys of each row's service.
        let rows = match document.get_mut().remove("port") {
            None => Vec::new(),
            Some(value) => {
                let span = value.span();
                match value.into_inner() {
                    DeValue::Array(rows) => rows.into_iter().collect::<Vec<_>>(),
                    _ => {
                        return Err(source.error(
                            Some(span),
                            "`port` is a list of rows: write each as a [[port]] table".into(),
                        ));
                    }
                }
            }
        };
        let raw = RawConfig::deserialize(document.into_deserializer()).map_err(toml_error)?;
        let mut http = keys::Shared::new(http, "http").map_err(located)?;
        let (http_settings, httpbin, mailpit) = (
            http.take::<HttpSettings>().map_err(located)?,
            http.take::<HttpbinSettings>().map_err(located)?,
            http.take::<MailpitSettings>().map_err(located)?,
        );
        http.finish().map_err(located)?;

        let mut ports = Vec::with_capacity(rows.len());
        // Where each row's port is, to name the first of two rows for one port.
        let mut seen: Vec<(u16, Protocol, usize)> = Vec::new();
        for row in rows {
            let mut table = keys::Shared::new(Some(row), "port").map_err(located)?;
            let (row, owned) = rows::read_toml(&mut table)
                .map_err(|e| source.error(e.span.or_else(|| table.span_of("port")), e.message))?;
            let at = table.span_of("port").unwrap_or_else(|| table.span());
            // Port 0 means "any free port", so it may appear more than once; 7/tcp and
            // 7/udp are two ports.
            if row.port != 0
                && let Some((_, _, first)) = seen
                    .iter()
                    .find(|(port, protocol, _)| *port == row.port && *protocol == row.protocol)
            {
                let port = match row.protocol {
                    Protocol::Tcp => row.port.to_string(),
                    Protocol::Udp => format!("{}/udp", row.port),
                };
                return Err(source.error(
                    Some(at),
                    format!(
                        "port {port} appears twice in the port table (first at line {}); \
                         each port can have one service",
                        source.line(*first)
                    ),
                ));
            }
            seen.push((row.port, row.protocol, at.start));
            let spec = row
                .spec(raw.supervisor.max_connections, owned)
                .map_err(|error| {
                    let span = match error {
                        RowError::Service(_) => table.span_of("service"),
                        RowError::Other(_) => Some(at.clone()),
                    };
                    source.error(span, error.to_string())
                })?;
            ports.push(spec);
        }
        if raw.supervisor.max_connections == 0 || raw.supervisor.max_refusals == 0 {
            return Err(source.error(
                None,
                "[supervisor] max_connections and max_refusals must be at least 1".into(),
            ));
        }
        for (key, zero) in [
            ("blackhole_wait", raw.supervisor.blackhole_wait.is_zero()),
            ("write_timeout", raw.supervisor.write_timeout.is_zero()),
            ("idle_timeout", raw.supervisor.idle_timeout.is_zero()),
        ] {
            if zero {
                return Err(
                    source.error(None, format!("[supervisor] {key} must be longer than zero"))
                );
            }
        }
        raw.smtp
            .chaos
            .validate()
            .map_err(|message| source.error(None, format!("[smtp.chaos] {message}")))?;
        for checked in [
            http_settings.validate(),
            httpbin.validate(),
            mailpit.validate(),
        ] {
            checked.map_err(|message| source.error(None, format!("[http] {message}")))?;
        }

        if raw.https.handshake_timeout.is_zero() {
            return Err(source.error(
                None,
                "[https] handshake_timeout must be longer than zero".into(),
            ));
        }
        raw.smtp
            .validate()
            .map_err(|message| source.error(None, format!("[smtp] {message}")))?;
        if raw.mail.max_messages == 0 || raw.mail.max_bytes == 0 {
            return Err(source.error(
                None,
                "[mail] max_messages and max_bytes must be at least 1".into(),
            ));
        }
        raw.proxy
            .validate()
            .map_err(|message| source.error(None, format!("[proxy] {message}")))?;
        raw.stubs
            .validate()
            .map_err(|message| source.error(None, format!("[stubs] {message}")))?;
        if raw.log.queue_lines == 0 {
            return Err(source.error(None, "[log] queue_lines must be at least 1".into()));
        }
        if let Some(url) = &raw.tls.crl_url
            && !(url.starts_with("http://") && url.len() > "http://".len())
        {
            return Err(source.error(
                None,
                format!(
                    "[tls] crl_url must be an http:// address (clients fetch revocation lists \
                     over plain HTTP), not {url:?}"
                ),
            ));
        }
        let mut config = Config {
            ports,
            supervisor: raw.supervisor,
            http: http_settings,
            httpbin,
            mailpit,
            https: raw.https,
            smtp: raw.smtp,
            mail: raw.mail,
            tls: raw.tls,
            control: raw.control,
            proxy: raw.proxy,
            stubs: raw.stubs,
            log: raw.log,
        };
        if config.ports.is_empty() || raw.builtin_ports {
            let mut table = Config::default().ports;
            for spec in &mut table {
                spec.max_connections = config.supervisor.max_connections;
            }
            // The file's rows come after the built-in ones; a row for a built-in port
            // replaces it there.
            for row in config.ports.drain(..) {
                match table
                    .iter_mut()
                    .find(|p| p.port == row.port && p.protocol == row.protocol && row.port != 0)
                {
                    Some(builtin) => *builtin = row,
                    None => table.push(row),
                }
            }
            config.ports = table;
        }
        Ok(config)
    }

    /// Where clients find the local CA's revocation list: `[tls] crl_url`, else `/ca.crl`
    /// on the first http port of the table (none while that port is 0, not yet chosen).
    pub fn crl_url(&self) -> Option<String> {
        if let Some(url) = &self.tls.crl_url {
            return Some(url.clone());
        }
        let port = self
            .ports
            .iter()
            .find(|p| p.service == "http" && p.port != 0)?
            .port;
        Some(match port {
            80 => "http://localhost/ca.crl".to_owned(),
            port => format!("http://localhost:{port}/ca.crl"),
        })
    }

    /// Add `offset` to every row below 1024 (80 → 8080 with 8000): the offset is for users
    /// without privileged ports, so unprivileged ones keep the numbers their clients expect
    /// (and port 0 stays "any free port"). Returns each move, `(from, to)`, for the log.
    pub fn apply_port_offset(&mut self, offset: u16) -> Result<Vec<(u16, u16)>, ConfigError> {
        let shifted = |port: u16| port != 0 && port < PRIVILEGED_BELOW;
        if let Some(highest) = self
            .ports
            .iter()
            .map(|p| p.port)
            .filter(|&p| shifted(p))
            .max()
            && u32::from(highest) + u32::from(offset) > u32::from(u16::MAX)
        {
            return Err(ConfigError::PortOffset {
                port: highest,
                offset,
                moved: u32::from(highest) + u32::from(offset),
                max: u16::MAX - highest,
            });
        }
        let mut moves = Vec::new();
        if offset == 0 {
            return Ok(moves);
        }
        for spec in &mut self.ports {
            if shifted(spec.port) {
                moves.push((spec.port, spec.port + offset));
                spec.port += offset;
            }
        }
        Ok(moves)
    }

    /// Mailpit's ports, for rigs that used to run Mailpit: SMTP on 1025 and HTTP (the page,
    /// the mailbox, the APIs) on 8025, in front of the rows already in the table; a row for
    /// either port is replaced. Called after [`apply_port_offset`](Self::apply_port_offset),
    /// so that a row the offset moved onto 1025 or 8025 gives way too.
    pub fn apply_preset(&mut self, preset: Preset) {
        match preset {
            Preset::Mailpit => {
                let max = self.supervisor.max_connections;
                let preset = [
                    PortSpec::new(1025, "smtp", max),
                    PortSpec::new(8025, "http", max),
                ];
                self.ports
                    .retain(|p| preset.iter().all(|q| q.port != p.port));
                self.ports.splice(0..0, preset);
            }
        }
    }

    /// Keep certificates in `dir` instead of the configured (or default) directory.
    pub fn apply_certs_dir(&mut self, dir: &Path) {
        self.tls.dir = Some(dir.to_owned());
    }

    /// Keep captured mail in `dir` (and load what is there).
    pub fn apply_mail_dir(&mut self, dir: &Path) {
        self.mail.dir = Some(dir.to_owned());
    }

    /// Add names to the server certificate.
    pub fn add_certificate_names(&mut self, names: &[String]) {
        self.tls.names.extend_from_slice(names);
    }

    /// Listen on these addresses for every port instead of the configured ones.
    pub fn apply_bind(&mut self, addrs: &[IpAddr]) {
        for spec in &mut self.ports {
            spec.bind = addrs.to_vec();
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Keep the built-in rows and add (or replace, port by port) the file's.
    #[serde(default)]
    builtin_ports: bool,
    /// Read before the rest (`[[port]]` rows and `[http]` are shared among crates, keys.rs);
    /// named here so that the message about an unknown table lists them.
    #[serde(default, rename = "port")]
    _port: IgnoredAny,
    #[serde(default, rename = "http")]
    _http: IgnoredAny,
    #[serde(default)]
    supervisor: SupervisorSettings,
    #[serde(default)]
    https: HttpsSettings,
    #[serde(default)]
    smtp: SmtpSettings,
    #[serde(default)]
    mail: MailSettings,
    #[serde(default)]
    tls: TlsSettings,
    #[serde(default)]
    control: ControlSettings,
    #[serde(default)]
    proxy: ProxySettings,
    #[serde(default)]
    stubs: StubsSettings,
    #[serde(default)]
    log: LogSettings,
}

/// The config text, for turning byte offsets into "file, line N" messages.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Source<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }

    fn error(&self, span: Option<Range<usize>>, message: String) -> ConfigError {
        let location = match span {
            Some(span) => {
                let line = self.line(span.start);
                let content = self.text.lines().nth(line - 1).unwrap_or("").trim_end();
                // The column, as a caret under the offending line.
                let line_start = self.text[..span.start.min(self.text.len())]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let column = self.text[line_start..span.start.min(self.text.len())]
                    .chars()
                    .count();
                let gutter = " ".repeat(line.to_string().len());
                return ConfigError::Invalid {
                    location: format!("{}, line {line}", self.origin),
                    message: format!(
                        "{message}\n    {line} | {content}\n    {gutter} | {}^",
                        " ".repeat(column)
                    ),
                };
            }
            None => self.origin.to_owned(),
        };
        ConfigError::Invalid { location, message }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::from_toml(text, "test.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn good_file_replaces_the_table() {
        let config = parse(
            r#"
            [[port]]
            port = 8080
            service = "http"
            bind = ["127.0.0.1", "::1"]

            [[port]]
            port = 7
            service = "echo"
            max_connections = 5

            [supervisor]
            shutdown_timeout = "3s"
            max_connections = 50

            [http]
            max_body_bytes = 2048
            keep_alive_timeout = "2m"
            "#,
        )
        .unwrap();
        assert_eq!(config.ports.len(), 2);
        assert_eq!(config.ports[0].port, 8080);
        assert_eq!(config.ports[0].service, "http");
        assert_eq!(config.ports[0].bind.len(), 2);
        assert_eq!(config.ports[0].max_connections, 50);
        assert_eq!(config.ports[1].service, "echo");
        assert_eq!(config.ports[1].max_connections, 5);
        assert_eq!(config.supervisor.shutdown_timeout, Duration::from_secs(3));
        assert_eq!(config.http.max_body_bytes, 2048);
        assert_eq!(config.http.keep_alive_timeout, Duration::from_secs(120));
        // Unset keys keep their defaults.
        assert_eq!(
            config.httpbin.max_delay,
            HttpbinSettings::default().max_delay
        );
    }

    #[test]
    fn file_without_ports_keeps_the_built_in_table() {
        let config = parse("[supervisor]\nmax_connections = 7\n").unwrap();
        assert_eq!(config.ports.len(), DEFAULT_PORTS.len());
        assert_eq!(config.ports[0].port, 80);
        assert_eq!(config.ports[1].port, 443);
        assert_eq!(config.ports[1].service, "https");
        assert_eq!(config.ports[2].port, 25);
        assert_eq!(config.ports[2].service, "smtp");
        assert_eq!(config.ports[0].max_connections, 7);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("[[port]]\nport = 80\nservice = \"http\"\nprot = 1\n").unwrap_err();
        assert!(
            err.starts_with("test.toml, line 4: unknown field `prot`"),
            "{err}"
        );
        assert!(err.contains("prot = 1"), "{err}");
    }

    #[test]
    fn unknown_key_in_a_settings_table() {
        let err = parse("[http]\nmax_body = 5\n").unwrap_err();
        assert!(
            err.starts_with("test.toml, line 2: unknown field `max_body`"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_port_names_both_lines() {
        let err = parse(
            "[[port]]\nport = 80\nservice = \"http\"\n\n[[port]]\nport = 80\nservice = \"echo\"\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("test.toml, line 6: port 80 appears twice"),
            "{err}"
        );
        assert!(err.contains("first at line 2"), "{err}");
    }

    #[test]
    fn port_zero_may_repeat() {
        let config = parse(
            "[[port]]\nport = 0\nservice = \"http\"\n[[port]]\nport = 0\nservice = \"echo\"\n",
        )
        .unwrap();
        assert_eq!(config.ports.len(), 2);
    }

    #[test]
    fn unknown_service_lists_the_known_ones() {
        let err = parse("[[port]]\nport = 80\nservice = \"htp\"\n").unwrap_err();
        assert!(
            err.starts_with("test.toml, line 3: unknown service \"htp\""),
            "{err}"
        );
        assert!(
            err.contains("known services: http, https, smtp, smtps, echo"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_port_is_a_located_error() {
        let err = parse("[[port]]\nport = 70000\nservice = \"http\"\n").unwrap_err();
        assert!(err.starts_with("test.toml, line 2:"), "{err}");
    }

    #[test]
    fn bad_values_are_errors() {
        let err = parse("[http]\nmax_header_bytes = 100\n").unwrap_err();
        assert!(
            err.contains("max_header_bytes = 100 is below the minimum"),
            "{err}"
        );
        let err = parse("[http]\nmax_websocket_message_bytes = 0\n").unwrap_err();
        assert!(
            err.contains("max_websocket_message_bytes must be at least 1"),
            "{err}"
        );
        let err = parse("[[port]]\nport = 7\nservice = \"echo\"\nname = \"a b\"\n").unwrap_err();
        assert!(err.contains("`name` \"a b\""), "{err}");
        let err = parse("[[port]]\nport = 7\nservice = \"echo\"\ntls = true\n").unwrap_err();
        assert!(err.contains("`tls` is for stubs rows"), "{err}");
        let err = parse("[supervisor]\nshutdown_timeout = \"soon\"\n").unwrap_err();
        assert!(err.starts_with("test.toml, line 2:"), "{err}");
        let err =
            parse("[[port]]\nport = 80\nservice = \"http\"\nbind = [\"nowhere\"]\n").unwrap_err();
        assert!(err.starts_with("test.toml, line 4:"), "{err}");
    }

    #[test]
    fn port_offset_moves_every_port_but_zero() {
        let mut config = parse(
            "[[port]]\nport = 80\nservice = \"http\"\n[[port]]\nport = 0\nservice = \"echo\"\n",
        )
        .unwrap();
        config.apply_port_offset(8000).unwrap();
        assert_eq!(config.ports[0].port, 8080);
        assert_eq!(config.ports[1].port, 0);
    }

    #[test]
    fn port_offset_above_65535_is_an_error() {
        let mut config = Config::default();
        let err = config.apply_port_offset(65500).unwrap_err().to_string();
        assert_eq!(
            err,
            "--port-offset 65500 moves port 443 to 65943, above 65535, the highest TCP port; \
             choose an offset of at most 65092"
        );
        assert_eq!(config.ports[0].port, 80, "a failed offset changes nothing");
    }

    #[test]
    fn bind_override_replaces_addresses() {
        let mut config = Config::default();
        config.apply_bind(&["127.0.0.1".parse().unwrap()]);
        assert_eq!(
            config.ports[0].bind,
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn rules_limits_and_toxics_per_port() {
        let config = parse(
            r#"
            [[port]]
            port = 8080
            service = "http"
            allow = ["127.0.0.2", "10.0.0.0/8"]
            deny = ["10.1.0.0/16"]
            max_per_source = 3
            max_rate = 10

            [[port.toxics]]
            type = "latency"
            attributes = { latency = 100 }

            [[port.toxics]]
            name = "cut"
            type = "limit_data"
            stream = "upstream"
            attributes = { bytes = 10 }
            "#,
        )
        .unwrap();
        let port = &config.ports[0];
        assert_eq!(
            port.rules.describe(),
            ["allow 127.0.0.2/32", "allow 10.0.0.0/8", "deny 10.1.0.0/16"]
        );
        assert_eq!((port.max_per_source, port.max_rate), (Some(3), Some(10)));
        let names: Vec<_> = port.toxics.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["latency_downstream", "cut"]);
    }

    #[test]
    fn log_queue_has_a_default_a_key_and_a_floor() {
        assert_eq!(parse("").unwrap().log.queue_lines, 8192);
        assert_eq!(
            parse("[log]\nqueue_lines = 100\n").unwrap().log.queue_lines,
            100
        );
        let err = parse("[log]\nqueue_lines = 0\n").unwrap_err();
        assert!(
            err.contains("[log] queue_lines must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn blackhole_wait_has_a_default_a_key_and_a_floor() {
        let wait = |text: &str| parse(text).map(|c| c.supervisor.blackhole_wait);
        assert_eq!(wait(""), Ok(Duration::from_millis(200)));
        assert_eq!(
            wait("[supervisor]\nblackhole_wait = \"1s\"\n"),
            Ok(Duration::from_secs(1))
        );
        let err = wait("[supervisor]\nblackhole_wait = \"0s\"\n").unwrap_err();
        assert!(
            err.contains("blackhole_wait must be longer than zero"),
            "{err}"
        );
    }

    /// A zero clock would close every connection at once: refused, naming the key.
    #[test]
    fn the_connection_clocks_have_defaults_keys_and_a_floor() {
        let config = parse("").unwrap();
        assert_eq!(config.supervisor.write_timeout, Duration::from_secs(30));
        assert_eq!(config.supervisor.idle_timeout, Duration::from_secs(300));
        let set = parse("[supervisor]\nwrite_timeout = \"2s\"\nidle_timeout = \"1m\"\n").unwrap();
        assert_eq!(set.supervisor.write_timeout, Duration::from_secs(2));
        assert_eq!(set.supervisor.idle_timeout, Duration::from_secs(60));
        for key in ["write_timeout", "idle_timeout"] {
            let err = parse(&format!("[supervisor]\n{key} = \"0s\"\n")).unwrap_err();
            assert!(
                err.contains(&format!("[supervisor] {key} must be longer than zero")),
                "{err}"
            );
        }
    }

    #[test]
    fn mistakes_in_rules_limits_and_toxics_are_located() {
        let err = parse("[[port]]\nport = 80\nservice = \"http\"\nallow = [\"localhost\"]\n")
            .unwrap_err();
        assert!(
            err.starts_with("test.toml, line 4:") && err.contains("not an address"),
            "{err}"
        );
        let err = parse("[[port]]\nport = 80\nservice = \"http\"\nmax_rate = 0\n").unwrap_err();
        assert!(err.contains("`max_rate` must be at least 1"), "{err}");
        let err =
            parse("[[port]]\nport = 80\nservice = \"http\"\n[[port.toxics]]\ntype = \"lag\"\n")
                .unwrap_err();
        assert!(
            err.starts_with("test.toml, line 2: a toxic of port 80: unknown toxic type"),
            "{err}"
        );
        let err = parse(
            "[[port]]\nport = 80\nservice = \"http\"\n[[port.toxics]]\ntype = \"latency\"\n[[port.toxics]]\ntype = \"latency\"\n",
        )
        .unwrap_err();
        assert!(
            err.contains("two toxics named \"latency_downstream\""),
            "{err}"
        );
        let err =
            parse("[smtp.chaos]\nsender = { error_code = 200, probability = 5 }\n").unwrap_err();
        assert!(err.contains("[smtp.chaos] Sender: error code 200"), "{err}");
        let err = parse("[http]\nhosts = [\"localhost:8080\"]\n").unwrap_err();
        assert!(
            err.contains("[http] hosts: \"localhost:8080\" is not a host name"),
            "{err}"
        );
        let err = parse("[control]\nallow = [\"everyone\"]\n").unwrap_err();
        assert!(err.starts_with("test.toml, line 2:"), "{err}");
    }

    #[test]
    fn a_udp_row_is_a_port_of_its_own_with_only_the_keys_udp_can_use() {
        let config = parse(
            "[[port]]\nport = 7\nservice = \"echo\"\n\n\
             [[port]]\nport = 7\nprotocol = \"udp\"\nservice = \"echo\"\nmax_rate = 5\n",
        )
        .unwrap();
        let protocols: Vec<_> = config.ports.iter().map(|p| p.protocol).collect();
        assert_eq!(protocols, [Protocol::Tcp, Protocol::Udp]);
        assert_eq!(config.ports[1].max_rate, Some(5));

        let twice = "[[port]]\nport = 7\nprotocol = \"udp\"\nservice = \"echo\"\n\n\
                     [[port]]\nport = 7\nprotocol = \"udp\"\nservice = \"daytime\"\n";
        let err = parse(twice).unwrap_err();
        assert!(err.contains("port 7/udp appears twice"), "{err}");

        let http = "[[port]]\nport = 80\nprotocol = \"udp\"\nservice = \"http\"\n";
        let err = parse(http).unwrap_err();
        assert!(
            err.contains(
                "the http service has no UDP form; over UDP: echo, discard, daytime, chargen, time"
            ),
            "{err}"
        );
        for key in [
            "max_per_source = 2",
            "max_connections = 2",
            "toxics = [{ type = \"latency\" }]",
        ] {
            let row =
                format!("[[port]]\nport = 7\nprotocol = \"udp\"\nservice = \"echo\"\n{key}\n");
            let err = parse(&row).unwrap_err();
            assert!(
                err.contains("is for TCP rows: UDP has no connections"),
                "{key}: {err}"
            );
        }
        let err =
            parse("[[port]]\nport = 7\nprotocol = \"sctp\"\nservice = \"echo\"\n").unwrap_err();
        assert!(
            err.contains("unknown variant `sctp`, expected `tcp` or `udp`"),
            "{err}"
        );
    }

    #[test]
    fn an_exec_row_is_its_command_with_defaults_and_other_rows_cannot_have_one() {
        let config = parse(
            "[[port]]\nport = 8007\nservice = \"exec\"\ncommand = [\"cat\"]\ntime_limit = \"2s\"\n",
        )
        .unwrap();
        let keys = config.ports[0].keys.as_deref().unwrap();
        let program = keys.downcast::<switchboard_exec::Program>().unwrap();
        assert_eq!(program.command, ["cat"]);
        assert_eq!(program.time_limit, std::time::Duration::from_secs(2));
        assert_eq!(
            program.max_open_files,
            switchboard_exec::Program::default().max_open_files
        );

        let err = parse("[[port]]\nport = 8007\nservice = \"exec\"\n").unwrap_err();
        assert!(err.contains("an exec row needs `command`"), "{err}");
        let err =
            parse("[[port]]\nport = 80\nservice = \"http\"\ncommand = [\"cat\"]\n").unwrap_err();
        assert!(
            err.contains("`command` is for exec rows (a program on a port), not http"),
            "{err}"
        );
        let err = parse(
            "[[port]]\nport = 8007\nservice = \"exec\"\ncommand = [\"a\", \"b\"]\nshell = true\n",
        )
        .unwrap_err();
        assert!(err.contains("one string for /bin/sh -c"), "{err}");
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let err = Config::from_file(Path::new("/nonexistent/switchboard.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read config file /nonexistent/switchboard.toml:"),
            "{err}"
        );
    }

    #[test]
    fn the_revocation_list_address_follows_the_http_port_unless_given() {
        let mut config = Config::default();
        assert_eq!(config.crl_url().as_deref(), Some("http://localhost/ca.crl"));
        config.apply_port_offset(8000).unwrap();
        assert_eq!(
            config.crl_url().as_deref(),
            Some("http://localhost:8080/ca.crl")
        );
        let any_port = parse("[[port]]\nport = 0\nservice = \"http\"\n").unwrap();
        assert_eq!(any_port.crl_url(), None);
        let given = parse("[tls]\ncrl_url = \"http://switchboard.test:8080/ca.crl\"\n").unwrap();
        assert_eq!(
            given.crl_url().as_deref(),
            Some("http://switchboard.test:8080/ca.crl")
        );
        let err = parse("[tls]\ncrl_url = \"ftp://x/ca.crl\"\n").unwrap_err();
        assert!(
            err.contains("[tls] crl_url must be an http:// address"),
            "{err}"
        );
    }

    #[test]
    fn builtin_ports_keeps_the_table_and_adds_or_replaces_rows() {
        let config = parse(
            "builtin_ports = true\n\n[[port]]\nport = 7\nservice = \"echo\"\n\n\
             [[port]]\nport = 25\nservice = \"smtp\"\nmax_connections = 3\n",
        )
        .unwrap();
        let table: Vec<_> = config.ports.iter().map(|p| (p.port, p.service)).collect();
        assert_eq!(
            table,
            [
                (80, "http"),
                (443, "https"),
                (25, "smtp"),
                (8474, "toxiproxy"),
                (7, "echo")
            ]
        );
        assert_eq!(
            config.ports[2].max_connections, 3,
            "the file's row replaced 25"
        );
        // Without it, the file's rows are the table.
        let alone = parse("[[port]]\nport = 7\nservice = \"echo\"\n").unwrap();
        assert_eq!(alone.ports.len(), 1);
    }

    #[test]
    fn the_offset_moves_privileged_ports_only() {
        let mut config = parse(
            "[[port]]\nport = 25\nservice = \"smtp\"\n[[port]]\nport = 80\nservice = \"http\"\n\
             [[port]]\nport = 443\nservice = \"https\"\n[[port]]\nport = 6000\nservice = \"echo\"\n",
        )
        .unwrap();
        let moved = config.apply_port_offset(8000).unwrap();
        assert_eq!(moved, [(25, 8025), (80, 8080), (443, 8443)]);
        let ports: Vec<_> = config.ports.iter().map(|p| p.port).collect();
        assert_eq!(ports, [8025, 8080, 8443, 6000]);
        // 6000 + 60000 would not fit, but 6000 is not moved: only 443 + 60000 counts.
        // Toxiproxy's clients look for its API on 8474, whatever the offset.
        let mut builtin = Config::default();
        builtin.apply_port_offset(8000).unwrap();
        let ports: Vec<_> = builtin.ports.iter().map(|p| p.port).collect();
        assert_eq!(ports, [8080, 8443, 8025, 8474]);
        assert!(Config::default().apply_port_offset(65000).is_ok());
        assert!(Config::default().apply_port_offset(65100).is_err());
    }

    #[test]
    fn the_mailpit_preset_puts_mailpits_ports_first_and_keeps_the_rest() {
        let mut config = Config::default();
        config.apply_preset(Preset::Mailpit);
        let table: Vec<_> = config.ports.iter().map(|p| (p.port, p.service)).collect();
        assert_eq!(
            table,
            [
                (1025, "smtp"),
                (8025, "http"),
                (80, "http"),
                (443, "https"),
                (25, "smtp"),
                (8474, "toxiproxy")
            ]
        );
        // With the offset, 25 would land on 8025: the preset's HTTP row wins there.
        let mut config = Config::default();
        config.apply_port_offset(8000).unwrap();
        config.apply_preset(Preset::Mailpit);
        let table: Vec<_> = config.ports.iter().map(|p| (p.port, p.service)).collect();
        assert_eq!(
            table,
            [
                (1025, "smtp"),
                (8025, "http"),
                (8080, "http"),
                (8443, "https"),
                (8474, "toxiproxy")
            ]
        );
    }

    #[test]
    fn a_located_error_points_at_the_column() {
        let err = parse("[http]\nmax_delay = \"soon\"\n").unwrap_err();
        assert!(
            err.contains("    2 | max_delay = \"soon\"\n      |             ^"),
            "{err}"
        );
        let inline = Config::from_toml("[[port]\n", "SWITCHBOARD_CONFIG_TOML")
            .unwrap_err()
            .to_string();
        assert!(
            inline.starts_with("SWITCHBOARD_CONFIG_TOML, line 1:"),
            "{inline}"
        );
    }
}
