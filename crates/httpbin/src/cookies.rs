//! Cookies: `/cookies` shows what the client sent; `/cookies/set` and `/cookies/delete` change
//! them and redirect to `/cookies`, so a client with a cookie jar sees the result.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::Cookie;
use cookie::time::OffsetDateTime;
use serde_json::{Map, Value, json};

/// `/cookies`: `{"cookies": {name: value}}` from the request's Cookie headers, percent-decoded
/// as `/cookies/set` encodes them.
pub(crate) async fn list(headers: HeaderMap) -> Json<Value> {
    let mut cookies = Map::new();
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for cookie in Cookie::split_parse_encoded(value).flatten() {
            cookies.insert(cookie.name().to_owned(), cookie.value().into());
        }
    }
    Json(json!({ "cookies": cookies }))
}

/// A 302 to `/cookies` that sets these cookies first.
fn set_and_show<'c>(cookies: impl IntoIterator<Item = Cookie<'c>>) -> Response {
    let mut response = (StatusCode::FOUND, [(header::LOCATION, "/cookies")]).into_response();
    for cookie in cookies {
        // Names and values come from the URL, already percent-decoded; `encoded` writes
        // them back in a form that is always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `/cookies/set?name=value&…`: set each, path `/`.
pub(crate) async fn set(Query(pairs): Query<Vec<(String, String)>>) -> Response {
    set_and_show(
        pairs
            .into_iter()
            .map(|(name, value)| Cookie::build((name, value)).path("/").build()),
    )
}

/// `/cookies/set/{name}/{value}`: set one.
pub(crate) async fn set_one(Path((name, value)): Path<(String, String)>) -> Response {
    set_and_show([Cookie::build((name, value)).path("/").build()])
}

/// `/cookies/delete?name&…`: expire each (in the past, and `Max-Age=0`).
pub(crate) async fn delete(Query(pairs): Query<Vec<(String, String)>>) -> Response {
    set_and_show(pairs.into_iter().map(|(name, _)| {
        Cookie::build((name, ""))
            .path("/")
            .max_age(cookie::time::Duration::ZERO)
            .expires(OffsetDateTime::UNIX_EPOCH)
            .build()
    }))
}
