//! The echo service (RFC 862, traditionally port 7): every byte received is sent back.
//!
//! It is the smallest possible service, which makes it the clearest example of the
//! [`Service`] contract: take the connection, serve it, stop when told. It is not in the
//! default port table; add it with a `[[port]]` entry (`service = "echo"`), and over UDP
//! with `protocol = "udp"` on the row.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::{BoxError, Conn, DatagramService, Service, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends every byte back until the client closes or shutdown is requested.
#[derive(Debug, Default)]
pub struct EchoService;

#[async_trait]
impl Service for EchoService {
    fn name(&self) -> &'static str {
        "echo"
    }

    async fn serve(self: Arc<Self>, conn: Conn, shutdown: Shutdown) -> Result<(), BoxError> {
        let mut stream = conn.stream;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = tokio::select! {
                read = stream.read(&mut buf) => read?,
                () = shutdown.requested() => break,
            };
            if n == 0 {
                break; // the client closed its side
            }
            stream.write_all(&buf[..n]).await?;
        }
        stream.shutdown().await?;
        Ok(())
    }
}

/// Over UDP each datagram is answered with a copy of itself.
impl DatagramService for EchoService {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn answer(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        Some(datagram.to_vec())
    }
}
