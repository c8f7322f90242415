//! Applying toxics to one connection's bytes, inside its stream: the service reads and
//! writes as usual and meets latency, a slow link, a stall or a reset, exactly as a client
//! elsewhere would.
//!
//! Upstream toxics act on what the service reads (bytes from the client), downstream toxics
//! on what it writes (bytes to the client). A port's toxics can change at any time; a
//! connection picks the change up at its next read or write. Whether a toxic applies to a
//! connection is decided once per connection, by its toxicity.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use switchboard_core::FaultLayer;

use crate::toxic::{Kind, Stream, Toxic};

/// A port's current toxics, as every connection of the port sees them.
pub type ToxicSet = Arc<[Toxic]>;

/// A counted toxic, as the connection that claimed it holds it.
#[derive(Debug)]
pub(crate) struct Claim {
    pub(crate) toxic: Toxic,
    pub(crate) withdrawn: Arc<AtomicBool>,
}

/// How often a connection stalled by a `timeout` toxic with no end looks whether the toxic
/// is still there.
const STALL_RECHECK: Duration = Duration::from_millis(50);

/// How much an upstream toxic reads from the socket at a time.
const INBOUND_CHUNK: usize = 16 * 1024;

#[derive(Debug)]
struct Active {
    toxic: Toxic,
    /// Drawn once per connection from the toxicity.
    applies: bool,
    /// When this connection first saw the toxic: the start of its timeouts.
    since: Instant,
    /// For a counted toxic this connection claimed: raised when the toxic is removed.
    withdrawn: Option<Arc<AtomicBool>>,
}

/// Per-direction pacing.
#[derive(Debug, Default)]
struct Pace {
    /// No more bytes before this (bandwidth, slicer).
    next_at: Option<Instant>,
    /// The current write or chunk must wait until this (latency).
    delay_until: Option<Instant>,
    /// Bytes let through so far (limit_data).
    used: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dead {
    Reset,
    Closed(&'static str),
}

/// The fault state of one connection. Until a toxic reaches it, that is only the port's set
/// to watch: the state toxics need (pacing, timers, a buffer) is built when the first one
/// arrives, so the connections of a port without toxics do not carry it (bench/README.md).
#[derive(Debug)]
pub struct Faults {
    toxics: watch::Receiver<ToxicSet>,
    acting: Option<Box<Acting>>,
}

/// What a connection that toxics have reached keeps between its reads and writes.
#[derive(Debug)]
struct Acting {
    active: Vec<Active>,
    /// No toxic applies and nothing is held back: bytes pass straight through.
    inert: bool,
    up: Pace,
    down: Pace,
    /// Bytes read from the client that the service has not been given yet.
    inbound: BytesMut,
    inbound_eof: bool,
    read_timer: Timer,
    write_timer: Timer,
    close_timer: Timer,
    close_at: Option<Instant>,
    dead: Option<Dead>,
}

impl Faults {
    /// Follow a port's toxics.
    pub fn new(toxics: watch::Receiver<ToxicSet>) -> Self {
        Self::with_claims(toxics, Vec::new())
    }

    /// Follow a port's toxics, and apply the counted toxics this connection claimed (the
    /// set's counted toxics apply only through a claim).
    pub(crate) fn with_claims(mut toxics: watch::Receiver<ToxicSet>, claims: Vec<Claim>) -> Self {
        let now = Instant::now();
        let active: Vec<Active> = claims
            .into_iter()
            .map(|claim| Active {
                toxic: claim.toxic,
                applies: true, // drawn when it was claimed
                since: now,
                withdrawn: Some(claim.withdrawn),
            })
            .chain(
                uncounted(&mut toxics)
                    .into_iter()
                    .map(|toxic| Active::new(toxic, now)),
            )
            .collect();
        let acting = (!active.is_empty()).then(|| Box::new(Acting::new(active)));
        Self { toxics, acting }
    }

    /// Pick up a change to the port's toxics: the connection's state, once a toxic has
    /// reached it. Called on every read and write: without a change, one atomic load.
    #[inline]
    fn refresh(&mut self) -> Option<&mut Acting> {
        if self.toxics.has_changed().unwrap_or(false) {
            self.changed();
        }
        self.acting.as_deref_mut()
    }

    #[cold]
    fn changed(&mut self) {
        let current = uncounted(&mut self.toxics);
        let now = Instant::now();
        match &mut self.acting {
            Some(acting) => acting.update(current, now),
            None if !current.is_empty() => {
                let active = current.into_iter().map(|t| Active::new(t, now)).collect();
                self.acting = Some(Box::new(Acting::new(active)));
            }
            None => {}
        }
    }
}

/// The set's toxics that apply to every connection (a counted one applies only through a
/// claim), marked as seen.
fn uncounted(toxics: &mut watch::Receiver<ToxicSet>) -> Vec<Toxic> {
    toxics
        .borrow_and_update()
        .iter()
        .filter(|t| t.first.is_none())
        .cloned()
        .collect()
}

impl Acting {
    fn new(active: Vec<Active>) -> Self {
        let mut acting = Self {
            active,
            inert: true,
            up: Pace::default(),
            down: Pace::default(),
            inbound: BytesMut::new(),
            inbound_eof: false,
            read_timer: Timer::default(),
            write_timer: Timer::default(),
            close_timer: Timer::default(),
            close_at: None,
            dead: None,
        };
        acting.update_inert();
        acting
    }

    /// The port's toxics are now `current`: a toxic still there keeps what this connection
    /// drew for it and when it first saw it.
    fn update(&mut self, current: Vec<Toxic>, now: Instant) {
        let mut previous = std::mem::take(&mut self.active);
        // A claimed toxic stays with the connection until it is withdrawn.
        self.active = previous
            .extract_if(.., |a| {
                a.withdrawn
                    .as_ref()
                    .is_some_and(|w| !w.load(Ordering::Acquire))
            })
            .collect();
        previous.retain(|a| a.withdrawn.is_none());
        for toxic in current {
            match previous.iter().position(|a| a.toxic == toxic) {
                Some(i) => self.active.push(previous.swap_remove(i)),
                None => self.active.push(Active::new(toxic, now)),
            }
        }
        self.update_inert();
    }

    fn update_inert(&mut self) {
        self.inert = self.active.iter().all(|a| !a.applies)
            && self.inbound.is_empty()
            && !self.inbound_eof
            && self.dead.is_none();
    }

    fn applying(&self, stream: Stream) -> impl Iterator<Item = &Toxic> {
        self.active
            .iter()
            .filter(move |a| a.applies && a.toxic.stream == stream)
            .map(|a| &a.toxic)
    }

    /// The connection must end now (reset_peer, or a timeout toxic's time is up)?
    fn fatal(&mut self, tcp: &TcpStream, now: Instant) -> Option<io::Error> {
        for active in self.active.iter().filter(|a| a.applies) {
            match active.toxic.kind {
                Kind::ResetPeer { timeout } if active.since + timeout <= now => {
                    // With a zero linger, closing the socket sends RST instead of FIN:
                    // the client sees "connection reset by peer".
                    let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
                    self.dead = Some(Dead::Reset);
                }
                Kind::Timeout { timeout }
                    if !timeout.is_zero() && active.since + timeout <= now =>
                {
                    let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Both);
                    self.dead = Some(Dead::Closed("closed by the timeout toxic"));
                }
                _ => {}
            }
            if self.dead.is_some() {
                break;
            }
        }
        self.dead.map(|dead| match dead {
            Dead::Reset => io::Error::new(
                io::ErrorKind::ConnectionReset,
                "reset by the reset_peer toxic",
            ),
            Dead::Closed(why) => io::Error::new(io::ErrorKind::ConnectionAborted, why),
        })
    }

    /// The next moment a fatal toxic fires, to be woken for it.
    fn next_fatal(&self) -> Option<Instant> {
        self.active
            .iter()
            .filter(|a| a.applies)
            .filter_map(|a| match a.toxic.kind {
                Kind::ResetPeer { timeout } => Some(a.since + timeout),
                Kind::Timeout { timeout } if !timeout.is_zero() => Some(a.since + timeout),
                _ => None,
            })
            .min()
    }

    /// A timeout toxic holds this direction: until when (to be woken), if so.
    fn stalled(&self, stream: Stream, now: Instant) -> Option<Instant> {
        self.active
            .iter()
            .filter(|a| a.applies && a.toxic.stream == stream)
            .find_map(|a| match a.toxic.kind {
                Kind::Timeout { timeout } if timeout.is_zero() => Some(now + STALL_RECHECK),
                Kind::Timeout { timeout } => Some(a.since + timeout),
                _ => None,
            })
    }

    fn latency(&self, stream: Stream) -> Option<Duration> {
        self.applying(stream).find_map(|t| match t.kind {
            Kind::Latency { latency, jitter } => {
                let jitter_ms = jitter.as_millis() as i64;
                let offset = if jitter_ms > 0 {
                    fastrand::i64(-jitter_ms..=jitter_ms)
                } else {
                    0
                };
                let ms = (latency.as_millis() as i64 + offset).max(0) as u64;
                Some(Duration::from_millis(ms))
            }
            _ => None,
        })
    }

    /// How many bytes may pass at once, and how long to wait after `n` bytes passed.
    fn chunk_limit(&self, stream: Stream, wanted: usize, pace: &Pace) -> usize {
        let mut n = wanted;
        for toxic in self.applying(stream) {
            match toxic.kind {
                Kind::Slicer {
                    average_size,
                    size_variation,
                    ..
                } => {
                    let low = average_size.saturating_sub(size_variation).max(1);
                    let size = fastrand::usize(low..=average_size + size_variation);
                    n = n.min(size);
                }
                // A tenth of a second's worth at a time keeps the rate smooth.
                Kind::Bandwidth { rate_kb } => n = n.min(((rate_kb * 100) as usize).max(1)),
                Kind::LimitData { bytes } => {
                    n = n.min(bytes.saturating_sub(pace.used) as usize);
                }
                _ => {}
            }
        }
        n
    }

    fn pause_after(&self, stream: Stream, n: usize) -> Duration {
        let mut pause = Duration::ZERO;
        for toxic in self.applying(stream) {
            match toxic.kind {
                Kind::Slicer { delay, .. } => pause += delay,
                Kind::Bandwidth { rate_kb } => {
                    pause += Duration::from_secs_f64(n as f64 / (rate_kb as f64 * 1000.0));
                }
                _ => {}
            }
        }
        pause
    }

    fn limit(&self, stream: Stream) -> Option<u64> {
        self.applying(stream).find_map(|t| match t.kind {
            Kind::LimitData { bytes } => Some(bytes),
            _ => None,
        })
    }

    fn slow_close(&self, stream: Stream) -> Option<Duration> {
        self.applying(stream).find_map(|t| match t.kind {
            Kind::SlowClose { delay } => Some(delay),
            _ => None,
        })
    }

    /// Close the connection because a limit_data toxic's bytes are spent.
    fn limit_reached(&mut self, tcp: &TcpStream) {
        let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Both);
        self.dead = Some(Dead::Closed("closed by the limit_data toxic"));
    }

    /// Be woken at `deadline`, or for a fatal toxic if that is earlier.
    fn wait(timer: &mut Timer, cx: &mut Context<'_>, deadline: Instant, fatal: Option<Instant>) {
        let at = fatal.map_or(deadline, |f| f.min(deadline));
        if timer.poll_until(cx, at).is_ready() {
            // Already due: come straight back.
            cx.waker().wake_by_ref();
        }
    }
}

/// What the connection's stream ([`switchboard_core::ConnStream`]) calls on each read and write.
impl FaultLayer for Faults {
    /// Whether bytes pass straight through right now (no toxic applies, nothing held).
    fn is_inert(&mut self) -> bool {
        self.refresh().is_none_or(|acting| acting.inert)
    }

    fn poll_read(
        &mut self,
        tcp: &mut TcpStream,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.refresh() {
            Some(acting) if !acting.inert => acting.poll_read(tcp, cx, buf),
            _ => Pin::new(tcp).poll_read(cx, buf),
        }
    }

    fn poll_write(
        &mut self,
        tcp: &mut TcpStream,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.refresh() {
            Some(acting) if !acting.inert => acting.poll_write(tcp, cx, buf),
            _ => Pin::new(tcp).poll_write(cx, buf),
        }
    }

    fn poll_shutdown(&mut self, tcp: &mut TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.refresh() {
            Some(acting) => acting.poll_shutdown(tcp, cx),
            None => Pin::new(tcp).poll_shutdown(cx),
        }
    }

    /// How much longer the socket must stay open after the service let go of it.
    fn linger_after_drop(&mut self) -> Option<Duration> {
        self.refresh()?.linger_after_drop()
    }
}

/// The reads and writes of a connection that toxics have reached.
impl Acting {
    fn poll_read(
        &mut self,
        tcp: &mut TcpStream,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let now = Instant::now();
        if let Some(Dead::Closed(_)) = self.dead {
            return Poll::Ready(Ok(())); // the end of the stream
        }
        if let Some(error) = self.fatal(tcp, now) {
            return Poll::Ready(Err(error));
        }
        let fatal = self.next_fatal();
        if let Some(until) = self.stalled(Stream::Upstream, now) {
            Self::wait(&mut self.read_timer, cx, until, fatal);
            return Poll::Pending;
        }

        if self.inbound.is_empty() && !self.inbound_eof {
            let limit = self.limit(Stream::Upstream);
            if limit.is_some_and(|l| self.up.used >= l) {
                self.limit_reached(tcp);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; INBOUND_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut *tcp).poll_read(cx, &mut read) {
                Poll::Pending => {
                    if let Some(at) = fatal {
                        Self::wait(&mut self.read_timer, cx, at, None);
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Ready(Ok(())) => {
                    let got = read.filled();
                    if got.is_empty() {
                        self.inbound_eof = true;
                        self.up.delay_until = self.slow_close(Stream::Upstream).map(|d| now + d);
                    } else {
                        self.inbound.extend_from_slice(got);
                        self.up.delay_until = self.latency(Stream::Upstream).map(|d| now + d);
                    }
                }
            }
        }

        let due = [self.up.delay_until, self.up.next_at]
            .into_iter()
            .flatten()
            .max();
        if let Some(due) = due.filter(|due| *due > now) {
            Self::wait(&mut self.read_timer, cx, due, fatal);
            return Poll::Pending;
        }
        if self.inbound.is_empty() {
            // The client's end of the stream (inbound_eof), now delivered.
            return Poll::Ready(Ok(()));
        }
        let n = self.chunk_limit(
            Stream::Upstream,
            self.inbound.len().min(buf.remaining()),
            &self.up,
        );
        buf.put_slice(&self.inbound[..n]);
        self.inbound.advance(n);
        self.up.used += n as u64;
        let pause = self.pause_after(Stream::Upstream, n);
        self.up.next_at = (!pause.is_zero()).then(|| now + pause);
        if self
            .limit(Stream::Upstream)
            .is_some_and(|l| self.up.used >= l)
        {
            self.limit_reached(tcp);
        }
        self.update_inert();
        Poll::Ready(Ok(()))
    }

    fn poll_write(
        &mut self,
        tcp: &mut TcpStream,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let now = Instant::now();
        if let Some(error) = self.fatal(tcp, now) {
            return Poll::Ready(Err(error));
        }
        let fatal = self.next_fatal();
        if let Some(until) = self.stalled(Stream::Downstream, now) {
            Self::wait(&mut self.write_timer, cx, until, fatal);
            return Poll::Pending;
        }
        if self.down.delay_until.is_none() {
            self.down.delay_until = self.latency(Stream::Downstream).map(|d| now + d);
        }
        let due = [self.down.delay_until, self.down.next_at]
            .into_iter()
            .flatten()
            .max();
        if let Some(due) = due.filter(|due| *due > now) {
            Self::wait(&mut self.write_timer, cx, due, fatal);
            return Poll::Pending;
        }
        if self
            .limit(Stream::Downstream)
            .is_some_and(|l| self.down.used >= l)
        {
            self.limit_reached(tcp);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "closed by the limit_data toxic",
            )));
        }
        let n = self.chunk_limit(Stream::Downstream, buf.len(), &self.down);
        match Pin::new(&mut *tcp).poll_write(cx, &buf[..n]) {
            Poll::Ready(Ok(written)) => {
                self.down.delay_until = None; // the next write pays the latency again
                self.down.used += written as u64;
                let pause = self.pause_after(Stream::Downstream, written);
                self.down.next_at = (!pause.is_zero()).then(|| now + pause);
                if self
                    .limit(Stream::Downstream)
                    .is_some_and(|l| self.down.used >= l)
                {
                    // Exactly the limit went out; the client sees the end of the stream next.
                    self.limit_reached(tcp);
                }
                Poll::Ready(Ok(written))
            }
            Poll::Pending => {
                if let Some(at) = fatal {
                    Self::wait(&mut self.write_timer, cx, at, None);
                }
                Poll::Pending
            }
            other => other,
        }
    }

    fn poll_shutdown(&mut self, tcp: &mut TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(delay) = self.slow_close(Stream::Downstream) {
            let at = *self.close_at.get_or_insert_with(|| Instant::now() + delay);
            if self.close_timer.poll_until(cx, at).is_pending() {
                return Poll::Pending;
            }
        }
        Pin::new(tcp).poll_shutdown(cx)
    }

    /// How much longer the socket must stay open after the service let go of it.
    fn linger_after_drop(&mut self) -> Option<Duration> {
        if self.dead == Some(Dead::Reset) {
            return None;
        }
        let delay = self.slow_close(Stream::Downstream)?;
        let at = self.close_at.unwrap_or_else(|| Instant::now() + delay);
        Some(at.saturating_duration_since(Instant::now()))
    }
}

impl Active {
    fn new(toxic: Toxic, now: Instant) -> Self {
        // fastrand::f64() is in [0, 1): toxicity 1 always applies, 0 never does.
        let applies = fastrand::f64() < toxic.toxicity;
        Self {
            toxic,
            applies,
            since: now,
            withdrawn: None,
        }
    }
}

/// A reusable sleep.
#[derive(Debug, Default)]
struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    fn poll_until(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        match &mut self.0 {
            Some(sleep) => {
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                sleep.as_mut().poll(cx)
            }
            None => {
                let mut sleep = Box::pin(tokio::time::sleep_until(deadline));
                let poll = sleep.as_mut().poll(cx);
                self.0 = Some(sleep);
                poll
            }
        }
    }
}

#[cfg(test)]
mod tests;
