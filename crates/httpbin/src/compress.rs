//! `/gzip`, `/deflate`, `/brotli` and `/zstd`: the request's headers, method and address
//! as JSON, compressed with that coding and labelled with `Content-Encoding`, whatever the
//! client's `Accept-Encoding` says (as httpbin does), so that a client's decompression can be
//! tested. The JSON names its coding: `"gzipped": true`, `"deflated": true`, `"brotli": true`
//! or `"zstd": true`.

use std::io::Write;

use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::echo::Echo;

/// A content coding of RFC 9110 and the JSON key that names it in the answer.
#[derive(Clone, Copy)]
enum Coding {
    Gzip,
    /// "deflate" in HTTP is the zlib format (RFC 1950), not raw DEFLATE.
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// The key httpbin's answer sets to `true`.
    fn key(self) -> &'static str {
        match self {
            Coding::Gzip => "gzipped",
            Coding::Deflate => "deflated",
            Coding::Brotli => "brotli",
            Coding::Zstd => "zstd",
        }
    }

    /// `plain` in this coding. The bodies are small JSON, so each codec runs at a fast level.
    fn encode(self, plain: &[u8]) -> std::io::Result<Vec<u8>> {
        use flate2::Compression;
        match self {
            Coding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
                encoder.write_all(plain)?;
                encoder.finish()
            }
            Coding::Deflate => {
                let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), Compression::fast());
                encoder.write_all(plain)?;
                encoder.finish()
            }
            Coding::Brotli => {
                // Quality 4 (of 11) with a 4 MiB window (lgwin 22): brotli's own middle ground.
                let mut encoder = brotli::CompressorWriter::new(Vec::new(), 4096, 4, 22);
                encoder.write_all(plain)?;
                encoder.flush()?;
                Ok(encoder.into_inner())
            }
            Coding::Zstd => Ok(ruzstd::encoding::compress_to_vec(
                plain,
                ruzstd::encoding::CompressionLevel::Fastest,
            )),
        }
    }
}

pub(crate) async fn gzip(method: Method, echo: Echo) -> Response {
    answer(Coding::Gzip, method, echo)
}

pub(crate) async fn deflate(method: Method, echo: Echo) -> Response {
    answer(Coding::Deflate, method, echo)
}

pub(crate) async fn brotli(method: Method, echo: Echo) -> Response {
    answer(Coding::Brotli, method, echo)
}

pub(crate) async fn zstd(method: Method, echo: Echo) -> Response {
    answer(Coding::Zstd, method, echo)
}

fn answer(coding: Coding, method: Method, echo: Echo) -> Response {
    let mut body = json!({
        "headers": echo.headers,
        "method": method.as_str(),
        "origin": echo.origin,
    });
    body[coding.key()] = true.into();
    let plain = body.to_string();
    match coding.encode(plain.as_bytes()) {
        Ok(encoded) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    header::CONTENT_ENCODING,
                    HeaderValue::from_static(coding.token()),
                ),
            ],
            encoded,
        )
            .into_response(),
        // Writing to memory does not fail; if a codec ever does, say so rather than lie.
        Err(error) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("{} encoding failed: {error}\n", coding.token()),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn round_trip(coding: Coding, plain: &[u8]) -> Vec<u8> {
        let encoded = coding.encode(plain).unwrap();
        let mut decoded = Vec::new();
        match coding {
            Coding::Gzip => flate2::read::GzDecoder::new(&encoded[..])
                .read_to_end(&mut decoded)
                .map(drop),
            Coding::Deflate => flate2::read::ZlibDecoder::new(&encoded[..])
                .read_to_end(&mut decoded)
                .map(drop),
            Coding::Brotli => brotli::Decompressor::new(&encoded[..], 4096)
                .read_to_end(&mut decoded)
                .map(drop),
            Coding::Zstd => ruzstd::decoding::StreamingDecoder::new(&encoded[..])
                .unwrap()
                .read_to_end(&mut decoded)
                .map(drop),
        }
        .unwrap();
        decoded
    }

    #[test]
    fn every_coding_decodes_back_to_the_json() {
        let plain = br#"{"headers":{"Host":"localhost"},"method":"GET","origin":"127.0.0.1"}"#;
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            assert_eq!(round_trip(coding, plain), plain, "{}", coding.token());
        }
    }
}
