use switchboard_core::ControlError;

use crate::Toxic;

/// Changing a port's toxics while it runs. The supervisor implements it; the HTTP control
/// API and the test harness use it. A change reaches open connections at their next read
/// or write.
pub trait ToxicControl: Send + Sync + 'static {
    /// The port's toxics, in the order they were added.
    fn toxics(&self, port: u16) -> Result<Vec<Toxic>, ControlError>;
    /// Add a toxic; its name must be new on this port.
    fn add_toxic(&self, port: u16, toxic: Toxic) -> Result<Toxic, ControlError>;
    /// Change a toxic (see [`Toxic::patched`]).
    fn update_toxic(
        &self,
        port: u16,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<Toxic, ControlError>;
    fn remove_toxic(&self, port: u16, name: &str) -> Result<(), ControlError>;
}
