//! Entry points for the fuzz targets in `fuzz/`, built for this crate's tests and with the
//! `fuzzing` feature. Each runs the real code on arbitrary bytes, with no socket, and
//! panics when a promise breaks; the fuzzer keeps such an input, and it becomes a test.

// Panicking on a broken promise is how a fuzz target reports it.
#![allow(clippy::panic)]

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use switchboard_core::{ConnInfo, EventBus, Shutdown};
use switchboard_mail::Chaos;
use switchboard_mail::MailStore;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::codec::{Data, DataReader};
use crate::{End, SmtpService, SmtpSettings};

/// A whole SMTP session over a scripted client: the first byte sets how many bytes each
/// read returns (1 to 64, so commands and messages arrive cut at every place), the rest
/// is what the client sends. Checks that every reply is well formed, and that every
/// message acknowledged with 250 is in the store, and only those. Returns how many were.
pub fn session(input: &[u8]) -> usize {
    let Some((&first, client)) = input.split_first() else {
        return 0;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| panic!("no runtime: {e}"));
    runtime.block_on(async {
        let store = MailStore::in_memory(64);
        let settings = SmtpSettings {
            hostname: Some("fuzz.test".into()),
            max_message_bytes: 4096,
            max_line_bytes: 256,
            max_recipients: 4,
            max_errors: 1000,
            ..SmtpSettings::default()
        };
        let service = SmtpService::new(
            settings,
            store.clone(),
            Chaos::default(),
            None,
            EventBus::new(),
        );
        // STARTTLS offered, so that its state changes are exercised; the "handshake" below
        // succeeds at once and the session goes on over the same script.
        let mut session = service.session(true, false);
        let mut stream = Script::new(client.to_vec(), usize::from(first % 64) + 1);
        let info = ConnInfo {
            id: 1,
            service: "smtp",
            local: ([127, 0, 0, 1], 25).into(),
            peer: ([127, 0, 0, 1], 40000).into(),
            tls: None,
        };
        let shutdown = Shutdown::new();
        let buffers = switchboard_core::Budget::default();
        let mut greet = true;
        while let Ok(End::StartTls(_)) = service
            .drive(
                &mut session,
                &mut stream,
                greet,
                crate::Context::new(&info, &buffers, &shutdown),
            )
            .await
        {
            session.tls_started();
            greet = false;
        }
        let output = stream.written();
        check_replies(&output);
        let acknowledged: Vec<&str> = output
            .split("\r\n")
            .filter_map(|line| line.strip_prefix("250 2.0.0 OK: queued as "))
            .collect();
        let stored = store.list();
        assert_eq!(
            acknowledged.len(),
            stored.len(),
            "acknowledged {acknowledged:?}, stored {}",
            stored.len()
        );
        for id in &acknowledged {
            let message = store
                .get(id)
                .unwrap_or_else(|| panic!("250 for {id}, not stored"));
            // What the API serves of a message must be computable for any message.
            let details = message.details();
            for part in details.attachments.iter().chain(&details.inline) {
                assert!(
                    message.part(&part.part_id).is_some(),
                    "part {}",
                    part.part_id
                );
            }
            let _ = message.headers();
        }
        acknowledged.len()
    })
}

/// Every line the server wrote is a reply: three digits from 200 to 599, then a space or a
/// hyphen, then text without control characters (client text echoed in a reply must not
/// break the reply's framing), and the output ends with CRLF.
fn check_replies(output: &str) {
    assert!(
        output.is_empty() || output.ends_with("\r\n"),
        "unterminated: {output:?}"
    );
    for line in output.split_terminator("\r\n") {
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not a reply: {line:?}"));
        assert!((200..600).contains(&code), "code {code} in {line:?}");
        assert!(
            matches!(line.as_bytes().get(3), Some(b' ' | b'-')),
            "{line:?}"
        );
        assert!(
            !line.chars().any(char::is_control),
            "control character in {line:?}"
        );
    }
}

/// The message reader after DATA: cutting the same input into reads of any size gives the
/// same outcome and leaves the same bytes behind, and a message read back after stuffing
/// its dots again comes out unchanged.
pub fn data(input: &[u8]) {
    let Some((&first, message)) = input.split_first() else {
        return;
    };
    let chunk = usize::from(first % 32) + 1;
    let whole = read_data(message, message.len().max(1));
    let pieces = read_data(message, chunk);
    assert_eq!(whole, pieces, "read whole vs. in reads of {chunk} bytes");
    if let (Some(Data::Message(body)), _) = &whole {
        // Lines end with CRLF only (a bare LF is data), so only after a CRLF is a dot
        // at a line start.
        let mut again = Vec::with_capacity(body.len() + 8);
        let mut line_start = true;
        for (i, &byte) in body.iter().enumerate() {
            if line_start && byte == b'.' {
                again.push(b'.');
            }
            again.push(byte);
            line_start = byte == b'\n' && i > 0 && body[i - 1] == b'\r';
        }
        // The reader keeps a message's last line ending; one without (it cannot happen:
        // the final dot follows a CRLF) would need one before the dot.
        if !again.is_empty() && !again.ends_with(b"\r\n") {
            return;
        }
        again.extend_from_slice(b".\r\n");
        let (round_trip, rest) = read_data(&again, again.len());
        assert_eq!(round_trip, Some(Data::Message(body.clone())));
        assert!(rest.is_empty());
    }
}

/// Feed `input` to a message reader `chunk` bytes at a time: how it ended (if it did), and
/// the bytes after the final dot (the next commands).
fn read_data(input: &[u8], chunk: usize) -> (Option<Data>, Vec<u8>) {
    let claim = switchboard_core::Budget::default().claim();
    let mut reader = DataReader::new(1024, 128, &claim);
    let mut buf = BytesMut::new();
    for (index, piece) in input.chunks(chunk).enumerate() {
        buf.extend_from_slice(piece);
        if let Some(done) = reader.feed(&mut buf) {
            let mut rest = buf.to_vec();
            rest.extend_from_slice(&input[((index + 1) * chunk).min(input.len())..]);
            return (Some(done), rest);
        }
    }
    (None, Vec::new())
}

/// A client that sends a fixed script, `chunk` bytes per read, then closes; and records
/// every write, one entry per write call.
pub(crate) struct Script {
    input: Vec<u8>,
    position: usize,
    chunk: usize,
    pub(crate) writes: Vec<Vec<u8>>,
}

impl Script {
    pub(crate) fn new(input: Vec<u8>, chunk: usize) -> Self {
        Self {
            input,
            position: 0,
            chunk,
            writes: Vec::new(),
        }
    }

    pub(crate) fn written(&self) -> String {
        String::from_utf8_lossy(&self.writes.concat()).into_owned()
    }
}

impl AsyncRead for Script {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (self.input.len() - self.position)
            .min(buf.remaining())
            .min(self.chunk);
        let start = self.position;
        buf.put_slice(&self.input[start..start + n]);
        self.position += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Script {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.push(buf.to_vec());
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_target_counts_what_was_acknowledged_however_the_input_is_cut() {
        let transcript = b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n\
                           Subject: one\r\n\r\n..dot\r\n.\r\nMAIL FROM:<a@x.test>\r\n\
                           RCPT TO:<b@x.test>\r\nDATA\r\nSubject: two\r\n\r\nx\r\n.\r\nQUIT\r\n";
        for chunk in [0u8, 1, 6, 63] {
            let mut input = vec![chunk];
            input.extend_from_slice(transcript);
            assert_eq!(session(&input), 2, "reads of {} bytes", chunk + 1);
        }
        // After STARTTLS the session starts over: the MAIL before EHLO is refused.
        let mut input = vec![0u8];
        input.extend_from_slice(b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@x.test>\r\n");
        assert_eq!(session(&input), 0);
    }

    #[test]
    #[should_panic(expected = "control character")]
    fn a_reply_with_a_control_character_is_caught() {
        check_replies("250 fine\r\n250 bell\u{7}\r\n");
    }

    #[test]
    fn the_data_target_finds_the_message_however_it_is_cut() {
        for chunk in [0u8, 1, 2, 31] {
            let mut input = vec![chunk];
            input.extend_from_slice(b"a\r\n..b\r\n.\r\nQUIT\r\n");
            data(&input);
            assert_eq!(
                read_data(&input[1..], usize::from(chunk) + 1),
                (
                    Some(Data::Message(b"a\r\n.b\r\n".to_vec())),
                    b"QUIT\r\n".to_vec()
                )
            );
        }
    }
}
