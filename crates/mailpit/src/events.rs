//! Mailpit's mailbox events on a WebSocket at `/api/events`: what Mailpit's clients listen
//! to for new mail. Each message is `{"Type": …, "Data": …}`:
//!
//! | Type | Data |
//! | --- | --- |
//! | `new` | the message's summary, as `/api/v1/messages` lists it |
//! | `update` | `{"ID", "Read"}` or `{"ID", "Tags"}` |
//! | `delete` | `{"ID"}` |
//! | `truncate` | `null`: every message was deleted |
//! | `prune` | `null`: the oldest were deleted to make room |
//! | `stats` | `{"Total", "Unread", "Version"}`, after each of the above |
//!
//! The session (its handshake is in `websocket.rs`) ends when the client closes, and says
//! goodbye (close frame 1001) at shutdown.

use axum::extract::Request;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_core::Shutdown;
use switchboard_mail::{MailChange, MailStore};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::shapes::MessageSummary;
use crate::state::AppState;
use switchboard_web::Connection;
use switchboard_web::websocket;

/// Answer the handshake and forward the mailbox's changes on the socket afterwards.
pub(crate) fn upgrade(state: &AppState, conn: &Connection, request: Request) -> Response {
    let mail = state.mail.clone();
    let shutdown = conn.shutdown.clone();
    websocket::accept(conn, request, None, move |socket| {
        session(socket, mail, shutdown)
    })
}

/// Forward the mailbox's changes until the client leaves or switchboard stops.
async fn session<S>(socket: WebSocketStream<S>, mail: MailStore, shutdown: Shutdown)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut incoming) = socket.split();
    let mut changes = mail.changes();
    loop {
        let change = tokio::select! {
            biased;
            () = shutdown.requested() => {
                let goodbye = CloseFrame { code: CloseCode::Away, reason: "switchboard is shutting down".into() };
                let _ = sink.send(Message::Close(Some(goodbye))).await;
                return;
            }
            frame = incoming.next() => match frame {
                // Pings are answered by the protocol layer; anything else from the client
                // is ignored, as Mailpit does.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            change = changes.recv() => change,
        };
        let messages = match change {
            Ok(change) => vec![notification(&change), stats(&mail)],
            // Fell behind: the counts are still right.
            Err(RecvError::Lagged(_)) => vec![stats(&mail)],
            Err(RecvError::Closed) => return,
        };
        for message in messages {
            if sink.send(Message::text(message.to_string())).await.is_err() {
                return;
            }
        }
    }
}

/// A change in Mailpit's words.
fn notification(change: &MailChange) -> Value {
    let (kind, data) = match change {
        MailChange::New(message) => (
            "new",
            serde_json::to_value(MessageSummary::from(message.as_ref())).unwrap_or(Value::Null),
        ),
        MailChange::Read { id, read } => ("update", json!({ "ID": id, "Read": read })),
        MailChange::Tags { id, tags } => ("update", json!({ "ID": id, "Tags": tags })),
        MailChange::Deleted(id) => ("delete", json!({ "ID": id })),
        MailChange::Truncated => ("truncate", Value::Null),
        MailChange::Pruned => ("prune", Value::Null),
    };
    json!({ "Type": kind, "Data": data })
}

fn stats(mail: &MailStore) -> Value {
    let stats = mail.stats();
    json!({
        "Type": "stats",
        "Data": {
            "Total": stats.messages,
            "Unread": stats.unread,
            "Version": env!("CARGO_PKG_VERSION"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_named_as_mailpit_names_them() {
        let types: Vec<Value> = [
            MailChange::Read {
                id: "a".into(),
                read: true,
            },
            MailChange::Tags {
                id: "a".into(),
                tags: vec!["t".into()],
            },
            MailChange::Deleted("a".into()),
            MailChange::Truncated,
            MailChange::Pruned,
        ]
        .iter()
        .map(notification)
        .collect();
        assert_eq!(
            types[0],
            json!({"Type": "update", "Data": {"ID": "a", "Read": true}})
        );
        assert_eq!(
            types[1],
            json!({"Type": "update", "Data": {"ID": "a", "Tags": ["t"]}})
        );
        assert_eq!(types[2], json!({"Type": "delete", "Data": {"ID": "a"}}));
        assert_eq!(types[3], json!({"Type": "truncate", "Data": null}));
        assert_eq!(types[4], json!({"Type": "prune", "Data": null}));
    }
}
