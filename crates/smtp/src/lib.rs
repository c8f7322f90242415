//! switchboard's SMTP service: a receiver that speaks real SMTP (RFC 5321 with PIPELINING,
//! SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS and AUTH), captures every
//! message it accepts into the mail store, and never relays anything.
//!
//! # Layout
//!
//! - `lib.rs`: [`SmtpService`] and the driver: reading, writing, timeouts, STARTTLS.
//! - `session.rs`: the protocol state and every command's reply (no I/O).
//! - `codec.rs`: command lines and the message after DATA (dot-unstuffing, limits).
//! - `reply.rs`: reply codes and their wording.
//! - `settings.rs`: [`SmtpSettings`], the `[smtp]` table.
//! - `chaos.rs`: firing Mailpit's chaos triggers (kept in the mail crate).
//! - `fuzzing.rs`: entry points of the fuzz targets (a session on arbitrary bytes).

mod chaos;
mod codec;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod reply;
mod session;
mod settings;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use switchboard_core::{
    BoxError, Budget, Claim, Conn, ConnInfo, Event, EventBus, EventKind, Refusal, Service, Shutdown,
};
use switchboard_mail::{Arrival, Chaos, MailStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

use crate::chaos::ChaosPoint;
use crate::codec::{Data, DataReader, Line, LineReader};
use crate::reply::{Reply, chaos_reply};
use crate::session::{Next, Session};

pub use settings::{AuthPolicy, MAX_AUTH_LINE, MAX_COMMAND_LINE, SmtpSettings};

/// How much to read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// SMTP, by default on port 25 with STARTTLS; or implicit TLS ("submissions", port 465).
pub struct SmtpService {
    name: &'static str,
    settings: Arc<SmtpSettings>,
    hostname: Arc<str>,
    store: MailStore,
    chaos: Chaos,
    tls: Option<TlsAcceptor>,
    implicit_tls: bool,
    events: EventBus,
}

impl std::fmt::Debug for SmtpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpService")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SmtpService {
    /// Plain SMTP; STARTTLS is offered when `tls` is given.
    pub fn new(
        settings: SmtpSettings,
        store: MailStore,
        chaos: Chaos,
        tls: Option<Arc<ServerConfig>>,
        events: EventBus,
    ) -> Self {
        Self {
            name: "smtp",
            hostname: hostname(&settings),
            settings: Arc::new(settings),
            store,
            chaos,
            tls: tls.map(TlsAcceptor::from),
            implicit_tls: false,
            events,
        }
    }

    /// SMTP inside TLS from the first byte (RFC 8314 "submissions").
    pub fn implicit_tls(
        settings: SmtpSettings,
        store: MailStore,
        chaos: Chaos,
        tls: Arc<ServerConfig>,
        events: EventBus,
    ) -> Self {
        Self {
            name: "smtps",
            hostname: hostname(&settings),
            settings: Arc::new(settings),
            store,
            chaos,
            tls: Some(TlsAcceptor::from(tls)),
            implicit_tls: true,
            events,
        }
    }
}

/// Where a message came in: the port, the service, and the TLS session and how it began.
fn arrival(info: &ConnInfo, implicit_tls: bool) -> Arrival {
    let begun = if implicit_tls {
        "implicit TLS"
    } else {
        "STARTTLS"
    };
    Arrival {
        local: Some(info.local),
        service: info.service.to_owned(),
        tls: info.tls.as_ref().map(|tls| format!("{tls} ({begun})")),
    }
}

fn hostname(settings: &SmtpSettings) -> Arc<str> {
    match &settings.hostname {
        Some(name) => Arc::from(name.as_str()),
        None => Arc::from(gethostname::gethostname().to_string_lossy().as_ref()),
    }
}

/// How a stretch of the session on one stream ended.
enum End<S> {
    Closed,
    /// The client asked for STARTTLS and got 220; the stream is handed back for the handshake.
    StartTls(S),
}

#[async_trait]
impl Service for SmtpService {
    fn name(&self) -> &'static str {
        self.name
    }

    /// `command_timeout` and `data_timeout`.
    fn keeps_own_clocks(&self) -> bool {
        true
    }

    async fn serve(self: Arc<Self>, conn: Conn, shutdown: Shutdown) -> Result<(), BoxError> {
        let Conn {
            stream,
            mut info,
            buffers,
        } = conn;
        if self.implicit_tls {
            let stream = self.handshake(stream, &mut info).await?;
            let mut session = self.session(false, true);
            let cx = Context::new(&info, &buffers, &shutdown);
            self.drive(&mut session, stream, true, cx).await?;
            return Ok(());
        }

        let mut session = self.session(self.tls.is_some(), false);
        let cx = Context::new(&info, &buffers, &shutdown);
        let End::StartTls(stream) = self.drive(&mut session, stream, true, cx).await? else {
            return Ok(());
        };
        let stream = self.handshake(stream, &mut info).await?;
        session.tls_started();
        // The session refuses a second STARTTLS, so this always ends closed.
        let cx = Context::new(&info, &buffers, &shutdown);
        self.drive(&mut session, stream, false, cx).await?;
        Ok(())
    }

    /// Over a limit: `421 4.7.0`, the SMTP way to say "not now, try later" (RFC 5321 3.8),
    /// after the TLS handshake on an implicit-TLS port.
    async fn refuse(self: Arc<Self>, conn: Conn, why: Refusal, _shutdown: Shutdown) {
        let reply = Reply::owned(
            421,
            "4.7.0",
            format!("{} {why}; try again later", self.hostname),
        );
        let mut out = Vec::new();
        reply.write_to(&mut out);
        let Conn {
            stream, mut info, ..
        } = conn;
        if self.implicit_tls {
            if let Ok(mut stream) = self.handshake(stream, &mut info).await {
                let _ = stream.write_all(&out).await;
                let _ = stream.shutdown().await;
            }
        } else {
            let mut stream = stream;
            let _ = stream.write_all(&out).await;
            let _ = stream.shutdown().await;
        }
    }
}

impl SmtpService {
    /// Say which chaos triggers this session used up: those faults have ended.
    fn report_spent(&self, session: &mut Session, info: &ConnInfo) {
        for point in session.take_spent() {
            let fault = format!("chaos {}", point.name());
            let why = "its First commands have failed; the trigger is off";
            let ended = EventKind::fault_ended(fault, why);
            self.events
                .emit(Event::new(info.port(), info.service, ended));
        }
    }

    fn session(&self, tls_offered: bool, secure: bool) -> Session {
        Session::new(
            self.settings.clone(),
            self.hostname.clone(),
            self.chaos.clone(),
            tls_offered,
            secure,
        )
    }

    async fn handshake<S>(&self, stream: S, info: &mut ConnInfo) -> Result<TlsStream<S>, BoxError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(acceptor) = &self.tls else {
            return Err("TLS was asked for, but there is no certificate".into());
        };
        let stream = switchboard_certs::accept(
            acceptor,
            stream,
            info,
            self.settings.handshake_timeout,
            "smtp handshake_timeout",
            &self.events,
        )
        .await?;
        Ok(stream)
    }

    /// Run the session on `stream` until it closes or asks for TLS.
    async fn drive<S>(
        &self,
        session: &mut Session,
        mut stream: S,
        greet: bool,
        cx: Context<'_>,
    ) -> Result<End<S>, BoxError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Context {
            info,
            buffers,
            shutdown,
        } = cx;
        let mut input = BytesMut::with_capacity(READ_CHUNK);
        let mut out = Vec::with_capacity(1024);
        let mut lines = LineReader::default();
        if greet {
            session.greeting(&mut out);
        }
        // Each command must arrive whole within command_timeout of the last reply. The clock
        // is not reset by a partial line, so a client trickling a byte at a time is still
        // cut off (RFC 5321 4.5.3.2.7 speaks of the wait for the next command).
        let mut deadline = Instant::now() + self.settings.command_timeout;
        loop {
            // Answer every command already received before reading more, collecting the
            // replies: a pipelining client gets all of them in one write.
            while let Some(line) = lines.next_line(&mut input, MAX_AUTH_LINE) {
                let next = match line {
                    Line::TooLong => session.line_too_long(&mut out),
                    Line::Complete(line) => session.handle(&line, &mut out),
                };
                self.report_spent(session, info);
                match next {
                    Next::Continue => {}
                    Next::Close => {
                        stream.write_all(&out).await?;
                        let _ = stream.shutdown().await;
                        return Ok(End::Closed);
                    }
                    Next::StartTls => {
                        stream.write_all(&out).await?;
                        stream.flush().await?;
                        if !input.is_empty() {
                            // Commands sent in plaintext after STARTTLS must never run
                            // inside the TLS session (CVE-2011-0411): drop them.
                            tracing::warn!(
                                bytes = input.len(),
                                "discarding {} byte(s) sent after STARTTLS, before the handshake",
                                input.len()
                            );
                        }
                        return Ok(End::StartTls(stream));
                    }
                    Next::Data => {
                        stream.write_all(&out).await?;
                        out.clear();
                        let claim = buffers.claim();
                        let reading = self.read_message(&mut stream, &mut input, &claim, shutdown);
                        match reading.await? {
                            MessageEnd::Complete(data) => {
                                // The message counts against `max_buffered_bytes` until the
                                // store has it (and bounds it by `[mail] max_bytes`).
                                self.store_message(session, data, info, &mut out).await;
                                drop(claim);
                                self.report_spent(session, info);
                            }
                            MessageEnd::Failed(reply) => {
                                // Whatever was received of the message is dropped.
                                reply.write_to(&mut out);
                                stream.write_all(&out).await?;
                                let _ = stream.shutdown().await;
                                return Ok(End::Closed);
                            }
                            MessageEnd::Vanished => return Ok(End::Closed),
                        }
                    }
                }
                deadline = Instant::now() + self.settings.command_timeout;
            }
            if !out.is_empty() {
                stream.write_all(&out).await?;
                out.clear();
            }
            input.reserve(READ_CHUNK);
            let read = tokio::select! {
                biased;
                () = shutdown.requested() => {
                    reply::SHUTTING_DOWN.write_to(&mut out);
                    stream.write_all(&out).await?;
                    let _ = stream.shutdown().await;
                    return Ok(End::Closed);
                }
                read = tokio::time::timeout_at(deadline, stream.read_buf(&mut input)) => read,
            };
            match read {
                Err(_) => {
                    reply::COMMAND_TIMEOUT.write_to(&mut out);
                    stream.write_all(&out).await?;
                    let _ = stream.shutdown().await;
                    return Ok(End::Closed);
                }
                Ok(Ok(0)) => return Ok(End::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(error.into()),
            }
        }
    }

    /// Read the message after 354, within the DATA deadline.
    async fn read_message<S>(
        &self,
        stream: &mut S,
        input: &mut BytesMut,
        claim: &Claim,
        shutdown: &Shutdown,
    ) -> Result<MessageEnd, BoxError>
    where
        S: AsyncRead + Unpin,
    {
        let mut reader = DataReader::new(
            self.settings.max_message_bytes,
            self.settings.max_line_bytes,
            claim,
        );
        let deadline = Instant::now() + self.settings.data_timeout;
        loop {
            if let Some(data) = reader.feed(input) {
                return Ok(MessageEnd::Complete(data));
            }
            input.reserve(READ_CHUNK);
            let read = tokio::select! {
                biased;
                // A message still in DATA at shutdown is not acknowledged.
                () = shutdown.requested() => return Ok(MessageEnd::Failed(reply::SHUTTING_DOWN)),
                read = tokio::time::timeout_at(deadline, stream.read_buf(input)) => read,
            };
            match read {
                Err(_) => return Ok(MessageEnd::Failed(reply::DATA_TIMEOUT)),
                Ok(Ok(0)) => return Ok(MessageEnd::Vanished),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(error.into()),
            }
        }
    }

    /// Store a complete message and say so; only after it is stored does the client hear
    /// 250.
    async fn store_message(
        &self,
        session: &mut Session,
        data: Data,
        info: &ConnInfo,
        out: &mut Vec<u8>,
    ) {
        let envelope = session.finish_transaction(info.peer).map(|mut envelope| {
            envelope.arrival = arrival(info, self.implicit_tls);
            envelope
        });
        let chaos = match &data {
            Data::Message(_) => session.chaos(ChaosPoint::Data),
            _ => None,
        };
        let reply = match (data, envelope) {
            (Data::Message(_), Some(_)) if chaos.is_some() => {
                self.store.note_rejected();
                chaos_reply(chaos.unwrap_or(554), "Message")
            }
            (Data::Message(bytes), Some(envelope)) => {
                // The store tells the bus it captured the message.
                match self.store.insert(envelope, bytes.into(), info).await {
                    Ok(message) => {
                        Reply::owned(250, "2.0.0", format!("OK: queued as {}", message.id))
                    }
                    Err(error) => {
                        tracing::error!(%error, "could not store a message");
                        Reply::new(451, "4.3.0", "Could not store the message; try again later")
                    }
                }
            }
            (Data::NoRoom, _) => {
                self.store.note_rejected();
                Reply::new(
                    452,
                    "4.3.1",
                    "Insufficient system storage: messages being received fill \
                     [supervisor] max_buffered_bytes; try again later",
                )
            }
            (Data::TooBig, _) => {
                self.store.note_rejected();
                Reply::owned(
                    552,
                    "5.3.4",
                    format!(
                        "Message exceeds the maximum size of {} bytes",
                        self.settings.max_message_bytes
                    ),
                )
            }
            (Data::LongLine(length), _) => {
                self.store.note_rejected();
                Reply::owned(
                    554,
                    "5.6.0",
                    format!(
                        "Message has a line of {length} bytes; lines may have at most {} \
                         with CRLF (RFC 5321 4.5.3.1.6)",
                        self.settings.max_line_bytes
                    ),
                )
            }
            (Data::Message(_), None) => Reply::new(503, "5.5.1", "No transaction in progress"),
        };
        session.reply(reply, out);
    }
}

/// What one run of a session needs of its connection.
#[derive(Clone, Copy)]
struct Context<'a> {
    info: &'a ConnInfo,
    /// `[supervisor] max_buffered_bytes`: what messages being received may hold.
    buffers: &'a Budget,
    shutdown: &'a Shutdown,
}

impl<'a> Context<'a> {
    fn new(info: &'a ConnInfo, buffers: &'a Budget, shutdown: &'a Shutdown) -> Self {
        Self {
            info,
            buffers,
            shutdown,
        }
    }
}

/// How reading a message ended.
enum MessageEnd {
    Complete(Data),
    /// Not acknowledged: the connection ends with this reply.
    Failed(Reply),
    /// The client closed the connection mid-message; nothing is stored.
    Vanished,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::Script;

    #[tokio::test]
    async fn pipelined_commands_get_their_replies_in_one_write() {
        let store = MailStore::in_memory(10);
        let settings = SmtpSettings {
            hostname: Some("mx.test".into()),
            ..SmtpSettings::default()
        };
        let service = SmtpService::new(
            settings,
            store.clone(),
            Chaos::default(),
            None,
            EventBus::new(),
        );
        let mut session = service.session(false, false);
        let info = ConnInfo {
            id: 1,
            service: "smtp",
            local: "127.0.0.1:25".parse().unwrap(),
            peer: "127.0.0.1:5000".parse().unwrap(),
            tls: None,
        };
        let mut stream = Script::new(
            b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n\
                     Subject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n"
                .to_vec(),
            usize::MAX,
        );
        let end = service
            .drive(
                &mut session,
                &mut stream,
                true,
                Context::new(&info, &Budget::default(), &Shutdown::new()),
            )
            .await
            .unwrap();
        assert!(matches!(end, End::Closed));
        let writes: Vec<String> = stream
            .writes
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        // The greeting goes first, on its own: a client must wait for it. The client then
        // sent everything up to DATA at once, so EHLO, MAIL, RCPT, RCPT and 354 share one
        // write; then the 250 for the message shares one with the 221 for QUIT.
        assert_eq!(writes.len(), 3, "{writes:#?}");
        assert_eq!(writes[0], "220 mx.test ESMTP switchboard\r\n");
        assert!(writes[1].starts_with("250-mx.test greets c\r\n"));
        assert!(writes[1].ends_with(
            "250 2.1.0 Sender <a@x.test> OK\r\n250 2.1.5 Recipient <b@x.test> OK\r\n\
             250 2.1.5 Recipient <c@x.test> OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
        ));
        let id = &store.list()[0].id;
        assert_eq!(
            writes[2],
            format!("250 2.0.0 OK: queued as {id}\r\n221 2.0.0 mx.test closing connection\r\n")
        );
        assert_eq!(&store.list()[0].raw[..], b"Subject: hi\r\n\r\nhello\r\n");
    }
}
