//! What several endpoints answer with: a 400 that says why (naming the cap a request went
//! over), and random bytes that repeat for a seed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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
