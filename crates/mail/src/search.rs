//! The search language of `/api/v1/search`, a subset of Mailpit's:
//!
//! - free text: `invoice` or `"monthly invoice"` matches the subject, addresses and text;
//! - `from:`, `to:`, `cc:`, `bcc:`, `subject:`, `message-id:` match that field (substring,
//!   any case); `to:` also matches the envelope recipients;
//! - `is:read`, `is:unread`, `has:attachment`, `tag:NAME` (the whole tag, any case);
//! - a leading `-` or `!` negates a term; every term must match.

use crate::StoredMessage;

/// A parsed query: every term must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    terms: Vec<Term>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    negated: bool,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Text(String),
    From(String),
    To(String),
    Cc(String),
    Bcc(String),
    Subject(String),
    MessageId(String),
    Read(bool),
    HasAttachment,
    Tag(String),
}

/// A query that cannot be understood; the message says which part and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(String);

impl Query {
    /// Parse `text`; an empty text matches every message.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let mut terms = Vec::new();
        for word in split_words(text)? {
            let (negated, word) = match word.strip_prefix(['-', '!']) {
                Some(rest) if !rest.is_empty() => (true, rest.to_owned()),
                _ => (false, word),
            };
            let kind = match word.split_once(':') {
                Some((field, value)) => {
                    field_term(field, value)?.unwrap_or_else(|| Kind::Text(word.to_lowercase()))
                }
                None => Kind::Text(word.to_lowercase()),
            };
            terms.push(Term { negated, kind });
        }
        Ok(Self { terms })
    }

    /// Whether `message` matches every term.
    pub fn matches(&self, message: &StoredMessage) -> bool {
        self.terms
            .iter()
            .all(|term| term.matches(message) != term.negated)
    }
}

fn field_term(field: &str, value: &str) -> Result<Option<Kind>, QueryError> {
    let value_lower = value.to_lowercase();
    let kind = match field.to_ascii_lowercase().as_str() {
        "from" => Kind::From(value_lower),
        "to" => Kind::To(value_lower),
        "cc" => Kind::Cc(value_lower),
        "bcc" => Kind::Bcc(value_lower),
        "subject" => Kind::Subject(value_lower),
        "message-id" => Kind::MessageId(value_lower.trim_matches(['<', '>']).to_owned()),
        "is" => match value_lower.as_str() {
            "read" => Kind::Read(true),
            "unread" => Kind::Read(false),
            _ => {
                return Err(QueryError(format!(
                    "is:{value} is not a search term; use is:read or is:unread"
                )));
            }
        },
        "tag" => Kind::Tag(value.to_owned()),
        "has" => match value_lower.as_str() {
            "attachment" | "attachments" => Kind::HasAttachment,
            _ => {
                return Err(QueryError(format!(
                    "has:{value} is not a search term; use has:attachment"
                )));
            }
        },
        // "https://…" or "10:30": not a field, just text with a colon.
        _ => return Ok(None),
    };
    Ok(Some(kind))
}

/// Split on whitespace, keeping double-quoted phrases (also `subject:"two words"`) together.
fn split_words(text: &str) -> Result<Vec<String>, QueryError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(QueryError(format!("unbalanced quote in search: {text}")));
    }
    if !current.is_empty() {
        words.push(current);
    }
    Ok(words)
}

impl Term {
    fn matches(&self, m: &StoredMessage) -> bool {
        match &self.kind {
            Kind::Text(text) => m.text_contains(text),
            Kind::From(v) => m.sender_matches(v),
            Kind::To(v) => m.recipient_matches(v),
            Kind::Cc(v) => m.cc_matches(v),
            Kind::Bcc(v) => m.bcc_matches(v),
            Kind::Subject(v) => m.summary().subject.to_lowercase().contains(v.as_str()),
            Kind::MessageId(v) => m.summary().message_id.to_lowercase().contains(v.as_str()),
            Kind::Read(read) => m.is_read() == *read,
            Kind::HasAttachment => m.summary().attachments > 0,
            Kind::Tag(tag) => m.has_tag(tag),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use time::OffsetDateTime;

    use super::*;
    use crate::Envelope;

    fn message(raw: &str, rcpts: &[&str]) -> StoredMessage {
        StoredMessage::new(
            "id".into(),
            OffsetDateTime::UNIX_EPOCH,
            Envelope {
                mail_from: "bounce@shop.test".into(),
                rcpt_to: rcpts.iter().map(|s| s.to_string()).collect(),
                helo: "h".into(),
                peer: "127.0.0.1:1".parse().unwrap(),
                tls: false,
                auth_user: None,
                arrival: Default::default(),
            },
            Bytes::copy_from_slice(raw.as_bytes()),
        )
    }

    fn matches(query: &str, m: &StoredMessage) -> bool {
        Query::parse(query).unwrap().matches(m)
    }

    #[test]
    fn fields_text_phrases_and_negation() {
        let m = message(
            "From: Shop <orders@shop.test>\r\nTo: Ann <ann@example.test>\r\n\
             Subject: Your monthly invoice\r\nMessage-ID: <inv-42@shop.test>\r\n\r\n\
             Total due: 12 EUR\r\n",
            &["ann@example.test", "audit@example.test"],
        );
        assert!(matches("", &m));
        assert!(matches("invoice", &m));
        assert!(matches("INVOICE", &m));
        assert!(matches("\"monthly invoice\"", &m));
        assert!(!matches("\"invoice monthly\"", &m));
        assert!(matches("total due", &m), "body text is searched");
        assert!(matches("from:orders@shop.test", &m));
        assert!(matches("from:Shop", &m));
        assert!(matches("to:ann", &m));
        assert!(
            matches("to:audit@example.test", &m),
            "envelope recipients count for to:"
        );
        assert!(matches("bcc:audit", &m));
        assert!(matches("subject:\"monthly invoice\"", &m));
        assert!(matches("message-id:<inv-42@shop.test>", &m));
        assert!(!matches("subject:receipt", &m));
        assert!(matches("-subject:receipt", &m));
        assert!(matches("!from:someone-else", &m));
        assert!(!matches("invoice -from:shop", &m));
        assert!(matches("is:unread", &m));
        m.set_read(true);
        assert!(matches("is:read", &m));
        assert!(!matches("has:attachment", &m));
        assert!(matches(
            "http://example.test/x",
            &message("Subject: see http://example.test/x\r\n\r\n", &[])
        ));
    }

    #[test]
    fn bad_queries_are_errors() {
        assert!(
            Query::parse("is:starred")
                .unwrap_err()
                .to_string()
                .contains("is:read")
        );
        assert!(Query::parse("has:pictures").is_err());
        assert!(Query::parse("subject:\"open").is_err());
    }
}
