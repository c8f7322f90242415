//! A port row's keys that belong to its service — a proxy's `upstream`, an exec row's
//! `command`, a stubs row's `tls` — beside the keys every row has. The app reads a row's
//! common keys and hands the rest to the service's crate, whose type implements [`RowKeys`];
//! the supervisor carries them as [`OwnKeys`], without knowing their type, and shows what the
//! row serves as a [`Target`].

use std::any::Any;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A service's own keys of a port row, parsed by the service's crate (with its defaults for
/// keys a row leaves out, and unknown keys refused).
pub trait RowKeys: DeserializeOwned + fmt::Debug + Send + Sync + 'static {
    /// Check what the keys' types cannot; the message names the key.
    fn check(&self) -> Result<(), InvalidRow> {
        Ok(())
    }

    /// What the row serves, to show in the port table (`upstream`, `command`).
    fn target(&self) -> Option<Target> {
        None
    }

    /// Whether the row is served inside TLS, and so needs the server certificate.
    fn uses_tls(&self) -> bool {
        false
    }
}

/// A row's own keys as the port table carries them: read and checked, of a type only the
/// service's crate knows ([`downcast`](Self::downcast) gives it back).
pub trait OwnKeys: Any + fmt::Debug + Send + Sync {
    /// Whether the row is served inside TLS ([`RowKeys::uses_tls`]).
    fn need_tls(&self) -> bool;
}

impl<T: RowKeys> OwnKeys for T {
    fn need_tls(&self) -> bool {
        self.uses_tls()
    }
}

impl dyn OwnKeys {
    /// The keys as the type `T`, if they are of it.
    pub fn downcast<T: RowKeys>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref()
    }
}

/// A row's keys that do not fit together or hold a bad value, in words that name the key;
/// and which key, when one is to blame (a config file's error then points at it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRow {
    pub key: Option<&'static str>,
    pub message: String,
}

impl InvalidRow {
    /// A row that is wrong as a whole, or for a key it lacks.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            key: None,
            message: message.into(),
        }
    }

    /// A row whose `key` holds a bad value.
    pub fn at(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key: Some(key),
            message: message.into(),
        }
    }
}

/// What a row serves, as the port table shows it: a key and its value (`upstream`,
/// `"127.0.0.1:5432"`). In JSON it is that one key of the row's object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub key: &'static str,
    pub value: String,
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.key, &self.value)?;
        map.end()
    }
}
