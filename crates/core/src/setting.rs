//! A setting whose value cannot work, as every crate's settings type says it when checked.

/// A value of a settings table that cannot work: which key, and why, in words that name it
/// (`max_recipients must be at least 1`). The app says which table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidSetting {
    pub key: &'static str,
    pub message: String,
}

impl InvalidSetting {
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}
