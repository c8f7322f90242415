//! The `[supervisor]` table: shutdown, the default connection limit, refusals, UDP
//! answers, blackhole rows and the clocks of every connection.

use std::time::Duration;

use serde::Deserialize;

/// The `[supervisor]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorSettings {
    /// After a shutdown signal, how long open connections may take to finish before they
    /// are closed.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// The default for each port's `max_connections`.
    pub max_connections: usize,
    /// Connections being turned away politely at once, per port. When even these are all
    /// busy, switchboard stops accepting and new connections wait in the kernel's queue.
    pub max_refusals: usize,
    /// The most bytes a UDP service answers a datagram with, unless the datagram itself was
    /// longer (an echo is never cut): the brake on using a UDP port to amplify traffic.
    pub udp_max_answer: usize,
    /// How long a blackhole row waits for a knock of its own to go unanswered, the proof
    /// that its queue is full, before the port is ready (per address).
    #[serde(with = "humantime_serde")]
    pub blackhole_wait: Duration,
    /// A write to a client that takes no byte for this long ends the connection (a client
    /// that never reads its answers), on every port.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// The default of each row's `idle_timeout`: rows whose protocol has no timeouts of its
    /// own (echo, discard, programs, proxies, …) end a connection with no byte either way
    /// for this long.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Bytes that every connection together may hold of what clients sent before it is
    /// acted on: HTTP request bodies and SMTP messages being received. Over it, HTTP answers
    /// `503` and SMTP `452 4.3.1`.
    pub max_buffered_bytes: u64,
}

impl Default for SupervisorSettings {
    fn default() -> Self {
        Self {
            shutdown_timeout: Duration::from_secs(10),
            max_connections: 512,
            max_refusals: 64,
            udp_max_answer: 64,
            blackhole_wait: Duration::from_millis(200),
            write_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_buffered_bytes: switchboard_core::DEFAULT_BUFFERED_BYTES,
        }
    }
}
