//! Faults, in the model Toxiproxy users know: a *toxic* has a `name`, a `type`, a `stream`
//! (`upstream`: bytes from the client; `downstream`: bytes to the client), a `toxicity` (the
//! chance, 0 to 1, that it applies to a connection) and type-specific `attributes`.
//!
//! Two optional fields go beyond Toxiproxy, and clients that do not send them never see
//! them: `first` (apply to the next N connections only, then remove itself) and `duration`
//! (remove itself after that long): faults that happen exactly when a test says.
//!
//! This module is the model and its JSON/TOML shape; `engine.rs` applies toxics to a
//! connection's bytes, `port.rs` keeps a port's toxics and ends them on time.

use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// Which bytes a toxic acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// From the client to the service.
    Upstream,
    /// From the service to the client (the default, as in Toxiproxy).
    #[default]
    Downstream,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
}

/// What a toxic does. Serialized as Toxiproxy writes it: `"type"` and `"attributes"`, with
/// times in milliseconds (the slicer's delay in microseconds).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", content = "attributes", rename_all = "snake_case")]
pub enum Kind {
    /// Delay data by `latency`, give or take up to `jitter`.
    Latency {
        #[serde(serialize_with = "millis")]
        latency: Duration,
        #[serde(serialize_with = "millis")]
        jitter: Duration,
    },
    /// At most `rate` kilobytes (1000 bytes) per second.
    Bandwidth {
        #[serde(rename = "rate")]
        rate_kb: u64,
    },
    /// Keep the connection open `delay` longer when it is closed.
    SlowClose {
        #[serde(serialize_with = "millis")]
        delay: Duration,
    },
    /// Let no data through; close the connection after `timeout` (zero: stall until the
    /// toxic is removed).
    Timeout {
        #[serde(serialize_with = "millis")]
        timeout: Duration,
    },
    /// Reset the connection (the client sees ECONNRESET) after `timeout`.
    ResetPeer {
        #[serde(serialize_with = "millis")]
        timeout: Duration,
    },
    /// Cut data into pieces of about `average_size` bytes (± `size_variation`), `delay` apart.
    Slicer {
        average_size: usize,
        size_variation: usize,
        #[serde(serialize_with = "micros")]
        delay: Duration,
    },
    /// Close the connection after `bytes` bytes.
    LimitData { bytes: u64 },
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn optional_millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}

fn micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Kind {
    /// The toxic's type name, as in Toxiproxy.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Latency { .. } => "latency",
            Kind::Bandwidth { .. } => "bandwidth",
            Kind::SlowClose { .. } => "slow_close",
            Kind::Timeout { .. } => "timeout",
            Kind::ResetPeer { .. } => "reset_peer",
            Kind::Slicer { .. } => "slicer",
            Kind::LimitData { .. } => "limit_data",
        }
    }
}

/// The type names, for error messages.
pub const TYPES: &str = "latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data";

/// One toxic. Build one in Rust with the constructors (`Toxic::latency(…)`, …), or parse
/// Toxiproxy's JSON shape with [`Toxic::from_spec`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Toxic {
    pub name: String,
    pub stream: Stream,
    /// The chance, from 0 to 1, that the toxic applies to a given connection.
    pub toxicity: f64,
    #[serde(flatten)]
    pub kind: Kind,
    /// Apply to this many more connections only (each keeps it while it lasts), then remove
    /// itself; none: every connection, until removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<u32>,
    /// Remove itself this long after it was added; none: until removed.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_millis"
    )]
    pub duration: Option<Duration>,
}

/// A toxic as written in JSON or TOML, before it is checked.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToxicSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub stream: Option<Stream>,
    #[serde(default)]
    pub toxicity: Option<f64>,
    #[serde(default)]
    pub attributes: Option<Map<String, Value>>,
    #[serde(default)]
    pub first: Option<u32>,
    #[serde(default)]
    pub duration: Option<TimeSpec>,
}

/// A time as a toxic's `duration` takes it: milliseconds, like every time of a toxic, or
/// text with a unit (`"5s"`, `"1m 30s"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum TimeSpec {
    Millis(u64),
    Text(String),
}

/// The longest time a toxic may wait, hold, or last: a day. Longer is never a useful fault
/// (a toxic without `duration` lasts until it is removed, a `timeout` of 0 holds for ever),
/// and it keeps every deadline the engine computes far from the clock's end.
pub(crate) const MAX_TOXIC_TIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A toxic's time in milliseconds, at most [`MAX_TOXIC_TIME`].
fn toxic_millis(name: &str, ms: u64) -> Result<Duration, String> {
    let time = Duration::from_millis(ms);
    at_most_a_day(name, time, &format!("{ms} ms"))?;
    Ok(time)
}

fn at_most_a_day(name: &str, time: Duration, given: &str) -> Result<(), String> {
    match time <= MAX_TOXIC_TIME {
        true => Ok(()),
        false => Err(format!(
            "{name} {given} is more than a day ({} ms), the longest a toxic may take",
            MAX_TOXIC_TIME.as_millis()
        )),
    }
}

impl TimeSpec {
    fn to_duration(&self) -> Result<Duration, String> {
        match self {
            TimeSpec::Millis(ms) => Ok(Duration::from_millis(*ms)),
            TimeSpec::Text(text) => humantime::parse_duration(text).map_err(|e| {
                format!("duration \"{text}\": {e}; give milliseconds, or a unit as in \"5s\"")
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyAttributes {
    #[serde(default)]
    latency: u64,
    #[serde(default)]
    jitter: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateAttributes {
    rate: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelayAttributes {
    #[serde(default)]
    delay: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeoutAttributes {
    #[serde(default)]
    timeout: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlicerAttributes {
    #[serde(default = "default_slice")]
    average_size: usize,
    #[serde(default)]
    size_variation: usize,
    #[serde(default)]
    delay: u64,
}

fn default_slice() -> usize {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitAttributes {
    bytes: u64,
}

fn attributes<T: for<'de> Deserialize<'de>>(
    kind: &str,
    map: Map<String, Value>,
) -> Result<T, String> {
    serde_json::from_value(Value::Object(map))
        .map_err(|e| format!("attributes of a {kind} toxic: {e}"))
}

impl Toxic {
    fn new(kind: Kind) -> Self {
        Self {
            name: String::new(),
            stream: Stream::Downstream,
            toxicity: 1.0,
            kind,
            first: None,
            duration: None,
        }
        .named_by_default()
    }

    fn named_by_default(mut self) -> Self {
        self.name = format!("{}_{}", self.kind.type_name(), self.stream.as_str());
        self
    }

    pub fn latency(latency: Duration) -> Self {
        Self::new(Kind::Latency {
            latency,
            jitter: Duration::ZERO,
        })
    }

    pub fn bandwidth(rate_kb_per_second: u64) -> Self {
        Self::new(Kind::Bandwidth {
            rate_kb: rate_kb_per_second,
        })
    }

    pub fn slow_close(delay: Duration) -> Self {
        Self::new(Kind::SlowClose { delay })
    }

    /// Stall all data; close after `timeout` (zero: stall until the toxic is removed).
    pub fn timeout(timeout: Duration) -> Self {
        Self::new(Kind::Timeout { timeout })
    }

    /// Reset connections (the client sees ECONNRESET) `after` they start (zero: at once).
    pub fn reset_peer(after: Duration) -> Self {
        Self::new(Kind::ResetPeer { timeout: after })
    }

    pub fn slicer(average_size: usize, size_variation: usize, delay: Duration) -> Self {
        Self::new(Kind::Slicer {
            average_size: average_size.max(1),
            size_variation,
            delay,
        })
    }

    pub fn limit_data(bytes: u64) -> Self {
        Self::new(Kind::LimitData { bytes })
    }

    /// Give the toxic a name (by default `<type>_<stream>`, as in Toxiproxy).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Act on the bytes from the client instead.
    pub fn upstream(mut self) -> Self {
        let default_name =
            self.name == format!("{}_{}", self.kind.type_name(), self.stream.as_str());
        self.stream = Stream::Upstream;
        if default_name {
            self = self.named_by_default();
        }
        self
    }

    /// Apply to only this share of connections (0 to 1).
    pub fn with_toxicity(mut self, toxicity: f64) -> Self {
        self.toxicity = toxicity.clamp(0.0, 1.0);
        self
    }

    /// Apply to the next `count` connections only, then remove itself.
    pub fn first(mut self, count: u32) -> Self {
        self.first = Some(count);
        self
    }

    /// Remove itself `duration` after it is added.
    pub fn lasting(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Add jitter to a latency toxic.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        if let Kind::Latency { jitter: j, .. } = &mut self.kind {
            *j = jitter;
        }
        self
    }

    /// What the toxic does, in words, for the log and the page.
    pub fn describe(&self) -> String {
        let ms = |d: &Duration| d.as_millis();
        let what = match &self.kind {
            Kind::Latency { latency, jitter } if jitter.is_zero() => {
                format!("latency of {} ms", ms(latency))
            }
            Kind::Latency { latency, jitter } => {
                format!("latency of {} ms ± {} ms", ms(latency), ms(jitter))
            }
            Kind::Bandwidth { rate_kb } => format!("at most {rate_kb} KB/s"),
            Kind::SlowClose { delay } => format!("closing {} ms late", ms(delay)),
            Kind::Timeout { timeout } if timeout.is_zero() => "no data, until removed".into(),
            Kind::Timeout { timeout } => format!("no data, closed after {} ms", ms(timeout)),
            Kind::ResetPeer { timeout } if timeout.is_zero() => "a reset at once".into(),
            Kind::ResetPeer { timeout } => format!("a reset after {} ms", ms(timeout)),
            Kind::Slicer {
                average_size,
                delay,
                ..
            } => format!(
                "pieces of about {average_size} bytes, {} µs apart",
                delay.as_micros()
            ),
            Kind::LimitData { bytes } => format!("closed after {bytes} bytes"),
        };
        let direction = match self.stream {
            Stream::Upstream => "from the client",
            Stream::Downstream => "to the client",
        };
        let mut text = format!("{what}, on bytes {direction}");
        if self.toxicity < 1.0 {
            text += &format!(", for {}% of connections", self.toxicity * 100.0);
        }
        if let Some(count) = self.first {
            text += &format!(", the next {count} connection(s) only");
        }
        if let Some(duration) = self.duration {
            text += &format!(", for {}", humantime::format_duration(duration));
        }
        text
    }

    /// Check a toxic written as JSON or TOML; the error says what is wrong in its terms.
    pub fn from_spec(spec: ToxicSpec) -> Result<Self, InvalidToxic> {
        Self::read(spec).map_err(InvalidToxic)
    }

    fn read(spec: ToxicSpec) -> Result<Self, String> {
        let map = spec.attributes.unwrap_or_default();
        let kind = match spec.kind.as_str() {
            "latency" => {
                let a: LatencyAttributes = attributes("latency", map)?;
                Kind::Latency {
                    latency: toxic_millis("latency", a.latency)?,
                    jitter: toxic_millis("jitter", a.jitter)?,
                }
            }
            "bandwidth" => {
                let a: RateAttributes = attributes("bandwidth", map)?;
                if a.rate == 0 {
                    return Err("a bandwidth toxic needs a rate above 0 (KB/s)".into());
                }
                Kind::Bandwidth { rate_kb: a.rate }
            }
            "slow_close" => Kind::SlowClose {
                delay: toxic_millis(
                    "delay",
                    attributes::<DelayAttributes>("slow_close", map)?.delay,
                )?,
            },
            "timeout" => Kind::Timeout {
                timeout: toxic_millis(
                    "timeout",
                    attributes::<TimeoutAttributes>("timeout", map)?.timeout,
                )?,
            },
            "reset_peer" => Kind::ResetPeer {
                timeout: toxic_millis(
                    "timeout",
                    attributes::<TimeoutAttributes>("reset_peer", map)?.timeout,
                )?,
            },
            "slicer" => {
                let a: SlicerAttributes = attributes("slicer", map)?;
                if a.average_size == 0 {
                    return Err("a slicer toxic needs an average_size above 0".into());
                }
                let delay = Duration::from_micros(a.delay);
                at_most_a_day("delay", delay, &format!("{} µs", a.delay))?;
                Kind::Slicer {
                    average_size: a.average_size,
                    size_variation: a.size_variation.min(a.average_size - 1),
                    delay,
                }
            }
            "limit_data" => Kind::LimitData {
                bytes: attributes::<LimitAttributes>("limit_data", map)?.bytes,
            },
            other => {
                return Err(format!(
                    "unknown toxic type \"{other}\"; the types are {TYPES}"
                ));
            }
        };
        let toxicity = spec.toxicity.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&toxicity) {
            return Err(format!("toxicity {toxicity} is not between 0 and 1"));
        }
        if spec.first == Some(0) {
            return Err(
                "`first` must be at least 1 (the number of connections to apply to)".into(),
            );
        }
        let duration = spec
            .duration
            .as_ref()
            .map(TimeSpec::to_duration)
            .transpose()?;
        if let Some(duration) = duration {
            if duration.is_zero() {
                return Err("`duration` must be above 0 (how long the toxic lasts)".into());
            }
            let given = humantime::format_duration(duration).to_string();
            at_most_a_day("duration", duration, &given)?;
        }
        let mut toxic = Toxic {
            name: String::new(),
            stream: spec.stream.unwrap_or_default(),
            toxicity,
            kind,
            first: spec.first,
            duration,
        }
        .named_by_default();
        if let Some(name) = spec.name.filter(|n| !n.is_empty()) {
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            {
                return Err(format!(
                    "toxic name \"{name}\": use letters, digits, _ - and ."
                ));
            }
            toxic.name = name;
        }
        Ok(toxic)
    }

    /// Apply a change (Toxiproxy's update): `toxicity`, `stream` and individual `attributes`
    /// given in `patch` replace the current ones; the name and type cannot change.
    pub fn patched(&self, patch: &Value) -> Result<Self, InvalidToxic> {
        self.patch(patch).map_err(InvalidToxic)
    }

    fn patch(&self, patch: &Value) -> Result<Self, String> {
        let Some(patch) = patch.as_object() else {
            return Err("the change must be a JSON object".into());
        };
        let mut current = serde_json::to_value(self).map_err(|e| e.to_string())?;
        for (key, value) in patch {
            match key.as_str() {
                "name" | "type" if *value != current[key] => {
                    return Err(format!(
                        "a toxic's {key} cannot change; delete it and add another"
                    ));
                }
                "name" | "type" => {}
                "toxicity" | "stream" => current[key] = value.clone(),
                "first" | "duration" if *value != current[key] => {
                    return Err(format!(
                        "a toxic's {key} cannot change once it counts; delete it and add another"
                    ));
                }
                "first" | "duration" => {}
                "attributes" => {
                    let Some(changes) = value.as_object() else {
                        return Err("attributes must be an object".into());
                    };
                    for (k, v) in changes {
                        current["attributes"][k] = v.clone();
                    }
                }
                other => return Err(format!("unknown field `{other}` in a toxic")),
            }
        }
        let spec: ToxicSpec = serde_json::from_value(current).map_err(|e| e.to_string())?;
        Toxic::read(spec)
    }
}

/// A toxic, or a change to one, that cannot work: the message says what, in the toxic's
/// terms (`jitter 90000000 ms is more than a day …`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidToxic(pub String);

impl From<String> for InvalidToxic {
    fn from(message: String) -> Self {
        Self(message)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> Result<Toxic, String> {
        Toxic::from_spec(serde_json::from_value(value).map_err(|e| e.to_string())?).map_err(|e| e.0)
    }

    #[test]
    fn a_toxic_takes_at_most_a_day() {
        let day = MAX_TOXIC_TIME.as_millis() as u64;
        assert!(parse(json!({"type": "latency", "attributes": {"latency": day}})).is_ok());
        for (toxic, words) in [
            (
                json!({"type": "latency", "attributes": {"latency": u64::MAX}}),
                "latency 18446744073709551615 ms",
            ),
            (
                json!({"type": "latency", "attributes": {"jitter": day + 1}}),
                "jitter",
            ),
            (
                json!({"type": "slow_close", "attributes": {"delay": u64::MAX}}),
                "delay",
            ),
            (
                json!({"type": "timeout", "attributes": {"timeout": u64::MAX}}),
                "timeout",
            ),
            (
                json!({"type": "reset_peer", "attributes": {"timeout": u64::MAX}}),
                "timeout",
            ),
            (
                json!({"type": "slicer", "attributes": {"average_size": 1, "delay": u64::MAX}}),
                "delay",
            ),
            (
                json!({"type": "latency", "duration": "2days"}),
                "duration 2days",
            ),
            (json!({"type": "latency", "duration": u64::MAX}), "duration"),
        ] {
            let error = parse(toxic.clone()).unwrap_err();
            assert!(
                error.contains(words) && error.contains("more than a day (86400000 ms)"),
                "{toxic}: {error}"
            );
        }
        let patched = parse(json!({"type": "latency"}))
            .unwrap()
            .patched(&json!({"attributes": {"latency": u64::MAX}}));
        assert!(patched.unwrap_err().0.contains("more than a day"));
    }

    #[test]
    fn toxiproxy_json_round_trips() {
        let toxic = parse(json!({"name": "slow", "type": "latency", "stream": "upstream", "toxicity": 0.5, "attributes": {"latency": 300, "jitter": 20}})).unwrap();
        assert_eq!(
            toxic.kind,
            Kind::Latency {
                latency: Duration::from_millis(300),
                jitter: Duration::from_millis(20)
            }
        );
        assert_eq!(toxic.stream, Stream::Upstream);
        assert_eq!(
            serde_json::to_value(&toxic).unwrap(),
            json!({"name": "slow", "type": "latency", "stream": "upstream", "toxicity": 0.5, "attributes": {"latency": 300, "jitter": 20}})
        );
    }

    #[test]
    fn defaults_are_toxiproxy_s() {
        let toxic = parse(json!({"type": "reset_peer"})).unwrap();
        assert_eq!(toxic.name, "reset_peer_downstream");
        assert_eq!(toxic.stream, Stream::Downstream);
        assert_eq!(toxic.toxicity, 1.0);
        assert_eq!(
            toxic.kind,
            Kind::ResetPeer {
                timeout: Duration::ZERO
            }
        );
        assert_eq!(Toxic::bandwidth(10).upstream().name, "bandwidth_upstream");
        assert_eq!(Toxic::bandwidth(10).named("x").upstream().name, "x");
    }

    #[test]
    fn every_type_parses() {
        for (kind, attrs) in [
            ("latency", json!({"latency": 1, "jitter": 0})),
            ("bandwidth", json!({"rate": 100})),
            ("slow_close", json!({"delay": 100})),
            ("timeout", json!({"timeout": 0})),
            ("reset_peer", json!({"timeout": 10})),
            (
                "slicer",
                json!({"average_size": 10, "size_variation": 5, "delay": 100}),
            ),
            ("limit_data", json!({"bytes": 1000})),
        ] {
            let toxic = parse(json!({"type": kind, "attributes": attrs})).unwrap();
            assert_eq!(toxic.kind.type_name(), kind);
            assert_eq!(serde_json::to_value(&toxic).unwrap()["attributes"], attrs);
        }
    }

    #[test]
    fn mistakes_are_named() {
        let err = parse(json!({"type": "lag"})).unwrap_err();
        assert!(
            err.contains("unknown toxic type \"lag\"") && err.contains("latency"),
            "{err}"
        );
        let err = parse(json!({"type": "latency", "attributes": {"delay": 5}})).unwrap_err();
        assert!(err.contains("unknown field `delay`"), "{err}");
        let err = parse(json!({"type": "latency", "toxicity": 1.5})).unwrap_err();
        assert!(err.contains("not between 0 and 1"), "{err}");
        assert!(parse(json!({"type": "bandwidth", "attributes": {"rate": 0}})).is_err());
        assert!(
            parse(json!({"type": "limit_data"}))
                .unwrap_err()
                .contains("bytes")
        );
        assert!(parse(json!({"type": "latency", "name": "no spaces"})).is_err());
        assert!(parse(json!({"type": "latency", "attributes": {"latency": -1}})).is_err());
    }

    #[test]
    fn first_and_duration_are_checked_shown_and_fixed() {
        let toxic = parse(json!({"type": "latency", "first": 2, "duration": "5s"})).unwrap();
        assert_eq!(
            (toxic.first, toxic.duration),
            (Some(2), Some(Duration::from_secs(5)))
        );
        let shown = serde_json::to_value(&toxic).unwrap();
        assert_eq!(
            (shown["first"].clone(), shown["duration"].clone()),
            (json!(2), json!(5000))
        );
        let plain = serde_json::to_value(Toxic::latency(Duration::ZERO)).unwrap();
        assert!(plain.get("first").is_none() && plain.get("duration").is_none());
        assert_eq!(
            parse(json!({"type": "latency", "duration": 250}))
                .unwrap()
                .duration,
            Some(Duration::from_millis(250)),
            "a number is milliseconds"
        );
        for (bad, words) in [
            (
                json!({"type": "latency", "first": 0}),
                "`first` must be at least 1",
            ),
            (
                json!({"type": "latency", "duration": 0}),
                "`duration` must be above 0",
            ),
            (
                json!({"type": "latency", "duration": "soon"}),
                "duration \"soon\"",
            ),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(words), "{err}");
        }
        let err = toxic.patched(&json!({"first": 5})).unwrap_err();
        assert!(err.0.contains("first cannot change"), "{err}");
        let err = toxic.patched(&json!({"duration": 1})).unwrap_err();
        assert!(err.0.contains("duration cannot change"), "{err}");
        let same = toxic
            .patched(&json!({"first": 2, "attributes": {"latency": 9}}))
            .unwrap();
        assert_eq!(same.first, Some(2), "sending it back unchanged is fine");
    }

    #[test]
    fn a_patch_changes_attributes_but_not_identity() {
        let toxic =
            Toxic::latency(Duration::from_millis(100)).with_jitter(Duration::from_millis(10));
        let patched = toxic
            .patched(&json!({"attributes": {"latency": 250}, "toxicity": 0.25}))
            .unwrap();
        assert_eq!(
            patched.kind,
            Kind::Latency {
                latency: Duration::from_millis(250),
                jitter: Duration::from_millis(10)
            }
        );
        assert_eq!(patched.toxicity, 0.25);
        assert_eq!(patched.name, toxic.name);
        assert!(toxic.patched(&json!({"type": "bandwidth"})).is_err());
        assert!(toxic.patched(&json!({"colour": "red"})).is_err());
    }
}
