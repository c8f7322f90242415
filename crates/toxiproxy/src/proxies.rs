//! Toxiproxy's proxies and their toxics, as rows of switchboard's port table.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_core::{PortState, PortStatus, Protocol};

use crate::shapes::{ApiError, TOXIPROXY_VERSION, toxic_of};
use crate::state::AppState;

type Answer = Result<Response, ApiError>;

pub(crate) async fn version() -> Json<Value> {
    Json(json!({
        "version": TOXIPROXY_VERSION,
        "server": concat!("switchboard ", env!("CARGO_PKG_VERSION")),
    }))
}

/// Every TCP row of the port table but the API's own, as proxies (Toxiproxy proxies TCP).
fn rows(state: &AppState) -> Vec<PortStatus> {
    state
        .ports
        .ports()
        .into_iter()
        .filter(|p| p.service != "toxiproxy" && p.protocol == Protocol::Tcp)
        .collect()
}

fn find(state: &AppState, name: &str) -> Result<PortStatus, ApiError> {
    rows(state)
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "proxy not found"))
}

/// Where a row's proxy connects; for a row of another service, the service's name (Toxiproxy
/// has only proxies, so every row shows as one).
fn upstream_of(row: &PortStatus) -> &str {
    match &row.target {
        Some(target) if target.key == "upstream" => &target.value,
        _ => row.service,
    }
}

/// A row as Toxiproxy shows a proxy, with its toxics.
fn proxy(state: &AppState, row: &PortStatus) -> Value {
    let toxics = state.toxics.toxics(row.port).unwrap_or_default();
    json!({
        "name": row.name,
        "listen": row.addresses.first().map(|a| a.to_string()).unwrap_or_default(),
        "upstream": upstream_of(row),
        "enabled": row.state == PortState::Listening,
        "toxics": toxics,
    })
}

/// `GET /proxies`: every proxy by name.
pub(crate) async fn list(State(state): State<AppState>) -> Json<Map<String, Value>> {
    Json(
        rows(&state)
            .iter()
            .map(|row| (row.name.clone(), proxy(&state, row)))
            .collect(),
    )
}

pub(crate) async fn show(State(state): State<AppState>, Path(name): Path<String>) -> Answer {
    let row = find(&state, &name)?;
    Ok(Json(proxy(&state, &row)).into_response())
}

/// A proxy as a client sends it.
#[derive(Debug, Default, Deserialize)]
struct ProxyBody {
    name: Option<String>,
    listen: Option<String>,
    upstream: Option<String>,
    enabled: Option<bool>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("bad request body: {e}")))
}

/// The name and upstream a new proxy must have (`at`: which proxy of a list).
fn required(body: &ProxyBody, at: &str) -> Result<(String, String), ApiError> {
    let missing = |field: &str| ApiError::bad(format!("missing required field: {field}{at}"));
    let name = body.name.clone().filter(|n| !n.is_empty());
    let upstream = body.upstream.clone().filter(|u| !u.is_empty());
    Ok((
        name.ok_or_else(|| missing("name"))?,
        upstream.ok_or_else(|| missing("upstream"))?,
    ))
}

/// Where a proxy listens, as `listen` gives it: `host:port`, `:port` or nothing (every
/// address, any free port). The host is an IP address or `localhost`.
fn parse_listen(listen: Option<&str>) -> Result<(Option<std::net::IpAddr>, u16), String> {
    let Some(listen) = listen.filter(|l| !l.is_empty()) else {
        return Ok((None, 0));
    };
    let bad = || format!("listen \"{listen}\": give host:port, with an IP address or localhost");
    let (host, port) = listen.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" => None,
        "localhost" => Some(std::net::Ipv4Addr::LOCALHOST.into()),
        ip => Some(ip.parse().map_err(|_| bad())?),
    };
    Ok((ip, port))
}

/// Whether `listen` names where `row` already listens (port 0 or no host: anywhere).
fn listens_at(row: &PortStatus, listen: &str) -> bool {
    match parse_listen(Some(listen)) {
        Ok((ip, port)) => {
            (port == 0 || port == row.port)
                && ip.is_none_or(|ip| row.addresses.iter().any(|a| a.ip() == ip))
        }
        Err(_) => false,
    }
}

/// The `[[port]]` row a Toxiproxy proxy is: always a `proxy` row.
fn row_of(name: &str, listen: Option<&str>, upstream: &str) -> Result<Value, String> {
    let (ip, port) = parse_listen(listen)?;
    let mut row = json!({"port": port, "service": "proxy", "upstream": upstream, "name": name});
    if let Some(ip) = ip {
        row["bind"] = json!([ip]);
    }
    Ok(row)
}

/// The rows a body of `POST /proxies` (one proxy) or `POST /populate` (a list) asks for,
/// or why it is refused: what the API checks before anything changes.
pub(crate) fn rows_of(body: &[u8]) -> Result<Vec<Value>, String> {
    let bodies: Vec<ProxyBody> = match serde_json::from_slice::<ProxyBody>(body) {
        Ok(one) => vec![one],
        Err(_) => parse(&Bytes::copy_from_slice(body)).map_err(|e| e.message)?,
    };
    bodies
        .iter()
        .map(|body| {
            let (name, upstream) = required(body, "").map_err(|e| e.message)?;
            row_of(&name, body.listen.as_deref(), &upstream)
        })
        .collect()
}

/// Add a proxy row named `name`; disabled at once if asked.
async fn add(
    state: &AppState,
    name: &str,
    listen: Option<&str>,
    upstream: &str,
    enabled: bool,
) -> Result<PortStatus, ApiError> {
    let row = row_of(name, listen, upstream).map_err(ApiError::bad)?;
    let status = state.control.add_port(row).await?;
    if !enabled {
        state.control.disable_port(status.port).await?;
    }
    find(state, name)
}

/// `POST /proxies`: 201 and the proxy (its real address when `listen` asked for port 0).
pub(crate) async fn create(State(state): State<AppState>, body: Bytes) -> Answer {
    let body: ProxyBody = parse(&body)?;
    let (name, upstream) = required(&body, "")?;
    if find(&state, &name).is_ok() {
        return Err(ApiError::new(StatusCode::CONFLICT, "proxy already exists"));
    }
    let enabled = body.enabled.unwrap_or(true);
    let row = add(&state, &name, body.listen.as_deref(), &upstream, enabled).await?;
    Ok((StatusCode::CREATED, Json(proxy(&state, &row))).into_response())
}

/// Bring `row` to what `body` asks: a new address or upstream makes a new row (with the
/// same name and toxics; switchboard's own rows cannot move); `enabled` opens or disables.
async fn apply(
    state: &AppState,
    row: PortStatus,
    body: &ProxyBody,
) -> Result<PortStatus, ApiError> {
    let moves = body.listen.as_deref().is_some_and(|l| !listens_at(&row, l));
    let current_upstream = upstream_of(&row);
    let retargets = body
        .upstream
        .as_deref()
        .is_some_and(|u| u != current_upstream);
    let enabled = body.enabled.unwrap_or(row.state == PortState::Listening);
    let control = &state.control;
    if moves || retargets {
        if !row.runtime {
            return Err(ApiError::bad(format!(
                "{} is one of switchboard's own rows: its address and upstream cannot change \
                 (create a proxy instead)",
                row.name
            )));
        }
        let listen = match &body.listen {
            Some(listen) => listen.clone(),
            None => current_listen(&row),
        };
        let upstream = body.upstream.as_deref().unwrap_or(current_upstream);
        // All or nothing: the new row is checked (its upstream may be refused) before the
        // old one goes, and should the new one still fail (its address in use), the old one
        // comes back as it was.
        let new_row = row_of(&row.name, Some(&listen), upstream).map_err(ApiError::bad)?;
        control.check_port(new_row).await?;
        let toxics = state.toxics.toxics(row.port)?;
        control.disable_port(row.port).await?;
        control.remove_port(row.port).await?;
        let was_enabled = row.state == PortState::Listening;
        let (name, old_listen) = (row.name.clone(), current_listen(&row));
        let made = match add(state, &name, Some(&listen), upstream, enabled).await {
            Ok(made) => made,
            Err(error) => {
                let old_upstream = current_upstream.to_owned();
                if let Ok(back) =
                    add(state, &name, Some(&old_listen), &old_upstream, was_enabled).await
                {
                    for toxic in toxics {
                        let _ = state.toxics.add_toxic(back.port, toxic);
                    }
                }
                return Err(error);
            }
        };
        for toxic in toxics {
            state.toxics.add_toxic(made.port, toxic)?;
        }
        return find(state, &name);
    }
    match (row.state == PortState::Listening, enabled) {
        (false, true) => control.open_port(row.port).await?,
        (true, false) => control.disable_port(row.port).await?,
        _ => {}
    }
    find(state, &row.name)
}

/// Where `row` listens, as `listen` says it: its first address.
fn current_listen(row: &PortStatus) -> String {
    row.addresses
        .first()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// The row a proxy body would add, if it adds or replaces one: a new proxy, or one that
/// moves or changes upstream.
fn planned_row(state: &AppState, name: &str, body: &ProxyBody) -> Result<Option<Value>, ApiError> {
    let Ok(row) = find(state, name) else {
        let upstream = body.upstream.as_deref().unwrap_or_default();
        return row_of(name, body.listen.as_deref(), upstream)
            .map(Some)
            .map_err(ApiError::bad);
    };
    let moves = body.listen.as_deref().is_some_and(|l| !listens_at(&row, l));
    let retargets = body
        .upstream
        .as_deref()
        .is_some_and(|u| u != upstream_of(&row));
    if !(moves || retargets) || !row.runtime {
        return Ok(None);
    }
    let listen = body.listen.clone().unwrap_or_else(|| current_listen(&row));
    let upstream = body.upstream.as_deref().unwrap_or(upstream_of(&row));
    row_of(name, Some(&listen), upstream)
        .map(Some)
        .map_err(ApiError::bad)
}

/// `POST` or `PATCH /proxies/{name}`: change `enabled` (or the address or upstream).
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let body: ProxyBody = parse(&body)?;
    let row = apply(&state, find(&state, &name)?, &body).await?;
    Ok(Json(proxy(&state, &row)).into_response())
}

/// `DELETE /proxies/{name}`: a proxy made through an API is removed; switchboard's own rows
/// are closed and stay listed, disabled (`POST /reset` opens them again). Either way, open
/// connections are dropped, as Toxiproxy does.
pub(crate) async fn destroy(State(state): State<AppState>, Path(name): Path<String>) -> Answer {
    let row = find(&state, &name)?;
    state.control.disable_port(row.port).await?;
    if row.runtime {
        state.control.remove_port(row.port).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /reset`: every row open again, every toxic and fault gone (proxies stay).
pub(crate) async fn reset(State(state): State<AppState>) -> Answer {
    state.control.reset().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /populate`: create or replace each proxy of the list; 201 and every proxy. The
/// list is checked whole before anything changes.
pub(crate) async fn populate(State(state): State<AppState>, body: Bytes) -> Answer {
    let bodies: Vec<ProxyBody> = parse(&body)?;
    let mut names = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let (name, _) = required(body, &format!(" at proxy {}", i + 1))?;
        if body.enabled != Some(false) {
            parse_listen(body.listen.as_deref()).map_err(ApiError::bad)?;
        }
        if names.contains(&name) {
            return Err(ApiError::bad(format!("duplicate proxy name \"{name}\"")));
        }
        names.push(name);
    }
    // Every row the list would add is checked before any change: one refused upstream
    // leaves everything as it was.
    for (body, name) in bodies.iter().zip(&names) {
        if let Some(row) = planned_row(&state, name, body)? {
            state.control.check_port(row).await?;
        }
    }
    let mut proxies = Vec::new();
    for (body, name) in bodies.iter().zip(&names) {
        let row = match find(&state, name) {
            Ok(row) => apply(&state, row, body).await?,
            Err(_) => {
                let upstream = body.upstream.as_deref().unwrap_or_default();
                let enabled = body.enabled.unwrap_or(true);
                add(&state, name, body.listen.as_deref(), upstream, enabled).await?
            }
        };
        proxies.push(proxy(&state, &row));
    }
    Ok((StatusCode::CREATED, Json(json!({ "proxies": proxies }))).into_response())
}

pub(crate) async fn toxics(State(state): State<AppState>, Path(name): Path<String>) -> Answer {
    let port = find(&state, &name)?.port;
    Ok(Json(state.toxics.toxics(port)?).into_response())
}

/// `POST /proxies/{name}/toxics`: 200 and the toxic, as Toxiproxy answers.
pub(crate) async fn add_toxic(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let port = find(&state, &name)?.port;
    let toxic = toxic_of(&body).map_err(|e| ApiError::bad(e.0))?;
    Ok(Json(state.toxics.add_toxic(port, toxic)?).into_response())
}

pub(crate) async fn show_toxic(
    State(state): State<AppState>,
    Path((name, toxic)): Path<(String, String)>,
) -> Answer {
    let port = find(&state, &name)?.port;
    let toxic = state
        .toxics
        .toxics(port)?
        .into_iter()
        .find(|t| t.name == toxic)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "toxic not found"))?;
    Ok(Json(toxic).into_response())
}

/// `POST` or `PATCH /proxies/{name}/toxics/{toxic}`: change toxicity, stream, attributes.
pub(crate) async fn update_toxic(
    State(state): State<AppState>,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let port = find(&state, &name)?.port;
    let patch: Value = parse(&body)?;
    Ok(Json(state.toxics.update_toxic(port, &toxic, &patch)?).into_response())
}

pub(crate) async fn remove_toxic(
    State(state): State<AppState>,
    Path((name, toxic)): Path<(String, String)>,
) -> Answer {
    let port = find(&state, &name)?.port;
    state.toxics.remove_toxic(port, &toxic)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_toxiproxy_s_forms() {
        let local = Some(std::net::Ipv4Addr::LOCALHOST.into());
        assert_eq!(parse_listen(None), Ok((None, 0)));
        assert_eq!(parse_listen(Some("")), Ok((None, 0)));
        assert_eq!(parse_listen(Some("127.0.0.1:0")), Ok((local, 0)));
        assert_eq!(parse_listen(Some("localhost:26379")), Ok((local, 26379)));
        assert_eq!(parse_listen(Some(":8666")), Ok((None, 8666)));
        assert_eq!(
            parse_listen(Some("[::1]:7")),
            Ok((Some(std::net::Ipv6Addr::LOCALHOST.into()), 7))
        );
        for bad in ["redis:6379", "127.0.0.1", "127.0.0.1:99999"] {
            let err = parse_listen(Some(bad)).unwrap_err();
            assert!(err.contains(bad) && err.contains("host:port"), "{err}");
        }
    }
}
