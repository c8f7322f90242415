//! One SMTP session's protocol state, and what each command does to it. No I/O here: a
//! command line goes in, replies come out in a buffer, and [`Next`] tells the driver what
//! to do (read the message, start TLS, close). That keeps every reply testable without a
//! socket.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, Error as ParseError, MAIL_BODY_BINARYMIME, MAIL_SMTPUTF8, MailFrom,
    RcptTo, Request,
};
use switchboard_mail::Chaos;

use crate::chaos::{self, ChaosPoint};
use switchboard_mail::Envelope;

use crate::reply::{self, Reply, chaos_reply, write_multiline};
use crate::settings::{AuthPolicy, MAX_COMMAND_LINE, SmtpSettings};

/// What the driver does after a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Answer the next command.
    Continue,
    /// `354` was sent: read the message.
    Data,
    /// `220` was sent for STARTTLS: start the TLS handshake.
    StartTls,
    /// Send what is buffered and close the connection.
    Close,
}

/// The mail transaction between MAIL and the end of DATA.
#[derive(Debug)]
struct Transaction {
    from: String,
    smtputf8: bool,
    rcpts: Vec<String>,
}

/// Where an AUTH exchange stands, between its 334 challenges.
#[derive(Debug)]
enum AuthStep {
    Plain,
    LoginUser,
    LoginPassword { user: String },
}

#[derive(Debug)]
pub(crate) struct Session {
    settings: Arc<SmtpSettings>,
    hostname: Arc<str>,
    chaos: Chaos,
    /// STARTTLS can be offered on this connection (a certificate exists, not in TLS yet).
    tls_offered: bool,
    /// The connection is encrypted.
    secure: bool,
    helo: Option<String>,
    esmtp: bool,
    auth_user: Option<String>,
    auth_step: Option<AuthStep>,
    transaction: Option<Transaction>,
    /// Error replies in a row.
    errors: u32,
    /// Chaos triggers whose last `First` failure this session used, for the driver to
    /// report (a sans-I/O session emits no events itself).
    spent: Vec<ChaosPoint>,
}

impl Session {
    pub(crate) fn new(
        settings: Arc<SmtpSettings>,
        hostname: Arc<str>,
        chaos: Chaos,
        tls_offered: bool,
        secure: bool,
    ) -> Self {
        Self {
            settings,
            hostname,
            chaos,
            tls_offered,
            secure,
            helo: None,
            esmtp: false,
            auth_user: None,
            auth_step: None,
            transaction: None,
            errors: 0,
            spent: Vec::new(),
        }
    }

    /// Fire `point`'s chaos trigger: the reply if it fires.
    pub(crate) fn chaos(&mut self, point: ChaosPoint) -> Option<u16> {
        let fired = chaos::fire(&self.chaos, point)?;
        if fired.spent {
            self.spent.push(point);
        }
        Some(fired.code)
    }

    /// The chaos triggers used up since the last call.
    pub(crate) fn take_spent(&mut self) -> Vec<ChaosPoint> {
        std::mem::take(&mut self.spent)
    }

    pub(crate) fn greeting(&self, out: &mut Vec<u8>) {
        Reply::owned(220, "", format!("{} ESMTP switchboard", self.hostname)).write_to(out);
    }

    #[cfg(test)]
    pub(crate) fn is_secure(&self) -> bool {
        self.secure
    }

    /// RFC 3207 4.2: after the handshake the client starts over, and nothing learnt in
    /// plaintext (EHLO, AUTH, a transaction) carries over.
    pub(crate) fn tls_started(&mut self) {
        self.secure = true;
        self.tls_offered = false;
        self.helo = None;
        self.esmtp = false;
        self.auth_user = None;
        self.auth_step = None;
        self.transaction = None;
        self.errors = 0;
    }

    /// Write `reply`, and count it: after `max_errors` error replies in a row, close.
    pub(crate) fn reply(&mut self, reply: Reply, out: &mut Vec<u8>) -> Next {
        tracing::debug!(
            code = reply.code,
            status = reply.status,
            "S: {} {}",
            reply.code,
            reply.text
        );
        reply.write_to(out);
        if !reply.is_error() {
            self.errors = 0;
            return Next::Continue;
        }
        self.errors += 1;
        if self.errors >= self.settings.max_errors {
            reply::TOO_MANY_ERRORS.write_to(out);
            return Next::Close;
        }
        Next::Continue
    }

    /// A command line longer than the protocol allows.
    pub(crate) fn line_too_long(&mut self, out: &mut Vec<u8>) -> Next {
        self.auth_step = None;
        self.reply(reply::LINE_TOO_LONG, out)
    }

    /// Answer one command line (its line ending included).
    pub(crate) fn handle(&mut self, line: &[u8], out: &mut Vec<u8>) -> Next {
        if let Some(step) = self.auth_step.take() {
            return self.auth_response(step, line, out);
        }
        if line.len() > MAX_COMMAND_LINE && !starts_with_ignore_case(line, b"AUTH ") {
            return self.reply(reply::LINE_TOO_LONG, out);
        }
        // Text from a command is echoed in replies (EHLO's name, MAIL's address); a control
        // character there would reach the client's terminal or log (found by fuzzing). C1
        // controls count too: bytes that are not UTF-8 are echoed as U+FFFD, but a valid
        // two-byte sequence such as C2 87 is echoed as the control U+0087 (also fuzzing).
        if let Some(control) = first_control_character(line) {
            return self.reply(
                Reply::owned(
                    501,
                    "5.5.2",
                    format!(
                        "Syntax error: control character U+{:04X} in the command",
                        u32::from(control)
                    ),
                ),
                out,
            );
        }
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request,
            Err(error) => return self.reply(parse_error(error), out),
        };
        tracing::debug!(command = request.name(), "C: {}", request.name());
        match request {
            Request::Ehlo { host } => self.hello(&host, true, out),
            Request::Helo { host } => self.hello(&host, false, out),
            Request::Mail { from } => {
                let reply = self.mail(&from);
                self.reply(reply, out)
            }
            Request::Rcpt { to } => {
                let reply = self.rcpt(&to, line);
                self.reply(reply, out)
            }
            Request::Data => self.data(line, out),
            Request::Rset => {
                if has_arguments(line, "RSET") {
                    return self.reply(Reply::new(501, "5.5.4", "RSET takes no parameters"), out);
                }
                self.transaction = None;
                self.reply(reply::OK, out)
            }
            Request::Noop { .. } => self.reply(reply::OK, out),
            Request::Vrfy { .. } => self.reply(
                Reply::new(
                    252,
                    "2.5.0",
                    "Cannot VRFY user, but will accept mail for it",
                ),
                out,
            ),
            Request::Help { .. } => self.reply(
                Reply::new(
                    214,
                    "2.0.0",
                    "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
                ),
                out,
            ),
            Request::Quit => {
                let bye = Reply::owned(
                    221,
                    "2.0.0",
                    format!("{} closing connection", self.hostname),
                );
                self.reply(bye, out);
                Next::Close
            }
            Request::StartTls => self.starttls(line, out),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, &initial_response, out),
            Request::Expn { .. }
            | Request::Lhlo { .. }
            | Request::Bdat { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.reply(reply::NOT_IMPLEMENTED, out),
        }
    }

    fn hello(&mut self, host: &str, extended: bool, out: &mut Vec<u8>) -> Next {
        // A greeting resets any transaction in progress (RFC 5321 4.1.4).
        self.transaction = None;
        self.helo = Some(host.to_owned());
        self.esmtp = extended;
        self.errors = 0;
        let first = format!("{} greets {host}", self.hostname);
        if !extended {
            Reply::owned(250, "", first).write_to(out);
            return Next::Continue;
        }
        let mut lines = vec![
            first,
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.settings.max_message_bytes),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if self.tls_offered {
            lines.push("STARTTLS".to_owned());
        }
        if self.settings.auth != AuthPolicy::Off {
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        lines.push("HELP".to_owned());
        write_multiline(250, &lines, out);
        Next::Continue
    }

    fn mail(&mut self, from: &MailFrom<std::borrow::Cow<'_, str>>) -> Reply {
        if self.helo.is_none() {
            return reply::BAD_SEQUENCE_HELO;
        }
        if self.transaction.is_some() {
            return Reply::new(
                503,
                "5.5.1",
                "Sender already given; send RSET to start over",
            );
        }
        if self.settings.auth == AuthPolicy::Required && self.auth_user.is_none() {
            return Reply::new(530, "5.7.0", "Authentication required");
        }
        if from.flags & MAIL_BODY_BINARYMIME != 0 {
            return Reply::new(555, "5.5.4", "BODY=BINARYMIME is not supported");
        }
        if from.size > self.settings.max_message_bytes {
            return Reply::owned(
                552,
                "5.3.4",
                format!(
                    "Message size exceeds the maximum of {} bytes",
                    self.settings.max_message_bytes
                ),
            );
        }
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        if !smtputf8 && !from.address.is_ascii() {
            return Reply::new(
                553,
                "5.6.7",
                "A non-ASCII address needs the SMTPUTF8 parameter",
            );
        }
        if let Some(code) = self.chaos(ChaosPoint::Sender) {
            return chaos_reply(code, "Sender");
        }
        self.transaction = Some(Transaction {
            from: from.address.to_string(),
            smtputf8,
            rcpts: Vec::new(),
        });
        Reply::owned(250, "2.1.0", format!("Sender <{}> OK", from.address))
    }

    fn rcpt(&mut self, to: &RcptTo<std::borrow::Cow<'_, str>>, line: &[u8]) -> Reply {
        let Some(transaction) = &self.transaction else {
            return Reply::new(503, "5.5.1", "Need MAIL before RCPT");
        };
        if transaction.rcpts.len() >= self.settings.max_recipients {
            return Reply::new(452, "4.5.3", "Too many recipients");
        }
        let address = if to.address.is_empty() {
            // The parser gives "" for both <postmaster> (valid) and <> (not a recipient).
            if memchr::memmem::find(line, b"<>").is_some() {
                return Reply::new(501, "5.1.3", "Bad recipient address syntax");
            }
            "postmaster".to_owned()
        } else {
            to.address.to_string()
        };
        if !transaction.smtputf8 && !address.is_ascii() {
            return Reply::new(553, "5.6.7", "A non-ASCII address needs SMTPUTF8 on MAIL");
        }
        if let Some(code) = self.chaos(ChaosPoint::Recipient) {
            return chaos_reply(code, "Recipient");
        }
        let reply = Reply::owned(250, "2.1.5", format!("Recipient <{address}> OK"));
        if let Some(transaction) = &mut self.transaction {
            transaction.rcpts.push(address);
        }
        reply
    }

    fn data(&mut self, line: &[u8], out: &mut Vec<u8>) -> Next {
        if has_arguments(line, "DATA") {
            return self.reply(Reply::new(501, "5.5.4", "DATA takes no parameters"), out);
        }
        let reply = match &self.transaction {
            None => Reply::new(503, "5.5.1", "Need MAIL and RCPT before DATA"),
            Some(t) if t.rcpts.is_empty() => Reply::new(554, "5.5.1", "No valid recipients"),
            Some(_) => {
                self.reply(Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"), out);
                return Next::Data;
            }
        };
        self.reply(reply, out)
    }

    /// The transaction's envelope, for storing the message that DATA delivered; the
    /// transaction ends either way.
    pub(crate) fn finish_transaction(&mut self, peer: std::net::SocketAddr) -> Option<Envelope> {
        let transaction = self.transaction.take()?;
        Some(Envelope {
            mail_from: transaction.from,
            rcpt_to: transaction.rcpts,
            helo: self.helo.clone().unwrap_or_default(),
            peer,
            tls: self.secure,
            auth_user: self.auth_user.clone(),
            // The driver knows the connection; it fills this in.
            arrival: Default::default(),
        })
    }

    fn starttls(&mut self, line: &[u8], out: &mut Vec<u8>) -> Next {
        let reply = if self.secure {
            Reply::new(503, "5.5.1", "Already using TLS")
        } else if !self.tls_offered {
            Reply::new(454, "4.7.0", "TLS not available")
        } else if has_arguments(line, "STARTTLS") {
            Reply::new(501, "5.5.4", "STARTTLS takes no parameters")
        } else {
            self.reply(Reply::new(220, "2.0.0", "Ready to start TLS"), out);
            return Next::StartTls;
        };
        self.reply(reply, out)
    }

    fn auth(&mut self, mechanism: u64, initial: &str, out: &mut Vec<u8>) -> Next {
        let refusal = if self.settings.auth == AuthPolicy::Off {
            Some(reply::NOT_IMPLEMENTED)
        } else if !self.esmtp {
            Some(Reply::new(503, "5.5.1", "Send EHLO before AUTH"))
        } else if self.auth_user.is_some() {
            Some(Reply::new(503, "5.5.1", "Already authenticated"))
        } else if self.transaction.is_some() {
            Some(Reply::new(
                503,
                "5.5.1",
                "AUTH is not allowed during a mail transaction",
            ))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return self.reply(refusal, out);
        }
        match (mechanism, initial.is_empty()) {
            (AUTH_PLAIN, true) => self.challenge(AuthStep::Plain, "", out),
            (AUTH_PLAIN, false) => self.auth_response(AuthStep::Plain, initial.as_bytes(), out),
            // "Username:" and "Password:", base64-encoded, as LOGIN clients expect.
            (AUTH_LOGIN, true) => self.challenge(AuthStep::LoginUser, "VXNlcm5hbWU6", out),
            (AUTH_LOGIN, false) => self.auth_response(AuthStep::LoginUser, initial.as_bytes(), out),
            _ => self.reply(
                Reply::new(
                    504,
                    "5.5.4",
                    "Unrecognized authentication type; use PLAIN or LOGIN",
                ),
                out,
            ),
        }
    }

    fn challenge(&mut self, step: AuthStep, text: &'static str, out: &mut Vec<u8>) -> Next {
        self.auth_step = Some(step);
        self.reply(Reply::new(334, "", text), out)
    }

    /// A client's answer to a 334 challenge (or an initial response). Any credentials
    /// are accepted: this is a test server. The user name is kept with the messages; the
    /// password is dropped here and never stored or logged.
    fn auth_response(&mut self, step: AuthStep, line: &[u8], out: &mut Vec<u8>) -> Next {
        let answer = trim_line_end(line);
        if answer == b"*" {
            return self.reply(Reply::new(501, "5.0.0", "Authentication cancelled"), out);
        }
        let decoded = match answer {
            b"=" => Vec::new(),
            _ => match BASE64.decode(answer) {
                Ok(decoded) => decoded,
                Err(_) => {
                    return self.reply(
                        Reply::new(501, "5.5.2", "Invalid base64 in AUTH response"),
                        out,
                    );
                }
            },
        };
        match step {
            AuthStep::Plain => {
                // authorization-id NUL authentication-id NUL password (RFC 4616)
                let fields: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
                let [authzid, authcid, _password] = fields[..] else {
                    return self
                        .reply(Reply::new(501, "5.5.2", "Malformed PLAIN credentials"), out);
                };
                let user = if authcid.is_empty() { authzid } else { authcid };
                self.authenticated(String::from_utf8_lossy(user).into_owned(), out)
            }
            AuthStep::LoginUser => {
                let user = String::from_utf8_lossy(&decoded).into_owned();
                self.challenge(AuthStep::LoginPassword { user }, "UGFzc3dvcmQ6", out)
            }
            AuthStep::LoginPassword { user } => self.authenticated(user, out),
        }
    }

    fn authenticated(&mut self, user: String, out: &mut Vec<u8>) -> Next {
        if let Some(code) = self.chaos(ChaosPoint::Authentication) {
            return self.reply(chaos_reply(code, "Authentication"), out);
        }
        tracing::info!(user, "authenticated as {user}");
        self.auth_user = Some(user);
        self.reply(Reply::new(235, "2.7.0", "Authentication successful"), out)
    }
}

fn parse_error(error: ParseError) -> Reply {
    match error {
        ParseError::UnknownCommand => reply::NOT_RECOGNIZED,
        ParseError::InvalidSenderAddress => Reply::new(501, "5.1.7", "Bad sender address syntax"),
        ParseError::InvalidRecipientAddress => {
            Reply::new(501, "5.1.3", "Bad recipient address syntax")
        }
        ParseError::SyntaxError { syntax } => {
            Reply::owned(501, "5.5.2", format!("Syntax: {syntax}"))
        }
        ParseError::InvalidParameter { param } => {
            Reply::owned(501, "5.5.4", format!("Invalid value for {param}"))
        }
        ParseError::UnsupportedParameter { param } => {
            Reply::owned(555, "5.5.4", format!("Unsupported parameter {param}"))
        }
        _ => Reply::new(500, "5.5.2", "Syntax error"),
    }
}

/// The first control character (C0, DEL or C1) in a command line, its line ending aside.
fn first_control_character(line: &[u8]) -> Option<char> {
    let line = trim_line_end(line);
    // Nearly every command is ASCII, where a byte is a character: no decoding needed.
    if line.is_ascii() {
        return line
            .iter()
            .find(|b| b.is_ascii_control())
            .map(|&b| char::from(b));
    }
    String::from_utf8_lossy(line)
        .chars()
        .find(|c| c.is_control())
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whether a command that takes no parameters was given some.
fn has_arguments(line: &[u8], verb: &str) -> bool {
    trim_line_end(line).trim_ascii().len() > verb.len()
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests;
