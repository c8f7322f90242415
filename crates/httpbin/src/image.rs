//! `/image` (chosen by `Accept`) and `/image/{png,jpeg,webp,svg}`: one small picture in each
//! format, for clients that download and decode images.
//!
//! The four files in assets/httpbin/ show one picture (a socket's face); the raster ones
//! were drawn to match the SVG and encoded once, so that the binary carries a few hundred
//! bytes each rather than a WebP encoder. tests/httpbin.rs decodes each.

use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Name, media type and bytes, in the order `/image` prefers them when `Accept` allows
/// several.
const FORMATS: [(&str, &str, &[u8]); 4] = [
    ("webp", "image/webp", include_bytes!("../assets/image.webp")),
    (
        "svg",
        "image/svg+xml",
        include_bytes!("../assets/image.svg"),
    ),
    ("jpeg", "image/jpeg", include_bytes!("../assets/image.jpeg")),
    ("png", "image/png", include_bytes!("../assets/image.png")),
];

fn image(name: &str) -> Option<Response> {
    let (_, media, body) = FORMATS.iter().find(|(n, _, _)| *n == name)?;
    Some(([(header::CONTENT_TYPE, *media)], *body).into_response())
}

/// `/image/{format}`: png, jpeg, webp or svg; 404 for another.
pub(crate) async fn by_name(Path(name): Path<String>) -> Response {
    image(&name).unwrap_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            format!("no {name:?} image: ask for png, jpeg, webp or svg\n"),
        )
            .into_response()
    })
}

/// `/image`: the first of [`FORMATS`] that `Accept` names (`image/*` and `*/*` alone get PNG;
/// q-values are not weighed); 406 and the list of types when it names none of them.
pub(crate) async fn by_accept(headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let wants = |media: &str| accept.split(',').any(|part| part.trim().starts_with(media));
    let chosen = FORMATS
        .iter()
        .find(|(_, media, _)| wants(media))
        .map(|(name, _, _)| *name)
        .or_else(|| (wants("image/*") || wants("*/*")).then_some("png"));
    match chosen.and_then(image) {
        Some(response) => response,
        None => (
            StatusCode::NOT_ACCEPTABLE,
            Json(json!({
                "message": "Accept names no image type switchboard has",
                "accept": FORMATS.iter().map(|(_, media, _)| *media).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
    }
}
