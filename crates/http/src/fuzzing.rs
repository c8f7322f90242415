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
