//! The HTTP app's parsers of outside input, reached without a server: what the fuzz
//! targets in `fuzz/` call (through `crates/fuzzing`). Nothing else should use these.

use serde_json::Value;

/// The `[[port]]` rows a body of Toxiproxy's `POST /proxies` (one proxy) or `/populate`
/// (a list) becomes before they go to the control API; or the refusal's text.
pub fn toxiproxy_rows(body: &[u8]) -> Result<Vec<Value>, String> {
    crate::routes::toxiproxy_rows(body)
}
