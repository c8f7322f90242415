//! httpbin's endpoints: they echo the request back as JSON, or answer with a chosen status,
//! delay or number of bytes, so that an HTTP client can be tested against known answers.
//! Answers take httpbin.org's shape (a single value as a string, repeated values as a list).
//! [`routes`] gives them, within the limits of [`HttpbinSettings`] (keys of `[http]`).
//!
//! # Layout
//!
//! - `settings.rs`: [`HttpbinSettings`], the limits every endpoint keeps.
//! - `reply.rs`: a 400 that names the cap a request went over; seeded random bytes.
//! - `echo.rs`: the echo of a request (`/get`, `/headers`, `/ip`, `/user-agent`,
//!   `/hostname`), which most endpoints answer with.
//! - one file per group of endpoints: `methods.rs` (`/post`, `/anything`, …), `auth.rs`
//!   (`/status`, basic and bearer auth, `/unstable`), `digest.rs` (Digest auth),
//!   `redirect.rs`, `content.rs` (`/json`, `/html`, `/base64`, `/links`, …), `image.rs`,
//!   `caching.rs` (`/cache`, `/etag`, `/response-headers`), `cookies.rs`, `compress.rs`
//!   (`/gzip`, `/deflate`, `/brotli`, `/zstd`), `stream.rs` (`/stream`, `/bytes`,
//!   `/range`, `/dump/request`, `/trailers`), `timed.rs` (`/delay`, `/drip`, `/sse`),
//!   `socket_echo.rs` (`/websocket/echo`).
//! - `lib.rs` (this file): [`routes`], which path goes to which endpoint.

mod auth;
mod caching;
mod compress;
mod content;
mod cookies;
mod digest;
mod echo;
mod image;
mod methods;
mod redirect;
mod reply;
mod settings;
mod socket_echo;
mod stream;
mod timed;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, delete, get, patch, post, put};
use tower_http::cors::CorsLayer;

pub use settings::HttpbinSettings;

/// httpbin's endpoints within `settings`' limits, ready to merge into a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(settings: HttpbinSettings) -> Router<S> {
    Router::new()
        .route("/get", get(echo::get_echo))
        .route("/headers", get(echo::headers))
        .route("/ip", get(echo::ip))
        .route("/user-agent", get(echo::user_agent))
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
        .route("/hostname", get(echo::hostname))
        .route("/stream/{n}", get(stream::lines))
        .route("/stream-bytes/{n}", get(stream::bytes))
        .route("/dump/request", any(stream::dump))
        .route("/range/{n}", get(stream::range))
        .route("/cookies", get(cookies::list))
        .route("/cookies/set", get(cookies::set))
        .route("/cookies/set/{name}/{value}", get(cookies::set_one))
        .route("/cookies/delete", get(cookies::delete))
        .route("/delay/{seconds}", any(timed::delay))
        .route("/bytes/{n}", get(stream::bytes_whole))
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
        // here: the state routes never answer another site (the http crate's site guard).
        .layer(CorsLayer::very_permissive())
        .with_state(Arc::new(settings))
}
