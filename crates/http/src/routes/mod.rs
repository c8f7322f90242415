//! The router: which path goes to which handler, and the limits every request passes.

mod control;
mod info;
mod knock;
mod live;
mod page;
mod site;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::routing::{get, post};
use switchboard_core::Refusal;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::limit::RequestBodyLimitLayer;

use self::site::{Public, Site};
use crate::body;
use crate::state::AppState;

/// A router and the guard every request meets before it (site.rs).
#[derive(Clone, Debug)]
pub(crate) struct Guarded {
    pub(crate) router: Router,
    /// `None` only for [`refusal`], which answers everything with 503.
    pub(crate) site: Option<Arc<Site>>,
}

impl Guarded {
    fn new(router: Router, state: &AppState, public: Public) -> Self {
        Self {
            router,
            site: Some(Arc::new(Site::new(state.hosts.clone(), public))),
        }
    }
}

/// The front door's own routes that show or change nothing of switchboard's, so that any
/// site may reach them by any name; with httpbin's ([`switchboard_httpbin::paths`]), the
/// whole list. Every other route is behind the site guard, wherever it is registered: a
/// route that reads or changes state needs no thought to be guarded, a public one must be
/// named here.
const PUBLIC: [&str; 8] = [
    "/",
    "/healthz",
    "/livez",
    "/readyz",
    "/whoami",
    "/ca.pem",
    "/ca.crl",
    "/assets/{file}",
];

pub(crate) fn router(state: AppState) -> Guarded {
    let router = Router::new()
        .merge(switchboard_httpbin::routes(state.httpbin.clone()))
        .merge(switchboard_mailpit::routes(&state.mailpit))
        .merge(control::routes(state.clone()))
        .merge(live::state_routes())
        .route("/api/ports", get(info::ports))
        .route("/api/knock/{port}", post(knock::knock))
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
        .with_state(state.clone());
    Guarded::new(router, &state, front_door_public())
}

/// [`PUBLIC`] and httpbin's routes.
fn front_door_public() -> Public {
    Public::routes(PUBLIC.into_iter().chain(switchboard_httpbin::paths()))
}

/// Routes that change switchboard from another tool's API (Toxiproxy's, WireMock's admin):
/// only for `[control] allow`, like the control API.
fn control_routes(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes.route_layer(middleware::from_fn_with_state(
        state.clone(),
        control::guard,
    ))
}

/// The router of a `toxiproxy` row: Toxiproxy's API, for `[control] allow` alone, and
/// nothing public.
pub(crate) fn toxiproxy_router(state: AppState) -> Guarded {
    let api = switchboard_toxiproxy::routes(&state.toxiproxy);
    let router = control_routes(api, &state)
        .fallback(switchboard_toxiproxy::not_found)
        .layer(bodies(&state))
        .with_state(state.clone());
    Guarded::new(router, &state, Public::routes([]))
}

/// The router of a `stubs` row: the stubs, public, and WireMock's admin API under
/// `/__admin`, guarded.
pub(crate) fn stubs_router(state: AppState) -> Guarded {
    let admin = switchboard_wiremock::admin_routes(&state.wiremock);
    let router = control_routes(admin, &state)
        .merge(switchboard_wiremock::stub_routes(&state.wiremock))
        .layer(bodies(&state))
        .with_state(state.clone());
    Guarded::new(router, &state, Public::AllBut("/__admin"))
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
pub(crate) fn refusal(why: Refusal) -> Guarded {
    let router = Router::new().fallback(move || async move {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                // A limit frees up as connections end: one second is a fair guess.
                (axum::http::header::RETRY_AFTER, "1"),
                (axum::http::header::CONNECTION, "close"),
            ],
            format!("503 service unavailable: {why}; try again later\n"),
        )
    });
    Guarded { router, site: None }
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, Request};

    use super::*;
    use crate::hosts::HostNames;

    /// The guard fails closed: a route someone adds to the router tomorrow, say
    /// `POST /api/widgets`, is refused to another site without anyone naming it, while the
    /// routes named public (the health checks, httpbin's) answer any site and any name.
    #[test]
    fn a_route_nobody_named_public_is_guarded() {
        let site = Site::new(HostNames::default(), front_door_public());
        let from = |path: &str, host: &str| {
            let request = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header("host", host)
                .header("origin", "http://evil.example")
                .body(())
                .unwrap();
            site.check(&request, false)
        };
        for path in [
            "/api/widgets",
            "/widgets",
            "/mail",
            "/view/1.html",
            "/metrics",
        ] {
            let refused = from(path, "127.0.0.1").unwrap_err();
            assert!(format!("{refused:?}").contains("another site"), "{path}");
            assert!(from(path, "evil.example").is_err(), "{path}");
        }
        for path in [
            "/healthz",
            "/",
            "/assets/page.js",
            "/post",
            "/status/418",
            "/anything/a/b",
        ] {
            assert_eq!(from(path, "evil.example"), Ok(()), "{path}");
        }
    }
}
