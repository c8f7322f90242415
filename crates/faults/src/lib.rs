//! Faults, in the model Toxiproxy users know: latency, a slow link, a stall, a reset, data
//! cut short, applied to a connection's bytes while the service reads and writes as usual.
//!
//! The supervisor's gate gives every accepted connection a [`Faults`] that follows its
//! port's toxics, so faults work the same for every service; the control API changes them
//! through [`ToxicControl`].
//!
//! # Layout
//!
//! - `toxic.rs`: [`Toxic`], the model, and its JSON and TOML shape (Toxiproxy's).
//! - `engine.rs`: [`Faults`], one connection's fault state, applying toxics to its bytes
//!   (it is the [`FaultLayer`](switchboard_core::FaultLayer) of the connection's stream).
//! - `port.rs`: [`PortToxics`], one port's toxics: counted ones (`first`) handed to exactly
//!   that many connections, timed ones (`duration`) removed on time, every start and end an
//!   event.
//! - `control.rs`: [`ToxicControl`], changing a port's toxics while it runs.

mod control;
mod engine;
mod port;
mod toxic;

pub use control::ToxicControl;
pub use engine::{Faults, ToxicSet};
pub use port::PortToxics;
pub use toxic::{InvalidToxic, Kind, Stream, TYPES, Toxic, ToxicSpec};
