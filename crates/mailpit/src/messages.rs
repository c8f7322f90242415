//! Mailpit's v1 API over the mail store: messages, search, tags, parts, info, and (beyond
//! Mailpit) `/api/v1/wait`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use switchboard_core::timestamp;
use switchboard_mail::{Query as Search, StoredMessage};

use crate::errors::{ApiError, bad_request, find, find_part, ok};
use crate::shapes::{Common, EnvelopeJson, Message, MessageSummary, MessagesSummary};
use crate::state::AppState;

/// How many messages a list returns when the client does not say.
const DEFAULT_LIMIT: usize = 50;
/// How long `/api/v1/wait` waits when the client does not say.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// `start` and `limit` of a listing, as Mailpit reads them (defaults 0 and 50).
#[derive(Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    start: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    DEFAULT_LIMIT
}

/// A bad `start` or `limit` is answered in the mail API's own error shape.
fn paging(query: Result<Query<Paging>, QueryRejection>) -> Result<Paging, ApiError> {
    query
        .map(|Query(paging)| paging)
        .map_err(|rejection| bad_request(rejection.body_text()))
}

/// A page of a listing: `page` (already cut to it) out of `matching` messages.
fn summary_page(
    state: &AppState,
    page: &[Arc<StoredMessage>],
    matching: usize,
    start: usize,
) -> MessagesSummary {
    let stats = state.mail.stats();
    let messages: Vec<MessageSummary> = page
        .iter()
        .map(|m| MessageSummary::from(m.as_ref()))
        .collect();
    MessagesSummary {
        total: stats.messages,
        unread: stats.unread,
        count: messages.len(),
        messages_count: matching,
        start,
        tags: tag_names(state),
        messages,
    }
}

fn tag_names(state: &AppState) -> Vec<String> {
    let tags = state.mail.tags();
    tags.into_iter().map(|(tag, _)| tag).collect()
}

/// `GET /api/v1/messages?start=&limit=`: newest first.
pub(crate) async fn list_messages(
    State(state): State<AppState>,
    page: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<MessagesSummary>, ApiError> {
    let Paging { start, limit } = paging(page)?;
    let (page, total) = state.mail.page(start, limit);
    Ok(Json(summary_page(&state, &page, total, start)))
}

fn search_query(params: &HashMap<String, String>) -> Result<Search, ApiError> {
    let Some(text) = params.get("query") else {
        return Err(bad_request("the query parameter is required"));
    };
    Search::parse(text).map_err(|e| bad_request(e.to_string()))
}

/// `GET /api/v1/search?query=`
pub(crate) async fn search(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    page: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<MessagesSummary>, ApiError> {
    let query = search_query(&params)?;
    let Paging { start, limit } = paging(page)?;
    let matching = state.mail.search(&query);
    let page: Vec<_> = matching.iter().skip(start).take(limit).cloned().collect();
    Ok(Json(summary_page(&state, &page, matching.len(), start)))
}

/// `DELETE /api/v1/search?query=`
pub(crate) async fn delete_search(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = search_query(&params)?;
    state.mail.delete_matching(&query).await;
    Ok(ok())
}

#[derive(Deserialize, Default)]
pub(crate) struct IdsBody {
    #[serde(rename = "IDs", default)]
    ids: Vec<String>,
    #[serde(rename = "Read", default)]
    read: bool,
}

/// A JSON body, or the default for an empty one. A body that is not JSON is an error (a
/// form-encoded `DELETE` must never read as "no IDs", which would delete everything).
fn json_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("the body is not the JSON this route takes: {e}")))
}

/// `DELETE /api/v1/messages` with `{"IDs": […]}`; no IDs (or no body) deletes everything.
pub(crate) async fn delete_messages(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: IdsBody = json_body(&body)?;
    if body.ids.is_empty() {
        state.mail.delete_all().await;
    } else {
        state.mail.delete(&body.ids).await;
    }
    Ok(ok())
}

/// `PUT /api/v1/messages` with `{"IDs": […], "Read": true}`; no IDs means every message.
pub(crate) async fn set_read(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: IdsBody = json_body(&body)?;
    let ids = (!body.ids.is_empty()).then_some(body.ids.as_slice());
    state.mail.set_read(ids, body.read).await;
    Ok(ok())
}

/// `GET /api/v1/tags`: every tag in use, sorted.
pub(crate) async fn list_tags(State(state): State<AppState>) -> Json<Vec<String>> {
    Json(tag_names(&state))
}

#[derive(Deserialize, Default)]
pub(crate) struct TagsBody {
    #[serde(rename = "IDs", default)]
    ids: Vec<String>,
    #[serde(rename = "Tags", default)]
    tags: Option<Vec<String>>,
}

/// `PUT /api/v1/tags` with `{"Tags": […], "IDs": […]}`: these messages get exactly these
/// tags (an empty list removes them all).
pub(crate) async fn set_tags(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: TagsBody = json_body(&body)?;
    let Some(tags) = body.tags else {
        return Err(bad_request(
            "Tags is required (an empty list removes every tag)",
        ));
    };
    if body.ids.is_empty() {
        return Err(bad_request("IDs is required: the messages to tag"));
    }
    state.mail.set_tags(&body.ids, &tags).await;
    Ok(ok())
}

#[derive(Deserialize, Default)]
pub(crate) struct RenameBody {
    #[serde(rename = "Name", default)]
    name: String,
}

/// `PUT /api/v1/tags/{tag}` with `{"Name": "new"}`: rename a tag on every message.
pub(crate) async fn rename_tag(
    State(state): State<AppState>,
    Path(tag): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: RenameBody = json_body(&body)?;
    let name = body.name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(bad_request("Name is required: the tag's new name"));
    }
    state.mail.rename_tag(&tag, Some(&name)).await;
    Ok(ok())
}

/// `DELETE /api/v1/tags/{tag}`: remove a tag from every message (the messages stay).
pub(crate) async fn delete_tag(State(state): State<AppState>, Path(tag): Path<String>) -> Response {
    state.mail.rename_tag(&tag, None).await;
    ok()
}

/// `GET /api/v1/message/{ID}` (or `latest`): the whole message; marks it read.
pub(crate) async fn message(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let m = find(&state, &id)?;
    // As in Mailpit, reading a message through the API marks it read.
    state
        .mail
        .set_read(Some(std::slice::from_ref(&m.id)), true)
        .await;
    let details = m.details();
    Ok(Json(Message {
        common: Common::from(m.as_ref()),
        read: m.is_read(),
        return_path: m.summary().return_path.clone(),
        date: timestamp(m.summary().date.unwrap_or(m.received)),
        text: details.text,
        html: details.html,
        inline: details.inline,
        attachments: details.attachments,
        envelope: EnvelopeJson {
            mail_from: m.envelope.mail_from.clone(),
            rcpt_to: m.envelope.rcpt_to.clone(),
            helo: m.envelope.helo.clone(),
            peer: m.envelope.peer.to_string(),
            tls: m.envelope.tls,
            auth_user: m.envelope.auth_user.clone(),
            port: m.envelope.arrival.local.map(|a| a.port()),
            local: m.envelope.arrival.local.map(|a| a.to_string()),
            service: m.envelope.arrival.service.clone(),
            tls_session: m.envelope.arrival.tls.clone(),
        },
    }))
}

/// `GET /api/v1/message/{ID}/raw`: the bytes exactly as received.
pub(crate) async fn raw(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let m = find(&state, &id)?;
    Ok(([(header::CONTENT_TYPE, "text/plain")], m.raw.clone()).into_response())
}

/// `GET /api/v1/message/{ID}/headers`: `{"Name": ["value", …]}`, names in order.
pub(crate) async fn headers(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let m = find(&state, &id)?;
    Ok(Json(m.headers()).into_response())
}

/// `GET /api/v1/message/{ID}/part/{PartID}`: an attachment, with its own content type.
pub(crate) async fn part(
    State(state): State<AppState>,
    Path((id, part_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let part = find_part(&state, &id, &part_id)?;
    // What the message says its type is may hold bytes no header can (a control character):
    // the reader is told which part, rather than a bare 500.
    if HeaderValue::from_str(&part.content_type).is_err() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "part {part_id} of message {id} has a Content-Type that cannot be sent as an \
                 HTTP header (it holds a control character); the raw message \
                 (/api/v1/message/{id}/raw) has it as sent"
            ),
        ));
    }
    // Always an attachment, never shown in place: a part is a stranger's file on
    // switchboard's own origin. (An <img> in the sandboxed view still loads it.) Should a
    // browser show it anyway, it is sandboxed: no script, no requests.
    Ok((
        [
            (header::CONTENT_TYPE, part.content_type),
            (header::CONTENT_DISPOSITION, disposition(&part.file_name)),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'".to_owned(),
            ),
        ],
        part.bytes,
    )
        .into_response())
}

/// `GET /api/v1/message/{ID}/part/{PartID}/thumb`: a 180×120 JPEG of an image attachment,
/// cropped to fill (or fitted and padded on white when smaller in either side); blank white
/// for anything that is not an image switchboard can read (PNG, JPEG, GIF) within
/// `[http] max_image_bytes`.
pub(crate) async fn thumbnail(
    State(state): State<AppState>,
    Path((id, part_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let part = find_part(&state, &id, &part_id)?;
    let jpeg = state
        .thumbnails
        .of((id, part_id), part.bytes)
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

/// `Content-Disposition` for a part: always an attachment, under a safe name, in ASCII for
/// every client and in UTF-8 for those that read RFC 6266's `filename*`.
fn disposition(file_name: &str) -> String {
    if file_name.is_empty() {
        return "attachment".to_owned();
    }
    // The sender's name without folders, controls or reordering characters, or leading dots
    // (no hidden files, no `..`).
    let name = switchboard_files::cleaned_name(file_name, "attachment");
    let ascii: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let utf8 = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{utf8}")
}

/// `GET /api/v1/info`: Mailpit's `AppInformation`.
pub(crate) async fn info(State(state): State<AppState>) -> Json<serde_json::Value> {
    let stats = state.mail.stats();
    Json(json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "LatestVersion": "",
        "Database": stats.location,
        "DatabaseSize": stats.bytes,
        "Messages": stats.messages,
        "Unread": stats.unread,
        "Tags": state.mail
            .tags()
            .into_iter()
            .map(|(tag, count)| (tag, json!(count)))
            .collect::<serde_json::Map<_, _>>(),
        "RuntimeStats": {
            "Uptime": stats.uptime.as_secs(),
            "Memory": resident_memory(),
            "MessagesDeleted": stats.deleted,
            "SMTPAccepted": stats.accepted,
            "SMTPAcceptedSize": stats.accepted_bytes,
            "SMTPRejected": stats.rejected,
            "SMTPIgnored": 0,
        },
    }))
}

/// `GET /api/v1/webui`: Mailpit's web UI settings; switchboard relays nothing and runs no
/// spam checks, and its chaos triggers are always available.
pub(crate) async fn webui() -> Json<serde_json::Value> {
    Json(json!({
        "Label": "switchboard",
        "MessageRelay": {
            "Enabled": false,
            "SMTPServer": "",
            "ReturnPath": "",
            "AllowedRecipients": "",
            "BlockedRecipients": "",
            "OverrideFrom": "",
        },
        "SpamAssassin": false,
        "ChaosEnabled": true,
        "DuplicatesIgnored": false,
    }))
}

/// This process's resident memory in bytes, where `/proc` says; 0 elsewhere.
fn resident_memory() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `GET /api/v1/wait?query=&timeout=`: the newest message matching the query, already
/// stored or the first to arrive within the timeout (`5`, `2.5`, `500ms`, `1m`; default 10s,
/// at most `max_wait`). 404 if none arrives in time. The request simply stays open until
/// then: no polling.
pub(crate) async fn wait(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<MessageSummary>, ApiError> {
    let query = match params.get("query") {
        Some(text) => Search::parse(text).map_err(|e| bad_request(e.to_string()))?,
        None => Search::default(),
    };
    let max = state.settings.max_wait;
    let timeout = match params.get("timeout") {
        None => DEFAULT_WAIT.min(max),
        Some(text) => switchboard_web::params::duration("timeout", text, max, "[http] max_wait")
            .map_err(|e| bad_request(e.to_string()))?,
    };
    match state.mail.wait_for(&query, timeout).await {
        Some(m) => Ok(Json(MessageSummary::from(m.as_ref()))),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "no message matching {:?} arrived within {}s",
                params.get("query").map(String::as_str).unwrap_or(""),
                timeout.as_secs_f64()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_keeps_a_safe_name() {
        assert_eq!(
            disposition("../../etc/pass\u{202E}wd"),
            "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
        );
        assert_eq!(
            disposition(".."),
            "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"
        );
        assert_eq!(
            disposition("r\u{e9}sum\u{e9} \"1\".pdf"),
            "attachment; filename=\"r_sum_ _1_.pdf\"; \
             filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22%2Epdf"
        );
        assert_eq!(disposition(""), "attachment");
    }

    #[test]
    fn timestamps_look_like_mailpit_s() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_795_687_200_123_456_789).unwrap();
        assert_eq!(timestamp(t), "2026-11-26T10:00:00.123Z");
    }
}
