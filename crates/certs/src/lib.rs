//! switchboard's certificates: a local certificate authority and a server certificate it
//! signs, kept as PEM files, and the rustls configuration built from them.
//!
//! Clients trust switchboard the way they would trust a real site: by trusting one CA.
//! `ca.pem` is that CA; give it to curl, a browser, or a test's HTTP client once, and every
//! server certificate switchboard issues is trusted from then on. The CA is created once and
//! never replaced silently; the server certificate is renewed whenever it no longer fits.
//!
//! # Layout
//!
//! - `error.rs`: [`CertError`], each problem worded with its file and what to do.
//! - `identity.rs`: [`Identity`], a chain and its key, checked to belong together.
//! - `authority.rs`: create, reuse and renew the CA and the server certificate.
//! - `constraints.rs`: what the CA may sign for (its name constraints).
//! - `inspect.rs`: what a certificate says (names, validity, fingerprint).
//! - `files.rs`: atomic writes; private keys 0600 from the start.
//! - `tls.rs`: the rustls server configuration (ring, TLS 1.2 and 1.3).
//! - `handshake.rs`: the server side of a handshake, as every TLS service runs it.

mod authority;
mod constraints;
mod error;
mod files;
mod handshake;
mod identity;
mod inspect;
mod tls;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::OffsetDateTime;

pub use authority::{
    Action, CA_VALIDITY, LocalCa, Paths, RENEW_BEFORE, SERVER_VALIDITY, default_names, ensure,
    ensure_at, renew_ca,
};
pub use constraints::Permitted;
pub use error::CertError;
pub use handshake::{HandshakeFailed, accept};
pub use identity::Identity;
use identity::check_pair;
pub use inspect::CertInfo;
pub use tls::server_config;

/// The `[tls]` table: where certificates live, which names the server certificate carries,
/// or a certificate of your own.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The directory of `ca.pem`, `ca-key.pem`, `server.pem` and `server-key.pem`; the
    /// `--certs` flag. Relative paths are relative to the working directory.
    pub dir: Option<PathBuf>,
    /// Names added to the server certificate (besides localhost, 127.0.0.1, ::1 and the
    /// host name), e.g. a compose service name; the `--name` flag adds more.
    pub names: Vec<String>,
    /// A certificate (chain) of your own, PEM, leaf first. With `key`, it replaces the local CA.
    pub cert: Option<PathBuf>,
    /// The private key of `cert`, PEM.
    pub key: Option<PathBuf>,
    /// Where clients find the local CA's revocation list (written into the server
    /// certificate). Default: `/ca.crl` on the first http port of the table, as
    /// `http://localhost[:port]/ca.crl`.
    pub crl_url: Option<String>,
}

/// The default certificates directory.
pub const DEFAULT_DIR: &str = "certs";

impl TlsSettings {
    /// The certificates directory, or the default `./certs`.
    pub fn dir(&self) -> &Path {
        self.dir.as_deref().unwrap_or(Path::new(DEFAULT_DIR))
    }
}

/// Where the server's certificate came from.
#[derive(Debug)]
pub enum Source {
    /// Issued by switchboard's local CA.
    LocalCa(Box<LocalCa>),
    /// Brought by the user (`[tls] cert` and `key`).
    Provided(Box<CertInfo>),
}

/// The certificate TLS services present: the user's own if `[tls] cert` and `key` are set,
/// else one from the local CA (created on first use). `extra_names` come from `--name`.
pub fn load(settings: &TlsSettings) -> Result<(Identity, Source), CertError> {
    match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => {
            let chain = authority::read_chain(cert)?;
            let private = authority::read_key(key)?;
            check_pair(&chain, &private, cert, key)?;
            let info = CertInfo::of(&chain[0], cert)?;
            if info.not_after <= OffsetDateTime::now_utc() {
                tracing::warn!("{} expired on {}", cert.display(), info.not_after.date());
            }
            Ok((
                Identity {
                    chain,
                    key: private,
                },
                Source::Provided(Box::new(info)),
            ))
        }
        (Some(_), None) | (None, Some(_)) => Err(CertError::HalfProvided),
        (None, None) => {
            let ca = ensure_at(
                settings.dir(),
                &settings.names,
                settings.crl_url.as_deref(),
                OffsetDateTime::now_utc(),
            )?;
            let identity = Identity {
                chain: ca.identity.chain.clone(),
                key: ca.identity.key.clone_key(),
            };
            Ok((identity, Source::LocalCa(Box::new(ca))))
        }
    }
}

#[cfg(test)]
mod tests;
