//! WireMock's model served over HTTP: a `stubs` row answers every request with the best
//! stub that matches it (the model is the stubs crate's), and WireMock's admin API lives
//! under `/__admin`. The http crate serves both, the admin API behind `[control] allow` and
//! the guards against cross-site requests and DNS rebinding, like every route that changes
//! state.
//!
//! # Layout
//!
//! - `state.rs`: [`WireMock`], the stubs and what answering needs.
//! - `errors.rs`: WireMock's error shapes.
//! - `admin.rs`: the admin API's handlers.
//! - `answer.rs`: the stubs' answers, their delays, dribbles and faults, and
//!   [`RequestUnmatched`], the event of a request no stub answers.
//! - `lib.rs` (this file): which path goes where.

mod admin;
mod answer;
mod errors;
mod state;

use axum::Router;
use axum::routing::{get, post};

pub use answer::RequestUnmatched;
pub use state::{StubsRow, WireMock};

/// WireMock's admin API, `/__admin/…`.
pub fn admin_routes<S: Clone + Send + Sync + 'static>(wiremock: &WireMock) -> Router<S> {
    Router::new()
        .route(
            "/__admin/mappings",
            get(admin::list_mappings)
                .post(admin::add_mapping)
                .delete(admin::remove_mappings),
        )
        .route("/__admin/mappings/reset", post(admin::reset_mappings))
        .route("/__admin/mappings/save", post(admin::save_mappings))
        .route(
            "/__admin/mappings/{id}",
            get(admin::get_mapping)
                .put(admin::replace_mapping)
                .delete(admin::remove_mapping),
        )
        .route(
            "/__admin/requests",
            get(admin::list_requests).delete(admin::clear_requests),
        )
        .route("/__admin/requests/reset", post(admin::clear_requests))
        .route("/__admin/requests/count", post(admin::count_requests))
        .route("/__admin/requests/find", post(admin::find_requests))
        .route("/__admin/requests/unmatched", get(admin::unmatched))
        .route(
            "/__admin/requests/unmatched/near-misses",
            get(admin::near_misses),
        )
        .route("/__admin/requests/{id}", get(admin::get_request))
        .route("/__admin/scenarios", get(admin::scenarios))
        .route("/__admin/scenarios/reset", post(admin::reset_scenarios))
        .route("/__admin/reset", post(admin::reset))
        .with_state(wiremock.0.clone())
}

/// Every other request, answered by a stub (a router that is only a fallback).
pub fn stub_routes<S: Clone + Send + Sync + 'static>(wiremock: &WireMock) -> Router<S> {
    Router::new()
        .fallback(answer::serve)
        .with_state(wiremock.0.clone())
}
