//! The mail directory: each message is `<ID>.eml` (the bytes as received) plus `<ID>.json`
//! (envelope and arrival time).
//!
//! The `.eml` is written first and the `.json` last, each atomically and synced; the `.json`
//! is what makes a message exist. A crash between the two leaves an `.eml` alone, which was
//! never acknowledged and is removed at the next start, so no half-written file is ever
//! loaded as a message.
//!
//! Read flags and tags change after a message is stored, so they live apart, in
//! `flags.json` (every message that is read or tagged), replaced atomically as a whole: a
//! crash while it is written leaves the old flags, never a damaged message.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchboard_files::{Confined, Visibility, is_leftover};
use time::OffsetDateTime;

use crate::{Envelope, StoredMessage};

#[derive(Serialize, Deserialize)]
struct Record {
    id: String,
    /// Milliseconds since the Unix epoch.
    received_ms: i64,
    envelope: Envelope,
}

/// A message's read flag and tags, as `flags.json` keeps them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Flags {
    pub(crate) read: bool,
    pub(crate) tags: Vec<String>,
}

/// The file of read flags and tags.
const FLAGS: &str = "flags.json";

#[derive(Debug)]
pub(crate) struct MailDir {
    dir: Confined,
}

impl MailDir {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Open (creating it if needed) and load every complete message, oldest first, and the
    /// read flags and tags by message ID.
    #[allow(clippy::type_complexity)]
    pub(crate) fn open(
        dir: &Path,
    ) -> io::Result<(Self, Vec<StoredMessage>, HashMap<String, Flags>)> {
        let confined = Confined::create(dir, Visibility::Private)?;
        let mut messages = Vec::new();
        let mut removed = false;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if is_leftover(&name) {
                fs::remove_file(&path)?;
                removed = true;
            } else if let Some(id) = name.strip_suffix(".eml") {
                if !dir.join(format!("{id}.json")).exists() {
                    tracing::warn!(
                        "removing {}: its envelope was never written, so it was never acknowledged",
                        path.display()
                    );
                    fs::remove_file(&path)?;
                    removed = true;
                }
            } else if name == FLAGS {
                continue;
            } else if name.ends_with(".json") {
                match load(dir, &path) {
                    Ok(message) => messages.push(message),
                    Err(error) => tracing::warn!("skipping {}: {error}", path.display()),
                }
            }
        }
        if removed {
            confined.sync()?;
        }
        messages.sort_by_key(|m| m.received);
        let flags = match fs::read(dir.join(FLAGS)) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!("ignoring {}: {error}", dir.join(FLAGS).display());
                HashMap::new()
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(error) => return Err(error),
        };
        Ok((Self { dir: confined }, messages, flags))
    }

    /// Replace `flags.json` with these messages' read flags and tags (the ones that are read
    /// or tagged); returns once it is on disk.
    pub(crate) fn save_flags(&self, messages: &[(String, bool, Vec<String>)]) -> io::Result<()> {
        let flags: HashMap<&str, Flags> = messages
            .iter()
            .filter(|(_, read, tags)| *read || !tags.is_empty())
            .map(|(id, read, tags)| {
                (
                    id.as_str(),
                    Flags {
                        read: *read,
                        tags: tags.clone(),
                    },
                )
            })
            .collect();
        let json = serde_json::to_vec(&flags).map_err(io::Error::other)?;
        self.dir.write(FLAGS, &json, Visibility::Private)
    }

    /// Write a message so that it survives a crash; returns once it is on disk.
    pub(crate) fn save(&self, message: &StoredMessage) -> io::Result<()> {
        self.dir
            .write(&eml(&message.id), &message.raw, Visibility::Private)?;
        let record = Record {
            id: message.id.clone(),
            received_ms: i64::try_from(message.received.unix_timestamp_nanos() / 1_000_000)
                .unwrap_or(i64::MAX),
            envelope: message.envelope.clone(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(io::Error::other)?;
        self.dir
            .write(&json_name(&message.id), &json, Visibility::Private)
    }

    /// Remove a message's files: the envelope first, so that a crash leaves at worst an
    /// orphan `.eml`, which the next start removes.
    pub(crate) fn remove(&self, id: &str) -> io::Result<()> {
        self.dir.remove(&json_name(id))?;
        self.dir.remove(&eml(id))
    }
}

fn eml(id: &str) -> String {
    format!("{id}.eml")
}

fn json_name(id: &str) -> String {
    format!("{id}.json")
}

fn load(dir: &Path, json_path: &Path) -> io::Result<StoredMessage> {
    let record: Record = serde_json::from_slice(&fs::read(json_path)?).map_err(io::Error::other)?;
    if !record.id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(io::Error::other("the message id is not alphanumeric"));
    }
    let raw = fs::read(dir.join(format!("{}.eml", record.id)))?;
    let received =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(record.received_ms) * 1_000_000)
            .map_err(io::Error::other)?;
    Ok(StoredMessage::new(
        record.id,
        received,
        record.envelope,
        Bytes::from(raw),
    ))
}
