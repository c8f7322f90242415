//! The `[supervisor]` table: shutdown, the default connection limit, refusals, UDP
//! answers and blackhole rows.

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
}

impl Default for SupervisorSettings {
    fn default() -> Self {
        Self {
            shutdown_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_refusals: 64,
            udp_max_answer: 512,
            blackhole_wait: Duration::from_millis(200),
        }
    }
}
