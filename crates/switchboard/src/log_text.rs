//! How the text log writes a line, its time and its fields: the same bytes as
//! tracing-subscriber's defaults, for fewer instructions (every connection and every message
//! writes log lines).
//!
//! [`Line`] lays the line out (time, level, the spans it is in, its fields) as the default
//! `Full` format does, but with one `write_str` per fixed part, where the default goes
//! through `write!` and a style wrapper for each: the level, every span's name, braces and
//! colon. A colour terminal still gets the default's own layout (a person reading, not a
//! hot path).
//!
//! [`UtcTime`] writes the time (`2026-12-02T01:54:31.123456Z`) with one `write_str`, where the
//! default formats seven numbers with padding, one `write!` each.
//!
//! The default formatter keeps a client's bytes from reaching a terminal as escape sequences
//! by passing each message through a writer that escapes ESC, BEL, BS, FF, DEL and the C1
//! controls — one `write_char` call per character of the line. That was about a quarter of an
//! SMTP message's instructions (its "message captured" line). [`Fields`] escapes the same
//! characters in the same way, but scans for them and hands the text between them on in one
//! piece; a test below checks its lines against the default's, byte for byte.
//!
//! It escapes more than the default, in more places: every control character (CR and LF
//! among them, as `\r` and `\n`), the line and paragraph separators and the characters that
//! reorder text, in the message and in every field's value (the default passes a `%` field
//! as it is). Text from the network — an SMTP AUTH user name, a stub's URL — can then never
//! start a line of its own: one event is one line.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The text log's line (`fmt::layer().event_format(Line::new(UtcTime))`): the default `Full`
/// format with that clock and no target, byte for byte.
#[derive(Debug)]
pub(crate) struct Line<T> {
    timer: T,
    /// The default layout, for a colour terminal.
    coloured: Format<Full, T>,
}

impl<T: FormatTime + Clone> Line<T> {
    pub(crate) fn new(timer: T) -> Self {
        Line {
            coloured: tracing_subscriber::fmt::format()
                .with_timer(timer.clone())
                .with_target(false),
            timer,
        }
    }
}

impl<S, N, T> FormatEvent<S, N> for Line<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        if writer.has_ansi_escapes() {
            return self.coloured.format_event(ctx, writer, event);
        }
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_str(match *event.metadata().level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        })?;
        // The spans the line was written in, outermost first: `conn{id=7 peer=…}:`.
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The text log's clock (`fmt::layer().with_timer(UtcTime)`): UTC, to the microsecond.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UtcTime;

impl FormatTime for UtcTime {
    fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
        write_time(
            writer,
            time::OffsetDateTime::from(std::time::SystemTime::now()),
        )
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn write_time(out: &mut impl fmt::Write, at: time::OffsetDateTime) -> fmt::Result {
    let (year, month, day) = at.to_calendar_date();
    let (hour, minute, second, micros) = at.to_hms_micro();
    let Ok(year) = u32::try_from(year) else {
        return write!(
            out,
            "{year:05}-{:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z",
            u8::from(month)
        );
    };
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, u32::from(u8::from(month)));
    put(8, 2, u32::from(day));
    put(11, 2, u32::from(hour));
    put(14, 2, u32::from(minute));
    put(17, 2, u32::from(second));
    put(20, 6, micros);
    // Only ASCII digits went in.
    out.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}

/// The text log's field formatter (`fmt::layer().fmt_fields(Fields)`).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fields;

impl<'writer> FormatFields<'writer> for Fields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    /// `name=value`, with the name in italics and `=` dimmed on a colour terminal; the
    /// value escaped (see the module's docs) unless it is `escaped` already.
    fn named(&mut self, name: &str, value: &dyn fmt::Debug, escaped: bool) -> fmt::Result {
        if self.writer.has_ansi_escapes() {
            use nu_ansi_term::Style;
            let italic = Style::new().italic().paint(name);
            let equals = Style::new().dimmed().paint("=");
            write!(self.writer, "{italic}{equals}")?;
        } else {
            self.writer.write_str(name)?;
            self.writer.write_char('=')?;
        }
        match self.writer.sanitizes_ansi_escapes() && !escaped {
            true => EscapingWriter::write(&mut self.writer, format_args!("{value:?}")),
            false => write!(self.writer, "{value:?}"),
        }
    }

    /// Start the field: its name as the line shows it (without `r#`), or `None` if it is not
    /// written (an error before, or a field from the `log` crate, which the line's metadata
    /// showed already). Writes the space between fields.
    fn begin(&mut self, field: &Field) -> Option<&'static str> {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return None;
        }
        if self.first {
            self.first = false;
        } else if let Err(error) = self.writer.write_char(' ') {
            self.result = Err(error);
            return None;
        }
        Some(name.strip_prefix("r#").unwrap_or(name))
    }

    /// A field whose value's `Debug` text is known without formatting: a number, or a string
    /// that `Debug` would only put in quotes. Only for fields that
    /// [`plain_field`](Self::plain_field) allows.
    fn plain(&mut self, field: &Field, text: &str, quoted: bool) {
        if let Some(name) = self.begin(field) {
            self.result = write_plain(&mut self.writer, name, text, quoted);
        }
    }

    /// Whether a field can take the `plain` path: not the message, not on a colour terminal.
    fn plain_field(&self, field: &Field) -> bool {
        field.name() != "message" && !self.writer.has_ansi_escapes()
    }

    /// An integer field: its `Debug` text is its decimal digits.
    fn integer<I: itoa::Integer + fmt::Debug>(&mut self, field: &Field, value: I) {
        if self.plain_field(field) {
            self.plain(field, itoa::Buffer::new().format(value), false)
        } else {
            self.record_debug(field, &value)
        }
    }
}

/// `name=text`, or `name="text"`.
fn write_plain(writer: &mut Writer<'_>, name: &str, text: &str, quoted: bool) -> fmt::Result {
    writer.write_str(name)?;
    if quoted {
        writer.write_str("=\"")?;
        writer.write_str(text)?;
        writer.write_char('"')
    } else {
        writer.write_char('=')?;
        writer.write_str(text)
    }
}

/// Whether `str`'s `Debug` writes `text` as it is, between quotes: printable ASCII only,
/// without quotes or backslashes.
fn debug_as_is(text: &str) -> bool {
    text.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"))
        } else if self.plain_field(field) && debug_as_is(value) {
            self.plain(field, value, true)
        } else {
            self.record_debug(field, &value)
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value)
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value)
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let sanitize = self.writer.sanitizes_ansi_escapes();
        let error = Escaped::new(value, sanitize);
        match value.source() {
            Some(source) => {
                let (sources, equals) = if self.writer.has_ansi_escapes() {
                    use nu_ansi_term::Style;
                    let italic = Style::new().italic();
                    (
                        format!("{}{}", italic.paint(field.name()), italic.paint(".sources")),
                        Style::new().dimmed().paint("=").to_string(),
                    )
                } else {
                    (format!("{}.sources", field.name()), "=".to_owned())
                };
                let list = Sources {
                    first: source,
                    sanitize,
                };
                // The error and its sources are escaped each; the rest is the line's own.
                self.field(
                    field,
                    &format_args!("{error} {sources}{equals}{list}"),
                    true,
                )
            }
            None => self.field(field, &format_args!("{error}"), true),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, value, false)
    }
}

impl Visitor<'_> {
    /// Any field but a plain one: the message as it is written, others as `name=value`.
    fn field(&mut self, field: &Field, value: &dyn fmt::Debug, escaped: bool) {
        let Some(name) = self.begin(field) else {
            return;
        };
        self.result = match name {
            "message" if self.writer.sanitizes_ansi_escapes() && !escaped => {
                EscapingWriter::write(&mut self.writer, format_args!("{value:?}"))
            }
            "message" => write!(self.writer, "{value:?}"),
            name => self.named(name, value, escaped),
        };
    }
}

/// An error's sources, as a list: `["first", "second"]`.
struct Sources<'a> {
    first: &'a (dyn std::error::Error + 'static),
    sanitize: bool,
}

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.first);
        while let Some(error) = next {
            list.entry(&format_args!("{}", Escaped::new(error, self.sanitize)));
            next = error.source();
        }
        list.finish()
    }
}

/// A value whose text is escaped on its way out (when `sanitize` is on).
struct Escaped<T> {
    value: T,
    sanitize: bool,
}

impl<T> Escaped<T> {
    fn new(value: T, sanitize: bool) -> Self {
        Escaped { value, sanitize }
    }
}

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sanitize {
            EscapingWriter::write(f, format_args!("{}", self.value))
        } else {
            write!(f, "{}", self.value)
        }
    }
}

/// Passes text on, with the characters a terminal or a reader of lines could act on written
/// as escapes: CR, LF and TAB as `\r`, `\n`, `\t`, the other C0 controls and DEL as
/// `\x1b`, and the C1 controls (U+0080 to U+009F), the line and paragraph separators and the
/// characters that reorder text as `\u{85}`.
///
/// A message reaches it in many small pieces (each piece of literal text, each argument), so
/// it gathers them, up to [`HELD`] bytes, and scans and passes on the whole at once: one
/// scan and one write where there were one per piece, which was most of a message's cost.
struct EscapingWriter<'a, W: fmt::Write + ?Sized> {
    out: &'a mut W,
    held: [u8; HELD],
    len: usize,
}

/// How much text an [`EscapingWriter`] gathers before it passes it on: longer than most
/// log lines, small enough for the stack.
const HELD: usize = 256;

impl<W: fmt::Write + ?Sized> EscapingWriter<'_, W> {
    /// Write `args` to `out`, escaped.
    fn write(out: &mut W, args: fmt::Arguments<'_>) -> fmt::Result {
        let mut escaping = EscapingWriter {
            out,
            held: [0; HELD],
            len: 0,
        };
        escaping.write_fmt(args)?;
        escaping.pass_on()
    }

    /// Pass what is held on, escaped.
    fn pass_on(&mut self) -> fmt::Result {
        let len = std::mem::take(&mut self.len);
        // Only whole `&str`s went in, so this is UTF-8 and never fails.
        let text = std::str::from_utf8(&self.held[..len]).map_err(|_| fmt::Error)?;
        escape(self.out, text)
    }
}

impl<W: fmt::Write + ?Sized> fmt::Write for EscapingWriter<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if text.len() > HELD - self.len {
            self.pass_on()?;
            if text.len() > HELD {
                return escape(self.out, text);
            }
        }
        self.held[self.len..][..text.len()].copy_from_slice(text.as_bytes());
        self.len += text.len();
        Ok(())
    }
}

/// Write `text` to `out` with the characters a terminal or a reader of lines could act on
/// escaped.
fn escape<W: fmt::Write + ?Sized>(out: &mut W, mut text: &str) -> fmt::Result {
    // Every character to escape starts with one of the bytes `first_to_escape` looks for (a
    // C1 control's UTF-8 is 0xC2 then 0x80..=0x9F; U+2028 and the others from U+2000 start
    // with 0xE2), and none of them occurs inside another character's UTF-8, so the scan can
    // look at bytes and every cut falls on a character boundary.
    while let Some(at) = first_to_escape(text.as_bytes()) {
        out.write_str(&text[..at])?;
        let rest = &text[at..];
        let Some(c) = rest.chars().next() else {
            return Ok(());
        };
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\0'..='\x1f' | '\x7f' => write!(out, "\\x{:02x}", u32::from(c))?,
            '\u{80}'..='\u{9f}' => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            c if switchboard_files::is_hostile(c) => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            other => out.write_char(other)?,
        }
        text = &rest[c.len_utf8()..];
    }
    out.write_str(text)
}

/// Where the first byte is that starts a character to escape (see [`escape`]).
///
/// A log line is mostly plain text, so the scan tests sixteen bytes at a time with no branch
/// per byte (the compiler turns it into vector compares), and looks byte by byte only inside
/// a block that holds one.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    const BLOCK: usize = 16;
    let mut blocks = bytes.chunks_exact(BLOCK);
    let mut offset = 0;
    for block in &mut blocks {
        if block
            .iter()
            .fold(0, |any, &b| any | u8::from(starts_escape(b)))
            != 0
        {
            break;
        }
        offset += BLOCK;
    }
    bytes[offset..]
        .iter()
        .position(|&b| starts_escape(b))
        .map(|at| offset + at)
}

/// Whether `b` may start a character to escape: a C0 control, DEL, 0xC2 (a C1 control's
/// first byte, and also that of U+00A0 to U+00BF, which `escape` passes on as they are) or
/// 0xE2 (the first byte of U+2028, U+2029 and the characters that reorder text, and of
/// every other character from U+2000 to U+2FFF, passed on). Written with `|`, not `||` or
/// `matches!`, so that it compiles without branches.
fn starts_escape(b: u8) -> bool {
    (b < 0x20) | (b == 0x7f) | (b == 0xc2) | (b == 0xe2)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Failure {
        cause: std::io::Error,
    }
    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer \x1b[2J failure")
        }
    }
    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.cause)
        }
    }

    /// Terminal controls (which the default escapes in a message) between text that passes
    /// as it is, also from the two first bytes switchboard looks at (0xC2, 0xE2).
    const TERMINAL: &str = "a\x1b[31mred\x07\x08\x0c\x7f \u{85}\u{9f}\u{a0}é£ü ✓";
    /// All that, and what starts lines or reorders them.
    const HOSTILE: &str =
        "a\x1b[31mred\x07\x08\x0c\x7f \u{85}\u{9f}\u{a0}é£ü ✓\ttab\r\n\u{202e}\u{2028}\0\x01";

    /// Lines that put every kind of field through a formatter, with hostile text in each, at
    /// every level, outside any span and in nested ones (with fields and without); `shown`
    /// goes into a `%` field, which the default formatter passes on as it is.
    fn log_everything(hostile: &str, shown: &str) {
        let hostile = hostile.to_owned();
        tracing::warn!("outside every span");
        let span = tracing::info_span!("conn", id = 7, r#type = "smtp", peer = hostile);
        let _entered = span.enter();
        let inner = tracing::info_span!("bare");
        inner.in_scope(|| {
            tracing::error!("in two spans, the inner one without fields");
            tracing::debug!(size = 1u64, "debug");
            tracing::trace!("trace");
        });
        tracing::info!("plain");
        tracing::info!("message captured: {hostile} from <{hostile}>, {} bytes", 12);
        tracing::info!(
            message_id = hostile,
            size = 3u64,
            ok = true,
            "with fields {hostile}"
        );
        tracing::info!(%shown, ?hostile, "display and debug fields");
        tracing::info!(
            plain = "smtp",
            quoted = "a\"b",
            slash = "a\\b",
            empty = "",
            tab = "\t",
            max = u64::MAX,
            negative = i64::MIN,
            small = 25u16,
            r#type = 7i32,
            "plain fields"
        );
        let failure = Failure {
            cause: std::io::Error::other("inner \u{9b}31m cause"),
        };
        tracing::info!(
            error = &failure as &dyn std::error::Error,
            "an error with a source"
        );
        let alone = std::io::Error::other("alone \x1b]0;title\x07");
        tracing::info!(error = &alone as &dyn std::error::Error, "an error alone");
        tracing::info!(message = hostile, "log.target" = "skipped");
        tracing::info!("{}", "\u{c2}\u{7f}\u{c2}\u{80}x\u{1b}");
        // Longer than what the escaping writer holds at once: pieces that just fit, pieces
        // that do not, and one longer than the whole.
        let long = "é\x1b".repeat(100);
        tracing::info!(
            "{}{hostile}{}{hostile}",
            "x".repeat(HELD - 1),
            "y".repeat(HELD)
        );
        tracing::info!("{long}{long}{hostile}{long}");
    }

    /// A clock that always says the same, so that two runs' lines can be compared.
    #[derive(Clone, Copy)]
    struct Stopped;

    impl FormatTime for Stopped {
        fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
            writer.write_str("2026-12-02T01:54:31.123456Z")
        }
    }

    /// Every line `log_everything` writes, through switchboard's formatters (`ours`) or
    /// tracing-subscriber's defaults.
    fn lines(ours: bool, ansi: bool, hostile: &str, shown: &str) -> String {
        let out = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer({
                let out = out.clone();
                move || out.clone()
            })
            .with_ansi(ansi);
        let layer = if ours {
            layer
                .fmt_fields(Fields)
                .event_format(Line::new(Stopped))
                .boxed()
        } else {
            layer.with_timer(Stopped).with_target(false).boxed()
        };
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || log_everything(hostile, shown));
        let bytes = out.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).expect("log lines are UTF-8")
    }

    #[test]
    fn times_are_written_as_the_default_clock_writes_them() {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut checked = 0;
        for seconds in [
            0,
            951_782_400,
            1_796_176_471,
            4_102_444_799,
            253_402_300_799,
        ]
        .into_iter()
        .chain(std::iter::repeat_with(|| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 20) as i64 % 253_402_300_800
        }))
        .take(10_000)
        {
            let nanos =
                i128::from(seconds) * 1_000_000_000 + i128::from(seconds % 1_000_000) * 1_000;
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).expect("in range");
            let mut ours = String::new();
            write_time(&mut ours, at).expect("writes");
            assert_eq!(ours, at.format(&format).expect("formats"), "{seconds}");
            checked += 1;
        }
        assert_eq!(checked, 10_000);
        let mut ours = String::new();
        write_time(&mut ours, time::OffsetDateTime::UNIX_EPOCH).expect("writes");
        assert_eq!(ours, "1970-01-01T00:00:00.000000Z");
    }

    /// Where the default escapes what switchboard escapes (a message's terminal controls),
    /// or nothing is to be escaped, the lines are the same.
    #[test]
    fn lines_are_byte_for_byte_the_default_formatters() {
        for ansi in [false, true] {
            let ours = lines(true, ansi, TERMINAL, "plain é ✓ \u{a0}");
            let theirs = lines(false, ansi, TERMINAL, "plain é ✓ \u{a0}");
            assert_eq!(ours, theirs, "ansi {ansi}");
            assert_eq!(ours.matches("INFO").count(), 11, "{ours}");
            for level in ["WARN", "ERROR", "DEBUG", "TRACE"] {
                assert_eq!(ours.matches(level).count(), 1, "{level} in {ours}");
            }
            assert_eq!(ours.matches("2026-12-02T01:54:31.123456Z").count(), 15);
            assert!(ours.contains("bare"), "{ours}");
        }
    }

    /// A client's text cannot start a line of its own (issue 39: CR LF in an SMTP AUTH user
    /// name forged a line at column 0), whichever way it reaches the line: the message, a
    /// `%` field, a `?` field, a span's field, an error.
    #[test]
    fn every_event_is_one_line_whatever_its_text_holds() {
        let out = lines(true, false, HOSTILE, HOSTILE);
        let events = 15;
        assert_eq!(out.matches('\n').count(), events, "{out}");
        assert_eq!(out.lines().count(), events, "{out}");
        for line in out.lines() {
            assert!(line.starts_with("2026-12-02T01:54:31.123456Z"), "{line:?}");
            let control = line
                .chars()
                .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'));
            assert_eq!(control, None, "{line:?}");
        }
        let forged = "bob\r\n2026-12-02T01:54:31.123456Z  INFO forged";
        let out = {
            let captured = Captured::default();
            let layer = tracing_subscriber::fmt::layer()
                .with_writer({
                    let out = captured.clone();
                    move || out.clone()
                })
                .with_ansi(false)
                .fmt_fields(Fields)
                .event_format(Line::new(Stopped));
            let subscriber = tracing_subscriber::registry().with(layer);
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!(user = forged, "authenticated as {forged}");
                tracing::info!(user = %forged, "a display field");
            });
            let bytes = captured.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8(bytes).expect("UTF-8")
        };
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains("authenticated as bob\\r\\n2026"), "{out}");
    }

    #[test]
    fn no_terminal_control_reaches_the_output_from_a_message() {
        let lines = lines(true, false, HOSTILE, HOSTILE);
        let message = lines
            .lines()
            .find(|line| line.contains("message captured"))
            .expect("the line is there");
        assert!(
            message.contains("a\\x1b[31mred\\x07\\x08\\x0c\\x7f \\u{85}\\u{9f}"),
            "{message}"
        );
        for control in ['\x1b', '\x07', '\x08', '\x0c', '\x7f', '\u{85}', '\u{9f}'] {
            assert!(!message.contains(control), "{control:?} in {message}");
        }
    }
}
