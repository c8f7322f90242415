//! The JSON shapes of Mailpit's v1 API (field names and types as in its published
//! definition): a message's summary, a page of summaries, a whole message.

use serde::Serialize;
use switchboard_core::timestamp;
use switchboard_mail::{Address, PartInfo, StoredMessage};

/// The fields Mailpit's `MessageSummary` and `Message` share.
#[derive(Serialize)]
pub(crate) struct Common {
    #[serde(rename = "ID")]
    pub(crate) id: String,
    #[serde(rename = "MessageID")]
    pub(crate) message_id: String,
    #[serde(rename = "From")]
    pub(crate) from: Option<Address>,
    #[serde(rename = "To")]
    pub(crate) to: Vec<Address>,
    #[serde(rename = "Cc")]
    pub(crate) cc: Vec<Address>,
    #[serde(rename = "Bcc")]
    pub(crate) bcc: Vec<Address>,
    #[serde(rename = "ReplyTo")]
    pub(crate) reply_to: Vec<Address>,
    #[serde(rename = "Subject")]
    pub(crate) subject: String,
    #[serde(rename = "Tags")]
    pub(crate) tags: Vec<String>,
    #[serde(rename = "Size")]
    pub(crate) size: usize,
}

impl From<&StoredMessage> for Common {
    fn from(m: &StoredMessage) -> Self {
        let s = m.summary();
        Self {
            id: m.id.clone(),
            message_id: s.message_id.clone(),
            from: s.from.clone(),
            to: s.to.clone(),
            cc: s.cc.clone(),
            bcc: s.bcc.clone(),
            reply_to: s.reply_to.clone(),
            subject: s.subject.clone(),
            tags: m.tags(),
            size: m.size(),
        }
    }
}

/// Mailpit's `MessageSummary`.
#[derive(Serialize)]
pub(crate) struct MessageSummary {
    #[serde(flatten)]
    pub(crate) common: Common,
    #[serde(rename = "Read")]
    pub(crate) read: bool,
    #[serde(rename = "Created")]
    pub(crate) created: String,
    #[serde(rename = "Attachments")]
    pub(crate) attachments: usize,
    #[serde(rename = "Snippet")]
    pub(crate) snippet: String,
}

impl From<&StoredMessage> for MessageSummary {
    fn from(m: &StoredMessage) -> Self {
        Self {
            common: Common::from(m),
            read: m.is_read(),
            created: timestamp(m.received),
            attachments: m.summary().attachments,
            snippet: m.summary().snippet.clone(),
        }
    }
}

/// Mailpit's `MessagesSummary`.
#[derive(Serialize)]
pub(crate) struct MessagesSummary {
    pub(crate) total: usize,
    pub(crate) unread: usize,
    /// How many messages this page holds (older Mailpit clients read it).
    pub(crate) count: usize,
    pub(crate) messages_count: usize,
    pub(crate) start: usize,
    pub(crate) tags: Vec<String>,
    pub(crate) messages: Vec<MessageSummary>,
}

/// Mailpit's `Message`, plus the SMTP envelope.
#[derive(Serialize)]
pub(crate) struct Message {
    #[serde(flatten)]
    pub(crate) common: Common,
    #[serde(rename = "Read")]
    pub(crate) read: bool,
    #[serde(rename = "ReturnPath")]
    pub(crate) return_path: String,
    #[serde(rename = "Date")]
    pub(crate) date: String,
    #[serde(rename = "Text")]
    pub(crate) text: String,
    #[serde(rename = "HTML")]
    pub(crate) html: String,
    #[serde(rename = "Inline")]
    pub(crate) inline: Vec<PartInfo>,
    #[serde(rename = "Attachments")]
    pub(crate) attachments: Vec<PartInfo>,
    /// Not in Mailpit: what the SMTP client said, as opposed to what the headers say.
    #[serde(rename = "Envelope")]
    pub(crate) envelope: EnvelopeJson,
}

#[derive(Serialize)]
pub(crate) struct EnvelopeJson {
    #[serde(rename = "MailFrom")]
    pub(crate) mail_from: String,
    #[serde(rename = "RcptTo")]
    pub(crate) rcpt_to: Vec<String>,
    #[serde(rename = "Helo")]
    pub(crate) helo: String,
    #[serde(rename = "Peer")]
    pub(crate) peer: String,
    #[serde(rename = "TLS")]
    pub(crate) tls: bool,
    #[serde(rename = "AuthUser")]
    pub(crate) auth_user: Option<String>,
    /// The port the message came in on (the local end of the connection).
    #[serde(rename = "Port")]
    pub(crate) port: Option<u16>,
    #[serde(rename = "Local")]
    pub(crate) local: Option<String>,
    #[serde(rename = "Service")]
    pub(crate) service: String,
    /// The TLS session and how it began, e.g. `TLSv1.3 TLS13_AES_256_GCM_SHA384 (STARTTLS)`.
    #[serde(rename = "TLSSession")]
    pub(crate) tls_session: Option<String>,
}
