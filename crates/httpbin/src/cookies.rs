//! Cookies: `/cookies` shows what the client sent; `/cookies/set` and `/cookies/delete` change
//! them and redirect to `/cookies`, so a client with a cookie jar sees the result.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::Cookie;
use cookie::time::OffsetDateTime;
use serde_json::{Map, Value, json};

/// `/cookies`: `{"cookies": {name: value}}` from the request's Cookie headers, as the client
/// sent them (not decoded).
pub(crate) async fn list(headers: HeaderMap) -> Json<Value> {
    let cookies: Map<String, Value> = sent(&headers)
        .map(|c| (c.name().to_owned(), c.value().into()))
        .collect();
    Json(json!({ "cookies": cookies }))
}

/// The cookies of the request's Cookie headers, as sent (not decoded).
pub(crate) fn sent(headers: &HeaderMap) -> impl Iterator<Item = Cookie<'_>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| Cookie::split_parse(value).flatten())
}

/// `response` with these cookies set.
pub(crate) fn with_cookies<'c>(
    mut response: Response,
    cookies: impl IntoIterator<Item = Cookie<'c>>,
) -> Response {
    for cookie in cookies {
        // Names and values were made valid by `cookie`; the header takes them as they are.
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// A 302 to `/cookies` that sets these cookies first.
fn set_and_show<'c>(cookies: impl IntoIterator<Item = Cookie<'c>>) -> Response {
    let response = (StatusCode::FOUND, [(header::LOCATION, "/cookies")]).into_response();
    with_cookies(response, cookies)
}

/// The cookie `name=value`, path `/`, each as given where RFC 6265 allows it (a value may
/// be quoted: `"bar:baz"`), with only the bytes it forbids percent-encoded (a space, `;`,
/// `,`, `\`, a stray `"`, controls and non-ASCII).
pub(crate) fn cookie(name: &str, value: &str) -> Cookie<'static> {
    let name = match name.bytes().all(is_token) {
        true => name.to_owned(),
        false => percent_encoding::utf8_percent_encode(name, NOT_TOKEN).to_string(),
    };
    let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
    let inner = if quoted {
        &value[1..value.len() - 1]
    } else {
        value
    };
    let value = match inner.bytes().all(is_cookie_octet) {
        true => value.to_owned(),
        false => percent_encoding::utf8_percent_encode(value, NOT_COOKIE_OCTET).to_string(),
    };
    Cookie::build((name, value)).path("/").build()
}

/// RFC 6265's `cookie-octet`: visible ASCII but `"`, `,`, `;` and `\`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// RFC 9110's `tchar`, what a cookie's name is made of.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What [`is_cookie_octet`] refuses, for encoding (non-ASCII is always encoded).
const NOT_COOKIE_OCTET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\');

/// What [`is_token`] refuses, for encoding.
const NOT_TOKEN: &percent_encoding::AsciiSet = &NOT_COOKIE_OCTET
    .add(b'(')
    .add(b')')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b']')
    .add(b'{')
    .add(b'}');

/// `/cookies/set?name=value&…`: set each, path `/`.
pub(crate) async fn set(Query(pairs): Query<Vec<(String, String)>>) -> Response {
    set_and_show(pairs.iter().map(|(name, value)| cookie(name, value)))
}

/// `/cookies/set/{name}/{value}`: set one.
pub(crate) async fn set_one(Path((name, value)): Path<(String, String)>) -> Response {
    set_and_show([cookie(&name, &value)])
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
