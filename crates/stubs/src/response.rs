//! What a stub answers: WireMock's `response` object, checked when the stub is added.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

/// A response definition.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseDef {
    pub status: u16,
    /// A reason phrase other than the standard one (HTTP/1.1 only).
    pub status_message: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: BodySource,
    /// `fixedDelayMilliseconds`.
    pub fixed_delay: Duration,
    pub distribution: Option<Distribution>,
    /// `chunkedDribbleDelay`: the body in this many pieces, spread over this long.
    pub dribble: Option<(u32, Duration)>,
    pub fault: Option<Fault>,
}

/// Where the body comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum BodySource {
    Bytes(Vec<u8>),
    /// `bodyFileName`: a file of the stubs directory's `__files/`, read when served.
    File(String),
}

/// `delayDistribution`: a random delay per response.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Between `lower` and `upper` milliseconds, evenly.
    Uniform { lower: u64, upper: u64 },
    /// A long tail around `median` milliseconds; `sigma` widens it.
    LogNormal { median: f64, sigma: f64 },
}

/// What goes wrong instead of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The connection is reset (`ECONNRESET`).
    ConnectionResetByPeer,
    /// The connection closes without a byte of response.
    EmptyResponse,
    /// A `200` whose chunked body breaks off in the middle of a chunk.
    MalformedResponseChunk,
    /// Random bytes instead of a response, then the connection closes.
    RandomDataThenClose,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::ConnectionResetByPeer => "CONNECTION_RESET_BY_PEER",
            Fault::EmptyResponse => "EMPTY_RESPONSE",
            Fault::MalformedResponseChunk => "MALFORMED_RESPONSE_CHUNK",
            Fault::RandomDataThenClose => "RANDOM_DATA_THEN_CLOSE",
        }
    }
}

impl ResponseDef {
    /// Check a `response` object; the error names the field.
    pub(crate) fn parse(value: &Value) -> Result<Self, String> {
        let empty = serde_json::Map::new();
        let object = match value {
            Value::Object(object) => object,
            Value::Null => &empty,
            other => return Err(format!("response must be an object, not {other}")),
        };
        let status = match object.get("status") {
            None | Some(Value::Null) => 200,
            Some(status) => status
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (100..=999).contains(s))
                .ok_or_else(|| format!("response.status {status} is not an HTTP status"))?,
        };
        let mut headers = Vec::new();
        if let Some(map) = object.get("headers").and_then(Value::as_object) {
            for (name, value) in map {
                match value {
                    Value::Array(values) => {
                        for v in values {
                            headers.push((name.clone(), text_of(v)));
                        }
                    }
                    other => headers.push((name.clone(), text_of(other))),
                }
            }
        }
        let body = if let Some(json) = object.get("jsonBody") {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("Content-Type".into(), "application/json".into()));
            }
            BodySource::Bytes(json.to_string().into_bytes())
        } else if let Some(encoded) = object.get("base64Body").and_then(Value::as_str) {
            BodySource::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| format!("response.base64Body is not base64: {e}"))?,
            )
        } else if let Some(name) = object.get("bodyFileName").and_then(Value::as_str) {
            crate::files::check_body_file(name)?;
            BodySource::File(name.to_owned())
        } else {
            BodySource::Bytes(
                object
                    .get("body")
                    .map(text_of)
                    .unwrap_or_default()
                    .into_bytes(),
            )
        };
        let millis = |v: &Value, what: &str| {
            v.as_u64()
                .ok_or_else(|| format!("response.{what} is a number of milliseconds"))
        };
        let fixed_delay = match object.get("fixedDelayMilliseconds") {
            None | Some(Value::Null) => Duration::ZERO,
            Some(v) => Duration::from_millis(millis(v, "fixedDelayMilliseconds")?),
        };
        let distribution = match object.get("delayDistribution") {
            None | Some(Value::Null) => None,
            Some(d) => Some(parse_distribution(d)?),
        };
        let dribble = match object.get("chunkedDribbleDelay") {
            None | Some(Value::Null) => None,
            Some(d) => {
                let chunks = d
                    .get("numberOfChunks")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or("response.chunkedDribbleDelay needs numberOfChunks above 0")?;
                let total = d
                    .get("totalDuration")
                    .ok_or("response.chunkedDribbleDelay needs totalDuration (ms)")?;
                Some((
                    chunks,
                    Duration::from_millis(millis(total, "totalDuration")?),
                ))
            }
        };
        let fault = match object.get("fault").and_then(Value::as_str) {
            None => None,
            Some("CONNECTION_RESET_BY_PEER") => Some(Fault::ConnectionResetByPeer),
            Some("EMPTY_RESPONSE") => Some(Fault::EmptyResponse),
            Some("MALFORMED_RESPONSE_CHUNK") => Some(Fault::MalformedResponseChunk),
            Some("RANDOM_DATA_THEN_CLOSE") => Some(Fault::RandomDataThenClose),
            Some(other) => {
                return Err(format!(
                    "response.fault \"{other}\" is not one of CONNECTION_RESET_BY_PEER, \
                     EMPTY_RESPONSE, MALFORMED_RESPONSE_CHUNK, RANDOM_DATA_THEN_CLOSE"
                ));
            }
        };
        Ok(Self {
            status,
            status_message: object
                .get("statusMessage")
                .and_then(Value::as_str)
                .map(str::to_owned),
            headers,
            body,
            fixed_delay,
            distribution,
            dribble,
            fault,
        })
    }

    /// How long to wait before answering: the fixed delay plus one draw of the
    /// distribution.
    pub fn delay(&self) -> Duration {
        let drawn = match self.distribution {
            None => 0.0,
            Some(Distribution::Uniform { lower, upper }) => {
                (lower + fastrand::u64(0..=upper.saturating_sub(lower))) as f64
            }
            Some(Distribution::LogNormal { median, sigma }) => {
                // A standard normal draw (Box–Muller), then e^(σ·z) around the median.
                let (u1, u2) = (1.0 - fastrand::f64(), fastrand::f64());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                median * (sigma * z).exp()
            }
        };
        // A draw too big for a Duration (a huge median, or sigma) waits "forever", which
        // the caller's cap (`[http] max_delay`) then cuts short.
        let drawn = Duration::try_from_secs_f64(drawn.max(0.0) / 1000.0).unwrap_or(Duration::MAX);
        self.fixed_delay.saturating_add(drawn)
    }
}

fn parse_distribution(value: &Value) -> Result<Distribution, String> {
    let number = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_f64)
            .filter(|n| *n >= 0.0)
            .ok_or_else(|| format!("response.delayDistribution needs {key} (a number, ms)"))
    };
    match value.get("type").and_then(Value::as_str) {
        Some("uniform") => {
            let (lower, upper) = (number("lower")? as u64, number("upper")? as u64);
            if lower > upper {
                return Err("response.delayDistribution: lower is above upper".into());
            }
            Ok(Distribution::Uniform { lower, upper })
        }
        Some("lognormal") => Ok(Distribution::LogNormal {
            median: number("median")?,
            sigma: number("sigma")?,
        }),
        _ => Err("response.delayDistribution.type is uniform or lognormal".into()),
    }
}

/// A value as header or body text: strings as they are, anything else as JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_and_headers() {
        let r = ResponseDef::parse(&json!({"status": 201, "jsonBody": {"id": 7},
                                           "headers": {"X-A": ["1", "2"], "X-B": 3}}))
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, BodySource::Bytes(br#"{"id":7}"#.to_vec()));
        assert!(
            r.headers
                .contains(&("Content-Type".into(), "application/json".into()))
        );
        assert!(r.headers.contains(&("X-A".into(), "2".into())));
        assert!(r.headers.contains(&("X-B".into(), "3".into())));
        let r = ResponseDef::parse(&json!({"base64Body": "aGk="})).unwrap();
        assert_eq!((r.status, r.body), (200, BodySource::Bytes(b"hi".to_vec())));
        let r = ResponseDef::parse(&json!({"bodyFileName": "users/42.json"})).unwrap();
        assert_eq!(r.body, BodySource::File("users/42.json".into()));
    }

    #[test]
    fn delays_stay_in_their_bounds() {
        let r = ResponseDef::parse(&json!({"fixedDelayMilliseconds": 100,
            "delayDistribution": {"type": "uniform", "lower": 10, "upper": 20}}))
        .unwrap();
        for _ in 0..100 {
            let d = r.delay().as_millis();
            assert!((110..=120).contains(&d), "{d}");
        }
        let r = ResponseDef::parse(
            &json!({"delayDistribution": {"type": "lognormal", "median": 50, "sigma": 0.1}}),
        )
        .unwrap();
        assert!(r.delay() > Duration::ZERO);
    }

    #[test]
    fn mistakes_are_named() {
        for (response, words) in [
            (json!({"status": 42}), "not an HTTP status"),
            (json!({"fault": "MELTDOWN"}), "MELTDOWN"),
            (json!({"bodyFileName": "../secret"}), "below __files/"),
            (json!({"bodyFileName": "/etc/passwd"}), "below __files/"),
            (json!({"base64Body": "%%%"}), "not base64"),
            (
                json!({"delayDistribution": {"type": "poisson"}}),
                "uniform or lognormal",
            ),
            (
                json!({"chunkedDribbleDelay": {"numberOfChunks": 0, "totalDuration": 5}}),
                "numberOfChunks",
            ),
        ] {
            let err = ResponseDef::parse(&response).unwrap_err();
            assert!(err.contains(words), "{err}");
        }
    }
}
