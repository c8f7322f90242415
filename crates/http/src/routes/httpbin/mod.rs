//! httpbin's endpoints: they echo the request back as JSON, or answer with a chosen
//! status, delay or number of bytes, so a client can be tested against known answers.
//! Answers take httpbin.org's shape (a single value as a string, repeated values as a list).

mod auth;
mod caching;
mod compress;
mod content;
mod cookies;
mod digest;
mod image;
mod methods;
mod redirect;
mod socket_echo;
mod stream;
mod timed;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use tower_http::cors::CorsLayer;

use switchboard_web::Connection;

use super::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/get", get(get_echo))
        .route("/headers", get(headers))
        .route("/ip", get(ip))
        .route("/user-agent", get(user_agent))
        .route("/post", post(methods::body_echo))
        .route("/put", put(methods::body_echo))
        .route("/patch", patch(methods::body_echo))
        .route("/delete", delete(methods::body_echo))
        .route("/anything", any(methods::anything))
        .route("/anything/{*rest}", any(methods::anything))
        .route("/status/{codes}", any(auth::status))
        .route("/basic-auth/{user}/{password}", get(auth::basic_auth))
        .route(
            "/hidden-basic-auth/{user}/{password}",
            get(auth::hidden_basic_auth),
        )
        .route("/bearer", get(auth::bearer))
        .route(
            "/digest-auth/{qop}/{user}/{password}",
            get(digest::md5_default),
        )
        .route(
            "/digest-auth/{qop}/{user}/{password}/{algorithm}",
            get(digest::with_algorithm),
        )
        .route("/redirect/{n}", get(redirect::redirect))
        .route("/relative-redirect/{n}", get(redirect::relative))
        .route("/absolute-redirect/{n}", get(redirect::absolute))
        .route("/redirect-to", any(redirect::redirect_to))
        .route("/json", get(content::json))
        .route("/html", get(content::html))
        .route("/xml", get(content::xml))
        .route("/encoding/utf8", get(content::utf8))
        .route("/forms/post", get(content::forms_post))
        .route("/robots.txt", get(content::robots_txt))
        .route("/deny", get(content::deny))
        .route("/uuid", get(content::uuid))
        .route("/base64/{value}", get(content::base64_decode))
        .route("/base64/decode/{value}", get(content::base64_decode))
        .route("/base64/encode/{value}", get(content::base64_encode))
        .route("/links/{n}", get(content::links_start))
        .route("/links/{n}/{offset}", get(content::links))
        .route("/image", get(image::by_accept))
        .route("/image/{format}", get(image::by_name))
        .route("/cache", get(caching::cache))
        .route("/cache/{seconds}", get(caching::cache_for))
        .route("/etag/{etag}", get(caching::etag))
        .route(
            "/response-headers",
            get(caching::response_headers).post(caching::response_headers),
        )
        .route("/unstable", any(auth::unstable))
        .route("/hostname", get(hostname))
        .route("/stream/{n}", get(stream::lines))
        .route("/stream-bytes/{n}", get(stream::bytes))
        .route("/dump/request", any(stream::dump))
        .route("/range/{n}", get(stream::range))
        .route("/cookies", get(cookies::list))
        .route("/cookies/set", get(cookies::set))
        .route("/cookies/set/{name}/{value}", get(cookies::set_one))
        .route("/cookies/delete", get(cookies::delete))
        .route("/delay/{seconds}", any(delay))
        .route("/bytes/{n}", get(bytes))
        .route("/drip", get(timed::drip))
        .route("/sse", get(timed::sse))
        .route("/trailers", get(stream::trailers))
        .route("/gzip", get(compress::gzip))
        .route("/deflate", get(compress::deflate))
        .route("/brotli", get(compress::brotli))
        .route("/zstd", get(compress::zstd))
        .route("/websocket/echo", get(socket_echo::echo))
        // Browsers may call these from any page, with credentials, as httpbin allows: the
        // request's Origin, method and headers are mirrored, and preflights answered. Only
        // here: the state routes never answer another site (site.rs).
        .layer(CorsLayer::very_permissive())
}

/// The parts of a request that every echo endpoint reports, in httpbin's shape.
pub(super) struct Echo {
    args: Map<String, Value>,
    headers: Map<String, Value>,
    origin: String,
    /// `scheme://host` as the client reached switchboard.
    base: String,
    url: String,
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
        Ok(Echo {
            args: pairs_to_map(form_urlencoded::parse(
                parts.uri.query().unwrap_or("").as_bytes(),
            )),
            headers: headers_to_map(&parts.headers),
            origin,
            // Joined by hand: `format!` costs every echo more than the rest of this does.
            url: [base.as_str(), path].concat(),
            base,
        })
    }
}

/// Query or form pairs as httpbin shows them: one value as a string, repeated keys as a list.
fn pairs_to_map<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Map<String, Value>
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
    fn into_json(self) -> Value {
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

pub(super) async fn get_echo(echo: Echo) -> Response {
    Json(GetAnswer {
        args: &echo.args,
        headers: &echo.headers,
        origin: &echo.origin,
        url: &echo.url,
    })
    .into_response()
}

/// 400 Bad Request, saying why.
fn bad_request(why: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, why.into()).into_response()
}

/// 400 when a request asks for more than a cap allows, naming the cap's `[http]` key; none
/// when it is within.
fn over_cap<T: PartialOrd + std::fmt::Display>(
    asked: T,
    unit: &str,
    max: T,
    key: &str,
) -> Option<Response> {
    (asked > max).then(|| {
        bad_request(format!(
            "{asked} {unit}: ask for at most {max} (the cap is [http] {key})\n"
        ))
    })
}

/// n random bytes; with a seed, the same ones every time.
fn random_bytes(n: usize, seed: Option<u64>) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    seeded(seed).fill(&mut bytes);
    bytes
}

/// A generator that repeats its numbers for a seed, or a fresh one without.
fn seeded(seed: Option<u64>) -> fastrand::Rng {
    match seed {
        Some(seed) => fastrand::Rng::with_seed(seed),
        None => fastrand::Rng::new(),
    }
}

/// `/hostname`: the name of the machine (or container) switchboard runs on.
async fn hostname() -> Json<Value> {
    let name = gethostname::gethostname();
    Json(json!({ "hostname": name.to_string_lossy() }))
}

async fn headers(echo: Echo) -> Json<Value> {
    Json(json!({ "headers": echo.headers }))
}

async fn ip(echo: Echo) -> Json<Value> {
    Json(json!({ "origin": echo.origin }))
}

async fn user_agent(headers: HeaderMap) -> Json<Value> {
    let agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Json(json!({ "user-agent": agent }))
}

/// `/delay/{seconds}`: wait, then echo like `/get`. At most `[http] max_delay`, else 400.
async fn delay(State(state): State<AppState>, Path(seconds): Path<f64>, echo: Echo) -> Response {
    let max = state.settings.max_delay;
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
    get_echo(echo).await.into_response()
}

#[derive(Deserialize)]
pub(super) struct BytesQuery {
    seed: Option<u64>,
}

/// `/bytes/{n}`: n random bytes (the same ones for the same `?seed=`). At most
/// `[http] max_bytes`, else 400.
async fn bytes(
    State(state): State<AppState>,
    Path(n): Path<usize>,
    Query(query): Query<BytesQuery>,
) -> Response {
    if let Some(refusal) = over_cap(n, "bytes", state.settings.max_bytes, "max_bytes") {
        return refusal;
    }
    let body = random_bytes(n, query.seed);
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
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
