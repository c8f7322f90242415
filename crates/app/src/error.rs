//! Why switchboard could not start.

use switchboard_certs::CertError;
use switchboard_mail::MailError;
use switchboard_supervisor::BindError;

use crate::config::ConfigError;

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
    #[error("port {0} is a proxy without an upstream: give it `upstream = \"host:port\"`")]
    NoUpstream(u16),
    #[error(
        "port {0} is an exec row without a program: give it `command = [\"program\", \"arg\"]`"
    )]
    NoCommand(u16),
    #[error("port {0} (exec): {1}")]
    Exec(u16, String),
    #[error("[proxy] {0}")]
    Proxy(String),
    #[error("[stubs] {0}")]
    Stubs(String),
}
