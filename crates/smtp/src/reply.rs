//! SMTP replies: a three-digit code, an enhanced status code (RFC 3463) and text.

use std::borrow::Cow;
use std::io::Write;

/// One reply line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    /// `class.subject.detail`; empty for replies that carry none (220, 334, 354).
    pub(crate) status: &'static str,
    pub(crate) text: Cow<'static, str>,
}

impl Reply {
    pub(crate) const fn new(code: u16, status: &'static str, text: &'static str) -> Self {
        Self {
            code,
            status,
            text: Cow::Borrowed(text),
        }
    }

    pub(crate) fn owned(code: u16, status: &'static str, text: String) -> Self {
        Self {
            code,
            status,
            text: Cow::Owned(text),
        }
    }

    /// 4xx and 5xx: the client got something wrong, or we cannot do it.
    pub(crate) fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Append the reply, CRLF-terminated, to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        // Copied piece by piece: `write!` into a Vec costs several times as much, and every
        // command is answered through here.
        out.extend_from_slice(itoa::Buffer::new().format(self.code).as_bytes());
        out.push(b' ');
        if !self.status.is_empty() {
            out.extend_from_slice(self.status.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(self.text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// A multi-line reply (`250-first`, `250-…`, `250 last`), e.g. for EHLO.
pub(crate) fn write_multiline(code: u16, lines: &[String], out: &mut Vec<u8>) {
    for (i, line) in lines.iter().enumerate() {
        let separator = if i + 1 == lines.len() { ' ' } else { '-' };
        let _ = write!(out, "{code}{separator}{line}\r\n");
    }
}

pub(crate) const OK: Reply = Reply::new(250, "2.0.0", "OK");
pub(crate) const BAD_SEQUENCE_HELO: Reply = Reply::new(503, "5.5.1", "Send EHLO or HELO first");
pub(crate) const NOT_RECOGNIZED: Reply = Reply::new(500, "5.5.1", "Command not recognized");
pub(crate) const LINE_TOO_LONG: Reply = Reply::new(500, "5.5.2", "Line too long");
pub(crate) const NOT_IMPLEMENTED: Reply = Reply::new(502, "5.5.1", "Command not implemented");
pub(crate) const TOO_MANY_ERRORS: Reply =
    Reply::new(421, "4.7.0", "Too many errors, closing connection");
pub(crate) const SHUTTING_DOWN: Reply =
    Reply::new(421, "4.3.2", "Service shutting down, closing connection");
pub(crate) const COMMAND_TIMEOUT: Reply = Reply::new(
    421,
    "4.4.2",
    "Timeout waiting for a command, closing connection",
);
pub(crate) const DATA_TIMEOUT: Reply = Reply::new(
    421,
    "4.4.2",
    "Timeout waiting for the message data, closing connection",
);

/// The reply of a chaos trigger: the configured code, a generic enhanced code of the same
/// class, and words that say it is a deliberate test fault.
pub(crate) fn chaos_reply(code: u16, what: &str) -> Reply {
    let status = if code < 500 { "4.0.0" } else { "5.0.0" };
    Reply::owned(
        code,
        status,
        format!("{what} rejected by a chaos trigger (a switchboard test fault)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_crlf_lines_with_enhanced_codes() {
        let mut out = Vec::new();
        OK.write_to(&mut out);
        Reply::new(354, "", "End data with <CR><LF>.<CR><LF>").write_to(&mut out);
        assert_eq!(
            out,
            b"250 2.0.0 OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
        );
    }

    #[test]
    fn multiline_replies_continue_with_a_dash() {
        let mut out = Vec::new();
        write_multiline(
            250,
            &[
                "host greets you".into(),
                "PIPELINING".into(),
                "8BITMIME".into(),
            ],
            &mut out,
        );
        assert_eq!(
            out,
            b"250-host greets you\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
    }
}
