//! Every request that is not for `/__admin`: the best stub answers it — after its delay,
//! dribbled, or with its fault — or a 404 names the closest stub and what it missed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_core::{Event, PortName, ServiceEvent};
use switchboard_stubs::{BodySource, Fault, ResponseDef, Served};
use switchboard_web::{Connection, Sabotage};

use crate::errors::matcher_failed;
use crate::state::AppState;

/// Every request that is not for `/__admin`: the best stub answers it, or a 404 names the
/// closest stub and what of it the request missed.
pub(crate) async fn serve(State(state): State<AppState>, request: Request) -> Response {
    let Some(conn) = request.extensions().get::<Arc<Connection>>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "413 the body is larger than [http] max_body_bytes\n",
        )
            .into_response();
    };
    let url = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let host = switchboard_web::host_of(&parts.uri, &parts.headers).unwrap_or("localhost");
    let scheme = if conn.info.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let request = switchboard_stubs::Request {
        method: parts.method.as_str().to_owned(),
        absolute_url: format!("{scheme}://{host}{url}"),
        url,
        client_ip: conn.info.peer.ip().to_canonical().to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let (method, url) = (request.method.clone(), request.url.clone());
    let served = match state.stubs.serve(request).await {
        Ok(served) => served,
        Err(error) => return matcher_failed(error),
    };
    match served {
        Served::Stub { response, .. } => respond(&state, &response).await,
        Served::Unmatched { diff, closest } => {
            let (closest, mismatched) = closest.unzip();
            let unmatched = RequestUnmatched {
                id: conn.info.id,
                method,
                url,
                closest,
                mismatched: mismatched.unwrap_or_default(),
            };
            state.events.emit(Event::said(&conn.info, unmatched));
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                diff,
            )
                .into_response()
        }
    }
}

/// The `request_unmatched` event: a request to a stubs port that no stub answers (it got
/// 404 and the closest stub).
#[derive(Clone, Debug, Serialize)]
pub struct RequestUnmatched {
    pub id: u64,
    pub method: String,
    pub url: String,
    /// The closest stub's name or id, and the fields of it the request did not match.
    pub closest: Option<String>,
    pub mismatched: Vec<String>,
}

impl ServiceEvent for RequestUnmatched {
    fn name(&self) -> &'static str {
        "request_unmatched"
    }

    fn log(&self, port: PortName, _: &'static str) {
        let Self { method, url, .. } = self;
        match &self.closest {
            Some(closest) => tracing::info!(
                "no stub on port {port} answers {method} {url}; the closest, {closest}, \
                 does not match its {}",
                self.mismatched.join(", ")
            ),
            None => tracing::info!("no stub on port {port} answers {method} {url}: there are none"),
        }
    }
}

/// A stub's response: after its delay (at most `[http] max_delay`, as httpbin's `/delay`);
/// its fault instead, if it has one.
async fn respond(state: &AppState, response: &ResponseDef) -> Response {
    let delay = response.delay().min(state.max_delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let sabotage = match response.fault {
        None | Some(Fault::MalformedResponseChunk) => None,
        Some(Fault::EmptyResponse) => Some(Sabotage::Close),
        Some(Fault::ConnectionResetByPeer) => Some(Sabotage::Reset),
        Some(Fault::RandomDataThenClose) => Some(Sabotage::Garbage),
    };
    if let Some(sabotage) = sabotage {
        let mut response = StatusCode::OK.into_response();
        response.extensions_mut().insert(sabotage);
        return response;
    }
    let bytes = match &response.body {
        BodySource::Bytes(bytes) => Bytes::from(bytes.clone()),
        BodySource::File(name) => match state.stubs.body_file(name) {
            Ok(bytes) => Bytes::from(bytes),
            Err(message) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("500 {message}\n"),
                )
                    .into_response();
            }
        },
    };
    let body = if response.fault == Some(Fault::MalformedResponseChunk) {
        broken_off(bytes)
    } else if let Some((chunks, total)) = response.dribble {
        dribble(bytes, chunks, total)
    } else {
        Body::from(bytes)
    };
    let mut built = Response::new(body);
    *built.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    for (name, value) in &response.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) else {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("500 the stub's header {name:?} cannot be sent\n"),
            )
                .into_response();
        };
        built.headers_mut().append(name, value);
    }
    if let Some(message) = &response.status_message
        && let Ok(reason) = hyper::ext::ReasonPhrase::try_from(message.as_bytes().to_vec())
    {
        built.extensions_mut().insert(reason);
    }
    built
}

/// The body in `chunks` pieces spread evenly over `total` (`chunkedDribbleDelay`).
fn dribble(bytes: Bytes, chunks: u32, total: Duration) -> Body {
    let size = bytes.len().div_ceil(chunks as usize).max(1);
    let pause = total / chunks;
    let pieces: Vec<Bytes> = (0..bytes.len())
        .step_by(size)
        .map(|at| bytes.slice(at..(at + size).min(bytes.len())))
        .collect();
    let stream = futures_util::stream::unfold(pieces.into_iter(), move |mut rest| async move {
        let piece = rest.next()?;
        tokio::time::sleep(pause).await;
        Some((Ok::<_, Infallible>(piece), rest))
    });
    Body::from_stream(stream)
}

/// A chunked body that breaks off after its first half: the client never gets the end of
/// the chunk it is reading (`MALFORMED_RESPONSE_CHUNK`).
fn broken_off(bytes: Bytes) -> Body {
    let half = bytes.slice(..bytes.len() / 2);
    let stream = futures_util::stream::unfold(Some(half), |half| async move {
        match half {
            Some(half) => Some((Ok(half), None)),
            None => {
                // Pending once, so that hyper sends what it holds before the break.
                tokio::task::yield_now().await;
                let cut = std::io::Error::other("the body breaks off here (a stub's fault)");
                Some((Err(cut), None))
            }
        }
    });
    Body::from_stream(stream)
}
