//! The mail web's parsers of outside input, reached without a server: what the fuzz targets
//! in `fuzz/` call (through `crates/fuzzing`). Nothing else should use these.

/// A message as `POST /api/v1/send` builds it from `body`: its bytes, the envelope's
/// sender and recipients; or the refusal's text.
pub fn send(body: &[u8]) -> Result<(Vec<u8>, String, Vec<String>), String> {
    crate::send::message_of(body).map_err(|e| e.1)
}

/// The thumbnail of an attachment's bytes, decoded within `max_bytes`: a JPEG.
pub fn thumbnail(bytes: &[u8], max_bytes: u64) -> Vec<u8> {
    crate::thumbnail::thumbnail_of(bytes, max_bytes)
}

/// The bytes of the picture the thumbnail route decodes from `bytes` within `max_bytes`
/// (none: it does not decode them).
pub fn decoded_bytes(bytes: &[u8], max_bytes: u64) -> Option<usize> {
    crate::thumbnail::decoded(bytes, max_bytes).map(|image| image.as_bytes().len())
}
