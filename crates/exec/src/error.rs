//! Why an exec row's service cannot be built.

use switchboard_core::InvalidRow;

/// Why an exec row's service cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The row's keys: no command, a zero limit, …
    #[error(transparent)]
    Invalid(#[from] InvalidRow),
    /// The user or group to run as: unknown, or asked for without root.
    #[error("{0}")]
    RunAs(String),
    /// The seccomp filter could not be made.
    #[error("{0}")]
    Filter(String),
}
