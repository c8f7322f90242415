//! Toxiproxy's HTTP API (its routes, bodies and status codes), so that the Toxiproxy
//! clients people already have — Go, Ruby, Python, Java, Testcontainers — drive switchboard
//! unchanged. The http crate serves it on the `toxiproxy` row (port 8474 in the built-in
//! table), behind the same guards as the control API.
//!
//! A Toxiproxy *proxy* is a row of switchboard's port table, named: a proxy created here is
//! a `proxy` row added at run time (with the same check of `[proxy] allow_upstreams` as
//! `POST /api/ports`); switchboard's own rows are listed as `<service>-<port>` (`http-80`,
//! `smtp-25`), with `upstream` naming their service, so toxics go on port 25 as on any
//! proxy. What differs from Toxiproxy, and why, is in docs/api.md.
//!
//! # Layout
//!
//! - `state.rs`: [`ToxiproxyApi`], the port table and its toxics.
//! - `shapes.rs`: Toxiproxy's error body, each control error's status, a toxic's body (the
//!   control API answers in the same shapes).
//! - `proxies.rs`: the handlers: proxies as rows, their toxics, reset.
//! - `lib.rs` (this file): [`routes`], which path goes to which handler.

mod proxies;
mod shapes;
mod state;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

pub use shapes::{error, status_of, toxic_of};
pub use state::ToxiproxyApi;

/// Toxiproxy's routes over `api`, ready to merge into a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(api: &ToxiproxyApi) -> Router<S> {
    Router::new()
        .route("/version", get(proxies::version))
        .route("/reset", post(proxies::reset))
        .route("/proxies", get(proxies::list).post(proxies::create))
        .route("/populate", post(proxies::populate))
        .route(
            "/proxies/{proxy}",
            get(proxies::show)
                .post(proxies::update)
                .patch(proxies::update)
                .delete(proxies::destroy),
        )
        .route(
            "/proxies/{proxy}/toxics",
            get(proxies::toxics).post(proxies::add_toxic),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(proxies::show_toxic)
                .post(proxies::update_toxic)
                .patch(proxies::update_toxic)
                .delete(proxies::remove_toxic),
        )
        .with_state(api.0.clone())
}

/// What Toxiproxy answers to a route it does not have.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route".into())
}

/// The parsers of outside input, reached without a server: what the fuzz targets in
/// `fuzz/` call (through `crates/fuzzing`). Nothing else should use these.
pub mod fuzzing {
    /// The `[[port]]` rows a body of `POST /proxies` (one proxy) or `/populate` (a list)
    /// becomes before they go to the control API; or the refusal's text.
    pub fn rows(body: &[u8]) -> Result<Vec<serde_json::Value>, String> {
        crate::proxies::rows_of(body)
    }
}
