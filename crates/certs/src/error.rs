//! What can go wrong with certificates, each worded with the file it concerns and what to
//! do about it.

use std::path::PathBuf;

use time::OffsetDateTime;

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
    #[error(
        "the local CA {ca} may sign only for {permitted} (its name constraints), not for \
         \"{name}\". Use a name below .test, .internal or .localhost, or run `switchboard \
         certs --renew-ca --name {name}` to replace the CA with one that covers it (clients \
         must then trust the new ca.pem)"
    )]
    OutsideConstraints {
        ca: PathBuf,
        name: String,
        permitted: String,
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
