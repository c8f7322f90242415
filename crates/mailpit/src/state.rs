//! What the mail web works with — the mail store, the chaos triggers, the event stream, the
//! port table (to say which SMTP ports a chaos trigger is on) — and its limits, keys of the
//! `[http]` table.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{EventBus, InvalidSetting, PortDirectory};
use switchboard_mail::{Chaos, MailStore};

use crate::thumbnail::Thumbnails;

/// The mail web's limits; their keys are in the config file's `[http]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MailpitSettings {
    /// Longest `/api/v1/wait` will wait for a message; a longer `timeout` gets 400.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// The largest picture a thumbnail is made of, in decoded bytes (width × height × bytes
    /// a pixel, as its header declares it); a larger one gets a blank thumbnail, undecoded.
    pub max_image_bytes: u64,
    /// Thumbnails made at the same time; more requests wait their turn.
    pub thumbnails_at_once: usize,
    /// Thumbnails kept once made; the oldest is forgotten first.
    pub thumbnail_cache: usize,
}

impl Default for MailpitSettings {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(60),
            max_image_bytes: 32 * 1024 * 1024,
            thumbnails_at_once: 1,
            thumbnail_cache: 128,
        }
    }
}

impl MailpitSettings {
    /// Check the values that cannot be expressed by their types; the message names the key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.thumbnails_at_once == 0 {
            return Err(InvalidSetting::new(
                "thumbnails_at_once",
                "thumbnails_at_once must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The mail web: Mailpit's API, the `/view/` pages, thumbnails, the send API, Mailpit's
/// events and the mailbox page, over one mail store. Cloning is cheap.
#[derive(Clone)]
pub struct MailWeb(pub(crate) AppState);

/// What every handler reads.
pub(crate) type AppState = Arc<Inner>;

pub(crate) struct Inner {
    pub(crate) mail: MailStore,
    pub(crate) chaos: Chaos,
    pub(crate) events: EventBus,
    pub(crate) ports: Arc<dyn PortDirectory>,
    pub(crate) settings: MailpitSettings,
    pub(crate) thumbnails: Thumbnails,
}

impl MailWeb {
    pub fn new(
        mail: MailStore,
        chaos: Chaos,
        events: EventBus,
        ports: Arc<dyn PortDirectory>,
        settings: MailpitSettings,
    ) -> Self {
        let thumbnails = Thumbnails::new(
            settings.thumbnail_cache,
            settings.thumbnails_at_once,
            settings.max_image_bytes,
        );
        Self(Arc::new(Inner {
            mail,
            chaos,
            events,
            ports,
            settings,
            thumbnails,
        }))
    }
}

impl std::fmt::Debug for MailWeb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailWeb")
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}
