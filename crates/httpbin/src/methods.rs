//! The method endpoints (`/post`, `/put`, `/patch`, `/delete`, `/anything`): the request
//! comes back as JSON, its body taken apart the way httpbin takes it apart.

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::echo::{Echo, pairs_to_map};

/// A request body as httpbin reports it: `data` is the body as text, unless it was a form,
/// whose fields go to `form` (and, for multipart, its files to `files`); `json` is the body
/// parsed, or null. A body sent with a `Content-Encoding` (HTTPie's `--compress`) is not
/// decoded, so it is never read: a form's fields and files stay empty (and `data`, as for any
/// form), any other body is `data` as the bytes that came.
struct BodyReport {
    data: String,
    files: Map<String, Value>,
    form: Map<String, Value>,
    json: Value,
}

impl BodyReport {
    async fn of(headers: &HeaderMap, body: Bytes) -> Result<Self, multer::Error> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut report = BodyReport {
            data: String::new(),
            files: Map::new(),
            form: Map::new(),
            json: Value::Null,
        };
        let encoded = headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|coding| !coding.as_bytes().eq_ignore_ascii_case(b"identity"));
        let form = ["application/x-www-form-urlencoded", "multipart/form-data"]
            .iter()
            .any(|form| content_type.starts_with(form));
        if encoded {
            if !form {
                report.data = text_or_data_url(&body);
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            report.form = pairs_to_map(form_urlencoded::parse(&body));
        } else if content_type.starts_with("multipart/form-data") {
            let boundary = multer::parse_boundary(content_type)?;
            let stream = futures_util::stream::once(async move { Ok::<_, multer::Error>(body) });
            let mut multipart = multer::Multipart::new(stream, boundary);
            let (mut files, mut fields) = (Vec::<(String, String)>::new(), Vec::new());
            while let Some(field) = multipart.next_field().await? {
                let name = field.name().unwrap_or_default().to_owned();
                let is_file = field.file_name().is_some();
                let value = text_or_data_url(&field.bytes().await?);
                match is_file {
                    true => files.push((name, value)),
                    false => fields.push((name, value)),
                }
            }
            report.files = pairs_to_map(files);
            report.form = pairs_to_map(fields);
        } else {
            report.json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            report.data = text_or_data_url(&body);
        }
        Ok(report)
    }
}

/// UTF-8 as it is; anything else as a base64 data URL, as httpbin shows binary bodies.
fn text_or_data_url(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => format!(
            "data:application/octet-stream;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    }
}

/// The answer of `/post`, `/put`, `/patch` and `/delete`; `/anything` adds the method.
pub(crate) async fn report(headers: HeaderMap, echo: Echo, body: Bytes) -> Result<Value, Response> {
    let body = BodyReport::of(&headers, body).await.map_err(|error| {
        (
            StatusCode::BAD_REQUEST,
            format!("the multipart body cannot be read: {error}\n"),
        )
            .into_response()
    })?;
    Ok(json!({
        "args": echo.args,
        "data": body.data,
        "files": body.files,
        "form": body.form,
        "headers": echo.headers,
        "json": body.json,
        "origin": echo.origin,
        "url": echo.url,
    }))
}

pub(crate) async fn body_echo(headers: HeaderMap, echo: Echo, body: Bytes) -> Response {
    match report(headers, echo, body).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(response) => response,
    }
}

/// `/anything`: any method, any body; everything about the request comes back.
pub(crate) async fn anything(
    method: Method,
    headers: HeaderMap,
    echo: Echo,
    body: Bytes,
) -> Response {
    match report(headers, echo, body).await {
        Ok(mut value) => {
            value["method"] = method.as_str().into();
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}
