//! The store itself: bounded, newest last, shared by every service that needs mail.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use switchboard_core::{ConnInfo, Event, EventBus};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::captured::MessageCaptured;
use crate::persist::MailDir;
use crate::{Envelope, Query, StoredMessage};

/// The `[mail]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// Keep messages on disk here, and load them at start-up (the `--mail-dir` flag). A
    /// message is on disk before the client is told it was accepted.
    pub dir: Option<PathBuf>,
    /// Most messages kept; when a new one arrives at the limit, the oldest is deleted.
    pub max_messages: usize,
    /// Most bytes of messages kept (as received); when a new one takes the store over, the
    /// oldest are deleted until it fits. The newest message is always kept.
    pub max_bytes: u64,
    /// Tag a message sent to `user+tag@domain` with `tag` (Mailpit does so by default; here
    /// it is asked for).
    pub tags_from_plus_addresses: bool,
    /// Tag a message with the SMTP AUTH user name it was sent with.
    pub tags_from_username: bool,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            dir: None,
            max_messages: 1000,
            max_bytes: 32 << 20,
            tags_from_plus_addresses: false,
            tags_from_username: false,
        }
    }
}

/// A change to the store, for those who follow it (Mailpit's WebSocket events, waiting
/// for a message).
#[derive(Clone, Debug)]
pub enum MailChange {
    /// A message arrived.
    New(Arc<StoredMessage>),
    /// A message was marked read or unread.
    Read { id: String, read: bool },
    /// A message's tags changed.
    Tags { id: String, tags: Vec<String> },
    /// A message was deleted.
    Deleted(String),
    /// Every message was deleted.
    Truncated,
    /// The oldest messages were deleted to make room (`max_messages`, `max_bytes`).
    Pruned,
}

/// A problem with the mail directory, naming it.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(
        "cannot use the mail directory {path}: {source}. Make it readable and writable, or \
         choose another with --mail-dir DIR"
    )]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot store the message in {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Counters for `/api/v1/info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub messages: usize,
    pub unread: usize,
    pub bytes: u64,
    pub accepted: u64,
    pub accepted_bytes: u64,
    pub rejected: u64,
    pub deleted: u64,
    pub uptime: Duration,
    /// The mail directory, or `memory`.
    pub location: String,
}

/// The captured messages. Cloning is cheap; every clone is the same store.
#[derive(Clone, Debug)]
pub struct MailStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    messages: Mutex<Messages>,
    max_messages: usize,
    max_bytes: u64,
    disk: Option<MailDir>,
    /// Every change, for those who follow them.
    changes: broadcast::Sender<MailChange>,
    /// Tags from plus-addresses and from the AUTH user name.
    tags_from_plus_addresses: bool,
    tags_from_username: bool,
    /// Held while the read flags and tags are written, so that writes land in order.
    flags_writing: tokio::sync::Mutex<()>,
    /// Where each captured message is told ([`MailStore::announce_to`]).
    events: OnceLock<EventBus>,
    accepted: AtomicU64,
    accepted_bytes: AtomicU64,
    rejected: AtomicU64,
    deleted: AtomicU64,
    started: Instant,
}

#[derive(Debug, Default)]
struct Messages {
    /// Oldest first.
    order: VecDeque<Arc<StoredMessage>>,
    /// Hashed with foldhash, not the standard SipHash: the keys are IDs switchboard draws at
    /// random itself, so no client can choose keys that collide, and SipHash's resistance to
    /// that is not needed (hashing was a tenth of the store's work per message).
    by_id: foldhash::HashMap<String, Arc<StoredMessage>>,
    /// Kept as messages come, go and are read, so that a list's counts do not walk every
    /// message: the mailbox asks for them with each page.
    unread: usize,
    bytes: u64,
    /// Every tag with how many messages carry it; `None` when a change made it stale.
    tags: Option<Vec<(String, usize)>>,
}

/// 22 random letters and digits, like Mailpit's IDs: eleven from each of two random 64-bit
/// numbers, written in base 62 (one random number per character cost ten times as much).
fn random_id() -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut id = String::with_capacity(22);
    for mut n in [fastrand::u64(..), fastrand::u64(..)] {
        for _ in 0..11 {
            id.push(char::from(DIGITS[(n % 62) as usize]));
            n /= 62;
        }
    }
    id
}

impl MailStore {
    /// An empty store in memory only.
    pub fn in_memory(max_messages: usize) -> Self {
        let settings = MailSettings {
            max_messages,
            ..MailSettings::default()
        };
        Self::build(&settings, None, Vec::new())
    }

    /// A store as configured: with a directory, the messages in it are loaded.
    pub fn open(settings: &MailSettings) -> Result<Self, MailError> {
        let Some(dir) = &settings.dir else {
            return Ok(Self::build(settings, None, Vec::new()));
        };
        let (disk, loaded, flags) = MailDir::open(dir).map_err(|source| MailError::Dir {
            path: dir.clone(),
            source,
        })?;
        tracing::info!(
            "mail directory {}: {} message(s) loaded",
            dir.display(),
            loaded.len()
        );
        let store = Self::build(settings, Some(disk), loaded);
        // Read flags and tags as they were last written; others keep what they arrived with.
        {
            let mut messages = store.lock();
            let all = messages.clear();
            for message in all {
                if let Some(flags) = flags.get(&message.id) {
                    message.set_read(flags.read);
                    message.set_tags(flags.tags.clone());
                }
                messages.push(message);
            }
        }
        // More on disk than the limit allows (the limit was lowered): keep the newest.
        let evicted = store.lock().evict(store.shared.limits());
        store.remove_files(&evicted);
        Ok(store)
    }

    fn build(settings: &MailSettings, disk: Option<MailDir>, loaded: Vec<StoredMessage>) -> Self {
        let (changes, _) = broadcast::channel(1024);
        let store = Self {
            shared: Arc::new(Shared {
                messages: Mutex::new(Messages::default()),
                max_messages: settings.max_messages.max(1),
                max_bytes: settings.max_bytes,
                disk,
                changes,
                tags_from_plus_addresses: settings.tags_from_plus_addresses,
                tags_from_username: settings.tags_from_username,
                flags_writing: tokio::sync::Mutex::new(()),
                events: OnceLock::new(),
                accepted: AtomicU64::new(0),
                accepted_bytes: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                deleted: AtomicU64::new(0),
                started: Instant::now(),
            }),
        };
        for message in loaded {
            message.set_tags(store.arrival_tags(&message));
            store.lock().push(Arc::new(message));
        }
        store
    }

    /// The tags a message gets when it arrives: its `X-Tags` header and, when asked for,
    /// its plus-addresses and its AUTH user name.
    fn arrival_tags(&self, message: &StoredMessage) -> Vec<String> {
        let mut tags = crate::message::x_tags(&message.raw);
        if self.shared.tags_from_plus_addresses {
            for rcpt in &message.envelope.rcpt_to {
                let local = rcpt.split('@').next().unwrap_or_default();
                if let Some((_, tag)) = local.split_once('+') {
                    tags.push(tag.to_owned());
                }
            }
        }
        if self.shared.tags_from_username
            && let Some(user) = &message.envelope.auth_user
        {
            tags.push(user.clone());
        }
        tags
    }

    fn lock(&self) -> MutexGuard<'_, Messages> {
        // A panic while holding the lock leaves consistent data (every change is one
        // push or remove), so a poisoned lock is still usable.
        self.shared
            .messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Store a message. With a mail directory it is on disk when this returns, so the
    /// caller may acknowledge it; on error nothing was stored.
    pub async fn insert(
        &self,
        envelope: Envelope,
        raw: Bytes,
        via: &ConnInfo,
    ) -> Result<Arc<StoredMessage>, MailError> {
        let id = self.new_id();
        let message = StoredMessage::new(id, OffsetDateTime::now_utc(), envelope, raw);
        message.set_tags(self.arrival_tags(&message));
        let message = Arc::new(message);
        if let Some(disk) = &self.shared.disk {
            // File writes and fsync block; keep them off the async workers.
            let store = self.clone();
            let saving = message.clone();
            tokio::task::spawn_blocking(move || store.save(&saving))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
                .map_err(|source| MailError::Write {
                    path: disk.path().to_owned(),
                    source,
                })?;
        }
        let evicted = {
            let mut messages = self.lock();
            messages.push(message.clone());
            messages.evict(self.shared.limits())
        };
        self.remove_files(&evicted);
        self.shared.accepted.fetch_add(1, Ordering::Relaxed);
        self.shared
            .accepted_bytes
            .fetch_add(message.size() as u64, Ordering::Relaxed);
        self.announce(MailChange::New(message.clone()));
        if !evicted.is_empty() {
            self.announce(MailChange::Pruned);
        }
        if let Some(events) = self.shared.events.get() {
            let captured = MessageCaptured {
                id: via.id,
                peer: via.peer,
                message_id: message.id.clone(),
                from: message.envelope.mail_from.clone(),
                to: message.envelope.rcpt_to.clone(),
                size: message.size(),
            };
            events.emit(Event::said(via, captured));
        }
        Ok(message)
    }

    /// Tell every message captured from now on on `events` (`message_captured`, once per
    /// message, whoever inserts it). The first bus given is kept; a store given none tells
    /// only its own followers ([`changes`](Self::changes)).
    pub fn announce_to(&self, events: EventBus) {
        let _ = self.shared.events.set(events);
    }

    fn announce(&self, change: MailChange) {
        // Nobody listening is fine: the change happened all the same.
        let _ = self.shared.changes.send(change);
    }

    /// Every change from now on: arrivals, read flags, tags, deletions.
    pub fn changes(&self) -> broadcast::Receiver<MailChange> {
        self.shared.changes.subscribe()
    }

    fn save(&self, message: &StoredMessage) -> std::io::Result<()> {
        match &self.shared.disk {
            Some(disk) => disk.save(message),
            None => Ok(()),
        }
    }

    fn new_id(&self) -> String {
        loop {
            let id = random_id();
            if !self.lock().by_id.contains_key(&id) {
                return id;
            }
        }
    }

    /// Count a message the SMTP service refused (too big, a line too long, …).
    pub fn note_rejected(&self) {
        self.shared.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// A message by ID, or the newest for `latest`.
    pub fn get(&self, id: &str) -> Option<Arc<StoredMessage>> {
        let messages = self.lock();
        if id == "latest" {
            return messages.order.back().cloned();
        }
        messages.by_id.get(id).cloned()
    }

    /// Every message, newest first.
    pub fn list(&self) -> Vec<Arc<StoredMessage>> {
        self.lock().order.iter().rev().cloned().collect()
    }

    /// `limit` messages from the `start`th newest on, and how many there are in all: a page
    /// of the list without copying the rest of it.
    pub fn page(&self, start: usize, limit: usize) -> (Vec<Arc<StoredMessage>>, usize) {
        let messages = self.lock();
        let page = messages
            .order
            .iter()
            .rev()
            .skip(start)
            .take(limit)
            .cloned()
            .collect();
        (page, messages.order.len())
    }

    /// The messages matching `query`, newest first.
    pub fn search(&self, query: &Query) -> Vec<Arc<StoredMessage>> {
        self.lock()
            .order
            .iter()
            .rev()
            .filter(|m| query.matches(m))
            .cloned()
            .collect()
    }

    /// How many messages are stored.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delete these messages (unknown IDs are skipped); returns how many were deleted.
    pub async fn delete(&self, ids: &[String]) -> usize {
        let removed: Vec<Arc<StoredMessage>> = {
            let mut messages = self.lock();
            ids.iter().filter_map(|id| messages.remove(id)).collect()
        };
        for message in &removed {
            self.announce(MailChange::Deleted(message.id.clone()));
        }
        self.finish_delete(removed).await
    }

    /// Delete every message.
    pub async fn delete_all(&self) -> usize {
        let removed = self.lock().clear();
        self.announce(MailChange::Truncated);
        self.finish_delete(removed).await
    }

    /// Delete every message matching `query` (every message for an empty query).
    pub async fn delete_matching(&self, query: &Query) -> usize {
        let removed: Vec<Arc<StoredMessage>> = {
            let mut messages = self.lock();
            let ids: Vec<String> = messages
                .order
                .iter()
                .filter(|m| query.matches(m))
                .map(|m| m.id.clone())
                .collect();
            ids.iter().filter_map(|id| messages.remove(id)).collect()
        };
        for message in &removed {
            self.announce(MailChange::Deleted(message.id.clone()));
        }
        self.finish_delete(removed).await
    }

    async fn finish_delete(&self, removed: Vec<Arc<StoredMessage>>) -> usize {
        self.shared
            .deleted
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
        let count = removed.len();
        if self.shared.disk.is_some() && count > 0 {
            let store = self.clone();
            let _ = tokio::task::spawn_blocking(move || store.remove_files(&removed)).await;
        }
        count
    }

    fn remove_files(&self, messages: &[Arc<StoredMessage>]) {
        let Some(disk) = &self.shared.disk else {
            return;
        };
        for message in messages {
            if let Err(error) = disk.remove(&message.id) {
                tracing::warn!(id = %message.id, %error, "cannot remove a deleted message's files");
            }
        }
    }

    /// Mark messages read or unread; `None` means every message. With a mail directory the
    /// flags are on disk when this returns.
    pub async fn set_read(&self, ids: Option<&[String]>, read: bool) {
        let changed: Vec<String> = {
            let mut messages = self.lock();
            let changed: Vec<String> = match ids {
                None => messages
                    .order
                    .iter()
                    .filter(|m| m.set_read(read))
                    .map(|m| m.id.clone())
                    .collect(),
                Some(ids) => ids
                    .iter()
                    .filter_map(|id| messages.by_id.get(id))
                    .filter(|m| m.set_read(read))
                    .map(|m| m.id.clone())
                    .collect(),
            };
            match read {
                true => messages.unread -= changed.len(),
                false => messages.unread += changed.len(),
            }
            changed
        };
        // Marking every message is one change of the whole mailbox, as in Mailpit.
        if ids.is_some() {
            for id in &changed {
                self.announce(MailChange::Read {
                    id: id.clone(),
                    read,
                });
            }
        }
        if !changed.is_empty() {
            self.save_flags().await;
        }
    }

    /// Replace the tags of these messages (unknown IDs are skipped).
    pub async fn set_tags(&self, ids: &[String], tags: &[String]) {
        let changed: Vec<Arc<StoredMessage>> = {
            let messages = self.lock();
            ids.iter()
                .filter_map(|id| messages.by_id.get(id))
                .filter(|m| m.set_tags(tags.to_vec()))
                .cloned()
                .collect()
        };
        self.tags_changed(changed).await;
    }

    /// Every tag in use, sorted, with how many messages carry it.
    pub fn tags(&self) -> Vec<(String, usize)> {
        let mut messages = self.lock();
        if let Some(tags) = &messages.tags {
            return tags.clone();
        }
        let mut counts: Vec<(String, usize)> = Vec::new();
        for message in messages.order.iter() {
            for tag in message.tags() {
                match counts
                    .iter_mut()
                    .find(|(t, _)| t.eq_ignore_ascii_case(&tag))
                {
                    Some((_, n)) => *n += 1,
                    None => counts.push((tag, 1)),
                }
            }
        }
        counts.sort_by_key(|(t, _)| t.to_lowercase());
        messages.tags = Some(counts.clone());
        counts
    }

    /// Rename a tag on every message that has it (`None` as the new name removes it).
    /// Returns how many messages changed.
    pub async fn rename_tag(&self, old: &str, new: Option<&str>) -> usize {
        let changed: Vec<Arc<StoredMessage>> = {
            let messages = self.lock();
            messages
                .order
                .iter()
                .filter(|m| m.has_tag(old))
                .filter(|m| {
                    let tags = m
                        .tags()
                        .into_iter()
                        .filter(|t| !t.eq_ignore_ascii_case(old))
                        .chain(new.map(str::to_owned))
                        .collect();
                    m.set_tags(tags)
                })
                .cloned()
                .collect()
        };
        let count = changed.len();
        self.tags_changed(changed).await;
        count
    }

    async fn tags_changed(&self, changed: Vec<Arc<StoredMessage>>) {
        if !changed.is_empty() {
            self.lock().tags = None;
        }
        for message in &changed {
            self.announce(MailChange::Tags {
                id: message.id.clone(),
                tags: message.tags(),
            });
        }
        if !changed.is_empty() {
            self.save_flags().await;
        }
    }

    /// Write every message's read flag and tags to the mail directory, if there is one.
    /// A message's own files are never touched; the flags live in a file of their own,
    /// replaced atomically.
    async fn save_flags(&self) {
        let Some(disk) = &self.shared.disk else {
            return;
        };
        // In order: a later snapshot is never overwritten by an earlier one.
        let _writing = self.shared.flags_writing.lock().await;
        let snapshot: Vec<(String, bool, Vec<String>)> = self
            .lock()
            .order
            .iter()
            .map(|m| (m.id.clone(), m.is_read(), m.tags()))
            .collect();
        let disk_path = disk.path().to_owned();
        let store = self.clone();
        let written = tokio::task::spawn_blocking(move || match &store.shared.disk {
            Some(disk) => disk.save_flags(&snapshot),
            None => Ok(()),
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        if let Err(error) = written {
            tracing::warn!(
                dir = %disk_path.display(), %error,
                "cannot write the read flags and tags; they are kept in memory"
            );
        }
    }

    /// The newest message matching `query`: one already stored, or else the first to
    /// arrive within `timeout`. Waits without polling.
    pub async fn wait_for(&self, query: &Query, timeout: Duration) -> Option<Arc<StoredMessage>> {
        // Subscribe before looking, so that nothing arrives unseen in between.
        let mut changes = self.changes();
        if let Some(found) = self.search(query).into_iter().next() {
            return Some(found);
        }
        let deadline = switchboard_core::deadline(timeout);
        loop {
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                Ok(Ok(MailChange::New(message))) if query.matches(&message) => {
                    return Some(message);
                }
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    if let Some(found) = self.search(query).into_iter().next() {
                        return Some(found);
                    }
                }
            }
        }
    }

    pub fn stats(&self) -> StoreStats {
        let messages = self.lock();
        StoreStats {
            messages: messages.order.len(),
            unread: messages.unread,
            bytes: messages.bytes,
            accepted: self.shared.accepted.load(Ordering::Relaxed),
            accepted_bytes: self.shared.accepted_bytes.load(Ordering::Relaxed),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
            deleted: self.shared.deleted.load(Ordering::Relaxed),
            uptime: self.shared.started.elapsed(),
            location: self
                .shared
                .disk
                .as_ref()
                .map(|d| d.path().display().to_string())
                .unwrap_or_else(|| "memory".to_owned()),
        }
    }

    /// The mail directory, if messages are kept on disk.
    pub fn dir(&self) -> Option<&Path> {
        self.shared.disk.as_ref().map(MailDir::path)
    }
}

impl Shared {
    /// `max_messages` and `max_bytes`.
    fn limits(&self) -> (usize, u64) {
        (self.max_messages, self.max_bytes)
    }
}

impl Messages {
    fn push(&mut self, message: Arc<StoredMessage>) {
        self.counted(&message, true);
        self.by_id.insert(message.id.clone(), message.clone());
        self.order.push_back(message);
    }

    fn remove(&mut self, id: &str) -> Option<Arc<StoredMessage>> {
        let message = self.by_id.remove(id)?;
        self.order.retain(|m| m.id != id);
        self.counted(&message, false);
        Some(message)
    }

    /// Drop the oldest messages beyond `max` messages or `max_bytes` (but never the
    /// newest); return them.
    fn evict(&mut self, (max, max_bytes): (usize, u64)) -> Vec<Arc<StoredMessage>> {
        let mut evicted = Vec::new();
        while self.order.len() > max || (self.bytes > max_bytes && self.order.len() > 1) {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest.id);
                self.counted(&oldest, false);
                evicted.push(oldest);
            }
        }
        evicted
    }

    /// Every message, and the counts back to zero.
    fn clear(&mut self) -> Vec<Arc<StoredMessage>> {
        self.by_id.clear();
        self.unread = 0;
        self.bytes = 0;
        self.tags = None;
        self.order.drain(..).collect()
    }

    /// Count a message in (`added`) or out.
    fn counted(&mut self, message: &StoredMessage, added: bool) {
        let unread = usize::from(!message.is_read());
        let bytes = message.size() as u64;
        if added {
            self.unread += unread;
            self.bytes += bytes;
        } else {
            self.unread -= unread;
            self.bytes -= bytes;
        }
        if message.has_tags() {
            self.tags = None;
        }
    }
}

/// The connection a test's messages come in on.
#[cfg(test)]
pub(crate) fn via() -> ConnInfo {
    ConnInfo {
        id: 9,
        service: "smtp",
        local: std::net::SocketAddr::from(([127, 0, 0, 1], 25)),
        peer: std::net::SocketAddr::from(([127, 0, 0, 1], 2525)),
        tls: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            mail_from: "a@example.test".into(),
            rcpt_to: vec!["b@example.test".into()],
            helo: "client".into(),
            peer: "127.0.0.1:2525".parse().unwrap(),
            tls: false,
            auth_user: None,
            arrival: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_store_tells_each_message_it_keeps_once_on_its_bus() {
        let store = MailStore::in_memory(10);
        // Before it has a bus it tells nobody; after, every insert, whoever makes it.
        store
            .insert(envelope(), raw("unheard"), &via())
            .await
            .unwrap();
        let events = EventBus::new();
        let mut seen = events.subscribe();
        store.announce_to(events.clone());
        let kept = store
            .insert(envelope(), raw("heard"), &via())
            .await
            .unwrap();
        let told = seen.recv().await.unwrap();
        assert_eq!((told.event.port, told.event.service), (25, "smtp"));
        let captured = told.event.get::<MessageCaptured>().unwrap();
        assert_eq!(captured.message_id, kept.id);
        assert_eq!(
            (captured.from.as_str(), captured.to.clone(), captured.id),
            ("a@example.test", vec!["b@example.test".to_owned()], 9)
        );
        assert!(seen.try_recv().is_err(), "told once");
        assert_eq!(
            events
                .metrics()
                .render()
                .matches("switchboard_messages_captured_total{")
                .count(),
            1
        );
    }

    fn raw(subject: &str) -> Bytes {
        Bytes::from(format!(
            "Subject: {subject}\r\nTo: b@example.test\r\n\r\nbody\r\n"
        ))
    }

    #[test]
    fn ids_are_22_letters_and_digits_and_all_of_them_occur() {
        let ids: Vec<String> = (0..1000).map(|_| random_id()).collect();
        let mut seen = std::collections::HashSet::new();
        for id in &ids {
            assert_eq!(id.len(), 22, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
            seen.extend(id.bytes());
        }
        assert_eq!(seen.len(), 62, "every letter and digit turns up");
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[tokio::test]
    async fn newest_first_and_latest() {
        let store = MailStore::in_memory(10);
        let first = store.insert(envelope(), raw("one"), &via()).await.unwrap();
        let second = store.insert(envelope(), raw("two"), &via()).await.unwrap();
        assert_eq!(first.id.len(), 22);
        assert_ne!(first.id, second.id);
        let list = store.list();
        assert_eq!(list[0].summary().subject, "two");
        assert_eq!(list[1].summary().subject, "one");
        assert_eq!(store.get("latest").unwrap().id, second.id);
        assert_eq!(store.get(&first.id).unwrap().summary().subject, "one");
        assert!(store.get("nope").is_none());
    }

    #[tokio::test]
    async fn the_oldest_is_evicted_at_the_limit() {
        let store = MailStore::in_memory(2);
        for subject in ["one", "two", "three"] {
            store
                .insert(envelope(), raw(subject), &via())
                .await
                .unwrap();
        }
        let subjects: Vec<_> = store
            .list()
            .iter()
            .map(|m| m.summary().subject.clone())
            .collect();
        assert_eq!(subjects, ["three", "two"]);
    }

    #[tokio::test]
    async fn delete_read_flags_and_stats() {
        let store = MailStore::in_memory(10);
        let a = store
            .insert(envelope(), raw("alpha"), &via())
            .await
            .unwrap();
        store.insert(envelope(), raw("beta"), &via()).await.unwrap();
        store
            .insert(envelope(), raw("gamma"), &via())
            .await
            .unwrap();
        store
            .set_read(Some(std::slice::from_ref(&a.id)), true)
            .await;
        let stats = store.stats();
        assert_eq!((stats.messages, stats.unread, stats.accepted), (3, 2, 3));
        assert_eq!(store.delete(&[a.id.clone(), "unknown".into()]).await, 1);
        assert_eq!(
            store
                .delete_matching(&Query::parse("subject:beta").unwrap())
                .await,
            1
        );
        assert_eq!(store.len(), 1);
        store.set_read(None, true).await;
        assert_eq!(store.stats().unread, 0);
        assert_eq!(store.stats().deleted, 2);
        assert_eq!(store.delete_matching(&Query::default()).await, 1);
        assert!(store.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_returns_an_existing_match_or_the_next_arrival() {
        let store = MailStore::in_memory(10);
        store
            .insert(envelope(), raw("old news"), &via())
            .await
            .unwrap();
        let old = Query::parse("subject:old").unwrap();
        assert!(store.wait_for(&old, Duration::from_secs(1)).await.is_some());

        let fresh = Query::parse("subject:fresh").unwrap();
        let waiter = {
            let store = store.clone();
            tokio::spawn(async move { store.wait_for(&fresh, Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        store
            .insert(envelope(), raw("unrelated"), &via())
            .await
            .unwrap();
        store
            .insert(envelope(), raw("fresh mail"), &via())
            .await
            .unwrap();
        let found = waiter.await.unwrap().unwrap();
        assert_eq!(found.summary().subject, "fresh mail");

        let never = Query::parse("subject:never").unwrap();
        assert!(
            store
                .wait_for(&never, Duration::from_secs(5))
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_mail_directory_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let settings = MailSettings {
            dir: Some(dir.path().to_owned()),
            max_messages: 10,
            ..MailSettings::default()
        };
        let store = MailStore::open(&settings).unwrap();
        let kept = store.insert(envelope(), raw("kept"), &via()).await.unwrap();
        let gone = store
            .insert(envelope(), raw("deleted"), &via())
            .await
            .unwrap();
        store.delete(std::slice::from_ref(&gone.id)).await;
        drop(store);

        // What a crash between the two writes, and during a write, leave behind.
        std::fs::write(
            dir.path().join("Orphan0000000000000000.eml"),
            b"Subject: half\r\n\r\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".switchboard-x1.tmp"), b"partial").unwrap();

        let reopened = MailStore::open(&settings).unwrap();
        let list = reopened.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, kept.id);
        assert_eq!(list[0].raw, kept.raw);
        assert_eq!(list[0].envelope, kept.envelope);
        assert_eq!(
            list[0].received.unix_timestamp(),
            kept.received.unix_timestamp()
        );
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [format!("{}.eml", kept.id), format!("{}.json", kept.id)]
        );
    }

    #[tokio::test]
    async fn max_bytes_evicts_the_oldest_and_keeps_the_newest() {
        let store = MailStore::build(
            &MailSettings {
                max_bytes: 2500,
                ..MailSettings::default()
            },
            None,
            Vec::new(),
        );
        let big = |subject: &str| {
            Bytes::from(format!(
                "Subject: {subject}\r\n\r\n{}\r\n",
                "x".repeat(1000)
            ))
        };
        for subject in ["one", "two", "three"] {
            store
                .insert(envelope(), big(subject), &via())
                .await
                .unwrap();
        }
        let subjects: Vec<String> = store
            .list()
            .iter()
            .map(|m| m.summary().subject.clone())
            .collect();
        assert_eq!(subjects.len(), 2, "{subjects:?}");
        assert!(!subjects.contains(&"one".to_owned()), "{subjects:?}");
        // One message larger than the whole store is kept on its own.
        let huge = Bytes::from(format!("Subject: huge\r\n\r\n{}\r\n", "y".repeat(5000)));
        store.insert(envelope(), huge, &via()).await.unwrap();
        let list = store.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].summary().subject, "huge");
    }

    #[tokio::test]
    async fn eviction_removes_files_too() {
        let dir = tempfile::tempdir().unwrap();
        let settings = MailSettings {
            dir: Some(dir.path().to_owned()),
            max_messages: 1,
            ..MailSettings::default()
        };
        let store = MailStore::open(&settings).unwrap();
        store.insert(envelope(), raw("one"), &via()).await.unwrap();
        let two = store.insert(envelope(), raw("two"), &via()).await.unwrap();
        let count = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(count, 2, "only the newest message's two files remain");
        assert!(dir.path().join(format!("{}.eml", two.id)).exists());
    }

    fn tagged(x_tags: &str) -> Bytes {
        Bytes::from(format!(
            "Subject: t\r\nX-Tags: {x_tags}\r\nTo: b@example.test\r\n\r\nbody\r\n"
        ))
    }

    #[tokio::test]
    async fn tags_come_from_x_tags_and_when_asked_from_plus_addresses_and_the_user() {
        let plain = MailStore::in_memory(10);
        let mut env = envelope();
        env.rcpt_to = vec!["b+invoices@example.test".into()];
        env.auth_user = Some("app".into());
        let m = plain
            .insert(env.clone(), tagged("urgent, Billing ,urgent"), &via())
            .await
            .unwrap();
        assert_eq!(m.tags(), ["Billing", "urgent"]);

        let settings = MailSettings {
            tags_from_plus_addresses: true,
            tags_from_username: true,
            ..MailSettings::default()
        };
        let asked = MailStore::open(&settings).unwrap();
        let m = asked.insert(env, raw("x"), &via()).await.unwrap();
        assert_eq!(m.tags(), ["app", "invoices"]);
        assert!(Query::parse("tag:Invoices").unwrap().matches(&m));
        assert!(!Query::parse("tag:invoice").unwrap().matches(&m));
    }

    #[tokio::test]
    async fn tags_are_set_renamed_deleted_and_counted() {
        let store = MailStore::in_memory(10);
        let a = store
            .insert(envelope(), tagged("one"), &via())
            .await
            .unwrap();
        let b = store.insert(envelope(), raw("b"), &via()).await.unwrap();
        let mut changes = store.changes();
        store
            .set_tags(&[a.id.clone(), b.id.clone()], &["two".into(), "One".into()])
            .await;
        assert_eq!(a.tags(), ["One", "two"]);
        assert_eq!(store.tags(), [("One".into(), 2), ("two".into(), 2)]);
        match changes.recv().await.unwrap() {
            MailChange::Tags { id, tags } => {
                assert_eq!((id, tags), (a.id.clone(), vec!["One".into(), "two".into()]))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.rename_tag("one", Some("first")).await, 2);
        assert_eq!(b.tags(), ["first", "two"]);
        assert_eq!(store.rename_tag("two", None).await, 2);
        assert_eq!(store.tags(), [("first".into(), 2)]);
        assert_eq!(store.rename_tag("absent", None).await, 0);
    }

    #[tokio::test]
    async fn changes_say_what_happened() {
        let store = MailStore::in_memory(1);
        let mut changes = store.changes();
        let first = store.insert(envelope(), raw("one"), &via()).await.unwrap();
        assert!(matches!(changes.recv().await.unwrap(), MailChange::New(m) if m.id == first.id));
        store.insert(envelope(), raw("two"), &via()).await.unwrap();
        assert!(matches!(changes.recv().await.unwrap(), MailChange::New(_)));
        assert!(matches!(changes.recv().await.unwrap(), MailChange::Pruned));
        let id = store.list()[0].id.clone();
        store.set_read(Some(std::slice::from_ref(&id)), true).await;
        store.set_read(Some(std::slice::from_ref(&id)), true).await; // no change: no event
        assert!(
            matches!(changes.recv().await.unwrap(), MailChange::Read { read: true, id: i } if i == id)
        );
        store.delete(std::slice::from_ref(&id)).await;
        assert!(matches!(changes.recv().await.unwrap(), MailChange::Deleted(i) if i == id));
        store.delete_all().await;
        assert!(matches!(
            changes.recv().await.unwrap(),
            MailChange::Truncated
        ));
    }

    #[tokio::test]
    async fn read_flags_and_tags_survive_a_restart_without_touching_messages() {
        let dir = tempfile::tempdir().unwrap();
        let settings = MailSettings {
            dir: Some(dir.path().to_owned()),
            ..MailSettings::default()
        };
        let store = MailStore::open(&settings).unwrap();
        let a = store
            .insert(envelope(), tagged("from-header"), &via())
            .await
            .unwrap();
        let b = store.insert(envelope(), raw("b"), &via()).await.unwrap();
        let eml = std::fs::read(dir.path().join(format!("{}.eml", a.id))).unwrap();
        store
            .set_read(Some(std::slice::from_ref(&a.id)), true)
            .await;
        store
            .set_tags(std::slice::from_ref(&b.id), &["api".into()])
            .await;
        store.rename_tag("from-header", Some("renamed")).await;
        drop(store);

        let reopened = MailStore::open(&settings).unwrap();
        let a2 = reopened.get(&a.id).unwrap();
        let b2 = reopened.get(&b.id).unwrap();
        assert!(a2.is_read() && !b2.is_read());
        assert_eq!(a2.tags(), ["renamed"]);
        assert_eq!(b2.tags(), ["api"]);
        assert_eq!(
            std::fs::read(dir.path().join(format!("{}.eml", a.id))).unwrap(),
            eml,
            "the message's own file is never rewritten"
        );
    }

    /// The counts a full walk gives, to check the kept ones against.
    fn recount(store: &MailStore) -> (usize, usize, u64) {
        let all = store.list();
        let unread = all.iter().filter(|m| !m.is_read()).count();
        let bytes = all.iter().map(|m| m.size() as u64).sum();
        (all.len(), unread, bytes)
    }

    fn kept(store: &MailStore) -> (usize, usize, u64) {
        let stats = store.stats();
        (stats.messages, stats.unread, stats.bytes)
    }

    #[tokio::test]
    async fn kept_counts_and_tags_follow_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let settings = MailSettings {
            dir: Some(dir.path().to_owned()),
            max_messages: 3,
            ..MailSettings::default()
        };
        let store = MailStore::open(&settings).unwrap();
        let mut ids = Vec::new();
        for subject in ["one", "two", "three", "four"] {
            ids.push(
                store
                    .insert(envelope(), tagged(subject), &via())
                    .await
                    .unwrap()
                    .id
                    .clone(),
            );
            assert_eq!(kept(&store), recount(&store), "after inserting {subject}");
        }
        assert_eq!(store.tags().len(), 3, "the evicted message's tag is gone");
        store.set_read(Some(&ids[2..3]), true).await;
        store.set_read(Some(&ids[2..3]), true).await;
        assert_eq!(kept(&store), recount(&store));
        store.set_read(None, true).await;
        store.set_read(Some(&ids[3..4]), false).await;
        assert_eq!(kept(&store), recount(&store));
        store.set_tags(&ids[3..4], &["x".into()]).await;
        assert_eq!(
            store.tags(),
            [("three".into(), 1), ("two".into(), 1), ("x".into(), 1)]
        );
        store.delete(&ids[1..2]).await;
        assert_eq!(kept(&store), recount(&store));
        assert_eq!(store.tags(), [("three".into(), 1), ("x".into(), 1)]);
        let (page, total) = store.page(1, 5);
        assert_eq!((page.len(), total), (1, 2));
        assert_eq!(page[0].id, ids[2]);
        drop(store);

        let reopened = MailStore::open(&settings).unwrap();
        assert_eq!(kept(&reopened), recount(&reopened));
        assert_eq!(kept(&reopened).1, 1, "one unread after the restart");
        reopened.delete_all().await;
        assert_eq!(kept(&reopened), (0, 0, 0));
        assert!(reopened.tags().is_empty());
    }
}
