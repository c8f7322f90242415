//! The router: which path goes to which handler, and the limits every request passes.

mod control;
mod info;
mod knock;
mod live;
mod page;
mod site;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::routing::{get, post};
use switchboard_core::Refusal;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::limit::RequestBodyLimitLayer;

use crate::body;
use crate::state::AppState;

pub(crate) fn router(state: AppState) -> Router {
    // Every route that reads or changes switchboard's state: behind the guard against
    // cross-site requests and DNS rebinding (site.rs). A state route goes here, nowhere else.
    let state_routes = Router::new()
        .merge(switchboard_mailpit::routes(&state.mailpit))
        .merge(control::routes(state.clone()))
        .merge(live::state_routes())
        .route("/api/ports", get(info::ports))
        .route("/api/knock/{port}", post(knock::knock))
        .route_layer(middleware::from_fn_with_state(state.clone(), site::guard));
    Router::new()
        .merge(switchboard_httpbin::routes(state.httpbin.clone()))
        .merge(state_routes)
        .layer(bodies(&state))
        // The routes below never read a body, so they skip that layer (a layer costs every
        // request an allocation or two: measurable on /healthz, see bench/).
        .route("/", get(page::index))
        .route("/healthz", get(info::healthz))
        .route("/livez", get(info::healthz))
        .route("/readyz", get(info::readyz))
        .route("/whoami", get(info::whoami))
        .route("/ca.pem", get(info::ca_pem))
        .route("/ca.crl", get(info::ca_crl))
        .merge(live::asset_routes())
        .merge(switchboard_mailpit::asset_routes())
        .fallback(not_found)
        .with_state(state)
}

/// Routes that change switchboard from another tool's API (Toxiproxy's, WireMock's admin):
/// only for `[control] allow`, and behind the guard against cross-site requests and DNS
/// rebinding, like the control API.
fn control_routes(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            control::guard,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), site::guard))
}

/// The router of a `toxiproxy` row: Toxiproxy's API, for `[control] allow` alone.
pub(crate) fn toxiproxy_router(state: AppState) -> Router {
    let api = switchboard_toxiproxy::routes(&state.toxiproxy);
    control_routes(api, &state)
        .fallback(switchboard_toxiproxy::not_found)
        .layer(bodies(&state))
        .with_state(state)
}

/// The router of a `stubs` row: the stubs, and WireMock's admin API under `/__admin`.
pub(crate) fn stubs_router(state: AppState) -> Router {
    let admin = switchboard_wiremock::admin_routes(&state.wiremock);
    control_routes(admin, &state)
        .merge(switchboard_wiremock::stub_routes(&state.wiremock))
        .layer(bodies(&state))
        .with_state(state)
}

/// What every route that may read a body is behind, as one layer (each layer of a router
/// wraps every route once more: one costs a request less than three). Outermost, the body's
/// pace and memory (body.rs); then one body limit, enforced while the body streams in (and
/// at once from Content-Length) and answered with 413; axum's own per-extractor limit is off,
/// so that there is only one number to configure.
fn bodies(state: &AppState) -> ServiceBuilder<BodyLayers> {
    ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(state.settings.max_body_bytes))
        .layer(body::Guard(body::Pace::of(&state.settings)))
        .layer(DefaultBodyLimit::disable())
}

/// [`bodies`]' layers, innermost first.
type BodyLayers =
    Stack<DefaultBodyLimit, Stack<body::Guard, Stack<RequestBodyLimitLayer, Identity>>>;

async fn not_found(uri: Uri) -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        format!(
            "404 not found: {}\nThis is switchboard; GET / lists what it answers.\n",
            uri.path()
        ),
    )
}

/// The router for a connection over a limit: every request gets 503 and Retry-After, and
/// the connection closes after it.
pub(crate) fn refusal(why: Refusal) -> Router {
    Router::new().fallback(move || async move {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                // A limit frees up as connections end: one second is a fair guess.
                (axum::http::header::RETRY_AFTER, "1"),
                (axum::http::header::CONNECTION, "close"),
            ],
            format!("503 service unavailable: {why}; try again later\n"),
        )
    })
}
