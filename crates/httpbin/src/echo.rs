//! The echo: a request's arguments, headers, address and URL in httpbin's shape (one value
//! as a string, repeated values as a list), and the endpoints that answer with parts of it.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use switchboard_web::Connection;

/// The parts of a request that every echo endpoint reports, in httpbin's shape.
pub(crate) struct Echo {
    pub(crate) args: Map<String, Value>,
    pub(crate) headers: Map<String, Value>,
    pub(crate) origin: String,
    /// `scheme://host` as the client reached switchboard.
    pub(crate) base: String,
    pub(crate) url: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Echo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let conn = parts.extensions.get::<Arc<Connection>>().map(|c| &c.info);
        let origin = conn.map(|c| c.peer.ip().to_string()).unwrap_or_default();
        let host: std::borrow::Cow<'_, str> =
            match switchboard_web::host_of(&parts.uri, &parts.headers) {
                Some(host) => host.into(),
                None => conn.map(|c| c.local.to_string()).unwrap_or_default().into(),
            };
        let scheme = match conn.is_some_and(|c| c.tls.is_some()) {
            true => "https",
            false => "http",
        };
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let base = [scheme, "://", &host].concat();
        let mut headers = headers_to_map(&parts.headers);
        // HTTP/2 names the server in `:authority`, not in a header: shown as `Host`, as
        // httpbin behind an HTTP/2 front shows it.
        if let Some(authority) = parts.uri.authority() {
            headers
                .entry("Host")
                .or_insert_with(|| Value::String(authority.to_string()));
        }
        Ok(Echo {
            args: pairs_to_map(form_urlencoded::parse(
                parts.uri.query().unwrap_or("").as_bytes(),
            )),
            headers,
            origin,
            // Joined by hand: `format!` costs every echo more than the rest of this does.
            url: [base.as_str(), path].concat(),
            base,
        })
    }
}

/// Query or form pairs as httpbin shows them: one value as a string, repeated keys as a list.
pub(crate) fn pairs_to_map<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Map<String, Value>
where
    K: AsRef<str> + Into<String>,
    V: Into<String>,
{
    let mut map = Map::new();
    for (key, value) in pairs {
        let value = Value::String(value.into());
        match map.get_mut(key.as_ref()) {
            None => {
                map.insert(key.into(), value);
            }
            Some(Value::Array(list)) => list.push(value),
            Some(existing) => *existing = Value::Array(vec![existing.take(), value]),
        }
    }
    map
}

/// Header names in Title-Case as httpbin shows them; repeated headers joined with commas.
fn headers_to_map(headers: &HeaderMap) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        match map.entry(title_case(name.as_str())) {
            serde_json::map::Entry::Vacant(entry) => {
                entry.insert(Value::String(value.into_owned()));
            }
            serde_json::map::Entry::Occupied(mut entry) => {
                if let Value::String(joined) = entry.get_mut() {
                    joined.push(',');
                    joined.push_str(&value);
                }
            }
        }
    }
    map
}

/// `content-type` → `Content-Type`: each word's first letter in upper case.
fn title_case(name: &str) -> String {
    let mut title = String::with_capacity(name.len());
    let mut word_starts = true;
    for c in name.chars() {
        title.push(if word_starts {
            c.to_ascii_uppercase()
        } else {
            c
        });
        word_starts = c == '-';
    }
    title
}

impl Echo {
    /// `/get`'s answer: the request's arguments, headers, address and URL.
    pub(crate) fn into_json(self) -> Value {
        json!({
            "args": self.args,
            "headers": self.headers,
            "origin": self.origin,
            "url": self.url,
        })
    }
}

/// `/get`'s answer, written straight from the request's parts: the same JSON as
/// [`Echo::into_json`] (the same keys in the same order), without first building it as a
/// tree of values that would be dropped right after.
#[derive(serde::Serialize)]
struct GetAnswer<'a> {
    args: &'a Map<String, Value>,
    headers: &'a Map<String, Value>,
    origin: &'a str,
    url: &'a str,
}

pub(crate) async fn get_echo(echo: Echo) -> Response {
    Json(GetAnswer {
        args: &echo.args,
        headers: &echo.headers,
        origin: &echo.origin,
        url: &echo.url,
    })
    .into_response()
}

/// `/hostname`: the name of the machine (or container) switchboard runs on.
pub(crate) async fn hostname() -> Json<Value> {
    let name = gethostname::gethostname();
    Json(json!({ "hostname": name.to_string_lossy() }))
}

pub(crate) async fn headers(echo: Echo) -> Json<Value> {
    Json(json!({ "headers": echo.headers }))
}

pub(crate) async fn ip(echo: Echo) -> Json<Value> {
    Json(json!({ "origin": echo.origin }))
}

pub(crate) async fn user_agent(headers: HeaderMap) -> Json<Value> {
    let agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Json(json!({ "user-agent": agent }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn get_answers_exactly_what_the_echo_says() {
        let request = http::Request::get("/get?b=2&a=1&a=3")
            .header("x-b", "2")
            .header("x-a", "1")
            .header("x-a", "3")
            .header("host", "example.test")
            .body(())
            .unwrap();
        let (mut parts, ()) = request.into_parts();
        let echo = Echo::from_request_parts(&mut parts, &()).await.unwrap();
        let expected = serde_json::to_vec(&echo.into_json()).unwrap();
        let echo = Echo::from_request_parts(&mut parts, &()).await.unwrap();
        let body = get_echo(echo).await.into_body();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&expected)
        );
        assert!(body.starts_with(br#"{"args":{"a":["1","3"],"b":"2"},"headers":{"Host""#));
    }

    #[test]
    fn title_case_capitalises_every_word() {
        assert_eq!(title_case("content-type"), "Content-Type");
        assert_eq!(title_case("x--odd-"), "X--Odd-");
        assert_eq!(title_case("te"), "Te");
        assert_eq!(title_case(""), "");
    }

    #[test]
    fn repeated_query_keys_become_lists() {
        let map = pairs_to_map(form_urlencoded::parse(b"a=1&b=2&a=3&a=4"));
        assert_eq!(Value::Object(map), json!({"a": ["1", "3", "4"], "b": "2"}));
    }

    #[test]
    fn header_names_are_title_cased_and_joined() {
        let mut headers = HeaderMap::new();
        headers.append("x-custom-thing", "one".parse().unwrap());
        headers.append("x-custom-thing", "two".parse().unwrap());
        headers.append("accept", "*/*".parse().unwrap());
        let map = headers_to_map(&headers);
        assert_eq!(
            Value::Object(map),
            json!({"Accept": "*/*", "X-Custom-Thing": "one,two"})
        );
    }
}
