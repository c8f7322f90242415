//! `/image` (chosen by `Accept`) and `/image/{png,jpeg,webp,svg}`: one small picture in each
//! format, for clients that download and decode images.
//!
//! The raster images are drawn and encoded once, on first use, rather than shipped as files:
//! the picture is the same as the SVG, so all four show one thing.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use image::{ImageFormat, Rgb, RgbImage};
use serde_json::json;

/// The formats, in the order `/image` prefers them when `Accept` allows several.
const FORMATS: [(&str, &str); 4] = [
    ("webp", "image/webp"),
    ("svg", "image/svg+xml"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
];

const SVG: &str = include_str!("../../../assets/httpbin/image.svg");

/// The SVG's picture, 100×100: a light socket face with two dark slots on dark blue.
fn draw() -> RgbImage {
    let (blue, light) = (Rgb([0x1f, 0x3b, 0x57]), Rgb([0xf2, 0xef, 0xe6]));
    let inside = |x: u32, y: u32, left, top, width, height| {
        (left..left + width).contains(&x) && (top..top + height).contains(&y)
    };
    RgbImage::from_fn(100, 100, |x, y| {
        let slot = inside(x, y, 34, 42, 8, 16) || inside(x, y, 58, 42, 8, 16);
        match inside(x, y, 20, 30, 60, 40) && !slot {
            true => light,
            false => blue,
        }
    })
}

/// The picture in `format`. Encoding into memory does not fail for these formats; if it
/// ever did, the image would be empty, the error logged (and the tests below would fail).
fn encode(format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    if let Err(error) = draw().write_to(&mut out, format) {
        tracing::error!(?format, %error, "cannot encode the sample image");
    }
    out.into_inner()
}

static PNG: LazyLock<Vec<u8>> = LazyLock::new(|| encode(ImageFormat::Png));
static JPEG: LazyLock<Vec<u8>> = LazyLock::new(|| encode(ImageFormat::Jpeg));
static WEBP: LazyLock<Vec<u8>> = LazyLock::new(|| encode(ImageFormat::WebP));

fn image(name: &str) -> Option<Response> {
    let (_, media) = FORMATS.iter().find(|(n, _)| *n == name)?;
    let body: &'static [u8] = match name {
        "png" => &PNG,
        "jpeg" => &JPEG,
        "webp" => &WEBP,
        _ => SVG.as_bytes(),
    };
    Some(([(header::CONTENT_TYPE, *media)], body).into_response())
}

/// `/image/{format}`: png, jpeg, webp or svg; 404 for another.
pub(super) async fn by_name(Path(name): Path<String>) -> Response {
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
pub(super) async fn by_accept(headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let wants = |media: &str| accept.split(',').any(|part| part.trim().starts_with(media));
    let chosen = FORMATS
        .iter()
        .find(|(_, media)| wants(media))
        .map(|(name, _)| *name)
        .or_else(|| (wants("image/*") || wants("*/*")).then_some("png"));
    match chosen.and_then(image) {
        Some(response) => response,
        None => (
            StatusCode::NOT_ACCEPTABLE,
            Json(json!({
                "message": "Accept names no image type switchboard has",
                "accept": FORMATS.iter().map(|(_, media)| *media).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_raster_image_decodes_to_the_drawn_picture() {
        for (bytes, format) in [
            (&*PNG, ImageFormat::Png),
            (&*WEBP, ImageFormat::WebP),
            (&*JPEG, ImageFormat::Jpeg),
        ] {
            let decoded = image::load_from_memory_with_format(bytes, format)
                .unwrap()
                .to_rgb8();
            assert_eq!(decoded.dimensions(), (100, 100), "{format:?}");
            // Lossy JPEG comes close, the others exactly: the face's centre is light.
            let face = decoded.get_pixel(50, 35);
            assert!(face.0.iter().all(|&c| c > 0xd0), "{format:?}: {face:?}");
            let slot = decoded.get_pixel(38, 50);
            assert!(slot.0.iter().all(|&c| c < 0x70), "{format:?}: {slot:?}");
        }
    }
}
