//! The rustls server configuration every TLS service uses.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::version::{TLS12, TLS13};

use crate::error::CertError;
use crate::identity::Identity;

/// A TLS server configuration presenting `identity`: the ring provider, TLS 1.2 and 1.3
/// only (nothing older), rustls's default cipher suites (all AEAD with forward secrecy),
/// the given ALPN protocols in order of preference, and stateless session tickets.
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
    // Session tickets sealed with a key of the server's (rotated every 6 hours, tickets
    // valid 12), rather than rustls's default of a server-side cache whose TLS 1.3 tickets
    // are single-use: a client that resumes one session again and again (`openssl s_time
    // -reuse`, pools that keep one ticket) resumes every time, and an idle server holds no
    // session state. The trade-off, said in docs/configuration.md: whoever steals the
    // ticket key within its life could decrypt the resumed sessions it sealed, and a ticket
    // can be replayed as a handshake (0-RTT data stays off, so no request is replayed).
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}
