//! httpbin's endpoints, answered as httpbin.org answers them: one table of requests checked
//! over HTTP/1.1 on the http port and HTTP/2 over TLS on the https port, then the endpoints
//! whose answer depends on what the client sends.

use reqwest::{Client, Method, StatusCode, Version, header};
use serde_json::{Value, json};
use switchboard_testkit::Stack;

use crate::http::http_stack;
use crate::tls_client_config;

/// One row: a request, and what httpbin documents for its answer.
struct Row {
    method: Method,
    path: &'static str,
    /// Extra request headers.
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    status: u16,
    /// The start of the Content-Type; empty for a response without a body.
    media: &'static str,
    /// The JSON keys the answer has, exactly (for JSON answers).
    keys: &'static [&'static str],
}

const ECHO: &[&str] = &["args", "headers", "origin", "url"];
const BODY_ECHO: &[&str] = &[
    "args", "data", "files", "form", "headers", "json", "origin", "url",
];
const ANYTHING: &[&str] = &[
    "args", "data", "files", "form", "headers", "json", "method", "origin", "url",
];
/// httpbin's `/delay`: the body's fields but `json`.
const DELAY: &[&str] = &["args", "data", "files", "form", "headers", "origin", "url"];
/// Basic credentials for user `u`, password `p`.
const BASIC_U_P: (&str, &str) = ("authorization", "Basic dTpw");

fn table() -> Vec<Row> {
    let row = |method: Method, path, status, media, keys| Row {
        method,
        path,
        headers: &[],
        body: "",
        status,
        media,
        keys,
    };
    let json = "application/json";
    vec![
        row(Method::GET, "/get?a=1", 200, json, ECHO),
        row(Method::GET, "/headers", 200, json, &["headers"]),
        row(Method::GET, "/ip", 200, json, &["origin"]),
        row(Method::GET, "/user-agent", 200, json, &["user-agent"]),
        row(Method::POST, "/post", 200, json, BODY_ECHO),
        row(Method::PUT, "/put", 200, json, BODY_ECHO),
        row(Method::PATCH, "/patch", 200, json, BODY_ECHO),
        row(Method::DELETE, "/delete", 200, json, BODY_ECHO),
        row(Method::GET, "/post", 405, "", &[]),
        // OPTIONS is a CORS preflight's method: answered empty, as httpbin does.
        row(Method::OPTIONS, "/anything/x", 200, "", &[]),
        row(
            Method::from_bytes(b"PROPFIND").unwrap(),
            "/anything/x",
            200,
            json,
            ANYTHING,
        ),
        row(Method::GET, "/status/204", 204, "", &[]),
        row(Method::GET, "/status/418", 418, "", &[]),
        row(Method::GET, "/status/500:0,503:1", 503, "", &[]),
        row(Method::GET, "/status/abc", 400, "text/plain", &[]),
        row(Method::GET, "/delay/0", 200, json, DELAY),
        row(Method::POST, "/delay/0", 200, json, DELAY),
        row(
            Method::GET,
            "/bytes/16",
            200,
            "application/octet-stream",
            &[],
        ),
        row(
            Method::GET,
            "/basic-auth/u/p",
            401,
            json,
            &["authenticated"],
        ),
        Row {
            headers: &[BASIC_U_P],
            ..row(
                Method::GET,
                "/basic-auth/u/p",
                200,
                json,
                &["authenticated", "user"],
            )
        },
        row(Method::GET, "/hidden-basic-auth/u/p", 404, "", &[]),
        Row {
            headers: &[BASIC_U_P],
            ..row(
                Method::GET,
                "/hidden-basic-auth/u/p",
                200,
                json,
                &["authenticated", "user"],
            )
        },
        row(Method::GET, "/bearer", 401, "", &[]),
        Row {
            headers: &[("authorization", "Bearer t0k3n")],
            ..row(
                Method::GET,
                "/bearer",
                200,
                json,
                &["authenticated", "token"],
            )
        },
        row(Method::GET, "/redirect/3", 200, json, ECHO),
        row(Method::GET, "/redirect/2?absolute=true", 200, json, ECHO),
        row(Method::GET, "/relative-redirect/2", 200, json, ECHO),
        row(Method::GET, "/absolute-redirect/2", 200, json, ECHO),
        row(Method::GET, "/redirect/0", 400, "text/plain", &[]),
        row(Method::GET, "/redirect-to?url=/get", 200, json, ECHO),
        row(
            Method::GET,
            "/redirect-to?url=http://elsewhere.test/",
            403,
            "text/plain",
            &[],
        ),
        row(
            Method::GET,
            "/redirect-to?url=/get&status_code=200",
            400,
            "text/plain",
            &[],
        ),
        // A line break cannot go into a Location header.
        row(
            Method::GET,
            "/redirect-to?url=/a%0Ab",
            400,
            "text/plain",
            &[],
        ),
        row(Method::GET, "/json", 200, json, &["slideshow"]),
        row(Method::GET, "/html", 200, "text/html", &[]),
        row(Method::GET, "/xml", 200, "application/xml", &[]),
        row(
            Method::GET,
            "/encoding/utf8",
            200,
            "text/html; charset=utf-8",
            &[],
        ),
        row(Method::GET, "/forms/post", 200, "text/html", &[]),
        row(Method::GET, "/robots.txt", 200, "text/plain", &[]),
        row(Method::GET, "/deny", 200, "text/plain", &[]),
        row(Method::GET, "/uuid", 200, json, &["uuid"]),
        row(Method::GET, "/base64/aGVsbG8", 200, "text/plain", &[]),
        row(
            Method::GET,
            "/base64/decode/aGVsbG8=",
            200,
            "text/plain",
            &[],
        ),
        row(Method::GET, "/base64/encode/hello", 200, "text/plain", &[]),
        row(Method::GET, "/base64/%25%25", 400, "text/plain", &[]),
        row(Method::GET, "/links/3", 200, "text/html", &[]),
        row(Method::GET, "/links/3/1", 200, "text/html", &[]),
        row(Method::GET, "/links/100000/0", 400, "text/plain", &[]),
        row(Method::GET, "/image", 200, "image/png", &[]),
        Row {
            headers: &[("accept", "image/webp,*/*;q=0.8")],
            ..row(Method::GET, "/image", 200, "image/webp", &[])
        },
        Row {
            headers: &[("accept", "text/html")],
            ..row(Method::GET, "/image", 406, json, &["accept", "message"])
        },
        row(Method::GET, "/image/png", 200, "image/png", &[]),
        row(Method::GET, "/image/jpeg", 200, "image/jpeg", &[]),
        row(Method::GET, "/image/webp", 200, "image/webp", &[]),
        row(Method::GET, "/image/svg", 200, "image/svg+xml", &[]),
        row(Method::GET, "/image/gif", 404, "text/plain", &[]),
        row(Method::GET, "/cache", 200, json, ECHO),
        Row {
            headers: &[("if-none-match", "\"x\"")],
            ..row(Method::GET, "/cache", 304, "", &[])
        },
        row(Method::GET, "/cache/60", 200, json, ECHO),
        row(Method::GET, "/etag/abc", 200, json, ECHO),
        Row {
            headers: &[("if-none-match", "\"abc\"")],
            ..row(Method::GET, "/etag/abc", 304, "", &[])
        },
        Row {
            headers: &[("if-match", "\"other\"")],
            ..row(Method::GET, "/etag/abc", 412, "", &[])
        },
        row(
            Method::GET,
            "/response-headers?x-a=1",
            200,
            json,
            &["Content-Length", "Content-Type", "x-a"],
        ),
        row(
            Method::POST,
            "/response-headers?x-a=1",
            200,
            json,
            &["Content-Length", "Content-Type", "x-a"],
        ),
        row(Method::GET, "/unstable?failure_rate=0", 200, "", &[]),
        row(Method::GET, "/unstable?failure_rate=1", 500, "", &[]),
        row(
            Method::GET,
            "/unstable?failure_rate=2",
            400,
            "text/plain",
            &[],
        ),
        row(Method::GET, "/hostname", 200, json, &["hostname"]),
        row(Method::GET, "/stream/0", 200, json, &[]),
        row(Method::GET, "/stream/1000", 400, "text/plain", &[]),
        row(
            Method::GET,
            "/stream-bytes/100?chunk_size=7",
            200,
            "application/octet-stream",
            &[],
        ),
        row(
            Method::GET,
            "/stream-bytes/10?chunk_size=0",
            400,
            "text/plain",
            &[],
        ),
        row(Method::POST, "/dump/request", 200, "text/plain", &[]),
        row(
            Method::GET,
            "/range/26",
            200,
            "application/octet-stream",
            &[],
        ),
        Row {
            headers: &[("range", "bytes=0-9")],
            ..row(
                Method::GET,
                "/range/26",
                206,
                "application/octet-stream",
                &[],
            )
        },
        Row {
            headers: &[("range", "bytes=30-40")],
            ..row(
                Method::GET,
                "/range/26",
                416,
                "application/octet-stream",
                &[],
            )
        },
        row(Method::GET, "/cookies", 200, json, &["cookies"]),
        row(Method::GET, "/cookies/set?a=1", 200, json, &["cookies"]),
        row(Method::GET, "/cookies/set/a/1", 200, json, &["cookies"]),
        row(Method::GET, "/cookies/delete?a", 200, json, &["cookies"]),
        Row {
            headers: &[("content-type", "application/json")],
            body: r#"{"k":[1,2]}"#,
            ..row(Method::POST, "/post", 200, json, BODY_ECHO)
        },
        row(
            Method::GET,
            "/digest-auth/auth/u/p",
            401,
            json,
            &["authenticated"],
        ),
        row(
            Method::GET,
            "/digest-auth/auth-int/u/p/SHA-256",
            401,
            json,
            &["authenticated"],
        ),
        row(Method::GET, "/digest-auth/x/u/p", 400, "text/plain", &[]),
        row(
            Method::GET,
            "/digest-auth/auth/u/p/SHA-1",
            400,
            "text/plain",
            &[],
        ),
        // The client decompresses (as reqwest does by default), so the JSON is read as sent.
        row(
            Method::GET,
            "/gzip",
            200,
            json,
            &["gzipped", "headers", "method", "origin"],
        ),
        row(
            Method::GET,
            "/deflate",
            200,
            json,
            &["deflated", "headers", "method", "origin"],
        ),
        row(
            Method::GET,
            "/brotli",
            200,
            json,
            &["brotli", "headers", "method", "origin"],
        ),
        row(
            Method::GET,
            "/zstd",
            200,
            json,
            &["headers", "method", "origin", "zstd"],
        ),
        row(
            Method::GET,
            "/drip?numbytes=3&duration=0&delay=0",
            200,
            "application/octet-stream",
            &[],
        ),
        row(
            Method::GET,
            "/drip?numbytes=1&duration=0&delay=0&code=503",
            503,
            "application/octet-stream",
            &[],
        ),
        row(
            Method::GET,
            "/drip?delay=9&duration=2",
            400,
            "text/plain",
            &[],
        ),
        row(
            Method::GET,
            "/drip?numbytes=1000000",
            400,
            "text/plain",
            &[],
        ),
        row(Method::GET, "/drip?code=99", 400, "text/plain", &[]),
        row(
            Method::GET,
            "/sse?count=2&duration=0",
            200,
            "text/event-stream",
            &[],
        ),
        row(Method::GET, "/sse?count=1000", 400, "text/plain", &[]),
        row(Method::GET, "/sse?duration=forever", 400, "text/plain", &[]),
        row(Method::GET, "/trailers?x-t=1", 200, json, ECHO),
        row(
            Method::GET,
            "/trailers?content-length=1",
            400,
            "text/plain",
            &[],
        ),
        // A WebSocket route asked without an upgrade says what it needs.
        row(Method::GET, "/websocket/echo", 426, "text/plain", &[]),
    ]
}

async fn check_table(client: &Client, base: &str, version: Version) {
    for row in table() {
        let what = format!("{} {} over {version:?}", row.method, row.path);
        let mut request = client
            .request(row.method.clone(), format!("{base}{}", row.path))
            .body(row.body);
        for (name, value) in row.headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.version(), version, "{what}");
        assert_eq!(response.status().as_u16(), row.status, "{what}");
        let media = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            media.starts_with(row.media),
            "{what}: Content-Type {media:?}"
        );
        let body = response.bytes().await.unwrap();
        if row.media.is_empty() {
            assert!(body.is_empty(), "{what}: a body of {} bytes", body.len());
        }
        if row.method == Method::GET {
            // HEAD on every GET route: the same status and head, no body.
            let mut head = client.head(format!("{base}{}", row.path));
            for (name, value) in row.headers {
                head = head.header(*name, *value);
            }
            let head = head.send().await.unwrap();
            assert_eq!(head.status().as_u16(), row.status, "HEAD: {what}");
            assert!(head.bytes().await.unwrap().is_empty(), "HEAD: {what}");
        }
        if !row.keys.is_empty() {
            let value: Value = serde_json::from_slice(&body).unwrap();
            let mut keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            assert_eq!(keys, row.keys, "{what}");
        }
    }
}

#[tokio::test]
async fn every_endpoint_answers_with_httpbins_status_media_type_and_keys() {
    let stack = Stack::start(&["http", "https"]).await.unwrap();
    check_table(
        &crate::http_client(),
        &stack.url("http", ""),
        Version::HTTP_11,
    )
    .await;

    let tls = tls_client_config(Some(stack.ca_pem()), &[b"h2"]);
    let h2 = crate::client_builder()
        .tls_backend_preconfigured(tls)
        .resolve("localhost", stack.addr("https"))
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", stack.addr("https").port());
    check_table(&h2, &base, Version::HTTP_2).await;
    // HTTP/2 names the server in `:authority`; the echo shows it as `Host`, as httpbin does.
    let headers = h2.get(format!("{base}/headers")).send().await.unwrap();
    let headers: Value = headers.json().await.unwrap();
    let port = stack.addr("https").port();
    assert_eq!(
        headers["headers"]["Host"],
        format!("localhost:{port}"),
        "{headers}"
    );
}

#[tokio::test]
async fn bodies_are_reported_as_httpbin_reports_them() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let client = crate::http_client();

    let form = client
        .put(stack.url("http", "/put"))
        .form(&[("a", "1"), ("a", "2"), ("b", "x y")])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(form["form"], json!({"a": ["1", "2"], "b": "x y"}));
    assert_eq!(form["data"], "");
    assert_eq!(form["json"], Value::Null);

    let multipart = reqwest::multipart::Form::new()
        .text("name", "switchboard")
        .part(
            "upload",
            reqwest::multipart::Part::bytes(b"hello file".to_vec()).file_name("hello.txt"),
        )
        .part(
            "binary",
            reqwest::multipart::Part::bytes(vec![0xff, 0x00, 0xfe]).file_name("b.bin"),
        );
    let parts = client
        .post(stack.url("http", "/post"))
        .multipart(multipart)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(parts["form"], json!({"name": "switchboard"}));
    assert_eq!(
        parts["files"],
        json!({
            "upload": "hello file",
            "binary": "data:application/octet-stream;base64,/wD+",
        })
    );
    assert_eq!(parts["data"], "");

    let broken = client
        .post(stack.url("http", "/post"))
        .header("content-type", "multipart/form-data; boundary=xyz")
        .body("--xyz\r\nnot a part")
        .send()
        .await
        .unwrap();
    crate::assert_answer(broken, StatusCode::BAD_REQUEST, "multipart").await;
}

#[tokio::test]
async fn auth_endpoints_take_what_real_clients_send() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let client = crate::http_client();

    // alice's password is s3cret; each request sends `password`.
    let as_alice = |path: &str, password: &str| {
        client
            .get(stack.url("http", path))
            .basic_auth("alice", Some(password))
            .send()
    };

    let ok = as_alice("/basic-auth/alice/s3cret", "s3cret")
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        ok.json::<Value>().await.unwrap(),
        json!({"authenticated": true, "user": "alice"})
    );

    let wrong = as_alice("/basic-auth/alice/s3cret", "guess").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.headers()[header::WWW_AUTHENTICATE],
        r#"Basic realm="Fake Realm""#
    );

    let hidden = as_alice("/hidden-basic-auth/alice/s3cret", "guess")
        .await
        .unwrap();
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    assert!(!hidden.headers().contains_key(header::WWW_AUTHENTICATE));

    let bearer = client
        .get(stack.url("http", "/bearer"))
        .bearer_auth("abc.def")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(bearer, json!({"authenticated": true, "token": "abc.def"}));
}

#[tokio::test]
async fn status_sends_what_the_code_needs_and_weighted_choices_pick_only_weighted_codes() {
    let stack = Stack::start(&["http"]).await.unwrap();
    // Redirects are followed by default; this test looks at the first answer.
    let client = crate::first_hop_client();

    let moved = client
        .get(stack.url("http", "/status/302"))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::FOUND);
    assert_eq!(moved.headers()[header::LOCATION], "/redirect/1");

    let challenge = client
        .get(stack.url("http", "/status/401"))
        .send()
        .await
        .unwrap();
    assert!(challenge.headers().contains_key(header::WWW_AUTHENTICATE));

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let status = client
            .get(stack.url("http", "/status/200:1,201:1,500:0"))
            .send()
            .await
            .unwrap()
            .status();
        seen.insert(status.as_u16());
    }
    // 40 even draws between two codes: both come up unless the odds (2 in 2^40) say no.
    assert_eq!(seen, [200, 201].into());
}

#[tokio::test]
async fn a_cookie_jar_keeps_what_cookies_set_sets_and_loses_what_delete_deletes() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let client = crate::client_builder().cookie_store(true).build().unwrap();
    let cookies = |path: &str| {
        let request = client.get(stack.url("http", path));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    // A value RFC 6265 allows is set as given, a quoted one included; only what it
    // forbids (here a space) is percent-encoded. `/cookies` shows what the client sent.
    let set = cookies("/cookies/set?flavour=oat%20meal&size=2&foo=%22bar:baz%22").await;
    assert_eq!(
        set,
        json!({"cookies": {"flavour": "oat%20meal", "size": "2", "foo": "\"bar:baz\""}})
    );
    let raw = crate::first_hop_client()
        .get(stack.url("http", "/cookies/set?foo=%22bar:baz%22"))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["set-cookie"], "foo=\"bar:baz\"; Path=/");
    let one = cookies("/cookies/set/colour/blue").await;
    assert_eq!(one["cookies"]["colour"], "blue");
    let deleted = cookies("/cookies/delete?flavour&size&foo").await;
    assert_eq!(deleted, json!({"cookies": {"colour": "blue"}}));
}

#[tokio::test]
async fn redirects_lead_where_httpbin_leads_and_no_further_than_the_cap() {
    let stack = http_stack(|c| c.httpbin.max_redirects = 5).await;
    let base = stack.url("http", "");
    let follow = crate::http_client();
    let first_hop = crate::first_hop_client();
    let location = |path: &str| {
        let request = first_hop.get(format!("{base}{path}"));
        let path = path.to_owned();
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FOUND, "{path}");
            response.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };

    assert_eq!(location("/redirect/3").await, "/relative-redirect/2");
    assert_eq!(location("/relative-redirect/1").await, "/get");
    assert_eq!(
        location("/absolute-redirect/2").await,
        format!("{base}/absolute-redirect/1")
    );
    assert_eq!(location("/redirect-to?url=%2Fheaders").await, "/headers");
    // Relative targets cannot leave the origin: sent on as given, as httpbin does.
    for relative in ["get", "./get", "?a=b"] {
        let asked = format!("/redirect-to?url={}", relative.replace('?', "%3F"));
        assert_eq!(location(&asked).await, relative);
    }

    let followed = follow
        .get(format!("{base}/redirect/5"))
        .send()
        .await
        .unwrap();
    assert_eq!(followed.url().as_str(), format!("{base}/get"));
    let too_many = follow
        .get(format!("{base}/redirect/6"))
        .send()
        .await
        .unwrap();
    crate::assert_answer(too_many, StatusCode::BAD_REQUEST, "max_redirects").await;

    // 307 keeps the method and body: the POST arrives at /post (named relatively, as
    // HTTP clients' test suites name it).
    let kept = follow
        .post(format!("{base}/redirect-to?url=post&status_code=307"))
        .body("still here")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(kept["data"], "still here");

    let outside = first_hop
        .get(format!("{base}/redirect-to?url=https://elsewhere.test/"))
        .send()
        .await
        .unwrap();
    crate::assert_answer(outside, StatusCode::FORBIDDEN, "redirect_hosts").await;
}

#[tokio::test]
async fn redirect_hosts_lets_redirect_to_send_clients_to_a_listed_host() {
    let stack = http_stack(|c| c.httpbin.redirect_hosts = vec!["app.example.test".into()]).await;
    let first_hop = crate::first_hop_client();
    let response = first_hop
        .get(stack.url("http", "/redirect-to?url=https://app.example.test/done"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response.headers()[header::LOCATION],
        "https://app.example.test/done"
    );
}

#[tokio::test]
async fn documents_parse_as_their_media_type_says() {
    let stack = http_stack(|c| c.httpbin.max_links = 4).await;
    let client = crate::http_client();
    let text = |path: &str| {
        let request = client.get(stack.url("http", path));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };

    let json: Value = serde_json::from_str(&text("/json").await).unwrap();
    assert!(json["slideshow"]["slides"].as_array().unwrap().len() > 1);
    let xml = text("/xml").await;
    assert!(xml.starts_with("<?xml") && xml.trim_end().ends_with("</slideshow>"));
    let utf8 = text("/encoding/utf8").await;
    assert!(
        utf8.chars().any(|c| c.len_utf8() == 4),
        "no four-byte character"
    );
    let form = text("/forms/post").await;
    assert!(form.contains(r#"action="/post""#));
    assert!(text("/robots.txt").await.contains("Disallow: /deny"));

    let uuid: Value = serde_json::from_str(&text("/uuid").await).unwrap();
    let uuid = uuid["uuid"].as_str().unwrap().to_owned();
    assert_eq!((uuid.len(), &uuid[14..15]), (36, "4"), "{uuid}");

    assert_eq!(text("/base64/aGVsbG8gd29ybGQ").await, "hello world");
    assert_eq!(text("/base64/decode/Pz8_").await, "???");
    assert_eq!(text("/base64/encode/%3F%3F%3F").await, "Pz8_");

    let links = text("/links/4/2").await;
    for i in [0, 1, 3] {
        assert!(links.contains(&format!("href='/links/4/{i}'")), "{links}");
    }
    assert!(!links.contains("href='/links/4/2'"), "{links}");
    let over = client
        .get(stack.url("http", "/links/5/0"))
        .send()
        .await
        .unwrap();
    crate::assert_answer(over, StatusCode::BAD_REQUEST, "max_links").await;
}

#[tokio::test]
async fn image_follows_accept_as_browsers_send_it() {
    let stack = http_stack(|_| {}).await;
    let client = crate::http_client();
    for (accept, media) in [
        // Chromium's Accept for an <img>.
        (
            "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
            "image/webp",
        ),
        ("image/svg+xml", "image/svg+xml"),
        ("image/jpeg, image/png", "image/jpeg"),
        ("image/*", "image/png"),
    ] {
        let response = client
            .get(stack.url("http", "/image"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], media, "{accept}");
        let body = response.bytes().await.unwrap();
        match media {
            "image/svg+xml" => assert!(body.starts_with(b"<svg"), "{media}"),
            _ => check_picture(&body, media),
        }
    }
}

/// The raster images show the SVG's picture: 100×100, a light face, dark slots in it.
fn check_picture(bytes: &[u8], media: &str) {
    let format = image::ImageFormat::from_mime_type(media).unwrap();
    let picture = image::load_from_memory_with_format(bytes, format)
        .unwrap()
        .to_rgb8();
    assert_eq!(picture.dimensions(), (100, 100), "{media}");
    // JPEG is lossy, so light and dark are ranges.
    let face = picture.get_pixel(50, 35);
    assert!(face.0.iter().all(|&c| c > 0xd0), "{media}: face {face:?}");
    let slot = picture.get_pixel(38, 50);
    assert!(slot.0.iter().all(|&c| c < 0x70), "{media}: slot {slot:?}");
}

#[tokio::test]
async fn every_raster_image_decodes_to_the_same_picture() {
    let stack = http_stack(|_| {}).await;
    let client = crate::http_client();
    for (name, media) in [
        ("png", "image/png"),
        ("jpeg", "image/jpeg"),
        ("webp", "image/webp"),
    ] {
        let path = format!("/image/{name}");
        let body = client.get(stack.url("http", &path)).send().await.unwrap();
        check_picture(&body.bytes().await.unwrap(), media);
    }
}

#[tokio::test]
async fn caching_headers_are_what_conditional_requests_need() {
    let stack = http_stack(|_| {}).await;
    let client = crate::http_client();
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut request = client.get(stack.url("http", path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move { request.send().await.unwrap() }
    };

    // What /cache hands out is what a client sends back to get 304.
    let first = get("/cache", &[]).await;
    let last_modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(first.headers().contains_key("etag"));
    let again = get("/cache", &[("if-modified-since", &last_modified)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let max_age = get("/cache/30", &[]).await;
    assert_eq!(max_age.headers()["cache-control"], "public, max-age=30");

    let tagged = get("/etag/v1", &[]).await;
    assert_eq!(tagged.headers()["etag"], "\"v1\"");
    for (list, status) in [
        ("\"v0\", W/\"v1\"", StatusCode::NOT_MODIFIED),
        ("*", StatusCode::NOT_MODIFIED),
        ("\"v0\"", StatusCode::OK),
    ] {
        let response = get("/etag/v1", &[("if-none-match", list)]).await;
        assert_eq!(response.status(), status, "If-None-Match: {list}");
    }
    assert_eq!(
        get("/etag/v1", &[("if-match", "\"v1\"")]).await.status(),
        StatusCode::OK
    );

    let headers = get(
        "/response-headers?x-one=1&x-two=a&x-two=b&content-type=text/csv",
        &[],
    )
    .await;
    assert_eq!(headers.headers()["x-one"], "1");
    let twos: Vec<_> = headers.headers().get_all("x-two").iter().collect();
    assert_eq!(twos, ["a", "b"]);
    assert_eq!(headers.headers()["content-type"], "text/csv");
    let policies: Vec<_> = headers
        .headers()
        .get_all("content-security-policy")
        .iter()
        .collect();
    assert_eq!(policies, ["sandbox"]);
    let lifted = get(
        "/response-headers?content-security-policy=default-src%20*",
        &[],
    )
    .await;
    let policies: Vec<_> = lifted
        .headers()
        .get_all("content-security-policy")
        .iter()
        .collect();
    assert_eq!(policies, ["default-src *", "sandbox"]);
    let bytes = headers.bytes().await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["x-two"], json!(["a", "b"]));
    // The response's own headers, as httpbin lists them: a length that counts itself.
    assert_eq!(body["content-type"], "text/csv");
    assert_eq!(
        body.get("Content-Type"),
        None,
        "one Content-Type: the one asked for"
    );
    assert_eq!(body["Content-Length"], bytes.len().to_string());
    let bad = get("/response-headers?bad%20name=1", &[]).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unstable_fails_at_its_rate_and_a_seed_repeats_the_answer() {
    let stack = http_stack(|_| {}).await;
    let client = crate::http_client();
    let status = |path: &str| {
        let request = client.get(stack.url("http", path));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        seen.insert(status("/unstable").await);
    }
    // 40 draws at one in two: both come up unless the odds (2 in 2^40) say no.
    assert_eq!(seen, [200, 500].into());
    for seed in 0..8 {
        let path = format!("/unstable?seed={seed}&failure_rate=0.5");
        assert_eq!(status(&path).await, status(&path).await, "{path}");
    }
}

#[tokio::test]
async fn streams_arrive_whole_in_their_shape_and_within_their_caps() {
    let stack = http_stack(|c| {
        c.httpbin.max_stream_lines = 5;
        c.httpbin.max_bytes = 1000;
    })
    .await;
    let client = crate::http_client();
    let get = |path: &str| {
        let request = client.get(stack.url("http", path));
        async move { request.send().await.unwrap() }
    };

    let lines = get("/stream/5?x=1").await.text().await.unwrap();
    let ids: Vec<u64> = lines
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["args"], json!({"x": "1"}));
            value["id"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    let over = get("/stream/6").await;
    crate::assert_answer(over, StatusCode::BAD_REQUEST, "max_stream_lines").await;

    let one = get("/stream-bytes/1000?seed=7&chunk_size=64")
        .await
        .bytes()
        .await
        .unwrap();
    let two = get("/stream-bytes/1000?seed=7&chunk_size=999")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(one.len(), 1000);
    assert_eq!(
        one, two,
        "the same seed gives the same bytes, whatever the chunks"
    );
    // And the same as /bytes of that seed.
    let plain = get("/bytes/1000?seed=7").await.bytes().await.unwrap();
    assert_eq!(one, plain);
    let over = get("/stream-bytes/1001").await;
    crate::assert_answer(over, StatusCode::BAD_REQUEST, "max_bytes").await;

    let dump = client
        .post(stack.url("http", "/dump/request?q=1"))
        .header("x-probe", "here")
        .body("the body")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dump.starts_with("POST /dump/request?q=1 HTTP/1.1\r\n"),
        "{dump}"
    );
    assert!(dump.contains("\r\nx-probe: here\r\n"), "{dump}");
    assert!(dump.ends_with("\r\n\r\nthe body"), "{dump}");
}

#[tokio::test]
async fn range_answers_byte_ranges_as_rfc_9110_says() {
    let stack = http_stack(|c| c.httpbin.max_bytes = 1000).await;
    let client = crate::http_client();
    let get = |path: &str, range: Option<&str>| {
        let mut request = client.get(stack.url("http", path));
        if let Some(range) = range {
            request = request.header("range", range);
        }
        async move { request.send().await.unwrap() }
    };

    let whole = get("/range/30", None).await;
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(
        whole.text().await.unwrap(),
        "abcdefghijklmnopqrstuvwxyzabcd"
    );
    for (range, part, content_range) in [
        ("bytes=2-4", "cde", "bytes 2-4/30"),
        ("bytes=27-", "bcd", "bytes 27-29/30"),
        ("bytes=-2", "cd", "bytes 28-29/30"),
        ("bytes=25-100", "zabcd", "bytes 25-29/30"),
    ] {
        let response = get("/range/30", Some(range)).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            response.headers()["content-range"],
            content_range,
            "{range}"
        );
        assert_eq!(response.text().await.unwrap(), part, "{range}");
    }
    let unmet = get("/range/30", Some("bytes=30-")).await;
    assert_eq!(unmet.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(unmet.headers()["content-range"], "bytes */30");
    let other_unit = get("/range/30", Some("items=0-1")).await;
    assert_eq!(other_unit.status(), StatusCode::OK);
    let several = get("/range/30", Some("bytes=0-1,5-6")).await;
    assert_eq!(several.status(), StatusCode::OK);
    assert_eq!(
        get("/range/1001", None).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_pages_try_it_section_names_every_httpbin_endpoint() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let page = crate::text_of(crate::http_client().get(stack.url("http", "/"))).await;
    let section = &page[page.find(r#"id="httpbin""#).expect("no httpbin section")..];
    // The endpoint's name: its path up to the first parameter.
    let mut endpoints: Vec<&str> = switchboard_httpbin::paths()
        .map(|path| path.split("/{").next().unwrap())
        .collect();
    endpoints.dedup();
    assert!(endpoints.len() > 50, "found only {endpoints:?}");
    // Named as a whole: `/post` in a link or a list, not inside `/forms/post`.
    let named = |name: &str| {
        section.match_indices(name).any(|(at, _)| {
            let before = section[..at].chars().next_back();
            let after = section[at + name.len()..].chars().next();
            matches!(before, Some('>' | '"' | ' '))
                && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
    };
    let missing: Vec<_> = endpoints.iter().filter(|name| !named(name)).collect();
    assert!(missing.is_empty(), "not on the page: {missing:?}");
}
