//! Redirects: chains of n hops (`/redirect/{n}` and its relative and absolute forms) and
//! `/redirect-to`, which sends the client where it asks, but only back to switchboard or to
//! a host in `[http] redirect_hosts`, so that it cannot be used as an open redirect.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::echo::Echo;
use crate::reply::bad_request;
use crate::settings::{AppState, HttpbinSettings};

/// A redirect with that status to `location`; 400 if it cannot be a header value.
fn redirect_with(status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (status, [(header::LOCATION, value)]).into_response(),
        Err(_) => bad_request(format!("{location:?} cannot be a Location header\n")),
    }
}

/// The hop count, checked against `[http] max_redirects`; the error says why not.
fn hops(state: &AppState, n: u32) -> Result<u32, String> {
    let max = state.max_redirects;
    match n {
        1.. if n <= max => Ok(n),
        _ => Err(format!(
            "{n} redirects: ask for 1 to {max} (the cap is [http] max_redirects)\n"
        )),
    }
}

#[derive(Deserialize)]
pub(crate) struct RedirectQuery {
    absolute: Option<bool>,
}

/// `/redirect/{n}`: 302 n times, then `/get`. `?absolute=true` gives absolute URLs.
pub(crate) async fn redirect(
    state: State<AppState>,
    n: Path<u32>,
    Query(query): Query<RedirectQuery>,
    echo: Echo,
) -> Response {
    match query.absolute {
        Some(true) => absolute(state, n, echo).await,
        _ => relative(state, n).await,
    }
}

/// `/relative-redirect/{n}`: 302 to `/relative-redirect/{n-1}`, the last one to `/get`.
pub(crate) async fn relative(State(state): State<AppState>, Path(n): Path<u32>) -> Response {
    match hops(&state, n) {
        Ok(1) => redirect_with(StatusCode::FOUND, "/get"),
        Ok(n) => redirect_with(StatusCode::FOUND, &format!("/relative-redirect/{}", n - 1)),
        Err(why) => bad_request(why),
    }
}

/// `/absolute-redirect/{n}`: the same with absolute URLs, on the host the client named.
pub(crate) async fn absolute(
    State(state): State<AppState>,
    Path(n): Path<u32>,
    echo: Echo,
) -> Response {
    let base = echo.base;
    match hops(&state, n) {
        Ok(1) => redirect_with(StatusCode::FOUND, &format!("{base}/get")),
        Ok(n) => redirect_with(
            StatusCode::FOUND,
            &format!("{base}/absolute-redirect/{}", n - 1),
        ),
        Err(why) => bad_request(why),
    }
}

#[derive(Deserialize)]
pub(crate) struct RedirectTo {
    url: Option<String>,
    status_code: Option<u16>,
}

/// `/redirect-to?url=…&status_code=…`: any method; 302 unless another 3xx is asked for.
pub(crate) async fn redirect_to(
    State(state): State<AppState>,
    Query(query): Query<RedirectTo>,
    echo: Echo,
) -> Response {
    let Some(url) = query.url else {
        return bad_request("redirect-to needs ?url=\n");
    };
    let status = match query.status_code.unwrap_or(302) {
        code @ 300..=399 => StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND),
        code => return bad_request(format!("status_code={code}: use a redirect, 300 to 399\n")),
    };
    if !allowed(&url, &echo.base, &state) {
        return (
            StatusCode::FORBIDDEN,
            format!(
                "{url:?} leaves switchboard: a redirect goes to a path here, to one of \
                 switchboard's ports on the host you named, or to a host listed in [http] \
                 redirect_hosts\n"
            ),
        )
            .into_response();
    }
    redirect_with(status, &url)
}

/// Whether `url` stays on the host the client named (on its port or another of
/// switchboard's), or goes to an allowed host.
///
/// It is judged where a browser would go: resolved against the request's own URL by the
/// WHATWG URL standard, as browsers do (the `url` crate) — tabs and newlines dropped, `\`
/// read as `/`, `//host` taking the request's scheme — so that `/\t/elsewhere` or
/// `/\\elsewhere`, paths by their first character, are seen as the other origins they are.
fn allowed(url: &str, base: &str, settings: &HttpbinSettings) -> bool {
    let Ok(here) = url::Url::parse(base) else {
        return false;
    };
    let Ok(target) = here.join(url) else {
        return false;
    };
    let Some(host) = target.host_str() else {
        return false;
    };
    let port = target.port_or_known_default();
    let same_site = target.host_str() == here.host_str()
        && (port == here.port_or_known_default()
            || port.is_some_and(|p| settings.own_ports.contains(p)));
    let listed = settings
        .redirect_hosts
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(host));
    matches!(target.scheme(), "http" | "https")
        && target.username().is_empty()
        && target.password().is_none()
        && (same_site || listed)
}

#[cfg(test)]
mod tests {
    use super::allowed;
    use crate::settings::{HttpbinSettings, OwnPorts};

    #[test]
    fn only_paths_here_the_same_host_or_listed_hosts_are_allowed() {
        let hosts = HttpbinSettings {
            redirect_hosts: vec!["api.example.test".to_owned()],
            own_ports: OwnPorts::listed_by(|port| port == 8080 || port == 8443),
            ..HttpbinSettings::default()
        };
        let base = "http://localhost:8080";
        assert!(allowed("/get", base, &hosts));
        assert!(allowed("http://localhost:8080/x", base, &hosts));
        assert!(allowed("https://api.example.test/x", base, &hosts));
        assert!(!allowed("//evil.example/x", base, &hosts));
        assert!(!allowed("/\\evil.example/x", base, &hosts));
        assert!(!allowed("http://localhost:9999/x", base, &hosts));
        // Another of switchboard's ports, on the host the client named: still here.
        assert!(allowed("https://localhost:8443/x", base, &hosts));
        assert!(!allowed("https://evil.example:8443/x", base, &hosts));
        assert!(!allowed("https://evil.example/", base, &hosts));
        assert!(!allowed("javascript:alert(1)", base, &hosts));
        // Relative targets, as HTTP clients' test suites ask for them, stay here.
        for relative in ["get", "post", "./get", "../get", "?a=b", "#top", "get?x=/y"] {
            assert!(allowed(relative, base, &hosts), "{relative}");
        }
        // Read as a browser reads them: tabs and newlines dropped, a backslash a slash.
        assert!(!allowed("/\t/evil.example/x", base, &hosts));
        assert!(!allowed("/\n/evil.example/x", base, &hosts));
        assert!(!allowed("\\\\evil.example/x", base, &hosts));
        assert!(!allowed(" //evil.example/x", base, &hosts));
        assert!(!allowed("http://user@localhost:8080/", base, &hosts));
        assert!(!allowed(
            "http://evil.example@localhost:9999/",
            base,
            &hosts
        ));
        assert!(allowed("http://localhost:80/", "http://localhost", &hosts));
    }
}
