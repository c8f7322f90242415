//! A message as a browser or a test script sees it: `/view/{ID}.html`, `/view/{ID}.txt`.
//!
//! The HTML view is a stranger's HTML served from switchboard's own origin, so it is
//! sandboxed: `Content-Security-Policy: sandbox` gives it an origin of its own (it cannot
//! read switchboard's pages or call its API as switchboard) and runs no script; it may load
//! images only from switchboard itself (its own inline parts) or `data:` URLs, so a tracking
//! pixel or a stylesheet elsewhere learns nothing.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::errors::{ApiError, find};
use crate::state::AppState;

/// What the HTML view may do: nothing but show itself and its own images.
const SANDBOX: &str = "sandbox; default-src 'none'; img-src 'self' data:; \
                       style-src 'unsafe-inline'; font-src data:; form-action 'none'; \
                       frame-ancestors 'self'";

/// The same, with remote images allowed (`?remote=1`: the reader asked for them).
const SANDBOX_REMOTE_IMAGES: &str = "sandbox; default-src 'none'; img-src * data:; \
                       style-src 'unsafe-inline'; font-src data:; form-action 'none'; \
                       frame-ancestors 'self'";

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
pub(crate) struct ViewOptions {
    #[serde(default)]
    remote: Option<String>,
}

/// `GET /view/{ID}.html` and `GET /view/{ID}.txt` (`ID` may be `latest`): the message's HTML
/// or text part alone, for tests that look at what a user would see. `?remote=1` lets the
/// HTML load remote images (the mailbox's "load remote images").
pub(crate) async fn view(
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
}
