//! `/digest-auth/{qop}/{user}/{password}[/{algorithm}[/{stale_after}]]`: HTTP Digest
//! authentication (RFC 7616), with MD5 (the default), SHA-256, SHA-512-256 or SHA-512.
//! Without valid credentials the answer is 401 and a challenge; a client answers it with a
//! hash of the user, password, nonce and request, never the password itself.
//!
//! The nonce is not remembered: any nonce the client echoes is taken (as httpbin takes it),
//! which is what a test server needs and a real one must not do. What httpbin keeps instead
//! lives in cookies, and clients' test suites check that they keep them: each answer sets
//! `fake=fake_value`; a challenge sets `stale_after` (the route's count of uses, or `never`)
//! and, once a nonce was used, `last_nonce`. A nonce used twice, or a `stale_after` cookie
//! spent to `0`, gets a challenge with `stale=TRUE`; `?require-cookie=1` challenges a
//! request that carries no cookie at all.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use md5::Md5;
use serde_json::json;
use sha2::{Digest, Sha256, Sha512, Sha512_256};

use serde::Deserialize;

use crate::cookies::{self, cookie, with_cookies};
use crate::reply::bad_request;

const REALM: &str = "switchboard";

/// The hash a challenge names: RFC 7616's three, and SHA-512 as httpbin.org and Python's
/// requests name it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Algorithm {
    Md5,
    Sha256,
    Sha512,
    Sha512_256,
}

impl Algorithm {
    fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-512" => Some(Algorithm::Sha512),
            "SHA-512-256" => Some(Algorithm::Sha512_256),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512 => "SHA-512",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }

    /// The hash of `data` in lower-case hex, as the digest's fields are written.
    fn hex(self, data: &[u8]) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 => Md5::digest(data).to_vec(),
            Algorithm::Sha256 => Sha256::digest(data).to_vec(),
            Algorithm::Sha512 => Sha512::digest(data).to_vec(),
            Algorithm::Sha512_256 => Sha512_256::digest(data).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// "auth" protects the request line; "auth-int" the body as well.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Qop {
    Auth,
    AuthInt,
}

impl Qop {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "auth" => Some(Qop::Auth),
            "auth-int" => Some(Qop::AuthInt),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// What a route asks for: its user and password, how they are to be hashed, and after how
/// many uses a nonce goes stale.
struct Expected {
    qop: Qop,
    user: String,
    password: String,
    algorithm: Algorithm,
    /// A number of uses, or `never` (the routes without it).
    stale_after: String,
}

/// The query the Digest routes read: `?require-cookie=1` (also `t`, `true`).
#[derive(Deserialize)]
pub(crate) struct Options {
    #[serde(rename = "require-cookie", default)]
    require_cookie: String,
}

impl Options {
    fn require_cookie(&self) -> bool {
        matches!(
            self.require_cookie.to_ascii_lowercase().as_str(),
            "1" | "t" | "true"
        )
    }
}

/// Every Digest route: `{qop}/{user}/{password}`, then the algorithm (default MD5) and
/// `stale_after` (default `never`) if the route has them.
pub(crate) async fn digest(
    Path(params): Path<Vec<String>>,
    Query(options): Query<Options>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected = match params.as_slice() {
        [qop, user, password, rest @ ..] => Expected::new(
            qop,
            user.clone(),
            password.clone(),
            rest.first().map_or("MD5", String::as_str),
            rest.get(1).map_or("never", String::as_str),
        ),
        _ => Err("a Digest route names qop, user and password\n".to_owned()),
    };
    match expected {
        Ok(expected) => expected.answer(&options, (&method, &uri, &headers), &body),
        Err(why) => bad_request(why),
    }
}

impl Expected {
    fn new(
        qop: &str,
        user: String,
        password: String,
        algorithm: &str,
        stale_after: &str,
    ) -> Result<Self, String> {
        if stale_after != "never" && stale_after.parse::<u64>().is_err() {
            return Err(format!(
                "stale_after {stale_after:?}: use a number of uses, or never\n"
            ));
        }
        Ok(Expected {
            qop: Qop::parse(qop).ok_or(format!("qop {qop:?}: use auth or auth-int\n"))?,
            user,
            password,
            algorithm: Algorithm::parse(algorithm).ok_or(format!(
                "algorithm {algorithm:?}: use MD5, SHA-256, SHA-512-256 or SHA-512\n"
            ))?,
            stale_after: stale_after.to_owned(),
        })
    }

    /// 200 and the user for a request that answers a challenge of ours, else 401 and a
    /// challenge; with httpbin's cookies either way (the module's comment).
    fn answer(
        &self,
        options: &Options,
        (method, uri, headers): (&Method, &Uri, &HeaderMap),
        body: &[u8],
    ) -> Response {
        let request_uri = uri.path_and_query().map_or("/", |p| p.as_str());
        let credentials = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_credentials);
        let sent = |name: &str| {
            cookies::sent(headers)
                .find(|c| c.name() == name)
                .map(|c| c.value().to_owned())
        };
        let Some(given) = credentials
            .filter(|_| !options.require_cookie() || headers.contains_key(header::COOKIE))
        else {
            return self.challenged(false, None);
        };
        let nonce = given.get("nonce").unwrap_or_default().to_owned();
        let spent = sent("stale_after");
        if sent("last_nonce").is_some_and(|last| last == nonce) || spent.as_deref() == Some("0") {
            return self.challenged(true, Some(nonce));
        }
        if !self.accepts(&given, method.as_str(), request_uri, body) {
            return self.challenged(false, Some(nonce));
        }
        let mut cookies = vec![cookie("fake", "fake_value")];
        if let Some(spent) = spent {
            cookies.push(cookie("stale_after", &one_use_less(&spent)));
        }
        with_cookies(
            Json(json!({"authenticated": true, "user": self.user})).into_response(),
            cookies,
        )
    }

    /// 401 and a challenge (`stale=TRUE` if `stale`), setting `stale_after`, `fake` and,
    /// when the request used one, `last_nonce`.
    fn challenged(&self, stale: bool, last_nonce: Option<String>) -> Response {
        let response = (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, self.challenge(stale))],
            Json(json!({"authenticated": false})),
        )
            .into_response();
        let mut cookies = vec![cookie("stale_after", &self.stale_after)];
        cookies.extend(last_nonce.map(|nonce| cookie("last_nonce", &nonce)));
        cookies.push(cookie("fake", "fake_value"));
        with_cookies(response, cookies)
    }

    /// A fresh challenge: `WWW-Authenticate: Digest realm=…, nonce=…, …`.
    fn challenge(&self, stale: bool) -> String {
        format!(
            r#"Digest realm="{REALM}", qop="{}", nonce="{:032x}", opaque="{:032x}", algorithm={}, stale={}"#,
            self.qop.name(),
            fastrand::u128(..),
            fastrand::u128(..),
            self.algorithm.name(),
            if stale { "TRUE" } else { "FALSE" },
        )
    }

    /// Whether `given` answers a challenge of ours for this request (RFC 7616 section 3.4.1).
    fn accepts(&self, given: &Credentials, method: &str, request_uri: &str, body: &[u8]) -> bool {
        let field = |name: &str| given.get(name).unwrap_or_default();
        let hash = |text: &str| self.algorithm.hex(text.as_bytes());
        let algorithm_matches = given
            .get("algorithm")
            .map_or(self.algorithm == Algorithm::Md5, |name| {
                Algorithm::parse(name) == Some(self.algorithm)
            });
        if field("username") != self.user
            || field("realm") != REALM
            || field("uri") != request_uri
            || given.get("qop").and_then(Qop::parse) != Some(self.qop)
            || !algorithm_matches
        {
            return false;
        }
        let ha1 = hash(&format!("{}:{REALM}:{}", self.user, self.password));
        let ha2 = match self.qop {
            Qop::Auth => hash(&format!("{method}:{request_uri}")),
            Qop::AuthInt => hash(&format!(
                "{method}:{request_uri}:{}",
                self.algorithm.hex(body)
            )),
        };
        let response = hash(&format!(
            "{ha1}:{}:{}:{}:{}:{ha2}",
            field("nonce"),
            field("nc"),
            field("cnonce"),
            self.qop.name(),
        ));
        field("response").eq_ignore_ascii_case(&response)
    }
}

/// `stale_after` after one more use: `never` stays, a count goes down (not below 0).
fn one_use_less(stale_after: &str) -> String {
    match stale_after.parse::<u64>() {
        Ok(uses) => uses.saturating_sub(1).to_string(),
        Err(_) => stale_after.to_owned(),
    }
}

/// The parameters of an `Authorization: Digest …` header, by name.
struct Credentials(Vec<(String, String)>);

impl Credentials {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// `Digest username="Mufasa", nc=00000001, …`: the comma-separated `name=value` pairs of
/// RFC 9110's auth-param, a value either a token or a quoted string with `\` escapes.
fn parse_credentials(header: &str) -> Option<Credentials> {
    let (scheme, mut rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Some(Credentials(params));
        }
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next()? {
                        (i, '"') => break i,
                        (_, '\\') => value.push(chars.next()?.1),
                        (_, c) => value.push(c),
                    }
                };
                (value, &quoted[end + 1..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        params.push((name.trim().to_owned(), value));
        rest = remaining;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 section 3.9.1's example, with this module's realm: SHA-256 and qop=auth.
    #[test]
    fn a_response_computed_as_the_rfc_describes_is_accepted() {
        let expected = Expected {
            qop: Qop::Auth,
            user: "Mufasa".into(),
            password: "Circle of Life".into(),
            algorithm: Algorithm::Sha256,
            stale_after: "never".into(),
        };
        let a = Algorithm::Sha256;
        let ha1 = a.hex(format!("Mufasa:{REALM}:Circle of Life").as_bytes());
        let ha2 = a.hex(b"GET:/dir/index.html");
        let response = a.hex(format!("{ha1}:n0nce:00000001:c0nce:auth:{ha2}").as_bytes());
        let header = format!(
            r#"Digest username="Mufasa", realm="{REALM}", uri="/dir/index.html", algorithm=SHA-256, nonce="n0nce", nc=00000001, cnonce="c0nce", qop=auth, response="{response}", opaque="x""#
        );
        let given = parse_credentials(&header).unwrap();
        assert!(expected.accepts(&given, "GET", "/dir/index.html", b""));
        assert!(!expected.accepts(&given, "POST", "/dir/index.html", b""));
        assert!(!expected.accepts(&given, "GET", "/other", b""));
        let wrong = Expected {
            password: "Circle of Death".into(),
            ..expected
        };
        assert!(!wrong.accepts(&given, "GET", "/dir/index.html", b""));
    }

    #[test]
    fn quoted_values_keep_commas_and_escapes() {
        let given =
            parse_credentials(r#"Digest username="a,\"b\"", nc=00000002 ,qop="auth""#).unwrap();
        assert_eq!(given.get("username"), Some(r#"a,"b""#));
        assert_eq!(given.get("NC"), Some("00000002"));
        assert_eq!(given.get("qop"), Some("auth"));
        assert!(parse_credentials("Basic dXNlcjpwYXNz").is_none());
        assert!(parse_credentials(r#"Digest username="unterminated"#).is_none());
    }

    #[test]
    fn the_three_hashes_match_their_known_values() {
        assert_eq!(Algorithm::Md5.hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            Algorithm::Sha256.hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(Algorithm::Sha512.hex(b"").starts_with("cf83e1357eefb8bd"));
    }
}
