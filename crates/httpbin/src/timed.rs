//! Answers spread over time, for testing a client's read timeouts and streaming parsers:
//! `/drip` sends its bytes a few at a time, `/sse` sends server-sent events on a schedule.
//!
//! Both start after `delay` and finish `duration` later; `delay + duration` is at most
//! `[http] max_delay`, so neither holds a connection longer than `/delay` may.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::echo::Echo;
use crate::methods::report;
use crate::reply::{bad_request, over_cap};
use crate::settings::AppState;

/// A number of seconds as a query gives it (`2`, `0.5`, or with a unit: `500ms`, `2s`), at
/// most `max`; `default` when it is not given.
fn seconds(
    name: &str,
    value: Option<&str>,
    default: Duration,
    max: Duration,
) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(text) => switchboard_web::params::duration(name, text, max, "[http] max_delay")
            .map_err(|why| format!("{why}\n")),
    }
}

/// The start delay and the span of a timed answer, checked against `[http] max_delay`.
fn schedule(
    state: &AppState,
    delay: Option<&str>,
    default_delay: Duration,
    duration: Option<&str>,
    default_duration: Duration,
) -> Result<(Duration, Duration), String> {
    let max = state.max_delay;
    let delay = seconds("delay", delay, default_delay, max)?;
    let duration = seconds("duration", duration, default_duration, max)?;
    if delay.saturating_add(duration) > max {
        return Err(format!(
            "delay {}s + duration {}s: together at most {}s (the cap is [http] max_delay)\n",
            delay.as_secs_f64(),
            duration.as_secs_f64(),
            max.as_secs_f64()
        ));
    }
    Ok((delay, duration))
}

/// When the `i`th of `n` pieces is due: evenly over `duration` from `start`, the first at
/// once and the last at the end.
fn due(start: Instant, duration: Duration, i: u32, n: u32) -> Instant {
    match n {
        0 | 1 => start,
        _ => start + duration.mul_f64(f64::from(i) / f64::from(n - 1)),
    }
}

#[derive(Deserialize)]
pub(crate) struct Drip {
    numbytes: Option<u32>,
    duration: Option<String>,
    delay: Option<String>,
    code: Option<u16>,
}

/// `/drip?numbytes=10&duration=2&delay=2&code=200`: wait `delay`, answer `code`, then send
/// `numbytes` asterisks spread evenly over `duration`. numbytes at most `[http] max_bytes`.
pub(crate) async fn drip(State(state): State<AppState>, Query(query): Query<Drip>) -> Response {
    let numbytes = query.numbytes.unwrap_or(10);
    if let Some(refusal) = over_cap(numbytes as usize, "bytes", state.max_bytes, "max_bytes") {
        return refusal;
    }
    let code = query.code.unwrap_or(200);
    let Some(status) = (200..=599)
        .contains(&code)
        .then(|| StatusCode::from_u16(code).ok())
        .flatten()
    else {
        return bad_request(format!("code={code}: use a status from 200 to 599\n"));
    };
    let two = Duration::from_secs(2);
    let (delay, duration) = match schedule(
        &state,
        query.delay.as_deref(),
        two,
        query.duration.as_deref(),
        two,
    ) {
        Ok(schedule) => schedule,
        Err(why) => return bad_request(why),
    };
    tokio::time::sleep(delay).await;
    let start = Instant::now();
    // One wake-up per byte that is due, but a late wake-up sends every byte due by then:
    // the timer's millisecond grain never stretches the total beyond `duration`.
    let bytes = futures_util::stream::unfold(0u32, move |sent| async move {
        if sent >= numbytes {
            return None;
        }
        tokio::time::sleep_until(due(start, duration, sent, numbytes)).await;
        let now = Instant::now();
        let mut upto = sent + 1;
        while upto < numbytes && due(start, duration, upto, numbytes) <= now {
            upto += 1;
        }
        let chunk = Bytes::from(vec![b'*'; (upto - sent) as usize]);
        Some((Ok::<_, std::convert::Infallible>(chunk), upto))
    });
    (
        status,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, numbytes.to_string()),
        ],
        Body::from_stream(bytes),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct ServerSentEvents {
    count: Option<u32>,
    duration: Option<String>,
    delay: Option<String>,
}

/// `/sse?count=10&duration=5&delay=0`: `count` events named `ping`, spread evenly over
/// `duration` after `delay`, each with its `id` and the time it left (`timestamp`, Unix
/// milliseconds). count at most `[http] max_stream_lines`.
pub(crate) async fn sse(
    State(state): State<AppState>,
    Query(query): Query<ServerSentEvents>,
) -> Response {
    let count = query.count.unwrap_or(10);
    let max = state.max_stream_lines;
    if let Some(refusal) = over_cap(count, "events", max, "max_stream_lines") {
        return refusal;
    }
    let (delay, duration) = match schedule(
        &state,
        query.delay.as_deref(),
        Duration::ZERO,
        query.duration.as_deref(),
        Duration::from_secs(5),
    ) {
        Ok(schedule) => schedule,
        Err(why) => return bad_request(why),
    };
    let start = Instant::now() + delay;
    let events = futures_util::stream::iter(0..count).then(move |id| async move {
        tokio::time::sleep_until(due(start, duration, id, count)).await;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_millis());
        Ok::<_, std::convert::Infallible>(
            Event::default()
                .id(id.to_string())
                .event("ping")
                .data(json!({"id": id, "timestamp": timestamp}).to_string()),
        )
    });
    Sse::new(events).into_response()
}

/// `/delay/{seconds}`: wait, then echo the request with its body as httpbin does: `args`,
/// `data`, `files`, `form`, `headers`, `origin`, `url` (`/post`'s keys but `json`). At most
/// `[http] max_delay`, else 400.
pub(crate) async fn delay(
    State(state): State<AppState>,
    Path(seconds): Path<f64>,
    headers: HeaderMap,
    echo: Echo,
    body: Bytes,
) -> Response {
    let max = state.max_delay;
    if !seconds.is_finite() || seconds < 0.0 {
        return bad_request("delay must be a number of seconds, 0 or more\n");
    }
    if seconds > max.as_secs_f64() {
        return bad_request(format!(
            "a delay of {seconds}s: ask for at most {}s (the cap is [http] max_delay)\n",
            max.as_secs_f64()
        ));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    match report(headers, echo, body).await {
        Ok(mut value) => {
            if let Some(fields) = value.as_object_mut() {
                fields.remove("json");
            }
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_numbers_and_units_and_name_bad_ones() {
        let (d, max) = (Duration::from_secs(9), Duration::from_secs(10));
        assert_eq!(seconds("delay", None, d, max), Ok(d));
        assert_eq!(
            seconds("delay", Some("0.5"), d, max),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            seconds("delay", Some("250ms"), d, max),
            Ok(Duration::from_millis(250))
        );
        assert!(
            seconds("delay", Some("-1"), d, max)
                .unwrap_err()
                .contains("delay=-1")
        );
        assert!(seconds("duration", Some("soon"), d, max).is_err());
        let over = seconds("duration", Some("1e308"), d, max).unwrap_err();
        assert!(over.contains("[http] max_delay"), "{over}");
    }

    #[test]
    fn pieces_are_due_evenly_from_start_to_end() {
        let start = Instant::now();
        let span = Duration::from_secs(2);
        assert_eq!(due(start, span, 0, 5), start);
        assert_eq!(due(start, span, 2, 5), start + Duration::from_secs(1));
        assert_eq!(due(start, span, 4, 5), start + span);
        assert_eq!(due(start, span, 0, 1), start);
    }
}
