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
//! - `authority.rs`: create, reuse and renew the CA and the server certificate.
//! - `inspect.rs`: what a certificate says (names, validity, fingerprint).
//! - `files.rs`: atomic writes; private keys 0600 from the start.
//! - `tls.rs`: the rustls server configuration (ring, TLS 1.2 and 1.3).
//! - `handshake.rs`: the server side of a handshake, as every TLS service runs it.

mod authority;
mod files;
mod handshake;
mod inspect;
mod tls;

use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use time::OffsetDateTime;

pub use authority::{
    Action, CA_VALIDITY, LocalCa, Paths, RENEW_BEFORE, SERVER_VALIDITY, default_names, ensure,
    ensure_at,
};
pub use handshake::{HandshakeFailed, accept};
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

/// A certificate chain and its private key: what a TLS server presents.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Where the server's certificate came from.
#[derive(Debug)]
pub enum Source {
    /// Issued by switchboard's local CA.
    LocalCa(Box<LocalCa>),
    /// Brought by the user (`[tls] cert` and `key`).
    Provided(CertInfo),
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
                Source::Provided(info),
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

/// Check that `key` is the private key of the first certificate in `chain`.
pub(crate) fn check_pair(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'_>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), CertError> {
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| CertError::Malformed {
            path: key_path.to_owned(),
            what: "private key",
            detail: e.to_string(),
        })?;
    rustls::sign::CertifiedKey::new(chain.to_vec(), signing_key)
        .keys_match()
        .map_err(|_| CertError::Mismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        })
}

/// A certificate problem, worded with the file it concerns and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot write {path}: {source}. Make the directory writable, or choose another \
         with --certs DIR"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a valid PEM {what} ({detail}). Replace it with a good one, or \
         delete it and its pair so that switchboard creates new ones"
    )]
    Malformed {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error(
        "{key} is not the private key of {cert}: they do not belong together. Put the \
         matching key there, or delete both so that switchboard creates new ones"
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error(
        "{cert} exists but its key {key} does not, so switchboard cannot sign with this CA. \
         Restore {key}, or delete {cert} to create a new CA (clients that trusted the old \
         one must then trust the new one)"
    )]
    MissingCaKey { cert: PathBuf, key: PathBuf },
    #[error("{0} is not a CA certificate; put switchboard's ca.pem there, or delete it")]
    NotCa(PathBuf),
    #[error(
        "the local CA {path} expired on {}. Delete {path} and {key} to create a new CA, \
         then trust the new ca.pem in your clients",
        not_after.date()
    )]
    CaExpired {
        path: PathBuf,
        key: PathBuf,
        not_after: OffsetDateTime,
    },
    #[error("\"{0}\" is not a host name or IP address a certificate can carry")]
    InvalidName(String),
    #[error(
        "[tls] cert and key go together: set both to use a certificate of your own, or neither"
    )]
    HalfProvided,
    #[error("cannot create a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

#[cfg(test)]
mod tests;
