//! `POST /api/v1/send`: Mailpit's send API. A message built from JSON goes through the same
//! store, events and mail directory as one received on the SMTP port.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use base64::Engine as _;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address as MimeAddress;
use mail_builder::headers::text::Text;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_mail::{Arrival, Envelope};

use crate::errors::{ApiError, bad_request};
use crate::state::AppState;
use switchboard_web::Connection;

/// Mailpit's `SendRequest`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    #[serde(rename = "From")]
    from: Option<Contact>,
    #[serde(rename = "To", default)]
    to: Vec<Contact>,
    #[serde(rename = "Cc", default)]
    cc: Vec<Contact>,
    /// Addresses only: they are envelope recipients, never written into the message.
    #[serde(rename = "Bcc", default)]
    bcc: Vec<String>,
    #[serde(rename = "ReplyTo", default)]
    reply_to: Vec<Contact>,
    #[serde(rename = "Subject", default)]
    subject: String,
    #[serde(rename = "Text", default)]
    text: String,
    #[serde(rename = "HTML", default)]
    html: String,
    #[serde(rename = "Attachments", default)]
    attachments: Vec<Attachment>,
    #[serde(rename = "Headers", default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(rename = "Tags", default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Contact {
    #[serde(rename = "Email")]
    email: String,
    #[serde(rename = "Name", default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Attachment {
    /// Base64.
    #[serde(rename = "Content")]
    content: String,
    #[serde(rename = "Filename")]
    filename: String,
    #[serde(rename = "ContentType", default)]
    content_type: String,
    /// Set: the attachment is inline, for `cid:` references in the HTML.
    #[serde(rename = "ContentID", default)]
    content_id: String,
}

fn mime_addresses(contacts: &[Contact]) -> MimeAddress<'_> {
    MimeAddress::new_list(
        contacts
            .iter()
            .map(|c| MimeAddress::new_address((!c.name.is_empty()).then_some(&*c.name), &*c.email))
            .collect(),
    )
}

/// A plausible address: something, an `@`, something; no spaces or angle brackets.
fn check_address(address: &str, field: &str) -> Result<(), ApiError> {
    let plausible = address
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !address.contains(|c: char| c.is_whitespace() || "<>,".contains(c));
    match plausible {
        true => Ok(()),
        false => Err(bad_request(format!(
            "{field}: {address:?} is not an email address"
        ))),
    }
}

/// An attachment's fields become MIME part headers, which mail-builder writes as they are:
/// a line break in one would start a header of the client's own (or move the part's
/// `Content-Transfer-Encoding` into its body). So `ContentType` must be a media type,
/// `ContentID` printable ASCII without spaces or angle brackets, and `Filename` free of
/// controls.
fn check_attachment(attachment: &Attachment) -> Result<(), ApiError> {
    let refuse = |field: &str, value: &str, why: &str| {
        Err(bad_request(format!("Attachments: {field} {value:?} {why}")))
    };
    let content_type = &attachment.content_type;
    if !content_type.is_empty() && content_type.parse::<mime::Mime>().is_err() {
        return refuse(
            "ContentType",
            content_type,
            "is not a media type such as image/png or text/plain; charset=utf-8",
        );
    }
    let cid = &attachment.content_id;
    if !cid
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
    {
        return refuse(
            "ContentID",
            cid,
            "must be printable ASCII without spaces or angle brackets",
        );
    }
    if let Some(c) = attachment
        .filename
        .chars()
        .find(|c| switchboard_files::is_hostile(*c))
    {
        return refuse(
            "Filename",
            &attachment.filename,
            &format!("holds {c:?}: no control or line-separating characters"),
        );
    }
    Ok(())
}

/// Build the message's bytes; the envelope recipients are To, Cc and Bcc.
fn build(request: &SendRequest) -> Result<(Vec<u8>, String, Vec<String>), ApiError> {
    let Some(from) = &request.from else {
        return Err(bad_request("From is required"));
    };
    check_address(&from.email, "From")?;
    let recipients: Vec<String> = request
        .to
        .iter()
        .chain(&request.cc)
        .map(|c| c.email.clone())
        .chain(request.bcc.iter().cloned())
        .collect();
    if recipients.is_empty() {
        return Err(bad_request(
            "at least one recipient is required (To, Cc or Bcc)",
        ));
    }
    for (field, address) in request
        .to
        .iter()
        .map(|c| ("To", &c.email))
        .chain(request.cc.iter().map(|c| ("Cc", &c.email)))
        .chain(request.reply_to.iter().map(|c| ("ReplyTo", &c.email)))
        .chain(request.bcc.iter().map(|a| ("Bcc", a)))
    {
        check_address(address, field)?;
    }

    let mut message = MessageBuilder::new()
        .from(MimeAddress::new_address(
            (!from.name.is_empty()).then_some(&*from.name),
            &*from.email,
        ))
        .subject(&*request.subject);
    if !request.to.is_empty() {
        message = message.to(mime_addresses(&request.to));
    }
    if !request.cc.is_empty() {
        message = message.cc(mime_addresses(&request.cc));
    }
    if !request.reply_to.is_empty() {
        message = message.reply_to(mime_addresses(&request.reply_to));
    }
    for (name, value) in &request.headers {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(bad_request(format!(
                "Headers: {name:?} is not a header name"
            )));
        }
        message = message.header(name.as_str(), Text::new(value.as_str()));
    }
    // Tags travel in the message, so they are there after a restart too.
    if !request.tags.is_empty() {
        message = message.header("X-Tags", Text::new(request.tags.join(", ")));
    }
    if !request.text.is_empty() || request.html.is_empty() {
        message = message.text_body(&*request.text);
    }
    if !request.html.is_empty() {
        message = message.html_body(&*request.html);
    }
    for attachment in &request.attachments {
        check_attachment(attachment)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(attachment.content.trim())
            .map_err(|e| {
                bad_request(format!(
                    "Attachments: the Content of {:?} is not base64: {e}",
                    attachment.filename
                ))
            })?;
        let content_type = match attachment.content_type.as_str() {
            "" => "application/octet-stream",
            given => given,
        };
        message = match attachment.content_id.as_str() {
            "" => message.attachment(content_type, &*attachment.filename, bytes),
            cid => message.inline(content_type, cid, bytes),
        };
    }
    let raw = message
        .write_to_vec()
        .map_err(|e| bad_request(format!("cannot build the message: {e}")))?;
    Ok((raw, from.email.clone(), recipients))
}

/// The message a send request's body asks for: its bytes, sender and recipients.
pub(crate) fn message_of(body: &[u8]) -> Result<(Vec<u8>, String, Vec<String>), ApiError> {
    let request: SendRequest = serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("the body is not a send request: {e}")))?;
    build(&request)
}

/// `POST /api/v1/send`: `{"ID": "…"}` of the stored message.
pub(crate) async fn send(
    State(state): State<AppState>,
    Extension(conn): Extension<Arc<Connection>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (raw, mail_from, rcpt_to) = message_of(&body)?;
    let info = &conn.info;
    let envelope = Envelope {
        mail_from,
        rcpt_to,
        helo: "switchboard send API".to_owned(),
        peer: info.peer,
        tls: info.tls.is_some(),
        auth_user: None,
        arrival: Arrival {
            local: Some(info.local),
            service: info.service.to_owned(),
            tls: info.tls.as_ref().map(|tls| format!("{tls} (HTTPS)")),
        },
    };
    // The store tells the bus it captured the message.
    let message = state
        .mail
        .insert(envelope, raw.into(), info)
        .await
        .map_err(|e| ApiError(axum::http::StatusCode::INSUFFICIENT_STORAGE, e.to_string()))?;
    Ok(Json(json!({ "ID": message.id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Value) -> SendRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_full_request_becomes_a_message_with_its_envelope() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG fake");
        let (raw, from, rcpt) = build(&request(json!({
            "From": {"Email": "app@example.test", "Name": "The App"},
            "To": [{"Email": "alice@example.test", "Name": "Alice"}],
            "Cc": [{"Email": "carol@example.test"}],
            "Bcc": ["hidden@example.test"],
            "ReplyTo": [{"Email": "help@example.test"}],
            "Subject": "Welcome",
            "Text": "Hello, Alice",
            "HTML": "<p>Hello, <img src=\"cid:logo\"></p>",
            "Attachments": [
                {"Content": png, "Filename": "logo.png", "ContentType": "image/png", "ContentID": "logo"},
                {"Content": "aGk=", "Filename": "hi.txt"}
            ],
            "Headers": {"X-Campaign": "spring"},
            "Tags": ["welcome", "api"]
        })))
        .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert_eq!(from, "app@example.test");
        assert_eq!(
            rcpt,
            [
                "alice@example.test",
                "carol@example.test",
                "hidden@example.test"
            ]
        );
        for needle in [
            "Subject: Welcome",
            "X-Campaign: spring",
            "X-Tags: welcome, api",
            "Content-ID: <logo>",
            "hi.txt",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
        assert!(
            !text.contains("hidden@example.test"),
            "Bcc is envelope only"
        );
    }

    #[test]
    fn line_breaks_in_names_subjects_and_headers_cannot_add_headers() {
        let (raw, _, _) = build(&request(json!({
            "From": {"Email": "a@x.test", "Name": "A\r\nX-Evil: 1"},
            "To": [{"Email": "b@x.test"}],
            "Subject": "hi\r\nX-Injected: yes",
            "Headers": {"X-Custom": "v\r\nX-Also: 1"}
        })))
        .unwrap();
        let text = String::from_utf8_lossy(&raw);
        for injected in ["\nX-Evil:", "\nX-Injected:", "\nX-Also:"] {
            assert!(
                !text.contains(injected),
                "{injected:?} became a header in\n{text}"
            );
        }
    }

    #[test]
    fn mistakes_are_named() {
        let error = |json: Value| build(&request(json)).err().unwrap().1;
        assert_eq!(
            error(json!({"To": [{"Email": "a@x.test"}]})),
            "From is required"
        );
        assert!(error(json!({"From": {"Email": "a@x.test"}})).contains("at least one recipient"));
        assert!(
            error(json!({"From": {"Email": "nobody"}, "To": [{"Email": "a@x.test"}]}))
                .contains("not an email address")
        );
        assert!(
            error(
                json!({"From": {"Email": "a@x.test"}, "To": [{"Email": "b@x.test"}],
                "Attachments": [{"Content": "***", "Filename": "f"}]})
            )
            .contains("not base64")
        );
        assert!(serde_json::from_value::<SendRequest>(json!({"Form": {}})).is_err());
    }
}
