//! The shared vocabulary of switchboard.
//!
//! Every other crate speaks in these terms: the supervisor accepts a TCP connection, wraps it
//! in a [`Conn`] and hands it to a [`Service`] together with a [`Shutdown`] signal; things that
//! happen along the way are [`Event`]s on one [`EventBus`]; and the live port table is visible
//! to services through [`PortDirectory`].
//!
//! # Layout
//!
//! - `service.rs`: the [`Service`] trait, the one thing a protocol implements.
//! - `conn.rs`: [`Conn`] (a byte stream plus where it came from) and [`ConnInfo`].
//! - `shutdown.rs`: [`Shutdown`], how a service learns it should finish, and [`Signal`],
//!   the cheap-to-poll flag under it.
//! - `event.rs`: [`Event`] and [`EventBus`], the one stream that logs and feeds read.
//! - `ports.rs`: [`PortStatus`] and [`PortDirectory`], the port table as services see it.
//! - `metrics.rs`: [`Metrics`], Prometheus counters kept from the event stream.
//! - `durable.rs`: crash-safe file writes, for certificates and captured mail.
//! - `sockets.rs`: the kernel's socket table from `/proc/net/tcp`: where ports live.
//! - `toxic.rs` and `faults.rs`: faults in Toxiproxy's model, applied inside [`ConnStream`].

pub mod access;
mod chaos;
mod conn;
pub mod durable;
mod event;
mod faults;
mod metrics;
mod ports;
mod service;
mod shutdown;
pub mod sockets;
pub mod toxic;

pub use access::{AccessRules, Cidr, Verdict};
pub use chaos::{Chaos, ChaosPoint, ChaosSettings, Trigger, TriggerSetting, Triggers};
pub use conn::{ByteCounts, Conn, ConnInfo, ConnStream, TlsInfo};
pub use event::{Event, EventBus, Observer, Timed};
pub use faults::{Faults, ToxicSet};
pub use metrics::Metrics;
pub use ports::{ControlError, PortControl, PortDirectory, PortState, PortStatus};
pub use service::{BoxError, Refusal, Service};
pub use shutdown::{Shutdown, Signal};
pub use toxic::Toxic;
