//! Caching: `/cache` and `/etag/{etag}` answer conditional requests with 304 or 412,
//! `/cache/{seconds}` sets Cache-Control, and `/response-headers` sets any header asked for.

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::echo::{Echo, get_echo, pairs_to_map};

/// A response's fixed validators: it never changes, so one date and one tag do.
const LAST_MODIFIED: &str = "Thu, 01 Jan 2026 00:00:00 GMT";
const CACHE_ETAG: &str = "\"switchboard-cache\"";

/// `/cache`: 304 when the request carries `If-Modified-Since` or `If-None-Match` (the
/// client has a copy), else `/get`'s answer with `Last-Modified` and `ETag`.
pub(crate) async fn cache(headers: HeaderMap, echo: Echo) -> Response {
    if headers.contains_key(header::IF_MODIFIED_SINCE)
        || headers.contains_key(header::IF_NONE_MATCH)
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = get_echo(echo).await.into_response();
    let out = response.headers_mut();
    out.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_static(LAST_MODIFIED),
    );
    out.insert(header::ETAG, HeaderValue::from_static(CACHE_ETAG));
    response
}

/// `/cache/{seconds}`: `/get`'s answer with `Cache-Control: public, max-age={seconds}`.
pub(crate) async fn cache_for(Path(seconds): Path<u32>, echo: Echo) -> Response {
    let mut response = get_echo(echo).await.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={seconds}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// Whether a list of entity tags (`If-None-Match` or `If-Match`) names `etag`, or is `*`.
/// Weak tags (`W/"…"`) match by their value, as If-None-Match compares them.
fn names(list: &HeaderValue, etag: &str) -> bool {
    let Ok(list) = list.to_str() else {
        return false;
    };
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == etag)
}

/// `/etag/{etag}`: 304 when `If-None-Match` names the tag, 412 when `If-Match` does not,
/// else `/get`'s answer; each with `ETag: "{etag}"`.
pub(crate) async fn etag(Path(etag): Path<String>, headers: HeaderMap, echo: Echo) -> Response {
    let Ok(tag) = HeaderValue::from_str(&format!("\"{etag}\"")) else {
        return (
            StatusCode::BAD_REQUEST,
            format!("{etag:?} cannot be an entity tag\n"),
        )
            .into_response();
    };
    let mut response = if let Some(list) = headers.get(header::IF_NONE_MATCH) {
        match names(list, &etag) {
            true => StatusCode::NOT_MODIFIED.into_response(),
            false => get_echo(echo).await.into_response(),
        }
    } else if let Some(list) = headers.get(header::IF_MATCH) {
        match names(list, &etag) {
            true => get_echo(echo).await.into_response(),
            false => StatusCode::PRECONDITION_FAILED.into_response(),
        }
    } else {
        get_echo(echo).await.into_response()
    };
    response.headers_mut().insert(header::ETAG, tag);
    response
}

/// Headers an echo may not set: those that frame the response on the connection or belong to
/// one hop (a `Content-Length` shorter than the body would corrupt the next response on the
/// connection, a longer one hang the client), and `Refresh`, which sends a browser elsewhere
/// whatever the sandbox says. `Location` stays: on a 200 it sends a browser nowhere.
const REFUSED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "refresh",
];

/// `fields` as JSON with a `Content-Length` field that gives the JSON's own length: its
/// digits change the length, so the length is recomputed until it holds (twice at most in
/// practice: the digits' count changes once a decade).
fn counting_itself(mut fields: serde_json::Map<String, Value>) -> Vec<u8> {
    let mut length = 0;
    loop {
        fields.insert("Content-Length".into(), Value::String(length.to_string()));
        let json = serde_json::to_vec(&fields).unwrap_or_default();
        if json.len() == length {
            return json;
        }
        length = json.len();
    }
}

/// `/response-headers?name=value&…` (GET and POST): each pair becomes a response header;
/// the body lists the response's headers as JSON, as httpbin does: the pairs (repeated
/// names as a list), `Content-Type`, and `Content-Length` — the body's own length, which
/// counts itself.
pub(crate) async fn response_headers(Query(pairs): Query<Vec<(String, String)>>) -> Response {
    let refused: Vec<&str> = pairs
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| REFUSED.iter().any(|r| name.eq_ignore_ascii_case(r)))
        .collect();
    if !refused.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "{} cannot be set by /response-headers: framing and hop-by-hop headers \
                 belong to the connection, and Refresh would navigate a browser\n",
                refused.join(", ")
            ),
        )
            .into_response();
    }
    let mut headers = Vec::new();
    for (name, value) in &pairs {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return (
                StatusCode::BAD_REQUEST,
                format!("{name}: {value} cannot be a response header\n"),
            )
                .into_response();
        };
        headers.push((name, value));
    }
    let typed = pairs
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    let mut body = pairs_to_map(pairs);
    if !typed {
        body.insert("Content-Type".into(), "application/json".into());
    }
    let mut response = (
        [(header::CONTENT_TYPE, "application/json")],
        counting_itself(body),
    )
        .into_response();
    // The asked-for headers win, Content-Type included, as with httpbin.
    for (name, _) in &headers {
        response.headers_mut().remove(name);
    }
    for (name, value) in headers {
        response.headers_mut().append(name, value);
    }
    // The body echoes the link's values, and the link may ask for text/html: sandboxed, such
    // a page runs as an origin of its own and cannot reach the mail or control routes. A
    // second policy from the query cannot lift it (browsers enforce every policy sent).
    response.headers_mut().append(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    response
}
