//! Events of one service's own: a message captured, a program started, a proxy's upstream
//! leg closed. Core knows connections and ports; what else a service has to tell is its
//! own type, in its own crate, which says itself in the log, names its kind and counts
//! towards the port's counters. Adding one edits that crate only.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::text::PortName;
use super::{Event, EventKind};
use crate::ConnInfo;

/// An event a service defines. Its fields are its JSON (beside `port`, `protocol`,
/// `service` and `kind`): it derives `Serialize`, and [`Fields`] does the rest;
/// [`name`](Self::name) is its `kind` and its server-sent event name.
pub trait ServiceEvent: Fields + fmt::Debug + Send + Sync + Any {
    /// The event's kind, in snake case: `message_captured`.
    fn name(&self) -> &'static str;

    /// Write it to the log (with `tracing`), worded for a person watching the terminal;
    /// `port` writes the port as people say it ("25", "7/udp"), `service` names its service.
    fn log(&self, port: PortName, service: &'static str);

    /// What it adds to the port's counters (`/metrics`); most events add nothing.
    fn tally(&self) -> Tally {
        Tally::default()
    }
}

/// An event's fields as a JSON object: every `Serialize` type has them. (A trait object
/// cannot serialize itself through every serializer; a JSON value can, into any format.)
pub trait Fields {
    fn fields(&self) -> Value;
}

impl<T: Serialize> Fields for T {
    fn fields(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What one event adds to its port's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages captured (`switchboard_messages_captured_total`).
    pub messages: u64,
    /// Bytes a proxy passed on to its upstream (`switchboard_upstream_sent_bytes_total`).
    pub upstream_sent: u64,
    /// Bytes a proxy got back from its upstream
    /// (`switchboard_upstream_received_bytes_total`).
    pub upstream_received: u64,
}

/// A service's event, as [`EventKind::Service`] carries it: cheap to clone, since every
/// subscriber of the bus gets the same one.
#[derive(Clone, Debug)]
pub struct Said(Arc<dyn ServiceEvent>);

impl Said {
    pub fn new(event: impl ServiceEvent) -> Self {
        Self(Arc::new(event))
    }

    /// The event as its own type, if it is one.
    pub fn get<T: ServiceEvent>(&self) -> Option<&T> {
        (&*self.0 as &dyn Any).downcast_ref()
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    pub(super) fn log(&self, port: PortName, service: &'static str) {
        self.0.log(port, service);
    }

    pub(super) fn tally(&self) -> Tally {
        self.0.tally()
    }
}

impl Serialize for Said {
    /// One flat object: `kind`, then the event's own fields. Built only when a subscriber
    /// serializes the event (the live feed), never on the way through the bus.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = match self.0.fields() {
            Value::Object(fields) => fields,
            _ => serde_json::Map::new(),
        };
        let mut map = serializer.serialize_map(Some(fields.len() + 1))?;
        map.serialize_entry("kind", self.0.name())?;
        for (key, value) in &fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl Event {
    /// A service's event about the connection `info`.
    pub fn said(info: &ConnInfo, event: impl ServiceEvent) -> Self {
        Self::new(
            info.port(),
            info.service,
            EventKind::Service(Said::new(event)),
        )
    }

    /// The event as the service event `T`, if it is one.
    pub fn get<T: ServiceEvent>(&self) -> Option<&T> {
        match &self.kind {
            EventKind::Service(said) => said.get(),
            _ => None,
        }
    }
}

/// Serialize a duration as milliseconds, with fractions (`"duration_ms": 1.5`), as every
/// event writes durations.
pub fn millis<S: Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}
