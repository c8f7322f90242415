//! The HTTP app's parsers of outside input, reached without a server: what the fuzz
//! targets in `fuzz/` call (through `crates/fuzzing`). Nothing else should use these.

use serde_json::Value;

/// A message as `POST /api/v1/send` builds it from `body`: its bytes, the envelope's
/// sender and recipients; or the refusal's text.
pub fn send(body: &[u8]) -> Result<(Vec<u8>, String, Vec<String>), String> {
    crate::routes::send_message(body)
}

/// The `[[port]]` rows a body of Toxiproxy's `POST /proxies` (one proxy) or `/populate`
/// (a list) becomes before they go to the control API; or the refusal's text.
pub fn toxiproxy_rows(body: &[u8]) -> Result<Vec<Value>, String> {
    crate::routes::toxiproxy_rows(body)
}

/// A duration a request gives (`/drip?delay=`, `/api/v1/wait?timeout=`, `close?for=`), read
/// against a maximum of ten seconds: the duration, or the refusal's text.
pub fn duration(text: &str) -> Result<std::time::Duration, String> {
    switchboard_web::params::duration("t", text, MAX_DURATION, "[fuzz] max")
}

/// The maximum [`duration`] reads against.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(10);

/// The thumbnail of an attachment's bytes, decoded within `max_bytes`: a JPEG.
pub fn thumbnail(bytes: &[u8], max_bytes: u64) -> Vec<u8> {
    crate::routes::thumbnail_of(bytes, max_bytes)
}

/// The bytes of the picture the thumbnail route decodes from `bytes` within `max_bytes`
/// (none: it does not decode them).
pub fn decoded_bytes(bytes: &[u8], max_bytes: u64) -> Option<usize> {
    crate::routes::decoded_image(bytes, max_bytes).map(|image| image.as_bytes().len())
}
