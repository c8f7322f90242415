//! A `stubs` row: every request is answered by a stub (WireMock's model, in the stubs crate),
//! and WireMock's admin API lives under `/__admin` — behind `[control] allow` and the guards
//! against cross-site requests and DNS rebinding, like every route that changes state.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use switchboard_core::{Event, EventKind};
use switchboard_stubs::{BodySource, Fault, MatcherFailed, ResponseDef, Served};

use super::AppState;
use switchboard_web::{Connection, Sabotage};

pub(crate) fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route(
            "/__admin/mappings",
            get(list_mappings).post(add_mapping).delete(remove_mappings),
        )
        .route("/__admin/mappings/reset", post(reset_mappings))
        .route("/__admin/mappings/save", post(save_mappings))
        .route(
            "/__admin/mappings/{id}",
            get(get_mapping).put(replace_mapping).delete(remove_mapping),
        )
        .route(
            "/__admin/requests",
            get(list_requests).delete(clear_requests),
        )
        .route("/__admin/requests/reset", post(clear_requests))
        .route("/__admin/requests/count", post(count_requests))
        .route("/__admin/requests/find", post(find_requests))
        .route("/__admin/requests/unmatched", get(unmatched))
        .route("/__admin/requests/unmatched/near-misses", get(near_misses))
        .route("/__admin/requests/{id}", get(get_request))
        .route("/__admin/scenarios", get(scenarios))
        .route("/__admin/scenarios/reset", post(reset_scenarios))
        .route("/__admin/reset", post(reset));
    Router::new()
        .merge(super::control_routes(admin, &state))
        .fallback(serve)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            state.settings.max_body_bytes,
        ))
        .with_state(state)
}

/// An admin error in WireMock's shape: `{"errors": [{"code": 10, "title": "…"}]}`.
fn invalid(message: String) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"errors": [{"code": 10, "title": message}]})),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"errors": [{"code": 404, "title": format!("{what} not found")}]})),
    )
        .into_response()
}

fn json_body(body: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
}

async fn list_mappings(State(state): State<AppState>) -> Json<Value> {
    let mappings = state.shared.stubs.list();
    Json(json!({"meta": {"total": mappings.len()}, "mappings": mappings}))
}

/// `POST /__admin/mappings`: 201 and the stub with its id.
async fn add_mapping(State(state): State<AppState>, body: Bytes) -> Response {
    match json_body(&body).and_then(|json| state.shared.stubs.add(json)) {
        Ok(stub) => (StatusCode::CREATED, Json(stub)).into_response(),
        Err(message) => invalid(message),
    }
}

async fn remove_mappings(State(state): State<AppState>) -> StatusCode {
    state.shared.stubs.remove_all();
    StatusCode::OK
}

async fn get_mapping(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.shared.stubs.get(&id) {
        Some(stub) => Json(stub).into_response(),
        None => not_found("stub mapping"),
    }
}

async fn replace_mapping(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let replaced = json_body(&body).and_then(|json| state.shared.stubs.replace(&id, json));
    match replaced {
        Ok(Some(stub)) => Json(stub).into_response(),
        Ok(None) => not_found("stub mapping"),
        Err(message) => invalid(message),
    }
}

async fn remove_mapping(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.shared.stubs.remove(&id) {
        true => StatusCode::OK.into_response(),
        false => not_found("stub mapping"),
    }
}

/// `POST /__admin/mappings/reset`: back to the stubs directory's mappings.
async fn reset_mappings(State(state): State<AppState>) -> Response {
    match state.shared.stubs.reset_mappings() {
        Ok(_) => StatusCode::OK.into_response(),
        Err(message) => invalid(message),
    }
}

/// `POST /__admin/mappings/save`: every stub written to the stubs directory's `mappings/`.
async fn save_mappings(State(state): State<AppState>) -> Response {
    match state.shared.stubs.save() {
        Ok(_) => StatusCode::OK.into_response(),
        Err(message) => invalid(message),
    }
}

async fn list_requests(State(state): State<AppState>) -> Json<Value> {
    let requests = state.shared.stubs.requests();
    Json(json!({
        "requests": requests,
        "meta": {"total": requests.len()},
        "requestJournalDisabled": false,
    }))
}

async fn clear_requests(State(state): State<AppState>) -> StatusCode {
    state.shared.stubs.clear_requests();
    StatusCode::OK
}

async fn get_request(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.shared.stubs.request(&id) {
        Some(event) => Json(event).into_response(),
        None => not_found("request"),
    }
}

/// The journal's requests that match the request pattern in `body`, found on the stubs'
/// matching thread.
async fn found(state: &AppState, body: &Bytes) -> Result<Vec<Value>, Response> {
    let pattern = json_body(body)
        .and_then(|json| state.shared.stubs.pattern(&json))
        .map_err(invalid)?;
    state
        .shared
        .stubs
        .find(pattern)
        .await
        .map_err(matcher_failed)
}

/// 500: the matching thread could not answer (see `switchboard_stubs::MatcherFailed`).
fn matcher_failed(error: MatcherFailed) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("500 {error}\n")).into_response()
}

/// `POST /__admin/requests/count` with a request pattern: `{"count": N}`.
async fn count_requests(State(state): State<AppState>, body: Bytes) -> Response {
    match found(&state, &body).await {
        Ok(requests) => Json(json!({"count": requests.len()})).into_response(),
        Err(refusal) => refusal,
    }
}

/// `POST /__admin/requests/find` with a request pattern: `{"requests": [...]}`.
async fn find_requests(State(state): State<AppState>, body: Bytes) -> Response {
    match found(&state, &body).await {
        Ok(requests) => Json(json!({"requests": requests})).into_response(),
        Err(refusal) => refusal,
    }
}

async fn unmatched(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"requests": state.shared.stubs.unmatched()}))
}

async fn near_misses(State(state): State<AppState>) -> Response {
    match state.shared.stubs.near_misses().await {
        Ok(near) => Json(json!({"nearMisses": near})).into_response(),
        Err(error) => matcher_failed(error),
    }
}

async fn scenarios(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"scenarios": state.shared.stubs.scenarios()}))
}

async fn reset_scenarios(State(state): State<AppState>) -> StatusCode {
    state.shared.stubs.reset_scenarios();
    StatusCode::OK
}

/// `POST /__admin/reset`: the directory's stubs, every scenario `Started`, no requests.
async fn reset(State(state): State<AppState>) -> Response {
    match state.shared.stubs.reset() {
        Ok(_) => StatusCode::OK.into_response(),
        Err(message) => invalid(message),
    }
}

/// Every request that is not for `/__admin`: the best stub answers it, or a 404 names the
/// closest stub and what of it the request missed.
async fn serve(State(state): State<AppState>, request: Request) -> Response {
    let Some(conn) = request.extensions().get::<Arc<Connection>>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, state.settings.max_body_bytes).await else {
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
    let served = match state.shared.stubs.serve(request).await {
        Ok(served) => served,
        Err(error) => return matcher_failed(error),
    };
    match served {
        Served::Stub { response, .. } => respond(&state, &response).await,
        Served::Unmatched { diff, closest } => {
            let (closest, mismatched) = closest.unzip();
            state.shared.events.emit(Event::new(
                conn.info.port(),
                conn.info.service,
                EventKind::RequestUnmatched {
                    id: conn.info.id,
                    method,
                    url,
                    closest,
                    mismatched: mismatched.unwrap_or_default(),
                },
            ));
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                diff,
            )
                .into_response()
        }
    }
}

/// A stub's response: after its delay (at most `[http] max_delay`, as httpbin's `/delay`);
/// its fault instead, if it has one.
async fn respond(state: &AppState, response: &ResponseDef) -> Response {
    let delay = response.delay().min(state.httpbin.max_delay);
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
        BodySource::File(name) => match state.shared.stubs.body_file(name) {
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
