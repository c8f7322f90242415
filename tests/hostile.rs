//! Hostile requests from loopback, each once found to crash, exhaust or escape switchboard
//! (issue 39), each answered now in its protocol's terms: a stub id or body file that names a
//! path outside the stubs directory, a regular expression too costly to run, MIME headers
//! smuggled through the send API, and durations too big for a clock.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_testkit::Stack;

use crate::{assert_answer, http_client};

async fn stubs_in(dir: &std::path::Path) -> Stack {
    let dir = dir.to_owned();
    Stack::builder()
        .service("stubs")
        .configure(move |c| c.stubs.dir = Some(dir))
        .start()
        .await
        .unwrap()
}

async fn add_mapping(stack: &Stack, mapping: &Value) -> reqwest::Response {
    http_client()
        .post(stack.url("stubs", "/__admin/mappings"))
        .json(mapping)
        .send()
        .await
        .unwrap()
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn a_stub_id_never_becomes_a_path_outside_the_stubs_directory() {
    let outside = tempfile::tempdir().unwrap();
    let stubs_dir = outside.path().join("a").join("stubs");
    std::fs::create_dir_all(&stubs_dir).unwrap();
    let stack = stubs_in(&stubs_dir).await;
    let absolute = outside.path().join("planted");
    for id in [
        "../../planted",
        "../mappings-elsewhere",
        absolute.to_str().unwrap(),
        "a/b",
        "..",
        "with\nnewline",
        "",
    ] {
        let response = add_mapping(
            &stack,
            &json!({"id": id, "request": {"url": "/x"}, "response": {"status": 200}}),
        )
        .await;
        assert_answer(response, StatusCode::UNPROCESSABLE_ENTITY, "id").await;
    }
    // A body file is a path below `__files/`, never above it.
    for name in ["../../../etc/passwd", "/etc/passwd", "a/../../b"] {
        let response = add_mapping(
            &stack,
            &json!({"request": {"url": "/y"}, "response": {"bodyFileName": name}}),
        )
        .await;
        assert_answer(response, StatusCode::UNPROCESSABLE_ENTITY, "bodyFileName").await;
    }
    // A safe id is saved where it belongs, owner-only.
    let ok = add_mapping(
        &stack,
        &json!({"id": "d9b5d1e8-0f0e-4d8c-9a51-6a4b0a1f7c11", "request": {"url": "/z"},
                "response": {"status": 204}}),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let saved = http_client()
        .post(stack.url("stubs", "/__admin/mappings/save"))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(
        files_under(outside.path()),
        ["a/stubs/mappings/d9b5d1e8-0f0e-4d8c-9a51-6a4b0a1f7c11.json"]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let file = stubs_dir.join("mappings/d9b5d1e8-0f0e-4d8c-9a51-6a4b0a1f7c11.json");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&stubs_dir.join("mappings")), 0o700);
    }
}

#[tokio::test]
async fn a_body_file_behind_a_symlink_out_of_the_stubs_directory_is_not_served() {
    let outside = tempfile::tempdir().unwrap();
    let stubs_dir = outside.path().join("stubs");
    std::fs::create_dir_all(stubs_dir.join("__files")).unwrap();
    std::fs::write(outside.path().join("secret"), "not for clients").unwrap();
    std::fs::write(stubs_dir.join("__files/kept.json"), "{\"ok\": true}").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path(), stubs_dir.join("__files/out")).unwrap();
    let stack = stubs_in(&stubs_dir).await;
    for (path, name) in [("/kept", "kept.json"), ("/escape", "out/secret")] {
        let added = add_mapping(
            &stack,
            &json!({"request": {"url": path}, "response": {"bodyFileName": name}}),
        )
        .await;
        assert_eq!(added.status(), StatusCode::CREATED);
    }
    let kept = http_client()
        .get(stack.url("stubs", "/kept"))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.text().await.unwrap(), "{\"ok\": true}");
    let escape = http_client()
        .get(stack.url("stubs", "/escape"))
        .send()
        .await
        .unwrap();
    assert_eq!(escape.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = escape.text().await.unwrap();
    assert!(!body.contains("not for clients"), "{body}");
    assert!(body.contains("bodyFileName"), "{body}");
    // Issue 42, item 4: whoever reaches a stub learns nothing of where the stubs live.
    let outside = outside.path().to_string_lossy();
    assert!(!body.contains(&*outside), "{body}");
    assert!(body.contains("__files/out/secret"), "{body}");
}

#[tokio::test]
async fn a_regular_expression_too_costly_to_run_is_refused_when_the_stub_is_added() {
    let stack = Stack::start(&["stubs"]).await.unwrap();
    // 24 characters that compile to a program of some 80 000 states: 30 s of CPU for each
    // 100 KB it was matched against.
    let costly = "(?:[a-z]{0,100}){400}!";
    for mapping in [
        json!({"request": {"bodyPatterns": [{"matches": costly}]}, "response": {}}),
        json!({"request": {"urlPattern": costly}, "response": {}}),
        json!({"request": {"headers": {"X": {"doesNotMatch": costly}}}, "response": {}}),
    ] {
        let response = add_mapping(&stack, &mapping).await;
        assert_answer(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "[stubs] max_regex_size",
        )
        .await;
    }
    let nested = format!("{}a{}", "(".repeat(100), ")".repeat(100));
    let response = add_mapping(
        &stack,
        &json!({"request": {"urlPathPattern": nested}, "response": {}}),
    )
    .await;
    assert_answer(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "[stubs] max_regex_nesting",
    )
    .await;
    // The journal's search takes the same patterns, with the same limits.
    let find = http_client()
        .post(stack.url("stubs", "/__admin/requests/find"))
        .json(&json!({"bodyPatterns": [{"matches": costly}]}))
        .send()
        .await
        .unwrap();
    assert_answer(
        find,
        StatusCode::UNPROCESSABLE_ENTITY,
        "[stubs] max_regex_size",
    )
    .await;
}

#[tokio::test]
async fn a_deeply_nested_json_path_is_refused_naming_the_limit() {
    let stack = Stack::start(&["stubs"]).await.unwrap();
    let deep = format!("$[?{}@.a == 1{}]", "(".repeat(1000), ")".repeat(1000));
    for (route, body) in [
        (
            "/__admin/mappings",
            json!({"request": {"bodyPatterns": [{"matchesJsonPath": deep}]}, "response": {}}),
        ),
        (
            "/__admin/requests/find",
            json!({"bodyPatterns": [{"matchesJsonPath": deep}]}),
        ),
    ] {
        let response = http_client()
            .post(stack.url("stubs", route))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_answer(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "[stubs] max_jsonpath_depth",
        )
        .await;
    }
}

#[tokio::test]
async fn the_send_api_refuses_line_breaks_in_an_attachment_s_fields() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let attachment = |field: &str, value: &str| {
        let mut attachment = json!({"Content": "aGVsbG8=", "Filename": "a.txt",
                                    "ContentType": "text/plain"});
        attachment[field] = json!(value);
        json!({"From": {"Email": "a@example.test"}, "To": [{"Email": "b@example.test"}],
               "Subject": "s", "Attachments": [attachment]})
    };
    for (field, value) in [
        ("ContentType", "text/plain\r\nX-Injected: yes"),
        (
            "ContentType",
            "text/plain\r\nContent-Transfer-Encoding: 8bit",
        ),
        ("ContentID", "cid\r\nX-Injected: yes"),
        ("ContentID", "cid\nX-Injected: yes"),
        ("Filename", "a\r\nX-Injected: yes.txt"),
        ("ContentType", "text/plain\u{0}"),
        ("ContentType", "not a type"),
    ] {
        let response = http_client()
            .post(stack.url("http", "/api/v1/send"))
            .json(&attachment(field, value))
            .send()
            .await
            .unwrap();
        assert_answer(response, StatusCode::BAD_REQUEST, field).await;
    }
    assert_eq!(stack.mail().stats().messages, 0, "nothing was stored");
    // Ordinary values still go through.
    let fine = http_client()
        .post(stack.url("http", "/api/v1/send"))
        .json(&attachment("ContentType", "text/plain; charset=utf-8"))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), StatusCode::OK);
}

#[tokio::test]
async fn durations_beyond_their_maximum_answer_400_naming_it() {
    let stack = Stack::start(&["http"]).await.unwrap();
    for (path, words) in [
        ("/drip?duration=1e308", "[http] max_delay"),
        ("/drip?delay=18446744073709551615s", "[http] max_delay"),
        ("/sse?duration=1e308", "[http] max_delay"),
        (
            "/sse?delay=18446744073709551615s&count=1",
            "[http] max_delay",
        ),
        ("/delay/1e308", "[http] max_delay"),
        ("/api/v1/wait?timeout=1e308", "[http] max_wait"),
        (
            "/api/v1/wait?timeout=18446744073709551615s",
            "[http] max_wait",
        ),
    ] {
        let response = http_client()
            .get(stack.url("http", path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_answer(response, StatusCode::BAD_REQUEST, words).await;
    }
    let port = stack.addr("http").port();
    for duration in ["1e308", "18446744073709551615s", "1e20"] {
        let response = http_client()
            .post(stack.url("http", &format!("/api/ports/{port}/close?for={duration}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("close?for={duration}: {e}"));
        assert_answer(response, StatusCode::BAD_REQUEST, "[control] max_close_for").await;
    }
    // Still open: none of them closed the port.
    let ok = http_client()
        .get(stack.url("http", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

/// CR LF in an SMTP AUTH user name once started a forged line at column 0 of the text log
/// (the text formatter's unit tests in crates/switchboard/src/log_text.rs hold that). Here
/// the binary's JSON log: one line, the name whole in its field, no character a reader of
/// lines would break at.
#[tokio::test]
async fn a_user_name_with_line_breaks_cannot_forge_a_log_line() {
    use base64::Engine as _;
    let forged = "bob\r\n2026-12-07T00:00:00.000000Z  INFO forged: all is well\u{85}x\u{2028}y";
    {
        let mut server = crate::switchboard()
            .start(&switchboard_testkit::binary::port_table(&["smtp"]), &[])
            .await;
        let (mut chat, _) = crate::Chat::connect(server.addr("smtp")).await;
        assert!(chat.cmd("EHLO tests.example").await.starts_with("250"));
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{forged}\0secret"));
        let reply = chat.cmd(&format!("AUTH PLAIN {credentials}")).await;
        assert!(reply.starts_with("235"), "{reply}");
        chat.cmd("QUIT").await;
        server.signal(nix::sys::signal::Signal::SIGTERM);
        assert_eq!(server.exit_code(std::time::Duration::ZERO).await, Some(0));
        let transcript = server.logs.transcript();
        assert!(transcript.contains("authenticated as bob"), "{transcript}");
        for line in transcript.lines() {
            assert!(
                !line.contains("forged") || line.contains("authenticated as bob"),
                "{line}"
            );
            assert!(!line.contains(['\u{85}', '\u{2028}', '\r']), "{line:?}");
            let log: Value = serde_json::from_str(line).unwrap();
            if log["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("authenticated"))
            {
                assert_eq!(log["fields"]["user"], forged);
            }
        }
    }
}

/// JSON nested deeper than serde_json's 128 levels is refused by the parser on every route
/// that reads JSON, before anything recurses over it.
#[tokio::test]
async fn json_nested_too_deep_is_refused_where_it_is_read() {
    let stack = Stack::start(&["http", "stubs"]).await.unwrap();
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    for (service, path, status, words) in [
        (
            "stubs",
            "/__admin/mappings",
            StatusCode::UNPROCESSABLE_ENTITY,
            "recursion limit",
        ),
        (
            "stubs",
            "/__admin/requests/find",
            StatusCode::UNPROCESSABLE_ENTITY,
            "recursion limit",
        ),
        (
            "http",
            "/api/v1/send",
            StatusCode::BAD_REQUEST,
            "not a send request",
        ),
        (
            "http",
            "/api/ports",
            StatusCode::BAD_REQUEST,
            "recursion limit",
        ),
    ] {
        let response = http_client()
            .post(stack.url(service, path))
            .header("content-type", "application/json")
            .body(deep.clone())
            .send()
            .await
            .unwrap();
        assert_answer(response, status, words).await;
    }
    // A request a stub matches against with equalToJson or a JSONPath: not JSON to it.
    let added = add_mapping(
        &stack,
        &json!({"request": {"bodyPatterns": [{"matchesJsonPath": "$[0]"}]},
                "response": {"status": 204}}),
    )
    .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let served = http_client()
        .post(stack.url("stubs", "/"))
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::NOT_FOUND);
}

/// Every route the routers have, every path parameter and every number a query may carry
/// set to values too big for their types or for a clock: each answer is an answer (no
/// connection cut by a panic), never a 500. (The routes are read from the source, so a
/// route added later is swept too.)
#[tokio::test]
async fn no_number_in_a_path_or_query_makes_any_route_fail() {
    let stack = Stack::start(&["http", "stubs", "toxiproxy"]).await.unwrap();
    let keys = [
        "delay",
        "duration",
        "timeout",
        "for",
        "numbytes",
        "count",
        "chunk_size",
        "limit",
        "start",
        "seed",
        "code",
        "next",
        "n",
        "offset",
        "status_code",
        "max-age",
    ];
    let client = http_client();
    let mut asked = 0;
    for hostile in [
        "18446744073709551615",
        "1e308",
        "-1",
        "NaN",
        "99999999999999999999999s",
    ] {
        let query: String = keys
            .iter()
            .map(|k| format!("{k}={hostile}"))
            .collect::<Vec<_>>()
            .join("&");
        // `/unstable` answers 500 by design (a share of its answers).
        for path in crate::router_paths()
            .into_iter()
            .filter(|p| p != "/unstable")
        {
            let path = path.replace("{}", hostile);
            for service in ["http", "stubs", "toxiproxy"] {
                let url = stack.url(service, &format!("{path}?{query}"));
                let response = client
                    .get(&url)
                    .timeout(std::time::Duration::from_secs(20))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("GET {url}: {e}"));
                assert_ne!(
                    response.status(),
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "GET {url}: {}",
                    response.text().await.unwrap_or_default()
                );
                asked += 1;
            }
        }
    }
    assert!(asked > 500, "only {asked} requests");
}

/// Issue 42, item 2: an echo cannot set the headers that frame the response on the
/// connection or belong to one hop (a short `Content-Length` corrupted the next response on
/// a kept-alive connection), nor `Refresh`, which navigated a browser despite the sandbox.
/// `Location` stays allowed: a 200 with it sends a browser nowhere.
#[tokio::test]
async fn response_headers_refuses_framing_hop_by_hop_and_refresh() {
    let stack = Stack::start(&["http"]).await.unwrap();
    for (query, named) in [
        ("Content-Length=2", "Content-Length"),
        ("transfer-encoding=chunked", "transfer-encoding"),
        ("x-fine=1&Connection=close", "Connection"),
        ("Keep-Alive=timeout%3D1", "Keep-Alive"),
        ("Upgrade=websocket", "Upgrade"),
        ("Refresh=0%3Burl%3Dhttp%3A%2F%2Fexample.test%2F", "Refresh"),
    ] {
        let response = http_client()
            .get(stack.url("http", &format!("/response-headers?{query}")))
            .send()
            .await
            .unwrap();
        assert_answer(response, StatusCode::BAD_REQUEST, named).await;
    }
    let moved = http_client()
        .get(stack.url("http", "/response-headers?Location=%2Felsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(moved.headers()["location"], "/elsewhere");
}

/// Send `data` as a message to the stack's SMTP port; its ID.
async fn mail_in(stack: &Stack, data: &str) -> String {
    let to = ["b@example.test"];
    crate::send_mail(stack.addr("smtp"), "a@example.test", &to, data).await
}

/// Issue 42, item 7: switchboard's own HTML pages cannot be framed by another site (a page
/// that overlays the page's buttons could make a visitor press them), and are never sniffed
/// as another type. A message's HTML may be framed by the mailbox alone.
#[tokio::test]
async fn the_pages_refuse_to_be_framed_by_other_sites() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    for path in ["/", "/mail"] {
        let page = http_client()
            .get(stack.url("http", path))
            .send()
            .await
            .unwrap();
        let policy = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert_eq!(
            page.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    let data = "Content-Type: text/html\r\nSubject: framed\r\n\r\n<p>hello</p>\r\n";
    let id = mail_in(&stack, data).await;
    let view = http_client()
        .get(stack.url("http", &format!("/view/{id}.html")))
        .send()
        .await
        .unwrap();
    assert_eq!(view.status(), StatusCode::OK);
    let policy = view.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'self'"), "{policy}");
}

/// Issue 42, item 7: a part whose Content-Type holds a control character cannot be sent with
/// it: the answer names the part (it was a bare 500).
#[tokio::test]
async fn a_part_with_an_unsendable_content_type_is_named() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let data = "Subject: odd part\r\nMIME-Version: 1.0\r\n\
                Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                Content-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
                Content-Type: application/x-\u{1}odd; name=\"odd.bin\"\r\n\
                Content-Disposition: attachment; filename=\"odd.bin\"\r\n\r\nbytes\r\n--b--\r\n";
    let id = mail_in(&stack, data).await;
    let message_url = stack.url("http", &format!("/api/v1/message/{id}"));
    let message = crate::json_of(http_client().get(message_url)).await;
    let part = message["Attachments"][0]["PartID"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = http_client()
        .get(stack.url("http", &format!("/api/v1/message/{id}/part/{part}")))
        .send()
        .await
        .unwrap();
    assert_answer(
        answer,
        StatusCode::BAD_REQUEST,
        &format!("part {part} of message {id}"),
    )
    .await;
}

/// Issue 42, item 2: `/redirect-to` judges its target where a browser would go. A tab after
/// the first slash made `/\t/127.0.0.1:41901/` pass as a path here, and Chromium (dropping
/// tabs) followed it to another origin.
#[tokio::test]
async fn redirect_to_is_judged_where_a_browser_would_go() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let client = crate::first_hop_client();
    for smuggled in [
        "%2F%09%2F127.0.0.1:41901%2F",
        "%2F%0A%2Fevil.example%2F",
        "%5C%5Cevil.example%2F",
    ] {
        let answer = client
            .get(stack.url("http", &format!("/redirect-to?url={smuggled}")))
            .send()
            .await
            .unwrap();
        assert_answer(answer, StatusCode::FORBIDDEN, "leaves switchboard").await;
    }
    // A path here still goes, as given.
    let here = client
        .get(stack.url("http", "/redirect-to?url=%2Fget"))
        .send()
        .await
        .unwrap();
    assert_eq!(here.status(), StatusCode::FOUND);
    assert_eq!(here.headers()["location"], "/get");
}

/// Issue 42, item 4: what a row serves — a program's command line, a proxy's upstream, which
/// may hold passwords — is shown only to `[control] allow`, in `/api/ports` and on the page.
#[tokio::test]
async fn what_rows_serve_is_shown_only_to_control_allow() {
    let upstream = "127.0.0.1:9";
    let stack = Stack::builder()
        .service("http")
        .service("proxy")
        .port(|row| {
            row.set_keys(&switchboard_proxy::ProxyRow {
                upstream: Some(upstream.to_owned()),
            })
        })
        .configure(|c| c.control.allow = vec!["127.0.0.2/32".parse().unwrap()])
        .start()
        .await
        .unwrap();
    let http = stack.addr("http");
    let get_from = |source: &'static str, path: &'static str| async move {
        let mut stream = get(source, http, path, "Connection: close\r\n").await;
        switchboard_testkit::client::read_to_close(&mut stream).await
    };
    for path in ["/api/ports", "/"] {
        let outside = get_from("127.0.0.1", path).await;
        assert!(outside.starts_with("HTTP/1.1 200"), "{path}: {outside}");
        assert!(
            !outside.contains(upstream),
            "{path} shows the upstream outside allow"
        );
        let inside = get_from("127.0.0.2", path).await;
        assert!(
            inside.contains(upstream),
            "{path} hides the upstream from allow"
        );
    }
}

/// Issue 42, item 4: the event feed tells a client outside `[control] allow` that a
/// program started, not its command line (passwords go in command lines).
#[tokio::test]
async fn the_event_feed_shows_command_lines_only_to_control_allow() {
    let secret = "--password=hunter2";
    let stack = Stack::builder()
        .service("http")
        .service("exec")
        .port(|row| {
            row.set_keys(&switchboard_exec::Program {
                command: vec!["cat".into(), secret.into()],
                allow_exec_same_user: true,
                ..Default::default()
            })
        })
        .configure(|c| c.control.allow = vec!["127.0.0.2/32".parse().unwrap()])
        .start()
        .await
        .unwrap();
    let http = stack.addr("http");
    let subscribe = |source: &'static str| async move {
        let mut stream = get(source, http, "/api/events", "").await;
        let head = crate::read_until(&mut stream, "\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        stream
    };
    let mut outside = subscribe("127.0.0.1").await;
    let mut inside = subscribe("127.0.0.2").await;
    // `cat` with a bogus flag ends at once; starting it is what the feeds tell.
    let _program = tokio::net::TcpStream::connect(stack.addr("exec"))
        .await
        .unwrap();
    let told_outside = program_started(&mut outside).await;
    assert!(told_outside.contains("\"pid\""), "{told_outside}");
    assert!(!told_outside.contains(secret), "{told_outside}");
    assert!(!told_outside.contains("\"command\""), "{told_outside}");
    let told_inside = program_started(&mut inside).await;
    assert!(told_inside.contains(secret), "{told_inside}");
}

/// The next `program_started` event on a server-sent event stream: its lines.
async fn program_started(stream: &mut tokio::net::TcpStream) -> String {
    let mut text = crate::read_until(stream, "event: program_started").await;
    let at = text.find("event: program_started").unwrap();
    while !text[at..].contains("\n\n") {
        text += &crate::read_until(stream, "\n").await;
    }
    let event = &text[at..];
    event[..event.find("\n\n").unwrap()].to_owned()
}

/// `GET path` to `http` from the loopback address `source`, with `more` headers: the
/// connection, to read the answer from.
async fn get(
    source: &str,
    http: std::net::SocketAddr,
    path: &str,
    more: &str,
) -> tokio::net::TcpStream {
    let mut stream = switchboard_testkit::client::connect_from(source, http).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {http}\r\n{more}\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    stream
}

/// `/redirect-to` may send a client to another of switchboard's ports on the host it
/// named (the HTTPS port, say), and to no port switchboard does not listen on.
#[tokio::test]
async fn redirect_to_may_go_to_another_of_switchboards_ports() {
    let stack = Stack::start(&["http", "https"]).await.unwrap();
    let https = stack.addr("https");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let elsewhere = free.local_addr().unwrap();
    let client = crate::first_hop_client();
    for (target, status) in [
        (format!("https://{https}/get"), StatusCode::FOUND),
        (format!("http://{elsewhere}/get"), StatusCode::FORBIDDEN),
    ] {
        let url = stack.url("http", "/redirect-to");
        let response = client
            .get(url)
            .query(&[("url", &target)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{target}");
    }
}
