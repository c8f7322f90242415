//! A `stubs` row: WireMock's admin API, stubs that answer real clients, the retry scenario,
//! the request journal, the 404 that names the closest stub, and the faults.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_testkit::Stack;
use switchboard_wiremock::RequestUnmatched;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{PATIENCE, Seen, assert_answer, http_client, json_of};

async fn stack() -> Stack {
    Stack::start(&["stubs"]).await.unwrap()
}

fn url(stack: &Stack, path: &str) -> String {
    stack.url("stubs", path)
}

/// Add a stub; its JSON with its id.
async fn stub(stack: &Stack, mapping: Value) -> Value {
    let added = http_client()
        .post(url(stack, "/__admin/mappings"))
        .json(&mapping)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    added.json().await.unwrap()
}

#[tokio::test]
async fn a_stub_answers_what_it_says_and_the_admin_api_manages_it() {
    let stack = stack().await;
    let added = stub(
        &stack,
        json!({"name": "user", "request": {"method": "GET", "urlPathPattern": "/users/[0-9]+"},
               "response": {"status": 200, "jsonBody": {"id": 42, "name": "Ann"},
                            "headers": {"X-Stub": "yes"}}}),
    )
    .await;
    let id = added["id"].as_str().unwrap().to_owned();

    let answer = http_client()
        .get(url(&stack, "/users/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["x-stub"], "yes");
    assert_eq!(answer.headers()["content-type"], "application/json");
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({"id": 42, "name": "Ann"})
    );

    let all = json_of(http_client().get(url(&stack, "/__admin/mappings"))).await;
    assert_eq!(all["meta"]["total"], 1);
    assert_eq!(all["mappings"][0]["id"], id.as_str());
    let one = json_of(http_client().get(url(&stack, &format!("/__admin/mappings/{id}")))).await;
    assert_eq!(one["name"], "user");

    let replaced = http_client()
        .put(url(&stack, &format!("/__admin/mappings/{id}")))
        .json(&json!({"request": {"urlPath": "/users/42"}, "response": {"status": 410}}))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK);
    let gone = http_client()
        .get(url(&stack, "/users/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::GONE);

    let removed = http_client()
        .delete(url(&stack, &format!("/__admin/mappings/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::OK);
    for (method, path) in [("GET", &id), ("DELETE", &id), ("PUT", &id)] {
        let response = http_client()
            .request(
                method.parse().unwrap(),
                url(&stack, &format!("/__admin/mappings/{path}")),
            )
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method}");
    }
    let bad = http_client()
        .post(url(&stack, "/__admin/mappings"))
        .json(&json!({"request": {"urlPattern": "(unclosed"}}))
        .send()
        .await
        .unwrap();
    assert_answer(bad, StatusCode::UNPROCESSABLE_ENTITY, "urlPattern").await;

    stub(&stack, json!({"request": {"url": "/a"}})).await;
    let cleared = http_client()
        .delete(url(&stack, "/__admin/mappings"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::OK);
    let all = json_of(http_client().get(url(&stack, "/__admin/mappings"))).await;
    assert_eq!(all["meta"]["total"], 0);
}

#[tokio::test]
async fn a_retry_test_503_twice_then_200() {
    let stack = stack().await;
    for (required, next, status) in [
        ("Started", Some("failed once"), 503),
        ("failed once", Some("failed twice"), 503),
        ("failed twice", None, 200),
    ] {
        let mut mapping = json!({"scenarioName": "charge", "requiredScenarioState": required,
            "request": {"method": "POST", "url": "/v1/charges"},
            "response": {"status": status}});
        if let Some(next) = next {
            mapping["newScenarioState"] = json!(next);
        }
        stub(&stack, mapping).await;
    }
    let mut codes = Vec::new();
    for _ in 0..3 {
        let response = http_client()
            .post(url(&stack, "/v1/charges"))
            .send()
            .await
            .unwrap();
        codes.push(response.status().as_u16());
    }
    assert_eq!(codes, [503, 503, 200]);
    let scenarios = json_of(http_client().get(url(&stack, "/__admin/scenarios"))).await;
    assert_eq!(scenarios["scenarios"][0]["state"], "failed twice");
    let reset = http_client()
        .post(url(&stack, "/__admin/scenarios/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    let again = http_client()
        .post(url(&stack, "/v1/charges"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "Started again"
    );
}

#[tokio::test]
async fn the_journal_says_how_the_client_called() {
    let stack = stack().await;
    stub(
        &stack,
        json!({"request": {"method": "POST", "urlPath": "/v1/charges"},
                        "response": {"status": 201}}),
    )
    .await;
    http_client()
        .post(url(&stack, "/v1/charges?idempotent=1"))
        .json(&json!({"amount": 1000, "currency": "eur"}))
        .send()
        .await
        .unwrap();
    http_client()
        .get(url(&stack, "/nothing/here"))
        .send()
        .await
        .unwrap();

    let count = http_client()
        .post(url(&stack, "/__admin/requests/count"))
        .json(&json!({"method": "POST", "urlPath": "/v1/charges",
                      "bodyPatterns": [{"equalToJson": {"currency": "eur", "amount": 1000}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(count.json::<Value>().await.unwrap(), json!({"count": 1}));
    let other_body = http_client()
        .post(url(&stack, "/__admin/requests/count"))
        .json(&json!({"urlPath": "/v1/charges", "bodyPatterns": [{"contains": "usd"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other_body.json::<Value>().await.unwrap(),
        json!({"count": 0})
    );
    let found = http_client()
        .post(url(&stack, "/__admin/requests/find"))
        .json(&json!({"urlPathPattern": "/v1/.*"}))
        .send()
        .await
        .unwrap();
    let found: Value = found.json().await.unwrap();
    assert_eq!(found["requests"][0]["url"], "/v1/charges?idempotent=1");
    assert_eq!(found["requests"][0]["method"], "POST");
    assert_eq!(
        serde_json::from_str::<Value>(found["requests"][0]["body"].as_str().unwrap()).unwrap(),
        json!({"amount": 1000, "currency": "eur"})
    );

    let all = json_of(http_client().get(url(&stack, "/__admin/requests"))).await;
    assert_eq!(all["meta"]["total"], 2);
    assert_eq!(all["requests"][0]["wasMatched"], false, "newest first");
    let id = all["requests"][1]["id"].as_str().unwrap();
    let one = json_of(http_client().get(url(&stack, &format!("/__admin/requests/{id}")))).await;
    assert_eq!(one["responseDefinition"]["status"], 201);
    let unmatched = json_of(http_client().get(url(&stack, "/__admin/requests/unmatched"))).await;
    assert_eq!(unmatched["requests"][0]["url"], "/nothing/here");
    let near =
        json_of(http_client().get(url(&stack, "/__admin/requests/unmatched/near-misses"))).await;
    assert_eq!(near["nearMisses"][0]["request"]["url"], "/nothing/here");

    let reset = http_client()
        .post(url(&stack, "/__admin/requests/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    let all = json_of(http_client().get(url(&stack, "/__admin/requests"))).await;
    assert_eq!(all["meta"]["total"], 0);
    http_client()
        .get(url(&stack, "/again"))
        .send()
        .await
        .unwrap();
    let cleared = http_client()
        .delete(url(&stack, "/__admin/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::OK);
    let all = json_of(http_client().get(url(&stack, "/__admin/requests"))).await;
    assert_eq!(all["meta"]["total"], 0, "DELETE clears it too");
}

#[tokio::test]
async fn an_unmatched_request_gets_404_naming_the_closest_stub_and_is_an_event() {
    let stack = stack().await;
    let mut seen = Seen::new(&stack);
    stub(
        &stack,
        json!({"name": "create charge",
        "request": {"method": "POST", "url": "/v1/charges",
                    "headers": {"Idempotency-Key": {"matches": "[a-z0-9-]+"}}}}),
    )
    .await;
    let answer = http_client()
        .post(url(&stack, "/v1/charges"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let text = answer.text().await.unwrap();
    assert!(text.contains("POST /v1/charges"), "{text}");
    assert!(text.contains("Closest stub: \"create charge\""), "{text}");
    assert!(
        text.contains("does not match: header Idempotency-Key"),
        "{text}"
    );
    let RequestUnmatched {
        method, mismatched, ..
    } = seen.find_said(|_: &RequestUnmatched| true).await;
    assert_eq!(
        (method.as_str(), mismatched),
        ("POST", vec!["header Idempotency-Key".to_owned()])
    );
}

/// Send one request on a fresh connection; what came back (bytes, and how it ended).
async fn raw_exchange(stack: &Stack, path: &str) -> (Vec<u8>, Result<(), ErrorKind>) {
    let mut stream = TcpStream::connect(stack.addr("stubs")).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("stuck")
        {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e.kind())),
        }
    }
}

#[tokio::test]
async fn faults_break_the_connection_as_they_say() {
    let stack = stack().await;
    for fault in [
        "EMPTY_RESPONSE",
        "CONNECTION_RESET_BY_PEER",
        "RANDOM_DATA_THEN_CLOSE",
        "MALFORMED_RESPONSE_CHUNK",
    ] {
        stub(&stack, json!({"request": {"url": format!("/{fault}")},
                            "response": {"fault": fault, "body": "a body long enough to cut in two"}}))
        .await;
    }
    let (bytes, end) = raw_exchange(&stack, "/EMPTY_RESPONSE").await;
    assert_eq!((bytes.len(), end), (0, Ok(())), "closed without a byte");
    let (_, end) = raw_exchange(&stack, "/CONNECTION_RESET_BY_PEER").await;
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
    let (bytes, _) = raw_exchange(&stack, "/RANDOM_DATA_THEN_CLOSE").await;
    assert!(
        !bytes.is_empty() && !bytes.starts_with(b"HTTP/"),
        "{bytes:?}"
    );
    let malformed = http_client()
        .get(url(&stack, "/MALFORMED_RESPONSE_CHUNK"))
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::OK);
    assert!(malformed.bytes().await.is_err(), "the body must break off");
    // The port still serves.
    stub(
        &stack,
        json!({"request": {"url": "/fine"}, "response": {"body": "fine"}}),
    )
    .await;
    let fine = http_client()
        .get(url(&stack, "/fine"))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.text().await.unwrap(), "fine");
}

#[tokio::test]
async fn delays_dribbles_status_messages_and_bodies_of_every_kind() {
    let stack = stack().await;
    stub(
        &stack,
        json!({"request": {"url": "/slow"},
                        "response": {"fixedDelayMilliseconds": 200, "body": "late"}}),
    )
    .await;
    stub(
        &stack,
        json!({"request": {"url": "/dribble"},
                        "response": {"body": "0123456789", "chunkedDribbleDelay":
                                     {"numberOfChunks": 5, "totalDuration": 200}}}),
    )
    .await;
    stub(
        &stack,
        json!({"request": {"url": "/teapot"},
                        "response": {"status": 418, "statusMessage": "Short and stout",
                                     "base64Body": "aGk="}}),
    )
    .await;

    let started = Instant::now();
    let slow = http_client()
        .get(url(&stack, "/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.text().await.unwrap(), "late");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "no sooner than its delay"
    );
    let started = Instant::now();
    let dribbled = http_client()
        .get(url(&stack, "/dribble"))
        .send()
        .await
        .unwrap();
    assert_eq!(dribbled.text().await.unwrap(), "0123456789");
    assert!(
        started.elapsed() >= Duration::from_millis(160),
        "spread over its duration"
    );
    let (bytes, _) = raw_exchange(&stack, "/teapot").await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.starts_with("HTTP/1.1 418 Short and stout\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nhi"), "{text}");
}

#[tokio::test]
async fn a_wiremock_directory_is_served_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mappings")).unwrap();
    std::fs::create_dir_all(dir.path().join("__files")).unwrap();
    std::fs::write(
        dir.path().join("mappings/user.json"),
        r#"{"request": {"method": "GET", "url": "/users/1"},
            "response": {"status": 200, "bodyFileName": "user.json",
                         "headers": {"Content-Type": "application/json"}}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("mappings/broken.json"), "{").unwrap();
    std::fs::write(dir.path().join("__files/user.json"), r#"{"id": 1}"#).unwrap();
    let stack = Stack::builder()
        .service("stubs")
        .configure(|c| c.stubs.dir = Some(dir.path().to_owned()))
        .start()
        .await
        .unwrap();
    let user = http_client()
        .get(url(&stack, "/users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(user.text().await.unwrap(), r#"{"id": 1}"#);

    // Save writes what was added; a reset goes back to the directory.
    stub(
        &stack,
        json!({"id": "0b6b0fc6-7a4e-4c36-9f4c-8a4f4e1b3c11", "request": {"url": "/new"}}),
    )
    .await;
    let saved = http_client()
        .post(url(&stack, "/__admin/mappings/save"))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    assert!(
        dir.path()
            .join("mappings/0b6b0fc6-7a4e-4c36-9f4c-8a4f4e1b3c11.json")
            .exists()
    );
    std::fs::remove_file(
        dir.path()
            .join("mappings/0b6b0fc6-7a4e-4c36-9f4c-8a4f4e1b3c11.json"),
    )
    .unwrap();
    stub(&stack, json!({"request": {"url": "/later"}})).await;
    for reset in ["/__admin/mappings/reset", "/__admin/reset"] {
        let done = http_client().post(url(&stack, reset)).send().await.unwrap();
        assert_eq!(done.status(), StatusCode::OK);
        let all = json_of(http_client().get(url(&stack, "/__admin/mappings"))).await;
        assert_eq!(
            all["meta"]["total"], 1,
            "{reset}: the directory's mapping alone"
        );
        stub(&stack, json!({"request": {"url": "/later"}})).await;
    }

    // With strict, the broken file stops start-up, naming it.
    let strict = Stack::builder()
        .service("stubs")
        .configure(|c| {
            c.stubs.dir = Some(dir.path().to_owned());
            c.stubs.strict = true;
        })
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        strict.contains("broken.json") && strict.contains("strict"),
        "{strict}"
    );
}

#[tokio::test]
async fn stubs_over_tls_with_the_local_ca() {
    let stack = Stack::builder()
        .service("stubs")
        .port(|row| row.set_keys(&switchboard_wiremock::StubsRow { tls: true }))
        .start()
        .await
        .unwrap();
    let ca = reqwest::Certificate::from_pem(stack.ca_pem().as_bytes()).unwrap();
    let client = crate::client_builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", stack.addr("stubs").port());
    let added = client
        .post(format!("{base}/__admin/mappings"))
        .json(&json!({"request": {"url": "/secure"}, "response": {"body": "over TLS"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let answer = client.get(format!("{base}/secure")).send().await.unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);
    assert_eq!(answer.text().await.unwrap(), "over TLS");
}

#[tokio::test]
async fn the_admin_api_answers_only_control_clients() {
    let stack = Stack::builder()
        .service("stubs")
        .configure(|c| c.control.allow = vec!["10.9.9.9/32".parse().unwrap()])
        .start()
        .await
        .unwrap();
    let refused = http_client()
        .get(url(&stack, "/__admin/mappings"))
        .send()
        .await
        .unwrap();
    assert_answer(refused, StatusCode::FORBIDDEN, "[control] allow").await;
    // The stubs themselves answer anyone.
    let stubbed = http_client()
        .get(url(&stack, "/anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(stubbed.status(), StatusCode::NOT_FOUND);

    let stack = self::stack().await;
    crate::assert_cross_site_refused(url(&stack, "/__admin/reset")).await;
}

/// The example of docs/testing-clients.md ("Stubbing an HTTP API"), as it is written there.
#[tokio::test]
async fn the_documented_rust_example_works() {
    let stack = Stack::start(&["stubs"]).await.unwrap();
    // 503 twice, then 201: does the client retry?
    for (state, next, status) in [
        ("Started", Some("once"), 503),
        ("once", Some("twice"), 503),
        ("twice", None, 201),
    ] {
        stack
            .stubs()
            .add(json!({
                "scenarioName": "charge", "requiredScenarioState": state,
                "newScenarioState": next,
                "request": {"method": "POST", "url": "/v1/charges"},
                "response": {"status": status, "jsonBody": {"id": "ch_1"}}
            }))
            .unwrap();
    }
    let client = http_client();
    let charges = stack.url("stubs", "/v1/charges");
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..3 {
        status = client
            .post(&charges)
            .json(&json!({"amount": 1000}))
            .send()
            .await
            .unwrap()
            .status();
        if status.is_success() {
            break;
        }
    }
    assert_eq!(status, StatusCode::CREATED);
    // Was it called with this body, and how often?
    let sent = stack
        .stubs()
        .pattern(&json!({
            "method": "POST", "url": "/v1/charges",
            "bodyPatterns": [{"equalToJson": {"amount": 1000}}]
        }))
        .unwrap();
    assert_eq!(stack.stubs().find(sent).await.unwrap().len(), 3);
}
