//! What a stub's patterns may cost, checked before any work is done: when a stub is added
//! (or a journal search asks), a regular expression whose program is too big or nests too
//! deep, and a JSONPath that nests too deep or could multiply the nodes it visits, are
//! refused with the limit that stops them. Matching cannot be interrupted once it starts, so
//! the bound is set here: a match costs at most about program size × input size steps.
//!
//! The limits are `[stubs]` settings ([`crate::StubsSettings`]).

use regex_lite::{Regex, RegexBuilder};
use serde_json::Value;
use serde_json_path::JsonPath;

/// The limits a stub's patterns are checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest compiled program of a regular expression, in bytes.
    pub regex_size: usize,
    /// The deepest nesting of groups in a regular expression.
    pub regex_nesting: u32,
    /// The deepest nesting of brackets and parentheses in a JSONPath.
    pub jsonpath_depth: usize,
    /// The most pairs of JSON values an `equalToJson` with `ignoreArrayOrder` may compare:
    /// its expected value's nodes times the body's.
    pub json_comparisons: u64,
}

/// A regular expression that must match the whole text, as in WireMock (Java's `matches`),
/// within `limits`; `what` names the field in the error.
pub(crate) fn regex(pattern: &str, what: &str, limits: &Limits) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(limits.regex_size)
        // One more for the group around the pattern.
        .nest_limit(limits.regex_nesting.saturating_add(1))
        .build()
        .map_err(|e| {
            let e = e.to_string();
            if e.contains("size limit") {
                format!(
                    "{what}: the regular expression {pattern:?} compiles to more than \
                     [stubs] max_regex_size ({} bytes); a match costs about its size times \
                     the text's, so write a smaller one (fewer and smaller counted \
                     repetitions such as {{0,100}}) or raise the limit",
                    limits.regex_size
                )
            } else if e.contains("nesting") {
                format!(
                    "{what}: the regular expression {pattern:?} nests groups deeper than \
                     [stubs] max_regex_nesting ({})",
                    limits.regex_nesting
                )
            } else {
                format!("{what}: the regular expression {pattern:?} is not valid: {e}")
            }
        })
}

/// A JSONPath (RFC 9535) within `limits`, and whose nodes cannot multiply: it is read once
/// before it is parsed (the parser recurses once per level of nesting, so a thousand levels
/// overflow its stack) for
///
/// - nesting: at most `limits.jsonpath_depth` brackets and parentheses inside each other;
/// - descendants: at most one `..` (each one visits every node below each node it starts
///   from, so two of them can visit a document's nodes times its depth);
/// - unions: `[...]` with several selectors lists names or indexes from 0, each once (a
///   union of wildcards, slices or filters, or a name twice, selects nodes more than once,
///   and repeated it multiplies them: `$[*,*][*,*]…`).
///
/// With these, the nodes a query yields are distinct, never more than the document has.
pub(crate) fn jsonpath(expression: &str, what: &str, limits: &Limits) -> Result<JsonPath, String> {
    let refuse = |why: String| Err(format!("{what}: the JSONPath {expression:?} {why}"));
    let shape = match Shape::of(expression) {
        Ok(shape) => shape,
        Err(why) => return refuse(why),
    };
    if shape.depth > limits.jsonpath_depth {
        return refuse(format!(
            "nests {} brackets and parentheses deep; [stubs] max_jsonpath_depth allows {}",
            shape.depth, limits.jsonpath_depth
        ));
    }
    if shape.descendants > 1 {
        return refuse(format!(
            "uses `..` {} times; one is allowed (each more multiplies the nodes visited)",
            shape.descendants
        ));
    }
    JsonPath::parse(expression).or_else(|e| refuse(format!("is not valid: {e}")))
}

/// What [`jsonpath`] checks of an expression, read outside its string literals.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shape {
    depth: usize,
    descendants: usize,
}

impl Shape {
    fn of(expression: &str) -> Result<Self, String> {
        let mut shape = Shape::default();
        // The open brackets and parentheses; for each `[`, where its current selector
        // starts and the selectors seen so far.
        let mut open: Vec<(u8, usize, Vec<&str>)> = Vec::new();
        let bytes = expression.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            match bytes[at] {
                quote @ (b'\'' | b'"') => {
                    at += 1;
                    while at < bytes.len() && bytes[at] != quote {
                        at += if bytes[at] == b'\\' { 2 } else { 1 };
                    }
                }
                b'.' if bytes.get(at + 1) == Some(&b'.') => {
                    shape.descendants += 1;
                    at += 1;
                }
                open_with @ (b'[' | b'(') => {
                    open.push((open_with, at + 1, Vec::new()));
                    shape.depth = shape.depth.max(open.len());
                }
                b',' => {
                    if let Some((b'[', start, selectors)) = open.last_mut() {
                        selectors.push(expression.get(*start..at).unwrap_or_default());
                        *start = at + 1;
                    }
                }
                b']' => {
                    if let Some((b'[', start, mut selectors)) = open.pop()
                        && !selectors.is_empty()
                    {
                        selectors.push(expression.get(start..at).unwrap_or_default());
                        check_union(&selectors)?;
                    }
                }
                b')' => {
                    open.pop();
                }
                _ => {}
            }
            at += 1;
        }
        Ok(shape)
    }
}

/// A union's selectors: all names or all indexes from 0, each once.
fn check_union(selectors: &[&str]) -> Result<(), String> {
    let selectors: Vec<&str> = selectors.iter().map(|s| s.trim()).collect();
    let quoted = |s: &str| {
        s.len() >= 2
            && ((s.starts_with('\'') && s.ends_with('\''))
                || (s.starts_with('"') && s.ends_with('"')))
    };
    let index = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let alike = selectors.iter().all(|s| quoted(s)) || selectors.iter().all(|s| index(s));
    let mut sorted = selectors.clone();
    sorted.sort_unstable();
    sorted.dedup();
    match alike && sorted.len() == selectors.len() {
        true => Ok(()),
        false => Err(format!(
            "has the union [{}]: a union lists names or indexes from 0, each once \
             (wildcards, slices and filters stand alone)",
            selectors.join(", ")
        )),
    }
}

/// How many JSON values `value` holds, itself included.
pub(crate) fn nodes(value: &Value) -> u64 {
    let mut count = 0u64;
    let mut todo = vec![value];
    while let Some(value) = todo.pop() {
        count += 1;
        match value {
            Value::Array(items) => todo.extend(items),
            Value::Object(members) => todo.extend(members.values()),
            _ => {}
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        regex_size: 16 * 1024,
        regex_nesting: 32,
        jsonpath_depth: 16,
        json_comparisons: 10_000_000,
    };

    #[test]
    fn a_costly_regular_expression_is_refused_by_its_limit() {
        assert!(regex("/users/[0-9]+", "url", &LIMITS).is_ok());
        assert!(regex("[a-z]{0,100}", "url", &LIMITS).is_ok());
        let e = regex("(?:[a-z]{0,100}){400}!", "body", &LIMITS).unwrap_err();
        assert!(e.contains("[stubs] max_regex_size (16384 bytes)"), "{e}");
        let deep = format!("{}a{}", "(".repeat(33), ")".repeat(33));
        let e = regex(&deep, "body", &LIMITS).unwrap_err();
        assert!(e.contains("[stubs] max_regex_nesting (32)"), "{e}");
        let fits = format!("{}a{}", "(".repeat(32), ")".repeat(32));
        assert!(regex(&fits, "body", &LIMITS).is_ok());
        let e = regex("[0-9", "url", &LIMITS).unwrap_err();
        assert!(e.contains("is not valid"), "{e}");
    }

    #[test]
    fn a_json_path_is_refused_when_deep_or_multiplying_and_kept_otherwise() {
        for fine in [
            "$.store.book[?(@.price < 10 && (@.category == 'fiction'))]",
            "$..book[0,1]",
            "$['a','b'].c",
            "$.a[?@.b == ']..[*,*]('].c",
            "$[?(@.name == \"x\\\")\")]",
            "$.items[*].id",
            "$.a[1:3]",
        ] {
            assert!(jsonpath(fine, "p", &LIMITS).is_ok(), "{fine}");
        }
        let deep = format!("$[?{}@.a == 1{}]", "(".repeat(1000), ")".repeat(1000));
        let e = jsonpath(&deep, "p", &LIMITS).unwrap_err();
        assert!(
            e.contains("nests 1001") && e.contains("[stubs] max_jsonpath_depth allows 16"),
            "{e}"
        );
        let edge = format!("$[?{}@.a == 1{}]", "(".repeat(15), ")".repeat(15));
        assert!(jsonpath(&edge, "p", &LIMITS).is_ok());
        let e = jsonpath("$..a..b", "p", &LIMITS).unwrap_err();
        assert!(e.contains("`..` 2 times"), "{e}");
        for multiplying in [
            "$[*,*][*,*]",
            "$['a','a']",
            "$[0,-1]",
            "$[0:2,1:3]",
            "$[?@.a,?@.b]",
        ] {
            let e = jsonpath(multiplying, "p", &LIMITS).unwrap_err();
            assert!(
                e.contains("a union lists names or indexes"),
                "{multiplying}: {e}"
            );
        }
        let e = jsonpath("$$[", "p", &LIMITS).unwrap_err();
        assert!(e.contains("is not valid"), "{e}");
    }

    #[test]
    fn nodes_are_counted_without_recursion() {
        assert_eq!(nodes(&serde_json::json!({"a": [1, 2, {"b": null}]})), 6);
        let mut deep = Value::Null;
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(nodes(&deep), 100_001);
        // Dropping it recurses; forget it instead (a test's leak).
        std::mem::forget(deep);
    }
}
