//! Status and authentication: `/status/{codes}` (one code, or a weighted choice),
//! `/basic-auth`, `/hidden-basic-auth` and `/bearer`.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use crate::reply::bad_request;

/// The realm httpbin's challenges name; clients under test sometimes assert on it.
const REALM: &str = r#"Basic realm="Fake Realm""#;

/// `/status/{codes}`: `418`, or a weighted choice such as `200:0.7,500:0.3` (a code without a
/// weight weighs 1). A redirect status carries a Location, 401 a challenge.
pub(crate) async fn status(Path(codes): Path<String>) -> Response {
    let choices = match parse_choices(&codes) {
        Ok(choices) => choices,
        Err(why) => return bad_request(why),
    };
    let code = choose(&choices, fastrand::f64());
    let mut response = code.into_response();
    if code.is_redirection() {
        response
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/redirect/1"));
    } else if code == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
    }
    response
}

fn parse_choices(codes: &str) -> Result<Vec<(StatusCode, f64)>, String> {
    let mut choices = Vec::new();
    for choice in codes.split(',') {
        let (code, weight) = choice.split_once(':').unwrap_or((choice, "1"));
        let status = code
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|code| (200..=599).contains(code))
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or_else(|| format!("{code:?} is not a status code: use 200 to 599\n"))?;
        let weight = weight
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|w| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| format!("{weight:?} is not a weight: use a number, 0 or more\n"))?;
        choices.push((status, weight));
    }
    if choices.iter().all(|(_, weight)| *weight == 0.0) {
        return Err("every weight is 0: give at least one code a weight\n".into());
    }
    Ok(choices)
}

/// The code whose share of the total weight holds `roll` (0 ≤ roll < 1).
fn choose(choices: &[(StatusCode, f64)], roll: f64) -> StatusCode {
    let total: f64 = choices.iter().map(|(_, w)| w).sum();
    let mut point = roll * total;
    for (code, weight) in choices {
        if point < *weight {
            return *code;
        }
        point -= weight;
    }
    // Rounding can leave the point just past the last share: that share's code, then.
    choices
        .iter()
        .rev()
        .find(|(_, w)| *w > 0.0)
        .map_or(StatusCode::OK, |(code, _)| *code)
}

#[derive(serde::Deserialize)]
pub(crate) struct Unstable {
    failure_rate: Option<f64>,
    seed: Option<u64>,
}

/// `/unstable?failure_rate=0.5&seed=N`: 500 at that rate (default one in two), else 200;
/// with a seed, the same answer every time for the same seed and rate.
pub(crate) async fn unstable(Query(query): Query<Unstable>) -> Response {
    let rate = query.failure_rate.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&rate) {
        return bad_request(format!("failure_rate={rate}: use 0 to 1\n"));
    }
    let roll = crate::reply::seeded(query.seed).f64();
    match roll < rate {
        true => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        false => StatusCode::OK.into_response(),
    }
}

/// The user and password of a Basic `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn authenticated(headers: &HeaderMap, user: &str, password: &str) -> bool {
    basic_credentials(headers).is_some_and(|(u, p)| u == user && p == password)
}

/// `/basic-auth/{user}/{password}`: 200 with those credentials, else 401 and a challenge.
pub(crate) async fn basic_auth(
    Path((user, password)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if authenticated(&headers, &user, &password) {
        return Json(json!({"authenticated": true, "user": user})).into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, REALM)],
        Json(json!({"authenticated": false})),
    )
        .into_response()
}

/// `/hidden-basic-auth/{user}/{password}`: like basic-auth, but 404 without a challenge,
/// as a server that hides what it protects answers.
pub(crate) async fn hidden_basic_auth(
    Path((user, password)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if authenticated(&headers, &user, &password) {
        return Json(json!({"authenticated": true, "user": user})).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

/// `/bearer`: 200 and the token with `Authorization: Bearer <token>`, else 401.
pub(crate) async fn bearer(headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
        .map(|(_, token)| token.trim().to_owned());
    match token {
        Some(token) => Json(json!({"authenticated": true, "token": token})).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_choices_split_the_roll_by_weight() {
        let choices = parse_choices("200:0.7,500:0.3").unwrap();
        assert_eq!(choose(&choices, 0.0), StatusCode::OK);
        assert_eq!(choose(&choices, 0.69), StatusCode::OK);
        assert_eq!(choose(&choices, 0.71), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            choose(&choices, 0.999_999),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn codes_without_weights_weigh_the_same_and_zero_weights_never_come_up() {
        let even = parse_choices("201,202").unwrap();
        assert_eq!(choose(&even, 0.49), StatusCode::CREATED);
        assert_eq!(choose(&even, 0.51), StatusCode::ACCEPTED);
        let never = parse_choices("500:0,204:1").unwrap();
        assert_eq!(choose(&never, 0.0), StatusCode::NO_CONTENT);
    }

    #[test]
    fn bad_codes_and_weights_are_named() {
        assert!(parse_choices("99").unwrap_err().contains("\"99\""));
        assert!(parse_choices("600").unwrap_err().contains("200 to 599"));
        assert!(parse_choices("200:x").unwrap_err().contains("\"x\""));
        assert!(parse_choices("200:-1").is_err());
        assert!(
            parse_choices("200:0")
                .unwrap_err()
                .contains("every weight is 0")
        );
    }
}
