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
use axum::routing::{MethodRouter, any, delete, get, patch, post, put};
use tower_http::cors::CorsLayer;

pub use settings::{HttpbinSettings, OwnPorts};

/// httpbin's endpoints within `settings`' limits, ready to merge into a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(settings: HttpbinSettings) -> Router<S> {
    endpoints()
        .into_iter()
        .fold(Router::new(), |router, (path, endpoint)| {
            router.route(path, endpoint)
        })
        .layer(axum::middleware::map_response(reply::shout_reason))
        // Browsers may call these from any page, with credentials, as httpbin allows: the
        // request's Origin, method and headers are mirrored, and preflights answered. Only
        // here: the state routes never answer another site (the http crate's site guard).
        .layer(CorsLayer::very_permissive())
        .with_state(Arc::new(settings))
}

/// The path of every endpoint [`routes`] serves, as axum writes it (`/status/{codes}`): the
/// routes that show or change nothing of switchboard's, so the http crate's site guard lets
/// any site and any name reach them.
pub fn paths() -> impl Iterator<Item = &'static str> {
    endpoints().into_iter().map(|(path, _)| path)
}

/// Which path goes to which endpoint: one table, so that [`routes`] and [`paths`] agree.
fn endpoints() -> Vec<(&'static str, MethodRouter<Arc<HttpbinSettings>>)> {
    vec![
        ("/get", get(echo::get_echo)),
        ("/headers", get(echo::headers)),
        ("/ip", get(echo::ip)),
        ("/user-agent", get(echo::user_agent)),
        ("/post", post(methods::body_echo)),
        ("/put", put(methods::body_echo)),
        ("/patch", patch(methods::body_echo)),
        ("/delete", delete(methods::body_echo)),
        ("/anything", any(methods::anything)),
        ("/anything/{*rest}", any(methods::anything)),
        ("/status/{codes}", any(auth::status)),
        ("/basic-auth/{user}/{password}", get(auth::basic_auth)),
        (
            "/hidden-basic-auth/{user}/{password}",
            get(auth::hidden_basic_auth),
        ),
        ("/bearer", get(auth::bearer)),
        ("/digest-auth/{qop}/{user}/{password}", get(digest::digest)),
        (
            "/digest-auth/{qop}/{user}/{password}/{algorithm}",
            get(digest::digest),
        ),
        (
            "/digest-auth/{qop}/{user}/{password}/{algorithm}/{stale_after}",
            get(digest::digest),
        ),
        ("/redirect/{n}", get(redirect::redirect)),
        ("/relative-redirect/{n}", get(redirect::relative)),
        ("/absolute-redirect/{n}", get(redirect::absolute)),
        ("/redirect-to", any(redirect::redirect_to)),
        ("/json", get(content::json)),
        ("/html", get(content::html)),
        ("/xml", get(content::xml)),
        ("/encoding/utf8", get(content::utf8)),
        ("/forms/post", get(content::forms_post)),
        ("/robots.txt", get(content::robots_txt)),
        ("/deny", get(content::deny)),
        ("/uuid", get(content::uuid)),
        ("/base64/{value}", get(content::base64_decode)),
        ("/base64/decode/{value}", get(content::base64_decode)),
        ("/base64/encode/{value}", get(content::base64_encode)),
        ("/links/{n}", get(content::links_start)),
        ("/links/{n}/{offset}", get(content::links)),
        ("/image", get(image::by_accept)),
        ("/image/{format}", get(image::by_name)),
        ("/cache", get(caching::cache)),
        ("/cache/{seconds}", get(caching::cache_for)),
        ("/etag/{etag}", get(caching::etag)),
        (
            "/response-headers",
            get(caching::response_headers).post(caching::response_headers),
        ),
        ("/unstable", any(auth::unstable)),
        ("/hostname", get(echo::hostname)),
        ("/stream/{n}", get(stream::lines)),
        ("/stream-bytes/{n}", get(stream::bytes)),
        ("/dump/request", any(stream::dump)),
        ("/range/{n}", get(stream::range)),
        ("/cookies", get(cookies::list)),
        ("/cookies/set", get(cookies::set)),
        ("/cookies/set/{name}/{value}", get(cookies::set_one)),
        ("/cookies/delete", get(cookies::delete)),
        ("/delay/{seconds}", any(timed::delay)),
        ("/bytes/{n}", get(stream::bytes_whole)),
        ("/drip", get(timed::drip)),
        ("/sse", get(timed::sse)),
        ("/trailers", get(stream::trailers)),
        ("/gzip", get(compress::gzip)),
        ("/deflate", get(compress::deflate)),
        ("/brotli", get(compress::brotli)),
        ("/zstd", get(compress::zstd)),
        ("/websocket/echo", get(socket_echo::echo)),
    ]
}
