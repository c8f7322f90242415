//! Why switchboard could not start.

use std::path::PathBuf;

use switchboard_certs::CertError;
use switchboard_core::{InvalidRow, InvalidSetting};
use switchboard_exec::ExecError;
use switchboard_mail::MailError;
use switchboard_stubs::StubsError;
use switchboard_supervisor::BindError;

/// Why switchboard could not start. Every variant is the user's to fix (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(
        "the port table names the service \"{name}\", which switchboard does not have \
         (known: {known})"
    )]
    UnknownService {
        name: String,
        /// The services there are, as a list.
        known: String,
    },
    #[error(transparent)]
    Certs(#[from] CertError),
    #[error("the {0} service needs a certificate, but none was loaded")]
    NoCertificate(&'static str),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("port {0}: {1}")]
    Row(u16, InvalidRow),
    #[error("port {0} (exec): {1}")]
    Exec(u16, ExecError),
    #[error("[proxy] {0}")]
    Proxy(InvalidSetting),
    #[error("[stubs] {0}")]
    Stubs(StubsError),
}

/// A configuration problem, worded so the reader knows where and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    #[error(
        "both a config file (--config or SWITCHBOARD_CONFIG) and inline config (--config-toml or \
         SWITCHBOARD_CONFIG_TOML) are given; use one of them"
    )]
    TwoSources,
    #[error(
        "--port-offset {offset} moves port {port} to {moved}, above 65535, the highest TCP port; \
         choose an offset of at most {max}"
    )]
    PortOffset {
        port: u16,
        offset: u16,
        moved: u32,
        max: u16,
    },
}
