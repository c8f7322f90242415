//! A message as a browser or a test script sees it: `/view/{ID}.html`, `/view/{ID}.txt`,
//! and thumbnails of image attachments.
//!
//! The HTML view is a stranger's HTML served from switchboard's own origin, so it is
//! sandboxed: `Content-Security-Policy: sandbox` gives it an origin of its own (it cannot
//! read switchboard's pages or call its API as switchboard) and runs no script; it may load
//! images only from switchboard itself (its own inline parts) or `data:` URLs, so a tracking
//! pixel or a stylesheet elsewhere learns nothing.

use std::io::Cursor;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

use super::AppState;
use super::mail::{ApiError, find};

/// What the HTML view may do: nothing but show itself and its own images.
const SANDBOX: &str = "sandbox; default-src 'none'; img-src 'self' data:; \
                       style-src 'unsafe-inline'; font-src data:; form-action 'none'";

/// The same, with remote images allowed (`?remote=1`: the reader asked for them).
const SANDBOX_REMOTE_IMAGES: &str = "sandbox; default-src 'none'; img-src * data:; \
                       style-src 'unsafe-inline'; font-src data:; form-action 'none'";

/// The message's HTML with its `<link>` and `<meta>` elements made inert: a stylesheet,
/// prefetch, preload, DNS prefetch or preconnect hint, or a `<meta>` refresh, fetches or
/// navigates by itself, and Chromium lets some hints through once remote images are
/// allowed. (The page is the sender's: nothing it says about itself is needed to read it.)
///
/// Each start tag named `link` or `meta` is renamed `x-link` or `x-meta`, an element the
/// browser does not know and so ignores. An HTML parser ends a tag's name at whitespace,
/// `/` or `>` and compares it without case, so renaming every `<link` and `<meta` followed
/// by one of those (or the end) reaches every such tag wherever it is; a match inside text
/// or a comment only changes how that text reads. (A rewriting HTML parser would do the
/// same with more machinery; the well-kept ones here bring MPL-licensed crates, which
/// deny.toml keeps out.)
fn without_hints(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 16);
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let name_ends = |name: &str| {
            rest.get(..name.len())
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
                && rest[name.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| matches!(c, '\t' | '\n' | '\x0C' | '\r' | ' ' | '/' | '>'))
        };
        if name_ends("link") || name_ends("meta") {
            out.push_str("x-");
        }
    }
    out.push_str(rest);
    out
}

/// `?remote=1` on the HTML view.
#[derive(serde::Deserialize)]
pub(super) struct ViewOptions {
    #[serde(default)]
    remote: Option<String>,
}

/// `GET /view/{ID}.html` and `GET /view/{ID}.txt` (`ID` may be `latest`): the message's HTML
/// or text part alone, for tests that look at what a user would see. `?remote=1` lets the
/// HTML load remote images (the mailbox's "load remote images").
pub(super) async fn view(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(options): Query<ViewOptions>,
) -> Result<Response, ApiError> {
    let (id, html) = match (file.strip_suffix(".html"), file.strip_suffix(".txt")) {
        (Some(id), _) => (id, true),
        (_, Some(id)) => (id, false),
        _ => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("/view/{file}: ask for /view/ID.html or /view/ID.txt"),
            ));
        }
    };
    let message = find(&state, id)?;
    let details = message.details();
    let nosniff = (header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if !html {
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), nosniff],
            details.text,
        )
            .into_response());
    }
    if details.html.is_empty() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("message {id} has no HTML part"),
        ));
    }
    // Inline images (`cid:` references) point at the message's own parts.
    let mut page = without_hints(&details.html);
    for part in details.inline.iter().chain(&details.attachments) {
        if !part.content_id.is_empty() {
            let url = format!("/api/v1/message/{}/part/{}", message.id, part.part_id);
            page = page.replace(&format!("cid:{}", part.content_id), &url);
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                match options.remote.as_deref() {
                    Some("1" | "true") => SANDBOX_REMOTE_IMAGES,
                    _ => SANDBOX,
                },
            ),
            (header::REFERRER_POLICY, "no-referrer"),
            nosniff,
        ],
        page,
    )
        .into_response())
}

/// Thumbnails are this size, as in Mailpit.
const THUMB: (u32, u32) = (180, 120);

/// `GET /api/v1/message/{ID}/part/{PartID}/thumb`: a 180×120 JPEG of an image attachment,
/// cropped to fill (or padded on white when smaller); blank white for anything that is
/// not an image switchboard can read (PNG, JPEG, GIF).
pub(super) async fn thumbnail(
    State(state): State<AppState>,
    Path((id, part_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let message = find(&state, &id)?;
    let Some(part) = message.part(&part_id) else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("message {id} has no part {part_id}"),
        ));
    };
    // Decoding is CPU work of unknown size: off the async workers.
    let jpeg = tokio::task::spawn_blocking(move || thumbnail_of(&part.bytes))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        jpeg,
    )
        .into_response())
}

/// The JPEG thumbnail of `bytes`; a blank one if they are not a readable image.
fn thumbnail_of(bytes: &[u8]) -> Vec<u8> {
    let (width, height) = THUMB;
    let mut canvas = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let decoded = image::guess_format(bytes)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif))
        .and_then(|format| image::load_from_memory_with_format(bytes, format).ok());
    if let Some(image) = decoded {
        let fitted = if image.width() >= width && image.height() >= height {
            image.resize_to_fill(width, height, FilterType::Triangle)
        } else {
            image // smaller than a thumbnail: padded, not enlarged
        };
        let fitted = DynamicImage::ImageRgba8(fitted.to_rgba8());
        let x = (i64::from(width) - i64::from(fitted.width())) / 2;
        let y = (i64::from(height) - i64::from(fitted.height())) / 2;
        let mut layer = DynamicImage::ImageRgb8(canvas);
        image::imageops::overlay(&mut layer, &fitted, x, y);
        canvas = layer.to_rgb8();
    }
    let mut jpeg = Cursor::new(Vec::new());
    // Writing an RGB image to memory cannot fail.
    let _ = DynamicImage::ImageRgb8(canvas).write_to(&mut jpeg, ImageFormat::Jpeg);
    jpeg.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_and_refreshes_are_made_inert_and_the_rest_kept() {
        let html = "<head><LINK rel=prefetch href=http://x/a><link\trel=stylesheet href=b>\
                    <meta http-equiv=refresh content=\"0;url=http://x/\"><Meta/>\
                    </head><body><p>kept <img src=cid:a> <linked> <metadata></p><link";
        assert_eq!(
            without_hints(html),
            "<head><x-LINK rel=prefetch href=http://x/a><x-link\trel=stylesheet href=b>\
             <x-meta http-equiv=refresh content=\"0;url=http://x/\"><x-Meta/>\
             </head><body><p>kept <img src=cid:a> <linked> <metadata></p><x-link"
        );
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_pixel(width, height, Rgb([200, 10, 10]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image)
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    fn decoded(jpeg: &[u8]) -> RgbImage {
        image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8()
    }

    #[test]
    fn large_images_are_cropped_to_fill_small_ones_padded_others_blank() {
        let large = decoded(&thumbnail_of(&png(900, 300)));
        assert_eq!(large.dimensions(), THUMB);
        assert!(large.get_pixel(0, 0)[0] > 150 && large.get_pixel(0, 0)[1] < 80);

        let small = decoded(&thumbnail_of(&png(20, 20)));
        assert_eq!(small.dimensions(), THUMB);
        let corner = small.get_pixel(0, 0);
        let middle = small.get_pixel(90, 60);
        assert!(corner[1] > 200, "padded with white: {corner:?}");
        assert!(middle[1] < 80, "the image in the middle: {middle:?}");

        let blank = decoded(&thumbnail_of(b"not an image"));
        assert_eq!(blank.dimensions(), THUMB);
        assert!(blank.get_pixel(90, 60)[0] > 200);
    }
}
