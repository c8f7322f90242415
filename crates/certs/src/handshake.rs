//! The server side of a TLS handshake, the same for every TLS service (https, STARTTLS,
//! implicit TLS): under a timeout, inside the connection's own task, with the outcome
//! recorded on the connection, its tracing span and the event stream.

use std::time::Duration;

use switchboard_core::{ConnInfo, Event, EventBus, EventKind, TlsInfo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Why a handshake did not complete; the connection is over.
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake failed: {0}")]
pub struct HandshakeFailed(pub String);

/// Run the handshake on `stream` within `timeout`. On success `info.tls` holds what it
/// settled on; either way the outcome is an event. `timeout_key` names the setting, so that
/// a timeout says which knob to turn.
pub async fn accept<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    info: &mut ConnInfo,
    timeout: Duration,
    timeout_key: &str,
    events: &EventBus,
) -> Result<TlsStream<S>, HandshakeFailed>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let failed = |reason: String| {
        events.emit(Event::new(
            info.port(),
            info.service,
            EventKind::TlsFailed {
                id: info.id,
                peer: info.peer,
                reason: reason.clone(),
            },
        ));
        HandshakeFailed(reason)
    };
    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Err(_) => {
            return Err(failed(format!(
                "not completed within {}s ({timeout_key})",
                timeout.as_secs_f64()
            )));
        }
        Ok(Err(error)) => return Err(failed(error.to_string())),
        Ok(Ok(stream)) => stream,
    };

    let session = stream.get_ref().1;
    let tls = TlsInfo {
        version: match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        },
        cipher: session
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        alpn: session
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        sni: session.server_name().map(str::to_owned),
        resumed: session.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
    };
    // The gate's span declared a `tls` field for this; the connection's closing line shows it.
    tracing::Span::current().record("tls", tracing::field::display(&tls));
    events.emit(Event::new(
        info.port(),
        info.service,
        EventKind::TlsEstablished {
            id: info.id,
            peer: info.peer,
            tls: tls.clone(),
        },
    ));
    info.tls = Some(Box::new(tls));
    Ok(stream)
}
