//! What a TLS server presents: a certificate chain and its private key, checked to belong
//! together.

use std::path::Path;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::CertError;

/// A certificate chain and its private key: what a TLS server presents.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
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
