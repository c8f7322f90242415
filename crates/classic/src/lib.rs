//! The classic builtins of inetd, the ancestor of every supervisor that hands connections
//! to services by port: discard (RFC 863, port 9), daytime (RFC 867, port 13), chargen
//! (RFC 864, port 19) and time (RFC 868, port 37). echo (RFC 862, port 7) has its own
//! crate, the shortest example of all.
//!
//! Each is "a program listening on a port" at its smallest, so each is kept short and
//! commented as a teaching example. None is in the built-in table: add a row
//! (`[[port]] port = 13, service = "daytime"`).
//!
//! Each also answers over UDP (a row with `protocol = "udp"`): there every datagram that
//! arrives is a request, answered with at most one datagram ([`DatagramService`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use switchboard_core::{BoxError, Conn, DatagramService, Service, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// discard (RFC 863): reads whatever arrives and throws it away; sends nothing.
#[derive(Debug, Default)]
pub struct DiscardService;

#[async_trait]
impl Service for DiscardService {
    fn name(&self) -> &'static str {
        "discard"
    }

    async fn serve(self: Arc<Self>, conn: Conn, shutdown: Shutdown) -> Result<(), BoxError> {
        let mut stream = conn.stream;
        // Copy everything into the sink (the `/dev/null` of async I/O) until the client
        // closes its side; then close ours.
        let mut sink = tokio::io::sink();
        tokio::select! {
            copied = tokio::io::copy(&mut stream, &mut sink) => { copied?; }
            () = shutdown.requested() => {}
        }
        stream.shutdown().await?;
        Ok(())
    }
}

/// Over UDP, discard receives and says nothing.
impl DatagramService for DiscardService {
    fn name(&self) -> &'static str {
        "discard"
    }

    fn answer(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// daytime (RFC 867): sends the date and time as one line of text, then closes. The RFC
/// fixes no format; this is its example's, in UTC:
/// `Tuesday, December 01, 2026 13:46:48-UTC`.
#[derive(Debug, Default)]
pub struct DaytimeService;

#[async_trait]
impl Service for DaytimeService {
    fn name(&self) -> &'static str {
        "daytime"
    }

    async fn serve(self: Arc<Self>, conn: Conn, _: Shutdown) -> Result<(), BoxError> {
        let mut stream = conn.stream;
        stream
            .write_all(daytime(time::OffsetDateTime::now_utc())?.as_bytes())
            .await?;
        stream.shutdown().await?;
        Ok(())
    }
}

/// Over UDP, whatever the datagram says, the answer is the date and time.
impl DatagramService for DaytimeService {
    fn name(&self) -> &'static str {
        "daytime"
    }

    fn answer(&self, _: &[u8]) -> Option<Vec<u8>> {
        daytime(time::OffsetDateTime::now_utc())
            .ok()
            .map(String::into_bytes)
    }
}

fn daytime(now: time::OffsetDateTime) -> Result<String, BoxError> {
    let format = time::macros::format_description!(
        "[weekday], [month repr:long] [day], [year] [hour]:[minute]:[second]-UTC\r\n"
    );
    Ok(now.format(format)?)
}

/// time (RFC 868): sends the seconds since 1900-01-01 00:00 UTC as 4 bytes, most
/// significant first, then closes. (The count wraps in 2036; RFC 868 says so too.)
#[derive(Debug, Default)]
pub struct TimeService;

/// Seconds from 1900-01-01 (RFC 868's epoch) to 1970-01-01 (Unix's).
const SECONDS_1900_TO_1970: u64 = 2_208_988_800;

#[async_trait]
impl Service for TimeService {
    fn name(&self) -> &'static str {
        "time"
    }

    async fn serve(self: Arc<Self>, conn: Conn, _: Shutdown) -> Result<(), BoxError> {
        let mut stream = conn.stream;
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        stream.write_all(&rfc868(unix.as_secs())).await?;
        stream.shutdown().await?;
        Ok(())
    }
}

/// Over UDP, whatever the datagram says, the answer is the 4 bytes of the time.
impl DatagramService for TimeService {
    fn name(&self) -> &'static str {
        "time"
    }

    fn answer(&self, _: &[u8]) -> Option<Vec<u8>> {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(rfc868(unix.as_secs()).to_vec())
    }
}

/// The 32 bits RFC 868 sends for `unix_seconds`.
fn rfc868(unix_seconds: u64) -> [u8; 4] {
    // Modulo 2^32: the count wraps, as the RFC's 32 bits do.
    let since_1900 = (unix_seconds + SECONDS_1900_TO_1970) as u32;
    since_1900.to_be_bytes()
}

/// chargen (RFC 864): sends lines of 72 printable characters until the client closes,
/// each line starting one character further along the 95 printable ASCII characters;
/// anything the client sends is ignored. TCP's flow control is its only brake: it sends as
/// fast as the client reads.
///
/// Over UDP there is no stream to keep full: each datagram is answered with one datagram
/// of whole lines, at most 512 characters as the RFC says, going on where the last answer
/// left off.
#[derive(Debug, Default)]
pub struct ChargenService {
    /// The pattern's line the next UDP answer starts with.
    next_line: AtomicUsize,
}

/// Whole lines in one UDP answer: RFC 864 allows at most 512 characters.
const LINES_PER_DATAGRAM: usize = 512 / (LINE + 2);

impl DatagramService for ChargenService {
    fn name(&self) -> &'static str {
        "chargen"
    }

    fn answer(&self, _: &[u8]) -> Option<Vec<u8>> {
        let first = self
            .next_line
            .fetch_add(LINES_PER_DATAGRAM, Ordering::Relaxed);
        let lines = first..first + LINES_PER_DATAGRAM;
        Some(
            lines
                .flat_map(|n| chargen_line(n % PRINTABLE.len()))
                .collect(),
        )
    }
}

/// The printable ASCII characters, `' '` to `'~'`.
const PRINTABLE: std::ops::RangeInclusive<u8> = b' '..=b'~';
const LINE: usize = 72;

/// Line `n` of chargen's endless pattern, with its CR LF.
fn chargen_line(n: usize) -> [u8; LINE + 2] {
    let count = PRINTABLE.len();
    let mut line = [0u8; LINE + 2];
    for (i, byte) in line[..LINE].iter_mut().enumerate() {
        *byte = b' ' + ((n + i) % count) as u8;
    }
    line[LINE..].copy_from_slice(b"\r\n");
    line
}

#[async_trait]
impl Service for ChargenService {
    fn name(&self) -> &'static str {
        "chargen"
    }

    async fn serve(self: Arc<Self>, conn: Conn, shutdown: Shutdown) -> Result<(), BoxError> {
        let (mut reader, mut writer) = tokio::io::split(conn.stream);
        // One full turn of the pattern (95 lines) is sent again and again.
        let turn: Vec<u8> = (0..PRINTABLE.len()).flat_map(chargen_line).collect();
        let send = repeat(&mut writer, &turn);
        let until_closed = async {
            let mut ignored = [0u8; 1024];
            while reader.read(&mut ignored).await? > 0 {}
            Ok::<(), std::io::Error>(()) // the client closed: stop sending
        };
        tokio::select! {
            sent = send => match sent? {},
            closed = until_closed => closed?,
            () = shutdown.requested() => {}
        }
        Ok(())
    }
}

/// Send `bytes` again and again; only an error ends it.
async fn repeat(
    writer: &mut (impl AsyncWriteExt + Unpin),
    bytes: &[u8],
) -> std::io::Result<std::convert::Infallible> {
    loop {
        writer.write_all(bytes).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daytime_is_the_rfc_s_example_format() {
        let at = time::macros::datetime!(2026-12-01 13:46:48 UTC);
        assert_eq!(
            daytime(at).unwrap(),
            "Tuesday, December 01, 2026 13:46:48-UTC\r\n"
        );
    }

    #[test]
    fn time_counts_from_1900() {
        // RFC 868's own examples: 1970-01-01 is 2,208,988,800; 1980-01-01 is 2,524,521,600.
        assert_eq!(u32::from_be_bytes(rfc868(0)), 2_208_988_800);
        assert_eq!(u32::from_be_bytes(rfc868(315_532_800)), 2_524_521_600);
    }

    #[test]
    fn chargen_lines_rotate_through_the_printable_characters() {
        let first = chargen_line(0);
        assert!(first.starts_with(b" !\"#$%&'()*+,-./0123"));
        assert_eq!(first.len(), 74);
        assert!(first.ends_with(b"\r\n"));
        assert!(
            chargen_line(1).starts_with(b"!\"#$"),
            "one character further"
        );
        assert_eq!(chargen_line(95), first, "95 lines make a full turn");
    }

    #[test]
    fn chargen_over_udp_answers_whole_lines_and_goes_on_where_it_left_off() {
        let chargen = ChargenService::default();
        let first = chargen.answer(b"").unwrap();
        assert_eq!(first.len(), 6 * 74, "six whole lines fit in 512 characters");
        assert_eq!(&first[..74], &chargen_line(0));
        let second = chargen.answer(b"anything").unwrap();
        assert_eq!(&second[..74], &chargen_line(6));
    }
}
