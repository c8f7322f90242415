//! Documents of each common media type, for clients that fetch and parse: JSON, HTML, XML,
//! UTF-8 text, a robots.txt, a form, pages of links, a UUID and base64 decoding.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::reply::{bad_request, over_cap};
use crate::settings::AppState;

const HTML_UTF8: &str = "text/html; charset=utf-8";
const TEXT_UTF8: &str = "text/plain; charset=utf-8";

pub(crate) async fn json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../assets/sample.json"),
    )
        .into_response()
}

pub(crate) async fn html() -> Html<&'static str> {
    Html(include_str!("../assets/sample.html"))
}

pub(crate) async fn xml() -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml")],
        include_str!("../assets/sample.xml"),
    )
        .into_response()
}

pub(crate) async fn utf8() -> Response {
    (
        [(header::CONTENT_TYPE, HTML_UTF8)],
        include_str!("../assets/utf8.html"),
    )
        .into_response()
}

pub(crate) async fn forms_post() -> Html<&'static str> {
    Html(include_str!("../assets/forms.html"))
}

pub(crate) async fn robots_txt() -> Response {
    (
        [(header::CONTENT_TYPE, TEXT_UTF8)],
        "User-agent: *\nDisallow: /deny\n",
    )
        .into_response()
}

/// `/deny`: the page robots.txt tells crawlers to keep away from.
pub(crate) async fn deny() -> Response {
    (
        [(header::CONTENT_TYPE, TEXT_UTF8)],
        "robots.txt asks crawlers to stay out of /deny, and here you are.\n",
    )
        .into_response()
}

pub(crate) async fn uuid() -> Json<Value> {
    Json(json!({ "uuid": uuid::Uuid::new_v4().to_string() }))
}

/// Decode standard or URL-safe base64, with or without padding.
fn decode(value: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    let lenient =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, lenient);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient);
    standard.decode(value).or_else(|_| url_safe.decode(value))
}

/// `/base64/{value}` and `/base64/decode/{value}`: the value decoded, as plain text.
///
/// httpbin.org answers `text/html`; switchboard answers `text/plain`, because a decoded
/// value is chosen by whoever wrote the link, and as HTML it would run script on the same
/// origin as the mail and control routes.
pub(crate) async fn base64_decode(Path(value): Path<String>) -> Response {
    match decode(&value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, TEXT_UTF8)], bytes).into_response(),
        Err(error) => bad_request(format!("{value:?} is not base64: {error}\n")),
    }
}

/// `/base64/encode/{value}`: the value encoded (URL-safe alphabet, padded).
pub(crate) async fn base64_encode(Path(value): Path<String>) -> Response {
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(value);
    ([(header::CONTENT_TYPE, TEXT_UTF8)], encoded).into_response()
}

/// `/links/{n}`: to the first of n pages of links.
pub(crate) async fn links_start(Path(n): Path<u32>) -> Redirect {
    Redirect::to(&format!("/links/{n}/0"))
}

/// `/links/{n}/{offset}`: a page linking to the other n−1 pages, `offset` being this one.
pub(crate) async fn links(
    State(state): State<AppState>,
    Path((n, offset)): Path<(u32, u32)>,
) -> Response {
    if let Some(refusal) = over_cap(n, "links", state.max_links, "max_links") {
        return refusal;
    }
    let mut page = String::from("<html><head><title>Links</title></head><body>");
    for i in 0..n {
        match i == offset {
            true => page.push_str(&format!("{i} ")),
            false => page.push_str(&format!("<a href='/links/{n}/{i}'>{i}</a> ")),
        }
    }
    page.push_str("</body></html>");
    Html(page).into_response()
}
