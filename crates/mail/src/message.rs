//! One captured message: its envelope, its bytes, and what parsing them says.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};

use bytes::Bytes;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What the SMTP client said in the session (MAIL FROM, RCPT TO, …), as opposed to the
/// headers it wrote inside the message. They often differ: Bcc recipients, for one, appear
/// only here.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path; empty for the null sender `<>` (bounces).
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The name the client gave in EHLO or HELO.
    pub helo: String,
    pub peer: SocketAddr,
    /// Whether the message arrived over TLS (STARTTLS or implicit TLS).
    pub tls: bool,
    /// The user name of a successful AUTH; the password is never kept.
    pub auth_user: Option<String>,
    /// Where the message came in: the port, the service, the TLS session.
    #[serde(default)]
    pub arrival: Arrival,
}

/// Where and how a message came in: what the mailbox shows beside the envelope, to teach
/// which port and which conversation it came through. Older mail directories lack it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Arrival {
    /// The address and port the client connected to.
    pub local: Option<SocketAddr>,
    /// The service of that port (`smtp`, `smtps`, or `http` for the send API).
    pub service: String,
    /// What the TLS handshake settled on (`TLSv1.3 TLS13_AES_256_GCM_SHA384 …`), if any.
    pub tls: Option<String>,
}

/// A mail address with its display name, as Mailpit's API shows it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Address {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Address")]
    pub address: String,
}

impl Address {
    fn matches(&self, needle: &str) -> bool {
        self.address.to_lowercase().contains(needle) || self.name.to_lowercase().contains(needle)
    }
}

/// The headers and body facts that lists and searches need, parsed once on arrival.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub from: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    /// The Bcc header if the message has one; otherwise the envelope recipients that are
    /// in neither To nor Cc, which is where Bcc recipients end up.
    pub bcc: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub subject: String,
    pub message_id: String,
    pub return_path: String,
    /// The Date header, if it parsed.
    pub date: Option<OffsetDateTime>,
    /// The start of the text, whitespace folded, at most 250 characters.
    pub snippet: String,
    /// Attachments, not counting inline parts.
    pub attachments: usize,
}

/// How much of a message's text the free-text search looks at.
const SEARCHABLE_TEXT: usize = 64 * 1024;
const SNIPPET_CHARS: usize = 250;

/// A message in the store.
#[derive(Debug)]
pub struct StoredMessage {
    /// Random, 22 letters and digits, like Mailpit's.
    pub id: String,
    pub received: OffsetDateTime,
    pub envelope: Envelope,
    /// The message exactly as received, after dot-unstuffing.
    pub raw: Bytes,
    read: AtomicBool,
    /// Mailpit's tags: sorted, unique regardless of case.
    tags: RwLock<Vec<String>>,
    /// What lists and searches need, parsed from `raw` when first asked for. Capturing a
    /// message does not wait for it: the SMTP client gets its 250 as soon as the bytes are
    /// stored, and a test that never lists its mail never pays for parsing it.
    parsed: OnceLock<Parsed>,
}

#[derive(Debug)]
struct Parsed {
    summary: Summary,
    /// Lower-cased subject, addresses and text, for free-text search.
    search_text: String,
}

impl StoredMessage {
    pub(crate) fn new(
        id: String,
        received: OffsetDateTime,
        envelope: Envelope,
        raw: Bytes,
    ) -> Self {
        Self {
            id,
            received,
            envelope,
            raw,
            read: AtomicBool::new(false),
            tags: RwLock::new(Vec::new()),
            parsed: OnceLock::new(),
        }
    }

    /// Subject, addresses, snippet and the rest that lists show (parsed on first use).
    pub fn summary(&self) -> &Summary {
        &self.parsed().summary
    }

    fn parsed(&self) -> &Parsed {
        self.parsed.get_or_init(|| self.parse())
    }

    fn parse(&self) -> Parsed {
        let (summary, text) = summarize(&self.raw, &self.envelope);
        let mut search_text = String::new();
        search_text.push_str(&summary.subject);
        for addr in summary
            .from
            .iter()
            .chain(&summary.to)
            .chain(&summary.cc)
            .chain(&summary.bcc)
        {
            search_text.push(' ');
            search_text.push_str(&addr.name);
            search_text.push(' ');
            search_text.push_str(&addr.address);
        }
        search_text.push(' ');
        search_text.push_str(truncate(&text, SEARCHABLE_TEXT));
        Parsed {
            summary,
            search_text: search_text.to_lowercase(),
        }
    }

    pub fn size(&self) -> usize {
        self.raw.len()
    }

    pub fn is_read(&self) -> bool {
        self.read.load(Ordering::Relaxed)
    }

    /// Mark it read or unread; whether that changed anything.
    pub(crate) fn set_read(&self, read: bool) -> bool {
        self.read.swap(read, Ordering::Relaxed) != read
    }

    /// Its tags, sorted.
    pub fn tags(&self) -> Vec<String> {
        self.tags.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn has_tags(&self) -> bool {
        !self
            .tags
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tag))
    }

    /// Replace its tags (cleaned, see [`clean_tags`]); whether that changed anything.
    pub(crate) fn set_tags(&self, tags: Vec<String>) -> bool {
        let tags = clean_tags(tags);
        let mut current = self.tags.write().unwrap_or_else(|p| p.into_inner());
        if *current == tags {
            return false;
        }
        *current = tags;
        true
    }

    pub(crate) fn text_contains(&self, lowercase_needle: &str) -> bool {
        self.parsed().search_text.contains(lowercase_needle)
    }

    pub(crate) fn recipient_matches(&self, needle: &str) -> bool {
        self.summary().to.iter().any(|a| a.matches(needle))
            || self
                .envelope
                .rcpt_to
                .iter()
                .any(|r| r.to_lowercase().contains(needle))
    }

    pub(crate) fn sender_matches(&self, needle: &str) -> bool {
        self.summary()
            .from
            .as_ref()
            .is_some_and(|a| a.matches(needle))
            || self.envelope.mail_from.to_lowercase().contains(needle)
    }

    pub(crate) fn cc_matches(&self, needle: &str) -> bool {
        self.summary().cc.iter().any(|a| a.matches(needle))
    }

    pub(crate) fn bcc_matches(&self, needle: &str) -> bool {
        self.summary().bcc.iter().any(|a| a.matches(needle))
    }

    /// The bodies and parts, parsed on demand (they are not kept parsed in memory).
    pub fn details(&self) -> Details {
        let Some(message) = MessageParser::default().parse(&self.raw[..]) else {
            return Details::default();
        };
        let text = message
            .text_part(0)
            .and_then(|p| match &p.body {
                PartType::Text(text) => Some(text.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        let html = message
            .html_part(0)
            .and_then(|p| match &p.body {
                PartType::Html(html) => Some(html.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        let mut details = Details {
            text,
            html,
            ..Details::default()
        };
        for &index in &message.attachments {
            let Some(part) = message.parts.get(index as usize) else {
                continue;
            };
            let info = PartInfo {
                part_id: index.to_string(),
                file_name: part.attachment_name().unwrap_or_default().to_owned(),
                content_type: content_type(part),
                content_id: part
                    .content_id()
                    .unwrap_or_default()
                    .trim_matches(['<', '>'])
                    .to_owned(),
                size: part.contents().len(),
                checksums: Checksums::of(part.contents()),
            };
            if is_inline(part) {
                details.inline.push(info);
            } else {
                details.attachments.push(info);
            }
        }
        details
    }

    /// One attachment or inline part, decoded.
    pub fn part(&self, part_id: &str) -> Option<PartData> {
        let index: u32 = part_id.parse().ok()?;
        let message = MessageParser::default().parse(&self.raw[..])?;
        if !message.attachments.contains(&index) {
            return None;
        }
        let part = message.parts.get(index as usize)?;
        Some(PartData {
            content_type: content_type(part),
            file_name: part.attachment_name().unwrap_or_default().to_owned(),
            bytes: part.contents().to_vec(),
        })
    }

    /// Every header of the message, names in alphabetical order, values in message order.
    /// Names are spelled as Mailpit spells them (Go's canonical form: `Message-Id`,
    /// `Mime-Version`), so that clients written for Mailpit find them.
    pub fn headers(&self) -> BTreeMap<String, Vec<String>> {
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(message) = MessageParser::default().parse_headers(&self.raw[..]) {
            for (name, value) in message.headers_raw() {
                headers
                    .entry(canonical_header_name(name))
                    .or_default()
                    .push(unfold(value));
            }
        }
        headers
    }
}

/// Text and HTML bodies and the parts of a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Details {
    pub text: String,
    pub html: String,
    pub attachments: Vec<PartInfo>,
    pub inline: Vec<PartInfo>,
}

/// An attachment or inline part, as listed (Mailpit's `Attachment`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartInfo {
    #[serde(rename = "PartID")]
    pub part_id: String,
    #[serde(rename = "FileName")]
    pub file_name: String,
    #[serde(rename = "ContentType")]
    pub content_type: String,
    #[serde(rename = "ContentID")]
    pub content_id: String,
    #[serde(rename = "Size")]
    pub size: usize,
    #[serde(rename = "Checksums")]
    pub checksums: Checksums,
}

/// A part's checksums, hex, as newer Mailpit gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Checksums {
    #[serde(rename = "MD5")]
    pub md5: String,
    #[serde(rename = "SHA1")]
    pub sha1: String,
    #[serde(rename = "SHA256")]
    pub sha256: String,
}

impl Checksums {
    fn of(bytes: &[u8]) -> Self {
        use md5::Digest as _;
        fn hex(digest: &[u8]) -> String {
            digest.iter().map(|b| format!("{b:02x}")).collect()
        }
        Self {
            md5: hex(&md5::Md5::digest(bytes)),
            sha1: hex(&sha1::Sha1::digest(bytes)),
            sha256: hex(&sha2::Sha256::digest(bytes)),
        }
    }
}

/// Tags as Mailpit keeps them: trimmed, inner whitespace single spaces, no empty ones, one
/// of each regardless of case (the first spelling wins), sorted.
pub fn clean_tags(tags: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut clean: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.split_whitespace().collect::<Vec<_>>().join(" ");
        if !tag.is_empty() && !clean.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
            clean.push(tag);
        }
    }
    clean.sort_by_key(|t| t.to_lowercase());
    clean
}

/// The tags a message asks for in its `X-Tags` header (comma-separated), read from the
/// header section without parsing the whole message.
pub(crate) fn x_tags(raw: &[u8]) -> Vec<String> {
    // Every message arrives through here, so the scan stays on bytes: only an `X-Tags`
    // line (and its folded continuation) is decoded.
    let mut tags = Vec::new();
    let mut in_x_tags = false;
    for line in head_lines(raw) {
        let folded = line.starts_with(b" ") || line.starts_with(b"\t");
        if folded && in_x_tags {
            push_tags(&mut tags, line);
            continue;
        }
        in_x_tags = false;
        if let Some(colon) = memchr::memchr(b':', line)
            && String::from_utf8_lossy(&line[..colon])
                .trim()
                .eq_ignore_ascii_case("x-tags")
        {
            in_x_tags = true;
            push_tags(&mut tags, &line[colon + 1..]);
        }
    }
    tags
}

fn push_tags(tags: &mut Vec<String>, value: &[u8]) {
    let value = String::from_utf8_lossy(value);
    tags.extend(value.split(',').map(|t| t.trim().to_owned()));
}

/// The header section's lines (split at CRLF), up to the empty line that ends it, or the
/// whole message when it has none.
fn head_lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(raw);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut from = 0;
        // A bare LF is part of a line; only CRLF ends one.
        let end = loop {
            match memchr::memchr(b'\n', &text[from..]) {
                Some(at) if from + at > 0 && text[from + at - 1] == b'\r' => {
                    break Some(from + at - 1);
                }
                Some(at) => from += at + 1,
                None => break None,
            }
        };
        match end {
            Some(0) => {
                rest = None;
                None
            }
            Some(end) => {
                rest = Some(&text[end + 2..]);
                Some(&text[..end])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

/// A part's decoded bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartData {
    pub content_type: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_owned(),
        },
        None => "application/octet-stream".to_owned(),
    }
}

fn is_inline(part: &mail_parser::MessagePart<'_>) -> bool {
    part.content_disposition().is_some_and(|d| d.is_inline())
}

/// `message-ID` → `Message-Id`: each word's first letter upper case, the rest lower.
fn canonical_header_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// Header values as one line: folding whitespace becomes single spaces.
fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `SNIPPET_CHARS` characters of the text with runs of whitespace made single
/// spaces. It stops reading once it has them: a long message costs no more than a short one.
fn snippet(text: &str) -> String {
    let mut snippet = String::with_capacity(SNIPPET_CHARS);
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars == SNIPPET_CHARS {
            break;
        }
        if chars > 0 {
            snippet.push(' ');
            chars += 1;
        }
        for c in word.chars().take(SNIPPET_CHARS - chars) {
            snippet.push(c);
            chars += 1;
        }
    }
    snippet
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn addresses(address: Option<&mail_parser::Address<'_>>) -> Vec<Address> {
    address
        .map(|list| {
            list.iter()
                .map(|a| Address {
                    name: a.name().unwrap_or_default().to_owned(),
                    address: a.address().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Parse what lists and searches need; also return the text for searching.
fn summarize(raw: &[u8], envelope: &Envelope) -> (Summary, String) {
    let Some(message) = MessageParser::default().parse(raw) else {
        return (Summary::default(), String::new());
    };
    let to = addresses(message.to());
    let cc = addresses(message.cc());
    let mut bcc = addresses(message.bcc());
    if bcc.is_empty() {
        let listed = |r: &String| {
            to.iter()
                .chain(&cc)
                .any(|a| a.address.eq_ignore_ascii_case(r))
        };
        bcc = envelope
            .rcpt_to
            .iter()
            .filter(|r| !listed(r))
            .map(|r| Address {
                name: String::new(),
                address: r.clone(),
            })
            .collect();
    }
    let text = message
        .body_text(0)
        .map(|t| t.into_owned())
        .unwrap_or_default();
    let snippet = snippet(&text);
    let date = message
        .date()
        .and_then(|d| OffsetDateTime::from_unix_timestamp(d.to_timestamp()).ok());
    let summary = Summary {
        from: addresses(message.from()).into_iter().next(),
        to,
        cc,
        bcc,
        reply_to: addresses(message.reply_to()),
        subject: message.subject().unwrap_or_default().to_owned(),
        message_id: message.message_id().unwrap_or_default().to_owned(),
        return_path: message.return_address().unwrap_or_default().to_owned(),
        date,
        snippet,
        attachments: message
            .attachments
            .iter()
            .filter_map(|&i| message.parts.get(i as usize))
            .filter(|p| !is_inline(p))
            .count(),
    };
    (summary, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_tags_are_read_from_the_head_alone() {
        let tags = |raw: &str| x_tags(raw.as_bytes());
        assert_eq!(
            tags("Subject: a\r\nx-tags : one, two\r\n\r\nbody"),
            ["one", "two"]
        );
        // Folded onto the next line; a later header ends it.
        assert_eq!(
            tags("X-Tags: one,\r\n\t two\r\nX-Other: three\r\n\r\n"),
            ["one", "", "two"]
        );
        // Only CRLF ends a line: a bare LF keeps "X-Tags" inside the Subject line.
        assert!(tags("Subject: a\nX-Tags: one\r\n\r\n").is_empty());
        // The body is not the head, even when it looks like one.
        assert!(tags("Subject: a\r\n\r\nX-Tags: one\r\n").is_empty());
        // No empty line: the whole message is its head.
        assert_eq!(tags("X-Tags: last"), ["last"]);
        assert_eq!(tags("X-Tags: caf\u{e9}\r\n"), ["caf\u{e9}"]);
        assert!(tags("").is_empty());
    }

    #[test]
    fn capturing_does_not_parse_and_the_first_question_does() {
        let msg = StoredMessage::new(
            "id".into(),
            OffsetDateTime::UNIX_EPOCH,
            envelope(&["bob@example.test"]),
            Bytes::from_static(b"Subject: later\r\n\r\nbody\r\n"),
        );
        assert!(msg.parsed.get().is_none(), "parsed while capturing");
        assert_eq!(msg.summary().subject, "later");
        assert!(msg.parsed.get().is_some());
    }

    #[test]
    fn snippet_is_the_first_characters_with_whitespace_collapsed() {
        // What the snippet means, written the slow way: collapse all, then cut.
        let reference = |text: &str| -> String {
            let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
            joined.chars().take(SNIPPET_CHARS).collect()
        };
        let long_word = "ü".repeat(SNIPPET_CHARS + 5);
        let many_words = "Grüße,\r\n  from   the\ttest. ".repeat(40);
        let exact = format!("{} b", "a".repeat(SNIPPET_CHARS - 2));
        for text in [
            "",
            "   ",
            "one",
            " lead and trail ",
            &long_word,
            &many_words,
            &exact,
        ] {
            assert_eq!(snippet(text), reference(text), "for {text:?}");
        }
        assert_eq!(snippet(&many_words).chars().count(), SNIPPET_CHARS);
    }

    fn envelope(rcpts: &[&str]) -> Envelope {
        Envelope {
            mail_from: "sender@example.test".into(),
            rcpt_to: rcpts.iter().map(|s| s.to_string()).collect(),
            helo: "client.example.test".into(),
            peer: "127.0.0.1:40000".parse().unwrap(),
            tls: false,
            auth_user: None,
            arrival: Default::default(),
        }
    }

    const MULTIPART: &str = "From: Alice Example <alice@example.test>\r\n\
To: Bob <bob@example.test>, carol@example.test\r\n\
Cc: Dave <dave@example.test>\r\n\
Reply-To: replies@example.test\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from the test\r\n\
Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <abc123@example.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\
\r\n\
--XYZ\r\n\
Content-Type: multipart/alternative; boundary=\"ALT\"\r\n\
\r\n\
--ALT\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello Bob,\r\n\
  this is   the text part.\r\n\
--ALT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Hello Bob, this is the <b>HTML</b> part.</p>\r\n\
--ALT--\r\n\
--XYZ\r\n\
Content-Type: text/csv; name=\"report.csv\"\r\n\
Content-Disposition: attachment; filename=\"report.csv\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
YSxiLGMKMSwyLDMK\r\n\
--XYZ\r\n\
Content-Type: image/png\r\n\
Content-Disposition: inline; filename=\"logo.png\"\r\n\
Content-ID: <logo@example.test>\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgo=\r\n\
--XYZ--\r\n";

    #[test]
    fn a_multipart_message_is_summarised() {
        let msg = StoredMessage::new(
            "id1".into(),
            OffsetDateTime::UNIX_EPOCH,
            envelope(&[
                "bob@example.test",
                "carol@example.test",
                "dave@example.test",
                "hidden@example.test",
            ]),
            Bytes::from_static(MULTIPART.as_bytes()),
        );
        let s = &msg.summary();
        assert_eq!(
            s.from,
            Some(Address {
                name: "Alice Example".into(),
                address: "alice@example.test".into()
            })
        );
        assert_eq!(s.to.len(), 2);
        assert_eq!(s.to[0].name, "Bob");
        assert_eq!(s.cc[0].address, "dave@example.test");
        assert_eq!(
            s.bcc,
            vec![Address {
                name: String::new(),
                address: "hidden@example.test".into()
            }]
        );
        assert_eq!(s.reply_to[0].address, "replies@example.test");
        assert_eq!(s.subject, "Grüße from the test");
        assert_eq!(s.message_id, "abc123@example.test");
        assert_eq!(s.date.unwrap().unix_timestamp(), 1_795_687_200);
        assert_eq!(s.snippet, "Hello Bob, this is the text part.");
        assert_eq!(s.attachments, 1, "the inline image does not count");

        let d = msg.details();
        assert!(d.text.contains("this is   the text part."));
        assert!(d.html.contains("<b>HTML</b>"));
        assert_eq!(d.attachments.len(), 1);
        assert_eq!(d.attachments[0].file_name, "report.csv");
        assert_eq!(d.attachments[0].content_type, "text/csv");
        assert_eq!(d.attachments[0].size, 12);
        assert_eq!(d.inline.len(), 1);
        assert_eq!(d.inline[0].content_id, "logo@example.test");

        let part = msg.part(&d.attachments[0].part_id).unwrap();
        assert_eq!(part.bytes, b"a,b,c\n1,2,3\n");
        assert_eq!(part.file_name, "report.csv");
        assert!(msg.part("0").is_none(), "only attachment parts are served");
        assert!(msg.part("nope").is_none());

        let headers = msg.headers();
        assert_eq!(
            headers["Subject"],
            vec!["=?utf-8?q?Gr=C3=BC=C3=9Fe?= from the test"]
        );
        let names: Vec<_> = headers.keys().cloned().collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn a_plain_message_has_no_html_and_garbage_still_stores() {
        let plain = StoredMessage::new(
            "id2".into(),
            OffsetDateTime::UNIX_EPOCH,
            envelope(&["x@example.test"]),
            Bytes::from_static(b"Subject: hi\r\n\r\njust text\r\n"),
        );
        let d = plain.details();
        assert_eq!(d.html, "");
        assert_eq!(d.text.trim_end(), "just text");
        assert_eq!(plain.summary().from, None);
        assert_eq!(plain.summary().bcc[0].address, "x@example.test");

        let garbage = StoredMessage::new(
            "id3".into(),
            OffsetDateTime::UNIX_EPOCH,
            envelope(&["x@example.test"]),
            Bytes::from_static(b"\x00\x01\x02 not a message"),
        );
        assert_eq!(garbage.size(), 17);
        let _ = garbage.details();
        let _ = garbage.headers();
    }

    /// MIME nesting is bounded by the message's size alone: mail-parser reads parts with a
    /// stack of its own, not by recursion, and nothing here recurses over parts, so a
    /// message nested 20 000 multiparts deep (1.4 MB, under the 10 MiB cap) is read in time
    /// linear in its size, without a stack overflow (issue 39's "MIME nesting").
    #[tokio::test]
    async fn a_message_nested_thousands_deep_is_read_without_recursion() {
        let depth = 20_000;
        let mut raw = String::from("From: a@example.test\r\nSubject: deep\r\n");
        for i in 0..depth {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
            ));
        }
        raw.push_str("Content-Type: text/plain\r\n\r\nat the bottom\r\n");
        for i in (0..depth).rev() {
            raw.push_str(&format!("--b{i}--\r\n"));
        }
        let store = crate::MailStore::in_memory(1);
        let message = store
            .insert(
                envelope(&["bob@example.test"]),
                raw.into_bytes().into(),
                &crate::store::via(),
            )
            .await
            .unwrap();
        assert_eq!(message.summary().subject, "deep");
        assert_eq!(message.details().text.trim(), "at the bottom");
    }
}
