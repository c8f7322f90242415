//! What several endpoints answer with: a 400 that says why (naming the cap a request went
//! over), random bytes that repeat for a seed, and httpbin's reason phrases in capitals.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper::ext::ReasonPhrase;

/// 400 Bad Request, saying why.
pub(crate) fn bad_request(why: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, why.into()).into_response()
}

/// 400 when a request asks for more than a cap allows, naming the cap's `[http]` key; none
/// when it is within.
pub(crate) fn over_cap<T: PartialOrd + std::fmt::Display>(
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
pub(crate) fn random_bytes(n: usize, seed: Option<u64>) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    seeded(seed).fill(&mut bytes);
    bytes
}

/// A generator that repeats its numbers for a seed, or a fresh one without.
pub(crate) fn seeded(seed: Option<u64>) -> fastrand::Rng {
    match seed {
        Some(seed) => fastrand::Rng::with_seed(seed),
        None => fastrand::Rng::new(),
    }
}

/// httpbin's servers write a reason phrase in capitals (`302 FOUND`, `401 UNAUTHORIZED`), and
/// HTTP clients' test suites look for it so: each httpbin answer's phrase, as HTTP/1 writes
/// it (HTTP/2 has none). `200 OK` is already in capitals and costs nothing.
pub(crate) async fn shout_reason(mut response: Response) -> Response {
    if let Some(reason) = shouted(response.status()) {
        response.extensions_mut().insert(reason);
    }
    response
}

/// The reason phrase of `status` in capitals, where that differs from the canonical one.
fn shouted(status: StatusCode) -> Option<ReasonPhrase> {
    static PHRASES: LazyLock<HashMap<u16, ReasonPhrase>> = LazyLock::new(|| {
        (100..600)
            .filter_map(|code| {
                let reason = StatusCode::from_u16(code).ok()?.canonical_reason()?;
                let shouted = reason.to_ascii_uppercase();
                (shouted != reason)
                    .then(|| ReasonPhrase::try_from(shouted).ok())
                    .flatten()
                    .map(|phrase| (code, phrase))
            })
            .collect()
    });
    PHRASES.get(&status.as_u16()).cloned()
}
