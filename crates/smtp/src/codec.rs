//! Framing: cutting the byte stream into command lines, and reading the message that
//! follows DATA. Both are pure state machines over a buffer (no I/O), so that they can be
//! tested byte by byte and fuzzed; "need more bytes" is a state, never an error.

use bytes::{Buf, BytesMut};
use switchboard_core::Claim;

/// The result of looking for a command line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line, with its line ending.
    Complete(BytesMut),
    /// A line longer than allowed ended here; its bytes were discarded.
    TooLong,
}

/// Cuts command lines out of the input. Lines end with LF (CRLF normally; a bare LF is
/// accepted for commands). A line longer than `max` is never buffered whole: its bytes are
/// dropped as they arrive and [`Line::TooLong`] is reported when it ends.
#[derive(Debug, Default)]
pub(crate) struct LineReader {
    discarding: bool,
}

impl LineReader {
    pub(crate) fn next_line(&mut self, buf: &mut BytesMut, max: usize) -> Option<Line> {
        match memchr::memchr(b'\n', buf) {
            Some(end) => {
                let line = buf.split_to(end + 1);
                if std::mem::take(&mut self.discarding) || line.len() > max {
                    Some(Line::TooLong)
                } else {
                    Some(Line::Complete(line))
                }
            }
            None => {
                if buf.len() > max {
                    buf.clear();
                    self.discarding = true;
                }
                None
            }
        }
    }
}

/// How a DATA phase ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Data {
    /// The message, dot-unstuffed, without the terminating `.` line.
    Message(Vec<u8>),
    /// The message exceeded the size limit; its bytes were discarded.
    TooBig,
    /// Messages being received used up `[supervisor] max_buffered_bytes`; its bytes were
    /// discarded.
    NoRoom,
    /// A line exceeded the line limit (its length in bytes, CRLF included).
    LongLine(usize),
}

/// Reads the message after `354` up to the line that holds a single dot.
///
/// Only CRLF ends a line, and only `CRLF . CRLF` ends the message: a bare LF followed by
/// a dot is data. Servers that also accepted `LF . LF` let an attacker smuggle a second
/// message past filters that did not ("SMTP smuggling"). A dot at the start of a line is
/// removed (RFC 5321 4.5.2); the client added it.
#[derive(Debug)]
pub(crate) struct DataReader<'a> {
    /// What the message's bytes are charged to.
    claim: &'a Claim,
    no_room: bool,
    max_bytes: usize,
    max_line: usize,
    message: Vec<u8>,
    /// Bytes of the current line already consumed (it did not end in the buffer).
    line_so_far: usize,
    too_big: bool,
    longest_bad_line: usize,
}

impl<'a> DataReader<'a> {
    pub(crate) fn new(max_bytes: usize, max_line: usize, claim: &'a Claim) -> Self {
        Self {
            claim,
            no_room: false,
            max_bytes,
            max_line,
            message: Vec::new(),
            line_so_far: 0,
            too_big: false,
            longest_bad_line: 0,
        }
    }

    /// Consume what `buf` holds; `Some` once the final dot has been read. Bytes after the
    /// dot line stay in `buf`: they are the next commands.
    pub(crate) fn feed(&mut self, buf: &mut BytesMut) -> Option<Data> {
        loop {
            let at_line_start = self.line_so_far == 0;
            match find_crlf(buf) {
                Some(end) => {
                    let len = end + 2;
                    if at_line_start && &buf[..len] == b".\r\n" {
                        buf.advance(len);
                        return Some(self.finish());
                    }
                    let skip = usize::from(at_line_start && buf[0] == b'.');
                    self.append(&buf[skip..len]);
                    self.check_line(self.line_so_far + len);
                    buf.advance(len);
                    self.line_so_far = 0;
                }
                None => {
                    // Wait until a line start can be told apart from the final ".\r\n".
                    if at_line_start && buf.len() < 3 {
                        return None;
                    }
                    // Keep a trailing CR: it may be half of the CRLF that ends the line.
                    let take = buf.len() - usize::from(buf.last() == Some(&b'\r'));
                    if take == 0 {
                        return None;
                    }
                    let skip = usize::from(at_line_start && buf[0] == b'.');
                    self.append(&buf[skip..take]);
                    self.line_so_far += take;
                    self.check_line(self.line_so_far);
                    buf.advance(take);
                    return None;
                }
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.too_big || self.no_room {
            return;
        }
        if self.message.len() + bytes.len() > self.max_bytes {
            self.too_big = true;
            self.message = Vec::new(); // no need to hold what will not be kept
        } else if !self.claim.take(bytes.len()) {
            self.no_room = true;
            self.message = Vec::new();
        } else {
            self.message.extend_from_slice(bytes);
        }
    }

    fn check_line(&mut self, len: usize) {
        if len > self.max_line {
            self.longest_bad_line = self.longest_bad_line.max(len);
        }
    }

    fn finish(&mut self) -> Data {
        if self.too_big {
            Data::TooBig
        } else if self.no_room {
            Data::NoRoom
        } else if self.longest_bad_line > 0 {
            Data::LongLine(self.longest_bad_line)
        } else {
            Data::Message(std::mem::take(&mut self.message))
        }
    }
}

/// Where the first CRLF in `buf` starts. A message is read line by line, so this runs for
/// every line: `memchr` for the CR needs no set-up, where `memmem::find` would build a
/// searcher on each call.
fn find_crlf(buf: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\r', buf).find(|&cr| buf.get(cr + 1) == Some(&b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = LineReader::default();
        let mut buf = BytesMut::from(input);
        std::iter::from_fn(|| reader.next_line(&mut buf, max)).collect()
    }

    #[test]
    fn a_message_that_finds_the_budget_spent_is_read_to_its_dot_and_dropped() {
        let budget = switchboard_core::Budget::new(16);
        let claim = budget.claim();
        let mut reader = DataReader::new(1024, 1000, &claim);
        let mut buf = BytesMut::from(&b"Subject: more than sixteen bytes\r\n.\r\nQUIT\r\n"[..]);
        assert_eq!(reader.feed(&mut buf), Some(Data::NoRoom));
        assert_eq!(&buf[..], b"QUIT\r\n", "the next command is left to read");
        assert_eq!(claim.held(), 0, "nothing of it is held");
        let small = budget.claim();
        let mut reader = DataReader::new(1024, 1000, &small);
        let mut buf = BytesMut::from(&b"Hi\r\n.\r\n"[..]);
        assert_eq!(
            reader.feed(&mut buf),
            Some(Data::Message(b"Hi\r\n".to_vec()))
        );
        assert_eq!(small.held(), 4);
    }

    #[test]
    fn command_lines_end_with_lf() {
        assert_eq!(
            lines(b"EHLO a\r\nNOOP\nQUI", 100),
            vec![
                Line::Complete("EHLO a\r\n".into()),
                Line::Complete("NOOP\n".into())
            ]
        );
    }

    #[test]
    fn an_overlong_line_is_dropped_without_buffering_it() {
        let mut reader = LineReader::default();
        let mut buf = BytesMut::from(&[b'x'; 30][..]);
        assert_eq!(reader.next_line(&mut buf, 10), None);
        assert!(buf.is_empty(), "the overlong start is not kept");
        buf.extend_from_slice(b"xxxx\r\nNOOP\r\n");
        assert_eq!(reader.next_line(&mut buf, 10), Some(Line::TooLong));
        assert_eq!(
            reader.next_line(&mut buf, 10),
            Some(Line::Complete("NOOP\r\n".into()))
        );
        assert_eq!(lines(b"0123456789AB\r\n", 10), vec![Line::TooLong]);
    }

    /// Feed `input` split at every possible point, in two pieces; every split must give
    /// the same result as feeding it whole.
    fn data_every_split(input: &[u8], max_bytes: usize, max_line: usize) -> (Data, Vec<u8>) {
        let claim = switchboard_core::Budget::default().claim();
        let mut whole = BytesMut::from(input);
        let expected = DataReader::new(max_bytes, max_line, &claim)
            .feed(&mut whole)
            .expect("complete");
        for split in 0..=input.len() {
            let mut reader = DataReader::new(max_bytes, max_line, &claim);
            let mut buf = BytesMut::from(&input[..split]);
            let mut result = reader.feed(&mut buf);
            buf.extend_from_slice(&input[split..]);
            if result.is_none() {
                result = reader.feed(&mut buf);
            }
            assert_eq!(result.as_ref(), Some(&expected), "split at {split}");
            assert_eq!(buf, whole, "left over after split at {split}");
        }
        (expected, whole.to_vec())
    }

    #[test]
    fn dot_stuffing_is_undone_byte_exactly() {
        let (data, rest) = data_every_split(
            b"Subject: dots\r\n\r\n.x\r\n..\r\n...\r\nend.\r\n.\r\nQUIT\r\n",
            1000,
            1000,
        );
        assert_eq!(
            data,
            Data::Message(b"Subject: dots\r\n\r\nx\r\n.\r\n..\r\nend.\r\n".to_vec())
        );
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn an_empty_message_is_just_the_dot() {
        let (data, _) = data_every_split(b".\r\n", 10, 10);
        assert_eq!(data, Data::Message(Vec::new()));
    }

    #[test]
    fn bare_lf_dot_does_not_end_the_message() {
        let (data, rest) = data_every_split(b"a\n.\nb\r\n.\r\n", 100, 100);
        assert_eq!(data, Data::Message(b"a\n.\nb\r\n".to_vec()));
        assert!(rest.is_empty());
        // ".\nMAIL …" is one line (only CRLF ends lines); its leading dot is unstuffed.
        let (data, _) = data_every_split(b"a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n", 100, 100);
        assert_eq!(
            data,
            Data::Message(b"a\r\n\nMAIL FROM:<x@y>\r\n".to_vec()),
            "no smuggling"
        );
    }

    #[test]
    fn a_bare_cr_is_part_of_its_line() {
        let (data, rest) = data_every_split(b"a\rb\r\r\n.\r.\r\n.\r\nQUIT\r\n", 100, 100);
        assert_eq!(data, Data::Message(b"a\rb\r\r\n\r.\r\n".to_vec()));
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn the_size_limit_counts_unstuffed_bytes() {
        let (data, _) = data_every_split(b"12345678\r\n.\r\n", 10, 100);
        assert_eq!(data, Data::Message(b"12345678\r\n".to_vec()));
        let (data, _) = data_every_split(b"123456789\r\n.\r\n", 10, 100);
        assert_eq!(data, Data::TooBig);
        let (data, _) = data_every_split(b"..2345678\r\n.\r\n", 10, 100);
        assert_eq!(data, Data::Message(b".2345678\r\n".to_vec()));
    }

    #[test]
    fn long_lines_are_measured_with_their_crlf() {
        let (data, _) = data_every_split(b"12345678\r\n.\r\n", 100, 10);
        assert!(matches!(data, Data::Message(_)));
        let (data, _) = data_every_split(b"ok\r\n123456789\r\nok\r\n.\r\n", 100, 10);
        assert_eq!(data, Data::LongLine(11));
    }
}
