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

/// The message's HTML without `<link>` and `<meta http-equiv>` elements: a stylesheet,
/// prefetch, preload, DNS prefetch or preconnect hint, or a refresh, fetches or navigates
/// by itself, and Chromium lets some hints through once remote images are allowed. (The
/// page is the sender's: nothing it says about itself is needed to read it.)
fn without_hints(html: &str) -> String {
    use lol_html::html_content::Element;
    use lol_html::{RewriteStrSettings, element, rewrite_str};
    let drop_it = |el: &mut Element| {
        el.remove();
        Ok(())
    };
    let settings = RewriteStrSettings::new()
        .append_element_content_handler(element!("link", drop_it))
        .append_element_content_handler(element!("meta[http-equiv]", drop_it));
    rewrite_str(html, settings).unwrap_or_else(|e| {
        format!("<p>switchboard could not make this HTML safe to show: {e}</p>")
    })
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
    fn hints_and_refreshes_are_dropped_and_the_rest_kept() {
        let html = "<head><link rel=prefetch href=http://x/a><link rel=stylesheet href=b>\
                    <meta http-equiv=refresh content=\"0;url=http://x/\"><meta charset=utf-8>\
                    </head><body><p>kept <img src=cid:a></p></body>";
        assert_eq!(
            without_hints(html),
            "<head><meta charset=utf-8></head><body><p>kept <img src=cid:a></p></body>"
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
