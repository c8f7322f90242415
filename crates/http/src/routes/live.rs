//! What changes while you watch: the event stream as server-sent events, the metrics, and
//! the page's own script and style (embedded in the binary; no build step, no CDN).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Request, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{Stream, StreamExt};
use switchboard_core::{Shutdown, Timed};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;
use switchboard_web::Connection;
use switchboard_web::websocket;

/// The event stream and the metrics: they show switchboard's state (behind the site guard).
pub(super) fn state_routes() -> Router<AppState> {
    Router::new()
        .route("/api/events", get(events))
        .route("/metrics", get(metrics))
}

/// The pages' scripts and styles.
pub(super) fn asset_routes() -> Router<AppState> {
    Router::new()
        .route("/assets/page.js", get(script))
        .route("/assets/building.js", get(building))
        .route("/assets/page.css", get(style))
}

/// `GET /api/events`: every event as it happens, one JSON object each, named by its kind
/// (`connection_opened`, `message_captured`, …). A reader that falls more than the buffer
/// behind gets a `lagged` event saying how many it missed; the server never waits for it.
///
/// A WebSocket upgrade on the same path gets Mailpit's mailbox events instead
/// (`switchboard_mailpit`), as Mailpit's clients expect there.
async fn events(
    State(state): State<AppState>,
    Extension(conn): Extension<Arc<Connection>>,
    request: Request,
) -> Response {
    if websocket::is_websocket(request.headers()) {
        return switchboard_mailpit::events(&state.mailpit, &conn, request);
    }
    server_sent_events(&state, &conn).into_response()
}

fn server_sent_events(
    state: &AppState,
    conn: &Connection,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>> {
    let trusted = super::control::trusted(state, conn.info.peer.ip());
    let stream = feed(state.shared.events.subscribe(), conn.shutdown.clone()).map(move |item| {
        Ok(match item {
            Item::Event(timed) => {
                let event = SseEvent::default().event(timed.event.kind.name());
                let data = match trusted {
                    true => event.json_data(&*timed),
                    false => event.json_data(withheld(&timed)),
                };
                data.unwrap_or_else(|_| SseEvent::default().comment("unserializable event"))
            }
            Item::Lagged(missed) => SseEvent::default()
                .event("lagged")
                .data(format!("{{\"missed\":{missed}}}")),
        })
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// What rows serve, left out of an event for a client outside `[control] allow` (as
/// `/api/ports` leaves it out): a program's command line, a proxy's upstream.
const WITHHELD: [&str; 2] = ["command", "upstream"];

/// `timed` as JSON without [`WITHHELD`]'s fields.
fn withheld(timed: &Timed) -> serde_json::Value {
    let mut value = serde_json::to_value(timed).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        for key in WITHHELD {
            fields.remove(key);
        }
    }
    value
}

/// What the feed delivers: an event, or word that some were missed.
#[derive(Debug)]
enum Item {
    Event(Arc<Timed>),
    Lagged(u64),
}

/// The subscriber's events until shutdown; it ends then, so that it never holds a
/// connection open past shutdown.
fn feed(receiver: Receiver<Arc<Timed>>, shutdown: Shutdown) -> impl Stream<Item = Item> {
    futures_util::stream::unfold(
        (receiver, shutdown),
        |(mut receiver, shutdown)| async move {
            let next = tokio::select! {
                biased;
                () = shutdown.requested() => return None,
                next = receiver.recv() => next,
            };
            let item = match next {
                Ok(timed) => Item::Event(timed),
                Err(RecvError::Lagged(missed)) => Item::Lagged(missed),
                Err(RecvError::Closed) => return None,
            };
            Some((item, (receiver, shutdown)))
        },
    )
}

/// `GET /metrics`: Prometheus (OpenMetrics) text.
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            switchboard_core::Metrics::CONTENT_TYPE,
        )],
        state.shared.events.metrics().render(),
    )
        .into_response()
}

async fn script() -> Response {
    switchboard_web::asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/page.js"),
    )
}

async fn building() -> Response {
    switchboard_web::asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/building.js"),
    )
}

async fn style() -> Response {
    switchboard_web::asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/page.css"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::{Event, EventBus, EventKind};

    fn at_limit(port: u16) -> Event {
        Event::new(port, "echo", EventKind::PortAtLimit { limit: 1 })
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_is_told_what_it_missed() {
        let bus = EventBus::new();
        let shutdown = Shutdown::new();
        let mut feed = Box::pin(feed(bus.subscribe(), shutdown.clone()));
        // More than the subscriber's buffer of 1024, while the reader reads nothing.
        for port in 0..1100 {
            bus.emit(at_limit(port));
        }
        match feed.next().await {
            Some(Item::Lagged(missed)) => assert_eq!(missed, 76),
            other => panic!("expected lagged, got {other:?}"),
        }
        // Then the events it still has, oldest first.
        match feed.next().await {
            Some(Item::Event(timed)) => {
                assert_eq!(timed.event.port, 76);
            }
            other => panic!("expected an event, got {other:?}"),
        }
        shutdown.request();
        assert!(feed.next().await.is_none(), "the feed ends at shutdown");
    }
}
