//! The rustls server configuration every TLS service uses.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::version::{TLS12, TLS13};

use crate::{CertError, Identity};

/// A TLS server configuration presenting `identity`: the ring provider, TLS 1.2 and 1.3
/// only (nothing older), rustls's default cipher suites (all AEAD with forward secrecy),
/// and the given ALPN protocols in order of preference.
pub fn server_config(identity: &Identity, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, CertError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&TLS13, &TLS12])?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // The server's order of cipher suites decides, not the client's: rustls lists the
    // strongest first, and a client that prefers a weaker one does not get it.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}
