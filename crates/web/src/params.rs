//! Numbers a request gives in its query or path — durations above all — read and checked
//! against their documented maximum before any work starts: a value over it is a 400 that
//! names the maximum and its key, never a wait silently cut short, and never a clock that
//! overflows (`1e308` seconds, `18446744073709551615s`).

use std::time::Duration;

/// The time `text` gives for the parameter `name`: seconds (`2`, `0.5`) or with a unit
/// (`500ms`, `1m`), at most `max`, whose config key is `key` (`[http] max_delay`).
pub fn duration(name: &str, text: &str, max: Duration, key: &str) -> Result<Duration, BadDuration> {
    let over = || BadDuration::OverMax {
        given: given(name, text),
        max: humantime::format_duration(max).to_string(),
        key: key.to_owned(),
    };
    match text.parse::<f64>() {
        // Compared as seconds before it is a Duration, which 1e308 seconds cannot be.
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            match seconds <= max.as_secs_f64() {
                true => Ok(Duration::from_secs_f64(seconds).min(max)),
                false => Err(over()),
            }
        }
        Ok(_) => Err(BadDuration::Negative(given(name, text))),
        Err(_) => match humantime::parse_duration(text) {
            Ok(time) if time <= max => Ok(time),
            Ok(_) => Err(over()),
            // humantime's own error says what is wrong (an unknown unit, a number too big).
            Err(e) => Err(BadDuration::Unreadable {
                given: given(name, text),
                reason: e.to_string(),
            }),
        },
    }
}

/// `name=text`, as a message quotes the parameter.
fn given(name: &str, text: &str) -> String {
    format!("{name}={text}")
}

/// Why a time a request gives cannot be used; each message quotes it as `name=text`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadDuration {
    /// Longer than the setting `key` allows.
    #[error("{given}: at most {max} (the cap is {key})")]
    OverMax {
        given: String,
        max: String,
        key: String,
    },
    /// Below zero, or not a number at all (`NaN`, `inf`).
    #[error("{0}: give a time of 0 or more, such as 2, 0.5 or 500ms")]
    Negative(String),
    /// Neither seconds nor a time with a unit.
    #[error("{given}: {reason}; give seconds, such as 2 or 0.5, or a unit, as in 500ms")]
    Unreadable { given: String, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(10);

    fn read(text: &str) -> Result<Duration, String> {
        duration("delay", text, MAX, "[http] max_delay").map_err(|e| e.to_string())
    }

    #[test]
    fn seconds_and_units_up_to_the_maximum() {
        assert_eq!(read("2"), Ok(Duration::from_secs(2)));
        assert_eq!(read("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(read("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(read("10"), Ok(MAX));
        assert_eq!(read("10s"), Ok(MAX));
        assert_eq!(read("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn over_the_maximum_names_it_and_nothing_overflows() {
        for text in [
            "10.001",
            "11s",
            "1e308",
            "18446744073709551615s",
            "18446744073709551615",
            "1e19",
            "1m",
        ] {
            let error = read(text).unwrap_err();
            assert_eq!(
                error,
                format!("delay={text}: at most 10s (the cap is [http] max_delay)")
            );
        }
        for text in [
            "-1",
            "NaN",
            "inf",
            "-inf",
            "soon",
            "5 parsecs",
            "",
            "99999999999999999999999s",
        ] {
            let error = read(text).unwrap_err();
            assert!(error.starts_with(&format!("delay={text}: ")), "{error}");
            assert!(!error.contains("max_delay"), "{text}: {error}");
        }
        // The largest maximum a config file can give still compares without a panic.
        assert!(duration("t", "1e308", Duration::MAX, "k").is_err());
        assert_eq!(
            duration("t", "5", Duration::MAX, "k"),
            Ok(Duration::from_secs(5))
        );
    }
}
