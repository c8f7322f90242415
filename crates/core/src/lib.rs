//! The shared vocabulary of switchboard.
//!
//! Every other crate speaks in these terms: the supervisor accepts a TCP connection, wraps it
//! in a [`Conn`] and hands it to a [`Service`] together with a [`Shutdown`] signal; things that
//! happen along the way are [`Event`]s on one [`EventBus`]; and the live port table is visible
//! to services through [`PortDirectory`] and changed through [`PortControl`].
//!
//! # Layout
//!
//! - `service.rs`: the [`Service`] trait, the one thing a protocol implements,
//!   [`DatagramService`], its form for UDP ports, and [`Refusal`], the limit a connection
//!   ran into.
//! - `conn.rs`: [`Conn`] (a byte stream plus where it came from), [`ConnInfo`], and
//!   [`FaultLayer`], what may stand between the socket and the service.
//! - `shutdown.rs`: [`Shutdown`], how a service learns it should finish, and [`Signal`],
//!   the cheap-to-poll flag under it.
//! - `event/`: [`Event`] and [`EventBus`], the one stream that logs, feeds and counters read;
//!   `event/said.rs` is how a service adds events of its own ([`ServiceEvent`]), each in its
//!   own crate with its own words; `event/metrics.rs` keeps the counters ([`Metrics`]);
//!   `event/text.rs` writes ports and addresses ([`Addr`], [`PortName`]) for log lines.
//! - `ports.rs`: [`Protocol`], [`PortStatus`], [`PortDirectory`] and [`PortControl`]: the
//!   port table as services see it and change it.
//! - `access.rs`: [`AccessRules`], who may connect to a port.
//! - `budget.rs`: [`Budget`], the memory all connections together may hold of what clients
//!   send (request bodies, messages), and [`Claim`], one body's share of it.
//! - `clock.rs`: [`deadline`], an instant from a duration that may come from outside.
//! - `row.rs`: [`RowKeys`], a service's own keys of a port row, and [`Target`], what a row
//!   serves.
//! - `setting.rs`: [`InvalidSetting`], a settings value that cannot work.
//! - `stall.rs`: [`Deadlines`], the write and idle clocks every connection's stream keeps.

mod access;
mod budget;
mod clock;
mod conn;
mod event;
mod ports;
mod row;
mod service;
mod setting;
mod shutdown;
mod stall;

pub use access::{AccessRules, Cidr, Verdict};
pub use budget::{Budget, Claim, DEFAULT_BUFFERED_BYTES};
pub use clock::deadline;
pub use conn::{ByteCounts, Conn, ConnInfo, ConnStream, FaultLayer, ResetSwitch, TlsInfo};
pub use event::{
    Addr, Event, EventBus, EventKind, Fields, Metrics, PortCounts, PortName, Said, ServiceEvent,
    Tally, Timed, millis, timestamp,
};
pub use ports::{
    BLACKHOLE, ControlError, PortControl, PortDirectory, PortState, PortStatus, Protocol,
};
pub use row::{InvalidRow, OwnKeys, RowKeys, Target};
pub use service::{BoxError, DatagramService, Refusal, Service};
pub use setting::InvalidSetting;
pub use shutdown::{Raised, Shutdown, Signal};
pub use stall::Deadlines;
