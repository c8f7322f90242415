//! Request patterns in WireMock's JSON: which requests a stub answers, and — for a request
//! that no stub answers — which parts of the closest stub did not match.
//!
//! A pattern is checked once, when the stub is added ([`RequestPattern::parse`]): a bad
//! regular expression or JSONPath, or one over its cost limit (`cost.rs`), is a `422` then,
//! never a surprise at request time.

use base64::Engine;
use regex_lite::Regex;
use serde_json::{Map, Value};
use serde_json_path::JsonPath;

use crate::cost::{self, Limits};

/// A request as the stubs see it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    /// The path and query, as sent (`/users/42?full=true`).
    pub url: String,
    pub absolute_url: String,
    pub client_ip: String,
    /// Header names as sent, in order; a repeated header appears once per value.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn path(&self) -> &str {
        self.url.split_once('?').map_or(&self.url, |(path, _)| path)
    }

    /// The query's parameters, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        self.url
            .split_once('?')
            .map_or_else(Vec::new, |(_, query)| {
                form_urlencoded::parse(query.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
    }

    /// The values of header `name` (any case).
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The cookies of its `Cookie` headers.
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.header("cookie")
            .into_iter()
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect()
    }
}

/// One value matcher: `{"equalTo": "x"}`, `{"contains": "x"}`, `{"matches": "re"}`,
/// `{"doesNotMatch": "re"}`, `{"absent": true}`, `{"anything": …}`; `caseInsensitive` with
/// `equalTo`.
#[derive(Clone, Debug)]
pub(crate) enum StringMatcher {
    EqualTo {
        value: String,
        case_insensitive: bool,
    },
    Contains(String),
    Matches(Regex),
    DoesNotMatch(Regex),
    Absent,
    Anything,
}

impl StringMatcher {
    fn parse(value: &Value, what: &str, limits: &Limits) -> Result<Self, String> {
        let Some(object) = value.as_object() else {
            return Err(format!(
                "{what}: a matcher is an object such as {{\"equalTo\": \"…\"}}"
            ));
        };
        let text = |key: &str| -> Result<String, String> {
            match &object[key] {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("{what}: `{key}` takes a string, not {other}")),
            }
        };
        if object.contains_key("equalTo") {
            let case_insensitive = object
                .get("caseInsensitive")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            return Ok(Self::EqualTo {
                value: text("equalTo")?,
                case_insensitive,
            });
        }
        if object.contains_key("contains") {
            return Ok(Self::Contains(text("contains")?));
        }
        if object.contains_key("matches") {
            return Ok(Self::Matches(cost::regex(&text("matches")?, what, limits)?));
        }
        if object.contains_key("doesNotMatch") {
            return Ok(Self::DoesNotMatch(cost::regex(
                &text("doesNotMatch")?,
                what,
                limits,
            )?));
        }
        if object.get("absent") == Some(&Value::Bool(true)) {
            return Ok(Self::Absent);
        }
        if object.contains_key("anything") {
            return Ok(Self::Anything);
        }
        Err(format!(
            "{what}: unknown matcher {}; use equalTo, contains, matches, doesNotMatch, absent \
             or anything",
            Value::Object(object.clone())
        ))
    }

    /// Whether `value` (none: the field is missing) matches.
    pub(crate) fn matches(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return matches!(self, Self::Absent | Self::DoesNotMatch(_));
        };
        match self {
            Self::EqualTo {
                value: expected,
                case_insensitive: true,
            } => expected.to_lowercase() == value.to_lowercase(),
            Self::EqualTo {
                value: expected, ..
            } => expected == value,
            Self::Contains(part) => value.contains(part.as_str()),
            Self::Matches(re) => re.is_match(value),
            Self::DoesNotMatch(re) => !re.is_match(value),
            Self::Absent => false,
            Self::Anything => true,
        }
    }

    /// Whether any of `values` matches (none given: as a missing field).
    fn matches_any(&self, values: &[&str]) -> bool {
        match (self, values.is_empty()) {
            (_, true) => self.matches(None),
            (Self::Absent, false) => false,
            _ => values.iter().any(|v| self.matches(Some(v))),
        }
    }
}

/// How the URL must look.
#[derive(Clone, Debug)]
enum UrlMatcher {
    /// `url`: the path and query, exactly.
    Url(String),
    /// `urlPattern`: a regular expression over the path and query.
    UrlPattern(Regex),
    /// `urlPath`: the path, exactly.
    Path(String),
    /// `urlPathPattern`: a regular expression over the path.
    PathPattern(Regex),
    Any,
}

/// One of `bodyPatterns`.
#[derive(Clone, Debug)]
enum BodyMatcher {
    Text(StringMatcher),
    EqualToJson {
        expected: Value,
        ignore_array_order: bool,
        ignore_extra_elements: bool,
        /// With `ignore_array_order`, the most comparisons allowed, divided by the expected
        /// value's nodes: the most nodes a body may have to be compared.
        max_body_nodes: u64,
    },
    /// Some node is found; with a matcher, some node's text matches it.
    JsonPath(JsonPath, Option<StringMatcher>),
    Binary(Vec<u8>),
}

impl BodyMatcher {
    fn parse(value: &Value, limits: &Limits) -> Result<Self, String> {
        let what = "bodyPatterns";
        let object = value
            .as_object()
            .ok_or_else(|| format!("{what}: each is an object such as {{\"contains\": \"…\"}}"))?;
        if let Some(expected) = object.get("equalToJson") {
            // Given as JSON, or as a string holding JSON.
            let expected = match expected {
                Value::String(text) => serde_json::from_str(text)
                    .map_err(|e| format!("{what}: equalToJson is not JSON: {e}"))?,
                other => other.clone(),
            };
            let flag = |key: &str| object.get(key).and_then(Value::as_bool).unwrap_or(false);
            let max_body_nodes = limits.json_comparisons / cost::nodes(&expected);
            return Ok(Self::EqualToJson {
                expected,
                ignore_array_order: flag("ignoreArrayOrder"),
                ignore_extra_elements: flag("ignoreExtraElements"),
                max_body_nodes,
            });
        }
        if let Some(path) = object.get("matchesJsonPath") {
            let (expression, matcher) = match path {
                Value::String(expression) => (expression.clone(), None),
                Value::Object(inner) => {
                    let expression = inner
                        .get("expression")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{what}: matchesJsonPath needs an expression"))?;
                    let mut rest = inner.clone();
                    rest.remove("expression");
                    let matcher = StringMatcher::parse(&Value::Object(rest), what, limits)?;
                    (expression.to_owned(), Some(matcher))
                }
                other => {
                    return Err(format!(
                        "{what}: matchesJsonPath takes a string, not {other}"
                    ));
                }
            };
            let path = cost::jsonpath(&expression, what, limits)?;
            return Ok(Self::JsonPath(path, matcher));
        }
        if let Some(encoded) = object.get("binaryEqualTo").and_then(Value::as_str) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("{what}: binaryEqualTo is not base64: {e}"))?;
            return Ok(Self::Binary(bytes));
        }
        Ok(Self::Text(StringMatcher::parse(value, what, limits)?))
    }

    /// None if `body` matches; else what the mismatch list says (`body`, or why the body
    /// was not compared).
    fn mismatch(&self, body: &[u8]) -> Option<&'static str> {
        match self.matches(body) {
            Ok(true) => None,
            Ok(false) => Some("body"),
            Err(why) => Some(why),
        }
    }

    fn matches(&self, body: &[u8]) -> Result<bool, &'static str> {
        Ok(match self {
            Self::Binary(bytes) => bytes == body,
            Self::Text(matcher) => matcher.matches(std::str::from_utf8(body).ok()),
            Self::EqualToJson {
                expected,
                ignore_array_order,
                ignore_extra_elements,
                max_body_nodes,
            } => {
                let Ok(actual) = serde_json::from_slice::<Value>(body) else {
                    return Ok(false);
                };
                // Ignoring order, each expected value may be compared with each of the
                // body's: bounded before the work starts.
                if *ignore_array_order && cost::nodes(&actual) > *max_body_nodes {
                    return Err("body (too big to compare ignoring array order: \
                                [stubs] max_json_comparisons)");
                }
                json_equal(
                    expected,
                    &actual,
                    *ignore_array_order,
                    *ignore_extra_elements,
                )
            }
            Self::JsonPath(path, matcher) => {
                let Ok(document) = serde_json::from_slice::<Value>(body) else {
                    return Ok(false);
                };
                let nodes = path.query(&document).all();
                match matcher {
                    None => !nodes.is_empty(),
                    Some(matcher) => nodes.iter().any(|node| {
                        let text = match node {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        matcher.matches(Some(&text))
                    }),
                }
            }
        })
    }
}

/// JSON equality as `equalToJson` means it: numbers by value; with `ignore_order`, arrays
/// as multisets; with `ignore_extra`, fields (and array elements) the expectation does not
/// name are allowed.
pub fn json_equal(
    expected: &Value,
    actual: &Value,
    ignore_order: bool,
    ignore_extra: bool,
) -> bool {
    let same = |e: &Value, a: &Value| json_equal(e, a, ignore_order, ignore_extra);
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        (Value::Object(e), Value::Object(a)) => {
            (ignore_extra || e.len() == a.len())
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|av| same(v, av)))
        }
        (Value::Array(e), Value::Array(a)) => {
            if !ignore_extra && e.len() != a.len() {
                return false;
            }
            if ignore_order {
                // Each expected element takes a different actual one (arrays in request
                // bodies are short: trying each pairing is fine).
                let mut used = vec![false; a.len()];
                e.iter().all(|ev| {
                    let found = a
                        .iter()
                        .enumerate()
                        .find(|(i, av)| !used[*i] && same(ev, av))
                        .map(|(i, _)| i);
                    found.map(|i| used[i] = true).is_some()
                })
            } else if ignore_extra {
                // In order, with extra elements allowed between them.
                let mut rest = a.iter();
                e.iter().all(|ev| rest.any(|av| same(ev, av)))
            } else {
                e.iter().zip(a).all(|(ev, av)| same(ev, av))
            }
        }
        _ => expected == actual,
    }
}

/// Which requests a stub answers: WireMock's `request` object.
#[derive(Clone, Debug)]
pub struct RequestPattern {
    method: Option<String>,
    url: UrlMatcher,
    query: Vec<(String, StringMatcher)>,
    headers: Vec<(String, StringMatcher)>,
    cookies: Vec<(String, StringMatcher)>,
    body: Vec<BodyMatcher>,
    basic_auth: Option<(String, String)>,
}

/// The fields of a pattern a request did not match, in words (`method`, `URL`,
/// `header Content-Type`, `body`, …).
pub type Mismatches = Vec<String>;

/// How far a request is from a stub: a wrong URL counts most, then a wrong method, then
/// each other field (a stub for the same URL is the one the client most likely meant).
pub fn distance(missed: &Mismatches) -> usize {
    missed
        .iter()
        .map(|field| match field.as_str() {
            "URL" => 4,
            "method" => 2,
            _ => 1,
        })
        .sum()
}

impl RequestPattern {
    /// Check a `request` object against `limits`; the error names the field.
    pub(crate) fn parse(value: &Value, limits: &Limits) -> Result<Self, String> {
        let empty = Map::new();
        let object = match value {
            Value::Object(object) => object,
            Value::Null => &empty,
            other => return Err(format!("request must be an object, not {other}")),
        };
        let method = match object.get("method").and_then(Value::as_str) {
            None | Some("ANY") => None,
            Some(method) => Some(method.to_ascii_uppercase()),
        };
        let text = |key: &str| object.get(key).and_then(Value::as_str);
        let url = if let Some(url) = text("url") {
            UrlMatcher::Url(url.to_owned())
        } else if let Some(pattern) = text("urlPattern") {
            UrlMatcher::UrlPattern(cost::regex(pattern, "urlPattern", limits)?)
        } else if let Some(path) = text("urlPath") {
            UrlMatcher::Path(path.to_owned())
        } else if let Some(pattern) = text("urlPathPattern") {
            UrlMatcher::PathPattern(cost::regex(pattern, "urlPathPattern", limits)?)
        } else {
            UrlMatcher::Any
        };
        let named = |key: &str| -> Result<Vec<(String, StringMatcher)>, String> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(name, m)| {
                        Ok((
                            name.clone(),
                            StringMatcher::parse(m, &format!("{key}.{name}"), limits)?,
                        ))
                    })
                    .collect(),
                Some(other) => Err(format!("{key} must be an object of matchers, not {other}")),
            }
        };
        let body = match object.get("bodyPatterns") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(patterns)) => patterns
                .iter()
                .map(|p| BodyMatcher::parse(p, limits))
                .collect::<Result<_, _>>()?,
            // One pattern on its own, as some clients send it (WireMock's Python client).
            Some(one @ Value::Object(_)) => vec![BodyMatcher::parse(one, limits)?],
            Some(other) => return Err(format!("bodyPatterns must be a list, not {other}")),
        };
        let basic_auth = match object.get("basicAuthCredentials") {
            None | Some(Value::Null) => None,
            Some(credentials) => {
                let field = |key: &str| {
                    credentials
                        .get(key)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| format!("basicAuthCredentials needs a {key}"))
                };
                Some((field("username")?, field("password")?))
            }
        };
        Ok(Self {
            method,
            url,
            query: named("queryParameters")?,
            headers: named("headers")?,
            cookies: named("cookies")?,
            body,
            basic_auth,
        })
    }

    /// The parts of the pattern `request` does not match (empty: it matches).
    pub fn mismatches(&self, request: &Request) -> Mismatches {
        let mut missed = Vec::new();
        if self
            .method
            .as_ref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(&request.method))
        {
            missed.push("method".to_owned());
        }
        let url_ok = match &self.url {
            UrlMatcher::Url(url) => *url == request.url,
            UrlMatcher::UrlPattern(re) => re.is_match(&request.url),
            UrlMatcher::Path(path) => path == request.path(),
            UrlMatcher::PathPattern(re) => re.is_match(request.path()),
            UrlMatcher::Any => true,
        };
        if !url_ok {
            missed.push("URL".to_owned());
        }
        if !self.query.is_empty() {
            let query = request.query();
            for (name, matcher) in &self.query {
                let values: Vec<&str> = query
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
                    .collect();
                if !matcher.matches_any(&values) {
                    missed.push(format!("query parameter {name}"));
                }
            }
        }
        for (name, matcher) in &self.headers {
            if !matcher.matches_any(&request.header(name)) {
                missed.push(format!("header {name}"));
            }
        }
        if !self.cookies.is_empty() {
            let cookies = request.cookies();
            for (name, matcher) in &self.cookies {
                let values: Vec<&str> = cookies
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
                    .collect();
                if !matcher.matches_any(&values) {
                    missed.push(format!("cookie {name}"));
                }
            }
        }
        if let Some((user, password)) = &self.basic_auth {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            if !request.header("authorization").contains(&expected.as_str()) {
                missed.push("basic auth credentials".to_owned());
            }
        }
        if let Some(why) = self.body.iter().find_map(|b| b.mismatch(&request.body)) {
            missed.push(why.to_owned());
        }
        missed
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: method.into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
            ..Request::default()
        }
    }

    fn missed(pattern: Value, request: &Request) -> Mismatches {
        RequestPattern::parse(&pattern, &Limits::default())
            .unwrap()
            .mismatches(request)
    }

    #[test]
    fn the_four_url_forms() {
        let r = request("GET", "/users/42?full=true", &[], "");
        assert!(missed(json!({"url": "/users/42?full=true"}), &r).is_empty());
        assert_eq!(missed(json!({"url": "/users/42"}), &r), ["URL"]);
        assert!(missed(json!({"urlPath": "/users/42"}), &r).is_empty());
        assert!(missed(json!({"urlPathPattern": "/users/[0-9]+"}), &r).is_empty());
        assert_eq!(
            missed(json!({"urlPathPattern": "/users"}), &r),
            ["URL"],
            "whole path"
        );
        assert!(missed(json!({"urlPattern": "/users/.*\\?full=.*"}), &r).is_empty());
        assert!(missed(json!({}), &r).is_empty(), "no URL: any");
    }

    #[test]
    fn method_query_headers_and_cookies() {
        let r = request(
            "POST",
            "/charges?currency=eur&amount=10",
            &[
                ("Content-Type", "application/json"),
                ("Cookie", "session=abc; theme=dark"),
            ],
            "",
        );
        assert_eq!(missed(json!({"method": "GET"}), &r), ["method"]);
        assert!(missed(json!({"method": "ANY"}), &r).is_empty());
        let pattern = json!({
            "method": "POST",
            "queryParameters": {"currency": {"equalTo": "EUR", "caseInsensitive": true},
                                "amount": {"matches": "[0-9]+"},
                                "debug": {"absent": true}},
            "headers": {"content-type": {"contains": "json"},
                        "X-Trace": {"absent": true}},
            "cookies": {"session": {"equalTo": "abc"}, "theme": {"doesNotMatch": "light"}},
        });
        assert!(missed(pattern, &r).is_empty());
        let pattern = json!({
            "queryParameters": {"currency": {"equalTo": "EUR"}},
            "headers": {"Content-Type": {"equalTo": "text/plain"}},
            "cookies": {"session": {"absent": true}},
        });
        assert_eq!(
            missed(pattern, &r),
            [
                "query parameter currency",
                "header Content-Type",
                "cookie session"
            ]
        );
    }

    #[test]
    fn body_patterns() {
        let r = request(
            "POST",
            "/",
            &[],
            r#"{"amount": 10, "items": [{"id": 1}, {"id": 2}], "note": "x"}"#,
        );
        let ok = |pattern: Value| missed(json!({"bodyPatterns": [pattern]}), &r).is_empty();
        assert!(ok(json!({"contains": "amount"})));
        assert!(ok(json!({"matches": ".*items.*"})));
        assert!(!ok(json!({"equalTo": "amount"})));
        assert!(ok(
            json!({"equalToJson": {"amount": 10.0, "items": [{"id": 1}, {"id": 2}], "note": "x"}})
        ));
        assert!(!ok(json!({"equalToJson": {"amount": 10}})), "extra fields");
        assert!(ok(
            json!({"equalToJson": {"amount": 10}, "ignoreExtraElements": true})
        ));
        assert!(!ok(
            json!({"equalToJson": {"items": [{"id": 2}, {"id": 1}]}, "ignoreExtraElements": true})
        ));
        assert!(ok(
            json!({"equalToJson": "{\"items\": [{\"id\": 2}, {\"id\": 1}]}",
                          "ignoreExtraElements": true, "ignoreArrayOrder": true})
        ));
        assert!(ok(json!({"matchesJsonPath": "$.items[?(@.id == 2)]"})));
        assert!(!ok(json!({"matchesJsonPath": "$.items[?(@.id == 3)]"})));
        assert!(ok(
            json!({"matchesJsonPath": {"expression": "$.note", "equalTo": "x"}})
        ));
        assert!(!ok(
            json!({"matchesJsonPath": {"expression": "$.note", "equalTo": "y"}})
        ));
        assert!(ok(
            json!({"binaryEqualTo": base64::engine::general_purpose::STANDARD.encode(&r.body)})
        ));
    }

    #[test]
    fn basic_auth_credentials() {
        let pattern = json!({"basicAuthCredentials": {"username": "ann", "password": "s3cret"}});
        let good = request(
            "GET",
            "/",
            &[("Authorization", "Basic YW5uOnMzY3JldA==")],
            "",
        );
        assert!(missed(pattern.clone(), &good).is_empty());
        let bad = request("GET", "/", &[("Authorization", "Basic YW5uOndyb25n")], "");
        assert_eq!(missed(pattern, &bad), ["basic auth credentials"]);
    }

    #[test]
    fn bad_patterns_are_named_when_added() {
        let err = RequestPattern::parse(
            &json!({"urlPathPattern": "/users/[0-9"}),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            err.contains("urlPathPattern") && err.contains("not valid"),
            "{err}"
        );
        let err = RequestPattern::parse(&json!({"urlPathPattern": "/\\p{L}+"}), &Limits::default())
            .unwrap_err();
        assert!(
            err.contains("not valid"),
            "Unicode classes are refused: {err}"
        );
        let err = RequestPattern::parse(
            &json!({"headers": {"X": {"sortOf": "x"}}}),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(err.contains("headers.X: unknown matcher"), "{err}");
        let err = RequestPattern::parse(
            &json!({"bodyPatterns": [{"matchesJsonPath": "$$["}]}),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(err.contains("JSONPath"), "{err}");
    }
}
