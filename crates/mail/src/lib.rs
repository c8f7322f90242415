//! switchboard's mail store: every message the SMTP service accepts, kept in memory (and,
//! with a mail directory, on disk before the client is told "250"), parsed and searchable.
//!
//! The SMTP service writes here and the HTTP API reads from here; the store lives below both,
//! so neither service depends on the other.
//!
//! # Layout
//!
//! - `store.rs`: [`MailStore`]: insert, list, search, delete, wait for a message.
//! - `captured.rs`: [`MessageCaptured`], the event the store tells of each message it keeps.
//! - `message.rs`: [`StoredMessage`], its [`Envelope`] and parsed [`Summary`] (mail-parser).
//! - `search.rs`: [`Query`], the search language.
//! - `persist.rs`: the mail directory: one `.eml` and one `.json` per message.
//! - `chaos.rs`: [`Chaos`], Mailpit's chaos triggers, set over HTTP and fired by SMTP.

mod captured;
mod chaos;
mod message;
mod persist;
mod search;
mod store;

pub use captured::MessageCaptured;
pub use chaos::{Chaos, Trigger, Triggers, announce as announce_chaos};
pub use message::{
    Address, Arrival, Checksums, Details, Envelope, PartData, PartInfo, StoredMessage, Summary,
    clean_tags,
};
pub use search::{Query, QueryError};
pub use store::{MailChange, MailError, MailSettings, MailStore, StoreStats};
