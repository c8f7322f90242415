//! A TLS handshake that reports what the server presented instead of judging it: the probe
//! is a diagnostic tool, so an untrusted or mismatched certificate is something to show,
//! not a reason to stop.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::knock::Knock;

pub(crate) struct Report {
    pub(crate) service: &'static str,
    pub(crate) detail: String,
}

/// Connect again and run a TLS handshake offering HTTP/2 and HTTP/1.1.
pub(crate) async fn handshake(
    host: &str,
    addr: SocketAddr,
    knock: Knock,
) -> Result<Report, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ShowAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
    .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()));

    let attempt = async {
        let tcp = knock.connect(addr).await.map_err(|e| e.to_string())?;
        TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))
    };
    let stream = tokio::time::timeout(knock.timeout, attempt)
        .await
        .map_err(|_| "no TLS handshake within the timeout".to_owned())??;
    let session = stream.get_ref().1;
    let version = match session.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    };
    let alpn = session
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let certificate = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
        .map(|c| format!("certificate {}, issued by {}", c.subject(), c.issuer()))
        .unwrap_or_else(|| "no certificate".to_owned());
    let service = match alpn.as_deref() {
        Some("h2" | "http/1.1") => "https",
        _ => "tls",
    };
    Ok(Report {
        service,
        detail: format!(
            "TLS ({version}, ALPN {}); {certificate}",
            alpn.as_deref().unwrap_or("none")
        ),
    })
}

/// Accepts any certificate (the handshake signatures are still checked), so that the probe
/// can report what it was shown.
#[derive(Debug)]
struct ShowAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for ShowAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
