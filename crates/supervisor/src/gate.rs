//! The gate: what happens to a connection between `accept()` and the service.
//!
//! Every connection, whatever its port, passes here, in this order:
//!
//! 1. the port decides ([`Port::admit`]): its access rules (a denied connection is closed at
//!    once and never reaches the service — the kernel had accepted it already: these are not
//!    packet-filter rules), then its limits (`max_connections`, `max_rate`,
//!    `max_per_source`; a connection over one is turned away by the service in its own
//!    terms, HTTP 503 or SMTP 421);
//! 2. the port's toxics are attached to its stream;
//! 3. it gets an id, a tracing span and byte counters, and the service runs in a task of its
//!    own; one "opened" and one "closed" event account for it.
//!
//! That is why rules, limits and faults work the same for every service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchboard_core::{
    Addr, Budget, ByteCounts, Conn, ConnInfo, ConnStream, Event, EventBus, EventKind, Refusal,
    Service, Signal,
};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::port::{Admission, Admitted, Port, Ticket};

/// Shared by every accept loop of one supervisor.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) events: EventBus,
    /// Every connection task, so that shutdown can wait for them. (Each port also counts
    /// its own, and holds the signals that end them: see [`Port`].)
    pub(crate) connections: TaskTracker,
    next_id: AtomicU64,
    /// `[supervisor] max_buffered_bytes`, handed to every connection.
    buffers: Budget,
}

/// One accepted connection, as the listener hands it over.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) tcp: TcpStream,
    pub(crate) peer: SocketAddr,
    /// The listening socket's address (the port's, on one of its addresses).
    pub(crate) listening: SocketAddr,
}

impl Gate {
    pub(crate) fn new(events: EventBus, buffers: Budget) -> Self {
        Self {
            events,
            connections: TaskTracker::new(),
            next_id: AtomicU64::new(1),
            buffers,
        }
    }

    fn emit(&self, port: &Port, kind: EventKind) {
        self.events.emit(port.event(kind));
    }

    /// Decide what happens to an accepted connection, with the room its listener held.
    pub(crate) fn handle(
        &self,
        port: &Arc<Port>,
        service: &Arc<dyn Service>,
        ticket: Ticket,
        accepted: Accepted,
    ) {
        let peer = accepted.peer;
        if let Some(left) = port.take_reset() {
            // A zero linger makes the close a reset (RST), not a goodbye (FIN).
            let _ = socket2::SockRef::from(&accepted.tcp).set_linger(Some(Duration::ZERO));
            self.emit(port, EventKind::ConnectionReset { peer, left });
            if left == 0 {
                let why = "every connection it was asked for was reset";
                self.emit(port, EventKind::fault_ended("reset", why));
            }
            return;
        }
        match port.admit(peer.ip().to_canonical(), ticket) {
            Admission::Serve(admitted) => self.serve(port, service, accepted, admitted),
            Admission::Refuse(why, permit) => {
                self.emit(
                    port,
                    EventKind::ConnectionLimited {
                        peer,
                        limit: why.key(),
                    },
                );
                self.refuse(port, service, accepted, why, permit);
            }
            Admission::Drop(why) => {
                self.emit(
                    port,
                    EventKind::ConnectionLimited {
                        peer,
                        limit: why.key(),
                    },
                );
                // Dropping the stream closes it: no room even to say why.
            }
            Admission::Deny(rule) => {
                self.emit(port, EventKind::ConnectionDenied { peer, rule });
                // Dropping the stream closes it at once: the service never sees it.
            }
        }
    }

    fn conn(&self, service: &'static str, accepted: Accepted) -> (Conn, Arc<ByteCounts>, u64) {
        let Accepted {
            tcp,
            peer,
            listening,
        } = accepted;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // The exact local address (which of the machine's addresses the client used);
        // the listening address if the socket already died.
        let local = tcp.local_addr().unwrap_or(listening);
        // Small request/response protocols want each write on the wire at once.
        let _ = tcp.set_nodelay(true);
        let counts = Arc::new(ByteCounts::default());
        let conn = Conn {
            stream: ConnStream::new(tcp, counts.clone()),
            info: ConnInfo {
                id,
                service,
                local,
                peer,
                tls: None,
            },
            buffers: self.buffers.clone(),
        };
        (conn, counts, id)
    }

    /// Hand an admitted connection to its service in a task of its own. The admission (the
    /// port's connection slot and the source's count) is released when the connection ends.
    fn serve(
        &self,
        port: &Arc<Port>,
        service: &Arc<dyn Service>,
        accepted: Accepted,
        admitted: Admitted,
    ) {
        let (mut conn, counts, id) = self.conn(service.name(), accepted);
        conn.stream = conn
            .stream
            .with_faults(port.toxics.faults())
            .with_deadlines(port.deadlines(service.as_ref()));
        let (number, name) = (port.number, service.name());
        let (peer, local) = (conn.info.peer, conn.info.local);
        // `tls` is filled in by TLS services once the handshake is done, so that the
        // connection's closing line shows it.
        let span = tracing::info_span!(
            "conn", id, peer = %Addr(peer), local = %Addr(local), port = number, service = name,
            tls = tracing::field::Empty
        );
        let closing = Closing {
            events: self.events.clone(),
            id,
            port: number,
            service: name,
            peer,
            counts,
            started: Instant::now(),
            error: None,
        };
        // The service's future is made here, not in the task: the task then holds only what
        // it waits on (this future, the port's cut signal, the closing line), not a second
        // room for the connection it hands over (bench/README.md, memory per connection).
        let serving = service.clone().serve(conn, port.shutdown.clone());
        let cut = port.cut_signal();

        // Counted twice: among every connection (shutdown waits for those) and among its
        // port's (removing the port waits for those).
        self.connections.spawn(
            port.connections.track_future(
                async move {
                    let _admitted = admitted;
                    // In the task, not the accept loop: its log line is written on whichever
                    // worker runs the connection.
                    closing.opened(local);
                    closing.end(match until_raised(&cut, serving).await {
                        Some(result) => result.err().map(|e| in_words(&*e)),
                        None => Some(
                            "closed by switchboard: the port was disabled, or the \
                                 shutdown deadline passed"
                                .to_owned(),
                        ),
                    });
                }
                .instrument(span),
            ),
        );
    }

    /// Let the service turn the connection away in its own terms, in a task of its own.
    fn refuse(
        &self,
        port: &Port,
        service: &Arc<dyn Service>,
        accepted: Accepted,
        why: Refusal,
        permit: OwnedSemaphorePermit,
    ) {
        let number = accepted.listening.port();
        let (conn, _, id) = self.conn(service.name(), accepted);
        let span = tracing::info_span!("refused", id, peer = %Addr(conn.info.peer), port = number, service = service.name());
        let refusing = service.clone().refuse(conn, why, port.shutdown.clone());
        let cut = port.cut_signal();
        self.connections.spawn(
            port.connections.track_future(
                async move {
                    let _permit = permit;
                    until_raised(&cut, refusing).await;
                }
                .instrument(span),
            ),
        );
    }
}

/// Run `work` to its end, or until `signal` is raised: `None` then. Waiting for the signal
/// is cheap on each of the connection task's many wake-ups (see [`Signal::raised`]).
async fn until_raised<F: Future>(signal: &Signal, work: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        output = work => Some(output),
        () = signal.raised() => None,
    }
}

/// A connection's two events: "opened" when its task starts, "closed" when this is dropped —
/// when the service returns, and also when it panics, so that no connection is ever counted
/// as open forever.
struct Closing {
    events: EventBus,
    id: u64,
    port: u16,
    service: &'static str,
    peer: SocketAddr,
    counts: Arc<ByteCounts>,
    started: Instant,
    error: Option<String>,
}

impl Closing {
    /// The connection's "opened" event, with the address the client reached.
    fn opened(&self, local: SocketAddr) {
        self.events.emit(Event::new(
            self.port,
            self.service,
            EventKind::ConnectionOpened {
                id: self.id,
                peer: self.peer,
                local,
            },
        ));
    }

    /// The connection has ended, with `error` if it failed: its closing line is written now.
    fn end(mut self, error: Option<String>) {
        self.error = error;
    }
}

/// An error and its causes, each once: hyper's "error writing a body to connection" says
/// nothing without the I/O error under it ("the client took no byte for 30s").
fn in_words(error: &(dyn std::error::Error + 'static)) -> String {
    let mut words = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let more = error.to_string();
        if !words.contains(&more) {
            words.push_str(": ");
            words.push_str(&more);
        }
        cause = error.source();
    }
    words
}

impl Drop for Closing {
    fn drop(&mut self) {
        let error = self.error.take().or_else(|| {
            std::thread::panicking()
                .then(|| "the service panicked (a bug in switchboard)".to_owned())
        });
        self.events.emit(Event::new(
            self.port,
            self.service,
            EventKind::ConnectionClosed {
                id: self.id,
                peer: self.peer,
                bytes_in: self.counts.received(),
                bytes_out: self.counts.sent(),
                duration: self.started.elapsed(),
                error,
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use switchboard_core::{BoxError, Protocol, Shutdown};
    use tokio::net::TcpListener;

    use super::*;
    use crate::port::PortSpec;

    /// A service with a bug: it panics on every connection.
    struct Panics;

    #[async_trait]
    impl Service for Panics {
        fn name(&self) -> &'static str {
            "panics"
        }

        async fn serve(self: Arc<Self>, _: Conn, _: Shutdown) -> Result<(), BoxError> {
            panic!("a bug in the service");
        }
    }

    #[tokio::test]
    async fn a_service_that_panics_is_closed_counted_and_gives_its_slot_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listening = listener.local_addr().unwrap();
        let _client = TcpStream::connect(listening).await.unwrap();
        let (tcp, peer) = listener.accept().await.unwrap();

        let gate = Gate::new(EventBus::new(), Budget::default());
        let mut events = gate.events.subscribe();
        let spec = PortSpec::new(listening.port(), "panics", 1);
        let port = Arc::new(Port::new(
            &spec,
            (spec.port, vec![listening]),
            crate::port::Origin::StartUp,
            &crate::SupervisorSettings::default(),
            &gate.events,
        ));
        let service: Arc<dyn Service> = Arc::new(Panics);
        let ticket = port.try_ticket().unwrap();
        let accepted = Accepted {
            tcp,
            peer,
            listening,
        };
        gate.handle(&port, &service, ticket, accepted);

        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let timed = events.recv().await.unwrap();
                if let EventKind::ConnectionClosed { error, .. } = &timed.event.kind {
                    return error.clone();
                }
            }
        })
        .await
        .expect("no closed event after the panic");
        assert_eq!(
            closed.as_deref(),
            Some("the service panicked (a bug in switchboard)")
        );
        gate.connections.close();
        gate.connections.wait().await;
        let counts = gate
            .events
            .metrics()
            .port(listening.port(), Protocol::Tcp, "panics");
        assert_eq!((counts.accepted, counts.active), (1, 0));
        assert!(
            matches!(port.try_ticket(), Some(Ticket::Serve(_))),
            "the panicked connection's slot is free again"
        );
    }

    #[tokio::test]
    async fn work_that_ends_first_gives_its_output() {
        let signal = Signal::new();
        assert_eq!(until_raised(&signal, async { 7 }).await, Some(7));
    }

    #[tokio::test]
    async fn raising_ends_work_that_is_waiting() {
        let signal = Signal::new();
        let (started, mut running) = tokio::sync::mpsc::unbounded_channel();
        let waiting = tokio::spawn({
            let (signal, started) = (signal.clone(), started.clone());
            async move {
                until_raised(&signal, async {
                    let _ = started.send(());
                    std::future::pending::<()>().await;
                })
                .await
            }
        });
        // This work keeps waking its task, and the signal's token is not polled on those
        // wake-ups; the raise must still be seen.
        let busy = tokio::spawn({
            let signal = signal.clone();
            async move {
                until_raised(&signal, async {
                    let _ = started.send(());
                    loop {
                        tokio::task::yield_now().await;
                    }
                })
                .await
            }
        });
        // Both are under way before the signal is raised.
        running.recv().await.unwrap();
        running.recv().await.unwrap();
        signal.raise();
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            (waiting.await.unwrap(), busy.await.unwrap())
        })
        .await
        .expect("the raise was not noticed");
        assert_eq!(outcome, (None, None));
    }

    #[tokio::test]
    async fn a_signal_raised_before_the_start_ends_it_at_once() {
        let signal = Signal::new();
        signal.raise();
        assert_eq!(
            until_raised(&signal, std::future::pending::<u8>()).await,
            None
        );
    }
}
