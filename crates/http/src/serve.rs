//! Serving one connection: hyper's auto builder speaks HTTP/1.1 or cleartext HTTP/2 (h2c),
//! chosen by the client's first bytes, and a watchdog keeps the two clocks hyper does not
//! keep for us before a protocol is chosen: how long a connection may sit idle, and how long
//! a request head may take to arrive.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::{HeaderValue, Request, header};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use switchboard_core::{BoxError, Budget, ConnInfo, ConnStream, ResetSwitch, Shutdown};
use switchboard_web::{Connection, Sabotage};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tower::Service as _;

use crate::HttpSettings;
use crate::routes::Guarded;

/// `X-Content-Type-Options` on every response.
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// Responses up to this size (with a known length) are handed to the kernel with their head,
/// in one go; hyper does not need them after that.
const SMALL_BODY: u64 = 16 * 1024;

/// Build the hyper connection builder once; every connection borrows it.
pub(crate) fn builder(settings: &HttpSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Our watchdog keeps the header clock for every protocol, including the bytes read
        // before hyper knows which protocol it is; hyper's own HTTP/1 clock would only
        // start after that.
        .header_read_timeout(None)
        .max_buf_size(settings.max_header_bytes)
        // `Content-Type`, not `content-type`: HTTP/1 header names are written as httpbin's
        // servers and most others write them, for clients and tests that read a head as
        // text (HTTP/2 names are lower case by the protocol).
        .title_case_headers(true)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Serve HTTP on `stream` until the client is done, a timeout fires or shutdown is requested.
pub(crate) async fn serve_connection<S>(
    builder: &auto::Builder<TokioExecutor>,
    settings: &HttpSettings,
    Guarded { router, site }: Guarded,
    (stream, reset): (S, Option<ResetSwitch>),
    (info, buffers): (ConnInfo, Budget),
    shutdown: Shutdown,
) -> Result<(), BoxError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let tls = info.tls.is_some();
    let connection = Arc::new(Connection::new(info, buffers, shutdown.clone()));
    let upgraded = connection.clone();
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
        reset,
    });

    let requests = activity.clone();
    let server = settings.server();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let in_flight = requests.request_started();
        // Every request meets the guard before any route (routes/site.rs). A router is
        // always ready, so it is called at once rather than through `oneshot`, whose future
        // would also hold the router and the request.
        let refused = site
            .as_deref()
            .and_then(|site| Some(site).zip(site.check(&request, tls).err()));
        let routed = match refused {
            Some((site, refused)) => {
                request.extensions_mut().insert(refused);
                site.refusals().clone().call(request)
            }
            None => {
                request.extensions_mut().insert(connection.clone());
                router.clone().call(request)
            }
        };
        // Boxed: hyper moves an HTTP/2 stream's future several times while it sets the
        // stream up and spawns it, and this one is several hundred bytes. The box costs
        // HTTP/1.1 a little and saves HTTP/2 much more (bench/README.md has the figures).
        let server = server.clone();
        Box::pin(async move {
            let mut response = routed.await?;
            // No body of switchboard's is read as another type than it says (an echo that
            // looks like HTML, say): browsers are told not to guess.
            let headers = response.headers_mut();
            headers
                .entry(header::X_CONTENT_TYPE_OPTIONS)
                .or_insert(NOSNIFF);
            if let Some(server) = server {
                headers.entry(header::SERVER).or_insert(server);
            }
            if let Some(&sabotage) = response.extensions().get::<Sabotage>() {
                in_flight.0.sabotage(sabotage);
            }
            // A small body of known length leaves with the head in one write, so the request
            // is over now; wrapping it would cost every such response an allocation.
            if response
                .body()
                .size_hint()
                .exact()
                .is_some_and(|len| len <= SMALL_BODY)
            {
                drop(in_flight);
                return Ok(response);
            }
            // Otherwise the request counts as in progress until hyper has sent the whole
            // body and dropped it, so a long download is never mistaken for an idle
            // connection.
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _still_sending = &in_flight;
                    frame
                }))
            }))
        })
    });

    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    // The timer and the shutdown future live as long as the connection: creating them anew
    // for every request cost a timer registration and a waiter list entry each time.
    let watchdog = tokio::time::sleep_until(activity.next_check(settings));
    // Cheap to poll on every wake-up: an atomic load until shutdown is requested.
    let stopping = shutdown.requested();
    tokio::pin!(watchdog, stopping);
    let result = loop {
        tokio::select! {
            biased;
            // First, so that a connection accepted as shutdown began serves nothing new.
            () = stopping.as_mut() => {
                // HTTP/1.1: finish the current response, then close. HTTP/2: send GOAWAY.
                conn.as_mut().graceful_shutdown();
                break conn.await;
            }
            result = conn.as_mut() => break result,
            () = watchdog.as_mut() => {
                if let Some(expired) = activity.expired(settings) {
                    // Dropping the connection closes the socket; nothing is in flight.
                    return Err(expired.into());
                }
                watchdog.as_mut().reset(activity.next_check(settings));
            }
        }
    };
    // A connection that switched protocols (a WebSocket) goes on here, in the connection's
    // own task: the supervisor keeps counting it, and waits for it at shutdown.
    if let Some(session) = upgraded.take_upgrade() {
        session.await;
    }
    result
}

/// Wait for a new connection's first byte without building hyper's connection for it, so
/// that an idle connection holds a small future instead of hyper's state (about 2 KB, see
/// bench/README.md): `true` once the client has sent something or closed, and at once while
/// a toxic acts on the stream (its clocks run only while the stream is read); `false` when
/// shutdown comes first. The clocks are those of [`serve_connection`] before a first byte:
/// after `keep_alive_timeout` the connection ends as idle, and toxics added meanwhile are
/// noticed at the same wake-ups, at least once per `header_read_timeout`.
pub(crate) async fn first_byte(
    stream: &mut ConnStream,
    settings: &HttpSettings,
    shutdown: &Shutdown,
) -> Result<bool, BoxError> {
    let idle_until = Instant::now() + settings.keep_alive_timeout;
    let next_check = || idle_until.min(Instant::now() + settings.header_read_timeout);
    let watchdog = tokio::time::sleep_until(next_check());
    let stopping = shutdown.requested();
    tokio::pin!(watchdog, stopping);
    loop {
        if stream.faults_active() {
            return Ok(true);
        }
        tokio::select! {
            biased;
            () = stopping.as_mut() => return Ok(false),
            ready = std::future::poll_fn(|cx| stream.poll_readable(cx)) => {
                ready?;
                return Ok(true);
            }
            () = watchdog.as_mut() => {
                if Instant::now() >= idle_until {
                    return Err(Expired::Idle(settings.keep_alive_timeout).into());
                }
                watchdog.as_mut().reset(next_check());
            }
        }
    }
}

/// Why the watchdog closed a connection.
#[derive(Debug)]
pub(crate) enum Expired {
    Idle(Duration),
    HeaderRead(Duration),
}

impl std::fmt::Display for Expired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expired::Idle(d) => write!(
                f,
                "idle for {}s with no request (http keep_alive_timeout)",
                d.as_secs_f64()
            ),
            Expired::HeaderRead(d) => write!(
                f,
                "request head not complete within {}s (http header_read_timeout)",
                d.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for Expired {}

/// What the watchdog needs to know about a connection, updated by the stream (bytes
/// arriving) and by the request service (requests starting and finishing).
struct Activity {
    start: Instant,
    /// What the connection does instead of sending its next response (0: nothing).
    sabotage: std::sync::atomic::AtomicU8,
    in_flight: AtomicUsize,
    /// When the connection last became idle, in nanoseconds since `start`.
    idle_since: AtomicU64,
    /// When the first byte arrived while idle, in nanoseconds since `start`, plus one;
    /// zero while no byte has arrived. A request head has started arriving.
    head_started: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            sabotage: std::sync::atomic::AtomicU8::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
        }
    }

    fn sabotage(&self, sabotage: Sabotage) {
        self.sabotage.store(sabotage as u8, Ordering::Release);
    }

    fn sabotaged(&self) -> Option<Sabotage> {
        match self.sabotage.load(Ordering::Acquire) {
            0 => None,
            1 => Some(Sabotage::Close),
            2 => Some(Sabotage::Reset),
            _ => Some(Sabotage::Garbage),
        }
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn at(&self, nanos: u64) -> Instant {
        self.start + Duration::from_nanos(nanos)
    }

    fn on_bytes_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            let now = self.now_nanos().saturating_add(1);
            // Only the first byte counts; a racing reader that lost keeps the earlier time.
            let _ =
                self.head_started
                    .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// The next moment the watchdog should look again.
    fn deadline(&self, settings: &HttpSettings) -> Instant {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            // Nothing to enforce while a request is being handled; look again later.
            return Instant::now() + settings.keep_alive_timeout;
        }
        match self.head_started.load(Ordering::Relaxed) {
            0 => self.at(self.idle_since.load(Ordering::Relaxed)) + settings.keep_alive_timeout,
            started => self.at(started - 1) + settings.header_read_timeout,
        }
    }

    /// When the watchdog should wake: at the deadline, but never later than one header
    /// timeout from now. Nobody wakes the watchdog when a request head starts arriving (that
    /// would cost every request a wake-up); checking at least once per header timeout is
    /// enough to notice such a head in time and then wake exactly at its deadline.
    fn next_check(&self, settings: &HttpSettings) -> Instant {
        self.deadline(settings)
            .min(Instant::now() + settings.header_read_timeout)
    }

    /// Whether a clock has run out, and which.
    fn expired(&self, settings: &HttpSettings) -> Option<Expired> {
        if self.in_flight.load(Ordering::Relaxed) > 0 || self.deadline(settings) > Instant::now() {
            return None;
        }
        Some(match self.head_started.load(Ordering::Relaxed) {
            0 => Expired::Idle(settings.keep_alive_timeout),
            _ => Expired::HeaderRead(settings.header_read_timeout),
        })
    }
}

/// One request in progress; dropping it marks the request finished.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            activity
                .idle_since
                .store(activity.now_nanos(), Ordering::Relaxed);
            activity.head_started.store(0, Ordering::Relaxed);
        }
    }
}

/// The connection's stream, reporting arriving bytes to the watchdog, and sabotaging its
/// writes when a response asked for that.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    /// Makes the close a reset, where the socket can be reached.
    reset: Option<ResetSwitch>,
}

impl<S: AsyncWrite + Unpin> Watched<S> {
    /// Write what `sabotage` asks instead of `hyper`'s bytes, and fail the write so that
    /// hyper drops the connection.
    fn sabotage(
        &mut self,
        cx: &mut Context<'_>,
        sabotage: Sabotage,
    ) -> Poll<std::io::Result<usize>> {
        match sabotage {
            Sabotage::Close => {}
            Sabotage::Reset => match &self.reset {
                Some(reset) => reset.arm(),
                None => tracing::debug!("a reset was asked for where the socket is out of reach"),
            },
            Sabotage::Garbage => {
                let mut noise = [0u8; 512];
                noise.iter_mut().for_each(|b| *b = fastrand::u8(..));
                // Best effort: what the socket takes now is what the client gets.
                let _ = Pin::new(&mut self.inner).poll_write(cx, &noise);
                let _ = Pin::new(&mut self.inner).poll_flush(cx);
            }
        }
        Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "no response, on purpose (a stub's fault)",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.on_bytes_read();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Some(sabotage) = this.activity.sabotaged() {
            return this.sabotage(cx, sabotage);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Some(sabotage) = this.activity.sabotaged() {
            return this.sabotage(cx, sabotage);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> HttpSettings {
        HttpSettings {
            header_read_timeout: Duration::from_secs(2),
            keep_alive_timeout: Duration::from_secs(5),
            ..HttpSettings::default()
        }
    }

    /// A server's end of a fresh loopback connection, and the client's.
    async fn connected() -> (
        ConnStream,
        tokio::net::TcpStream,
        Arc<switchboard_core::ByteCounts>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let ((server, _), client) = tokio::try_join!(listener.accept(), client).unwrap();
        let counts = Arc::new(switchboard_core::ByteCounts::default());
        (ConnStream::new(server, counts.clone()), client, counts)
    }

    #[tokio::test]
    async fn the_first_byte_is_awaited_without_being_read() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut stream, mut client, counts) = connected().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let ready = first_byte(&mut stream, &settings(), &Shutdown::new()).await;
        assert!(ready.unwrap(), "a byte arrived");
        assert_eq!(counts.received(), 0, "nothing read yet");
        let mut head = [0u8; 16];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_ends_as_idle_or_at_shutdown() {
        let (mut stream, _client, _) = connected().await;
        let started = Instant::now();
        let ended = first_byte(&mut stream, &settings(), &Shutdown::new()).await;
        assert!(
            matches!(ended.unwrap_err().downcast_ref(), Some(Expired::Idle(_))),
            "idle after keep_alive_timeout"
        );
        assert_eq!(started.elapsed(), settings().keep_alive_timeout);

        let (mut stream, _client, _) = connected().await;
        let shutdown = Shutdown::new();
        shutdown.request();
        assert!(
            !first_byte(&mut stream, &settings(), &shutdown)
                .await
                .unwrap()
        );
    }

    /// A toxic that is always on and never lets a byte through.
    #[derive(Debug)]
    struct Active;

    impl switchboard_core::FaultLayer for Active {
        fn is_inert(&mut self) -> bool {
            false
        }
        fn poll_read(
            &mut self,
            _: &mut tokio::net::TcpStream,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
        fn poll_write(
            &mut self,
            _: &mut tokio::net::TcpStream,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Pending
        }
        fn poll_shutdown(
            &mut self,
            _: &mut tokio::net::TcpStream,
            _: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
        fn linger_after_drop(&mut self) -> Option<Duration> {
            None
        }
    }

    #[tokio::test]
    async fn a_stream_with_a_toxic_is_read_at_once_so_its_clocks_run() {
        let (stream, _client, _) = connected().await;
        let mut stream = stream.with_faults(Active);
        let ready = first_byte(&mut stream, &settings(), &Shutdown::new()).await;
        assert!(ready.unwrap(), "handed on with no byte sent");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_clock_runs_from_the_last_response() {
        let s = settings();
        let activity = Arc::new(Activity::new());
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(activity.expired(&s).is_none());
        let request = activity.request_started();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(activity.expired(&s).is_none(), "a request is in flight");
        drop(request);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(activity.expired(&s).is_none(), "idle clock restarted");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(activity.expired(&s), Some(Expired::Idle(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn first_byte_starts_the_header_clock() {
        let s = settings();
        let activity = Arc::new(Activity::new());
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.on_bytes_read();
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.on_bytes_read(); // later bytes do not restart it
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(activity.expired(&s).is_none());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(matches!(activity.expired(&s), Some(Expired::HeaderRead(_))));
        // A complete head clears the header clock.
        let _request = activity.request_started();
        assert!(activity.expired(&s).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_looks_in_time_for_a_head_nobody_announced() {
        let s = settings(); // header 2 s, idle 5 s
        let t0 = Instant::now();
        let activity = Arc::new(Activity::new());
        // Idle: the first look is one header timeout away, before the idle deadline.
        assert_eq!(activity.next_check(&s), t0 + Duration::from_secs(2));
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.on_bytes_read(); // a head starts at 1 s; its deadline is 3 s
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(activity.expired(&s).is_none());
        // At the 2 s look the head is seen, and the next look is exactly its deadline.
        assert_eq!(activity.next_check(&s), t0 + Duration::from_secs(3));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(activity.expired(&s), Some(Expired::HeaderRead(_))));
    }
}
