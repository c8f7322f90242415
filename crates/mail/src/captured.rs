//! The one announcement of a captured message: the store tells it for every message it
//! keeps, whoever handed it in (SMTP, the send API, or any later way in).

use std::net::SocketAddr;

use serde::Serialize;
use switchboard_core::{PortName, ServiceEvent, Tally};

/// The `message_captured` event: a message was accepted (an SMTP client was told 250, the
/// send API answered with its ID) and stored.
#[derive(Clone, Debug, Serialize)]
pub struct MessageCaptured {
    /// The connection it came in on.
    pub id: u64,
    pub peer: SocketAddr,
    /// The store's ID of the message, for `/api/v1/message/{ID}`.
    pub message_id: String,
    pub from: String,
    pub to: Vec<String>,
    pub size: usize,
}

impl ServiceEvent for MessageCaptured {
    fn name(&self) -> &'static str {
        "message_captured"
    }

    fn log(&self, _: PortName, _: &'static str) {
        let Self {
            message_id,
            from,
            to,
            size,
            ..
        } = self;
        tracing::info!(
            message_id,
            "message captured: {message_id} from <{from}> to <{}>, {size} bytes",
            to.join(">, <")
        );
    }

    fn tally(&self) -> Tally {
        Tally {
            messages: 1,
            ..Tally::default()
        }
    }
}
