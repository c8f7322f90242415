//! The JSON log's writer: each line as tracing-subscriber writes it, with the characters
//! JSON allows raw in a string but a reader of lines or a terminal would act on written as
//! `\u` escapes — DEL, the C1 controls (U+0085 is a line break to many readers, Python's
//! `splitlines` among them), the line and paragraph separators and the characters that
//! reorder text. serde_json escapes the C0 controls (CR and LF among them) already. The
//! escapes are JSON's own, so every line parses to the same values; they can only occur
//! inside strings, since a line's structure is ASCII.

use std::io;

use tracing_subscriber::fmt::MakeWriter;

/// Wraps the log's writer (`fmt::layer().json().with_writer(JsonLines(writer))`).
#[derive(Debug, Clone)]
pub(crate) struct JsonLines<M>(pub(crate) M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for JsonLines<M> {
    type Writer = Escaping<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaping(self.0.make_writer())
    }
}

/// One line's writer.
#[derive(Debug)]
pub(crate) struct Escaping<W>(W);

impl<W: io::Write> io::Write for Escaping<W> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        // A line holds such a character only when a client sent one: most lines pass as
        // they are, after one scan.
        if !line.iter().any(|&b| b == 0x7f || b == 0xc2 || b == 0xe2) {
            return self.0.write(line);
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return self.0.write(line);
        };
        let mut escaped = String::with_capacity(line.len() + 16);
        for c in text.chars() {
            match c == '\u{7f}' || switchboard_files::is_hostile(c) && !c.is_ascii() {
                true => escaped.push_str(&format!("\\u{:04x}", u32::from(c))),
                false => escaped.push(c),
            }
        }
        self.0.write_all(escaped.as_bytes())?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::ErrorKind::Other)?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_event_is_one_line_of_json_with_the_same_values() {
        let hostile = "bob\r\n{\"forged\":1}\u{85}next\u{2028}\u{2029}\u{202e}\u{7f}\u{9b}31m é ✓";
        let out = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_ansi(false)
            .with_writer(JsonLines({
                let out = out.clone();
                move || out.clone()
            }));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(user = hostile, "authenticated as {hostile}");
            tracing::info!(peer = %hostile, "plain");
        });
        let bytes = out.0.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8(bytes).expect("UTF-8");
        assert_eq!(text.lines().count(), 2, "{text}");
        for c in text.chars() {
            assert!(
                c == '\n' || !(c.is_control() || switchboard_files::is_hostile(c)),
                "{c:?} in {text}"
            );
        }
        let first: serde_json::Value =
            serde_json::from_str(text.lines().next().unwrap_or_default()).expect("a line is JSON");
        assert_eq!(first["fields"]["user"], hostile);
        assert_eq!(
            first["fields"]["message"],
            format!("authenticated as {hostile}")
        );
    }
}
