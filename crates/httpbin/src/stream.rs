//! Streamed answers: `/stream/{n}` sends n JSON lines, `/stream-bytes/{n}` n bytes in
//! chunks, each part leaving as it is made; `/trailers` sends fields after its body;
//! `/dump/request` shows the request as parsed.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use serde::Deserialize;

use crate::echo::Echo;
use crate::reply::{bad_request, over_cap, random_bytes};
use crate::settings::AppState;

/// `/stream/{n}`: n lines of newline-delimited JSON, `/get`'s answer plus an `id` each.
pub(crate) async fn lines(
    State(state): State<AppState>,
    Path(n): Path<u32>,
    echo: Echo,
) -> Response {
    let max = state.max_stream_lines;
    if let Some(refusal) = over_cap(n, "lines", max, "max_stream_lines") {
        return refusal;
    }
    let line = echo.into_json();
    let chunks = (0..n).map(move |id| {
        let mut line = line.clone();
        line["id"] = id.into();
        let mut text = line.to_string();
        text.push('\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(text))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct StreamBytes {
    chunk_size: Option<usize>,
    seed: Option<u64>,
}

/// `/stream-bytes/{n}?chunk_size=10240&seed=N`: n random bytes (the same for the same seed)
/// in chunks of that size; n at most `[http] max_bytes`.
pub(crate) async fn bytes(
    State(state): State<AppState>,
    Path(n): Path<usize>,
    Query(query): Query<StreamBytes>,
) -> Response {
    if let Some(refusal) = over_cap(n, "bytes", state.max_bytes, "max_bytes") {
        return refusal;
    }
    let chunk_size = query.chunk_size.unwrap_or(10 * 1024);
    if chunk_size == 0 {
        return bad_request("chunk_size=0: use 1 or more\n");
    }
    // Drawn at once (n is capped) and sent in slices, so the chunk size cannot change the
    // bytes: the same seed gives what `/bytes/{n}` gives.
    let all = Bytes::from(random_bytes(n, query.seed));
    let chunks = (0..n).step_by(chunk_size).map(move |start| {
        Ok::<_, std::convert::Infallible>(all.slice(start..n.min(start + chunk_size)))
    });
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response()
}

/// `/dump/request`: the request line, headers and body as switchboard's parser read them
/// (names in lower case, headers of one name together; HTTP/2's pseudo-headers as a request
/// line).
pub(crate) async fn dump(
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut text = format!("{method} {target} {version:?}\r\n").into_bytes();
    for (name, value) in &headers {
        text.extend_from_slice(name.as_str().as_bytes());
        text.extend_from_slice(b": ");
        text.extend_from_slice(value.as_bytes());
        text.extend_from_slice(b"\r\n");
    }
    text.extend_from_slice(b"\r\n");
    text.extend_from_slice(&body);
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// `/range/{n}`: n bytes of the alphabet, over and over; a `Range` of one span gets 206 and
/// that span, one that cannot be met 416. Several spans get the whole body (200), which
/// RFC 9110 allows. n at most `[http] max_bytes`.
pub(crate) async fn range(
    State(state): State<AppState>,
    Path(n): Path<usize>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = over_cap(n, "bytes", state.max_bytes, "max_bytes") {
        return refusal;
    }
    let body: Bytes = (b'a'..=b'z').cycle().take(n).collect::<Vec<u8>>().into();
    let fixed = [
        (header::ACCEPT_RANGES, "bytes".to_owned()),
        (header::ETAG, format!("\"range{n}\"")),
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
    ];
    // Only byte ranges are understood; any other unit is ignored, as RFC 9110 says.
    let Some(asked) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("bytes="))
    else {
        return (fixed, body).into_response();
    };
    let spans =
        http_range_header::parse_range_header(asked).and_then(|ranges| ranges.validate(n as u64));
    match spans.as_deref() {
        Ok([span]) => {
            let (start, end) = (*span.start(), *span.end());
            let content_range = format!("bytes {start}-{end}/{n}");
            (
                StatusCode::PARTIAL_CONTENT,
                fixed,
                [(header::CONTENT_RANGE, content_range)],
                body.slice(start as usize..=end as usize),
            )
                .into_response()
        }
        Ok(_) => (fixed, body).into_response(),
        Err(_) => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            fixed,
            [(header::CONTENT_RANGE, format!("bytes */{n}"))],
        )
            .into_response(),
    }
}

/// Fields that may not be sent as trailers (RFC 9110 section 6.5.1): a recipient needs them
/// before the body, to frame it, route it, check it or decide what to do with it.
const NOT_TRAILERS: &[HeaderName] = &[
    header::AUTHORIZATION,
    header::CACHE_CONTROL,
    header::CONNECTION,
    header::CONTENT_ENCODING,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::CONTENT_TYPE,
    header::EXPECT,
    header::HOST,
    header::LOCATION,
    header::MAX_FORWARDS,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::RANGE,
    header::RETRY_AFTER,
    header::SET_COOKIE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::WWW_AUTHENTICATE,
];

/// `/trailers?name=value&…`: `/get`'s answer, then each pair as a trailer field after the
/// body, all named in the `Trailer` header first. HTTP/2 always carries them; HTTP/1.1 only
/// to a client that says it takes them (`TE: trailers`), which hyper requires.
pub(crate) async fn trailers(uri: Uri, echo: Echo) -> Response {
    let mut fields = HeaderMap::new();
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            return bad_request(format!("{name:?} is not a field name\n"));
        };
        if NOT_TRAILERS.contains(&name) {
            return bad_request(format!(
                "{name} cannot be a trailer: a client needs it before the body\n"
            ));
        }
        let Ok(value) = HeaderValue::from_str(&value) else {
            return bad_request(format!("the value of {name} is not a field value\n"));
        };
        fields.append(name, value);
    }
    let declared: Vec<&str> = fields.keys().map(HeaderName::as_str).collect();
    let declared = declared.join(", ");
    let body = Bytes::from(echo.into_json().to_string());
    let frames = futures_util::stream::iter([
        Ok::<_, std::convert::Infallible>(Frame::data(body)),
        Ok(Frame::trailers(fields)),
    ]);
    let mut response = (
        [(header::CONTENT_TYPE, "application/json")],
        Body::new(StreamBody::new(frames)),
    )
        .into_response();
    if let Ok(declared) = HeaderValue::from_str(&declared)
        && !declared.is_empty()
    {
        response.headers_mut().insert(header::TRAILER, declared);
    }
    response
}
#[derive(Deserialize)]
pub(crate) struct BytesQuery {
    seed: Option<u64>,
}

/// `/bytes/{n}`: n random bytes (the same ones for the same `?seed=`). At most
/// `[http] max_bytes`, else 400.
pub(crate) async fn bytes_whole(
    State(state): State<AppState>,
    Path(n): Path<usize>,
    Query(query): Query<BytesQuery>,
) -> Response {
    if let Some(refusal) = over_cap(n, "bytes", state.max_bytes, "max_bytes") {
        return refusal;
    }
    let body = random_bytes(n, query.seed);
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}
