use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::stall::{Clocks, Deadlines};

/// One accepted connection, as the supervisor hands it to a service.
#[derive(Debug)]
pub struct Conn {
    /// The bytes. Reads and writes are counted for the connection's log line.
    pub stream: ConnStream,
    /// Where the connection came from and where it arrived.
    pub info: ConnInfo,
    /// What a service charges for the client's bytes it holds before acting on them (a
    /// request body, a message): one budget for every connection.
    pub buffers: crate::Budget,
}

/// What is known about a connection: both ends and the service the port chose.
#[derive(Clone, Debug, Serialize)]
pub struct ConnInfo {
    /// Unique within one run of the supervisor; ties log lines and events together.
    pub id: u64,
    /// The service the port table names for the port this connection arrived on.
    pub service: &'static str,
    /// Our end: the address and port the client connected to.
    pub local: SocketAddr,
    /// Their end: the client's address and the port its kernel picked for it.
    pub peer: SocketAddr,
    /// Set by a TLS service once the handshake is done (boxed: most connections have none,
    /// and every future that holds a connection keeps room for this).
    pub tls: Option<Box<TlsInfo>>,
}

/// What a TLS handshake settled on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The cipher suite, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher: String,
    /// The application protocol chosen by ALPN (`h2`, `http/1.1`), if the client offered any.
    pub alpn: Option<String>,
    /// The server name the client asked for (SNI); clients send none for IP addresses.
    pub sni: Option<String>,
    /// Whether the handshake resumed an earlier session (from a session ticket) instead of
    /// a full one (certificate and key exchange).
    pub resumed: bool,
}

impl std::fmt::Display for TlsInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.version, self.cipher)?;
        if let Some(alpn) = &self.alpn {
            write!(f, " alpn={alpn}")?;
        }
        if let Some(sni) = &self.sni {
            write!(f, " sni={sni}")?;
        }
        if self.resumed {
            write!(f, " resumed")?;
        }
        Ok(())
    }
}

impl ConnInfo {
    /// The port the client connected to.
    pub fn port(&self) -> u16 {
        self.local.port()
    }
}

/// Bytes received from and sent to the peer, shared between the stream and the supervisor,
/// which reads them after the service is done.
#[derive(Debug, Default)]
pub struct ByteCounts {
    received: AtomicU64,
    sent: AtomicU64,
}

impl ByteCounts {
    /// Bytes read from the peer so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Bytes written to the peer so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// How much of a vectored write is gathered into one write when toxics apply.
const GATHER_LIMIT: usize = 64 * 1024;

/// Something that stands between a connection's socket and its service and may hold back,
/// slow down or cut the bytes: the port's toxics. The gate gives every connection one
/// (`switchboard-faults` implements it); the stream calls it on each read and write.
pub trait FaultLayer: Send + std::fmt::Debug {
    /// Whether bytes pass straight through right now; then the stream skips the layer.
    fn is_inert(&mut self) -> bool;
    fn poll_read(
        &mut self,
        tcp: &mut TcpStream,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>>;
    fn poll_write(
        &mut self,
        tcp: &mut TcpStream,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>>;
    fn poll_shutdown(&mut self, tcp: &mut TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// How much longer the socket must stay open after the service let go of it.
    fn linger_after_drop(&mut self) -> Option<Duration>;
}

/// Makes a connection's close a reset (RST: the client sees "connection reset by peer")
/// instead of a goodbye (FIN). It holds a second descriptor of the same socket, so setting
/// the option reaches the socket the stream closes.
#[derive(Clone, Debug)]
pub struct ResetSwitch(Arc<std::os::fd::OwnedFd>);

impl ResetSwitch {
    /// From now on, closing the connection resets it.
    pub fn arm(&self) {
        let _ = socket2::SockRef::from(&*self.0).set_linger(Some(Duration::ZERO));
    }
}

/// A TCP stream that counts the bytes passing through it, and applies the port's toxics
/// (faults) to them when it has any.
#[derive(Debug)]
pub struct ConnStream {
    tcp: TcpStream,
    counts: Arc<ByteCounts>,
    faults: Option<Box<dyn FaultLayer>>,
    /// The write and idle clocks (`stall.rs`); none until the gate sets them.
    clocks: Option<Box<Clocks>>,
}

impl ConnStream {
    /// Wrap an accepted stream; `counts` is updated on every read and write.
    pub fn new(tcp: TcpStream, counts: Arc<ByteCounts>) -> Self {
        Self {
            tcp,
            counts,
            faults: None,
            clocks: None,
        }
    }

    /// Hold this stream to `limits`: a write that stalls, or (when set) a connection idle
    /// either way, ends it with a `TimedOut` error.
    pub fn with_deadlines(mut self, limits: Deadlines) -> Self {
        self.clocks = Some(Box::new(Clocks::new(limits)));
        self
    }

    /// A way to make this connection end with a reset, for code that no longer holds the
    /// stream (inside TLS, inside hyper); none if the socket cannot be shared.
    pub fn reset_switch(&self) -> Option<ResetSwitch> {
        use std::os::fd::AsFd;
        let fd = self.tcp.as_fd().try_clone_to_owned().ok()?;
        Some(ResetSwitch(Arc::new(fd)))
    }

    /// Apply a port's toxics to this stream (they may change while it is open).
    pub fn with_faults(mut self, faults: impl FaultLayer + 'static) -> Self {
        self.faults = Some(Box::new(faults));
        self
    }

    /// Whether a toxic acts on this stream right now. Its clocks (a `timeout`, a
    /// `reset_peer`) run only while the stream is read, so a service that waits for the
    /// first byte without reading ([`poll_readable`](Self::poll_readable)) must read
    /// instead while this is true.
    pub fn faults_active(&mut self) -> bool {
        self.faults.as_deref_mut().is_some_and(|f| !f.is_inert())
    }

    /// Ready once the client has sent something (or closed). The first byte is peeked at,
    /// not read (the socket's readiness alone can be a false alarm), so the bytes and their
    /// counts are left to the first read.
    pub fn poll_readable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut byte = [0u8; 1];
        let mut peeked = ReadBuf::new(&mut byte);
        self.tcp.poll_peek(cx, &mut peeked).map_ok(|_| ())
    }
}

impl AsyncRead for ConnStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = match this.faults.as_deref_mut() {
            None => Pin::new(&mut this.tcp).poll_read(cx, buf),
            Some(faults) => faults.poll_read(&mut this.tcp, cx, buf),
        };
        let read = buf.filled().len() - before;
        if let Poll::Ready(Ok(())) = poll {
            this.counts
                .received
                .fetch_add(read as u64, Ordering::Relaxed);
        }
        match this.clocks.as_deref_mut() {
            Some(clocks) => clocks.on_read(cx, poll, read),
            None => poll,
        }
    }
}

impl AsyncWrite for ConnStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let faulty = this.faults.as_deref_mut().is_some_and(|f| !f.is_inert());
        let poll = match this.faults.as_deref_mut().filter(|_| faulty) {
            None => Pin::new(&mut this.tcp).poll_write(cx, buf),
            Some(faults) => faults.poll_write(&mut this.tcp, cx, buf),
        };
        this.written(cx, poll, faulty)
    }

    // hyper writes a response head and body in one vectored write; forwarding it keeps that
    // a single system call instead of one per slice.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let faulty = this.faults.as_deref_mut().is_some_and(|f| !f.is_inert());
        let poll = match this.faults.as_deref_mut().filter(|_| faulty) {
            None => Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs),
            // Toxics act per write: gather the slices (a response's head and body) into
            // one, so that a latency toxic delays the response once, not once per slice.
            Some(faults) => {
                let mut gathered = Vec::new();
                for slice in bufs {
                    let room = GATHER_LIMIT - gathered.len();
                    if room == 0 {
                        break;
                    }
                    gathered.extend_from_slice(&slice[..slice.len().min(room)]);
                }
                faults.poll_write(&mut this.tcp, cx, &gathered)
            }
        };
        this.written(cx, poll, faulty)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.faults.as_deref_mut() {
            None => Pin::new(&mut this.tcp).poll_shutdown(cx),
            Some(faults) => faults.poll_shutdown(&mut this.tcp, cx),
        }
    }
}

impl Drop for ConnStream {
    /// A slow_close toxic keeps the socket open a while after the service let go of it: a
    /// duplicate of the descriptor is held by a task until then (the kernel closes the
    /// connection when the last descriptor is closed).
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(linger) = self
            .faults
            .as_deref_mut()
            .and_then(FaultLayer::linger_after_drop)
            && !linger.is_zero()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            use std::os::fd::AsFd;
            if let Ok(fd) = self.tcp.as_fd().try_clone_to_owned() {
                runtime.spawn(async move {
                    tokio::time::sleep(linger).await;
                    drop(fd);
                });
            }
        }
    }
}

impl ConnStream {
    /// Count what a write sent, and run the write clock while it waits (unless a toxic,
    /// `faulty`, is what holds it).
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
        faulty: bool,
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = poll {
            self.counts.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        match self.clocks.as_deref_mut() {
            Some(clocks) => clocks.on_write(cx, poll, faulty),
            None => poll,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn counts_bytes_each_way() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 3];
            s.read_exact(&mut buf).await.unwrap();
            buf
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let counts = Arc::new(ByteCounts::default());
        let mut stream = ConnStream::new(tcp, counts.clone());
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await.unwrap();
        stream.write_all(b"hey").await.unwrap();
        assert_eq!(&client.await.unwrap(), b"hey");
        assert_eq!(counts.received(), 5);
        assert_eq!(counts.sent(), 3);
    }
}
