//! Toxiproxy's API on a `toxiproxy` row: every route and the status codes its clients look
//! for, proxies that really proxy, `enabled` that really refuses, switchboard's own rows as
//! proxies, and toxics that count (`first`) or end on time (`duration`).
//! (tests/interop/toxiproxy_client.py drives the same API with a real client library.)

use std::io::ErrorKind;
use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::EventKind;
use switchboard_testkit::Stack;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::{PATIENCE, Seen, assert_answer, assert_refused, http_client};

/// The API, an echo row and an http row; proxies may reach loopback only (whatever
/// networks this machine is on).
async fn stack() -> Stack {
    Stack::builder()
        .service("toxiproxy")
        .service("echo")
        .service("http")
        .configure(|c| c.proxy.allow_upstreams = vec!["127.0.0.0/8".into()])
        .start()
        .await
        .unwrap()
}

fn url(stack: &Stack, path: &str) -> String {
    stack.url("toxiproxy", path)
}

async fn get(stack: &Stack, path: &str) -> reqwest::Response {
    http_client().get(url(stack, path)).send().await.unwrap()
}

async fn post(stack: &Stack, path: &str, body: Value) -> reqwest::Response {
    http_client()
        .post(url(stack, path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn delete(stack: &Stack, path: &str) -> reqwest::Response {
    http_client().delete(url(stack, path)).send().await.unwrap()
}

/// A proxy in front of the stack's echo port, the kernel choosing its port.
async fn echo_proxy(stack: &Stack, name: &str) -> (Value, SocketAddr) {
    let made = post(
        stack,
        "/proxies",
        json!({"name": name, "listen": "127.0.0.1:0", "upstream": stack.addr("echo").to_string()}),
    )
    .await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let proxy: Value = made.json().await.unwrap();
    let listen: SocketAddr = proxy["listen"].as_str().unwrap().parse().unwrap();
    assert_ne!(
        listen.port(),
        0,
        "the answer gives the port the kernel chose"
    );
    (proxy, listen)
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{body}");
    (status, body["error"].as_str().unwrap().to_owned())
}

/// Read until the peer ends the connection; how it ended.
async fn ending(stream: &mut TcpStream) -> Result<(), ErrorKind> {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the connection was not ended")
        {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(error) => return Err(error.kind()),
        }
    }
}

#[tokio::test]
async fn switchboard_s_own_rows_are_listed_as_proxies() {
    let stack = stack().await;
    let version: Value = get(&stack, "/version").await.json().await.unwrap();
    assert_eq!(version["version"], "2.6.0");

    let proxies: Value = get(&stack, "/proxies").await.json().await.unwrap();
    let echo = format!("echo-{}", stack.addr("echo").port());
    let http = format!("http-{}", stack.addr("http").port());
    assert_eq!(proxies[&echo]["name"], echo.as_str());
    assert_eq!(proxies[&echo]["upstream"], "echo");
    assert_eq!(proxies[&echo]["enabled"], true);
    assert_eq!(proxies[&echo]["listen"], stack.addr("echo").to_string());
    assert_eq!(proxies[&echo]["toxics"], json!([]));
    assert_eq!(proxies[&http]["upstream"], "http");
    assert_eq!(
        proxies.as_object().unwrap().len(),
        2,
        "the API's own row is not a proxy: {proxies}"
    );

    let one: Value = get(&stack, &format!("/proxies/{echo}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one, proxies[&echo]);
    let (status, message) = error_of(get(&stack, "/proxies/nope").await).await;
    assert_eq!(
        (status, message.as_str()),
        (StatusCode::NOT_FOUND, "proxy not found")
    );
    let (status, _) = error_of(get(&stack, "/no/such/route").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_proxy_made_here_proxies_and_is_a_row_of_the_table() {
    let stack = stack().await;
    let (proxy, listen) = echo_proxy(&stack, "echoes").await;
    assert_eq!(proxy["enabled"], true);
    assert_eq!(proxy["upstream"], stack.addr("echo").to_string());
    let mut client = TcpStream::connect(listen).await.unwrap();
    crate::assert_echoes(&mut client, b"through the proxy").await;

    let ports: Value = crate::json_of(http_client().get(stack.url("http", "/api/ports"))).await;
    let row = ports["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == listen.port())
        .cloned()
        .unwrap();
    assert_eq!(
        (
            row["service"].as_str(),
            row["name"].as_str(),
            row["runtime"].as_bool()
        ),
        (Some("proxy"), Some("echoes"), Some(true))
    );

    let again = post(
        &stack,
        "/proxies",
        json!({"name": "echoes", "upstream": stack.addr("echo").to_string()}),
    )
    .await;
    assert_eq!(
        error_of(again).await,
        (StatusCode::CONFLICT, "proxy already exists".to_owned())
    );
    for (body, words) in [
        (
            json!({"upstream": "127.0.0.1:1"}),
            "missing required field: name",
        ),
        (json!({"name": "x"}), "missing required field: upstream"),
        (
            json!({"name": "x", "upstream": "127.0.0.1:1", "listen": "somewhere"}),
            "listen \"somewhere\"",
        ),
    ] {
        let (status, message) = error_of(post(&stack, "/proxies", body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains(words), "{message}");
    }
    let garbled = http_client()
        .post(url(&stack, "/proxies"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, message) = error_of(garbled).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.starts_with("bad request body"), "{message}");

    // The same guard as POST /api/ports: only where [proxy] allow_upstreams lets it.
    let far = post(
        &stack,
        "/proxies",
        json!({"name": "far", "listen": "127.0.0.1:0", "upstream": "10.1.2.3:80"}),
    )
    .await;
    assert_answer(far, StatusCode::FORBIDDEN, "allow_upstreams").await;

    // Deleting a proxy made here removes its row; its connection is dropped.
    assert_eq!(
        delete(&stack, "/proxies/echoes").await.status(),
        StatusCode::NO_CONTENT
    );
    // `ending` fails the test if the connection stays open.
    let _ = ending(&mut client).await;
    assert_refused(listen).await;
    assert_eq!(
        get(&stack, "/proxies/echoes").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn disabled_is_refused_and_drops_open_connections_enabled_listens_again() {
    let stack = stack().await;
    let (_, listen) = echo_proxy(&stack, "flaky").await;
    let mut open = TcpStream::connect(listen).await.unwrap();
    crate::assert_echoes(&mut open, b"before").await;

    let disabled = post(&stack, "/proxies/flaky", json!({"enabled": false})).await;
    assert_eq!(disabled.status(), StatusCode::OK);
    let proxy: Value = disabled.json().await.unwrap();
    assert_eq!(proxy["enabled"], false);
    assert_refused(listen).await;
    // Dropped, as Toxiproxy drops them (the control API's /close would let it finish);
    // `ending` fails the test if it stays open.
    let _ = ending(&mut open).await;

    let enabled = http_client()
        .patch(url(&stack, "/proxies/flaky"))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    let proxy: Value = enabled.json().await.unwrap();
    assert_eq!(proxy["enabled"], true);
    assert_eq!(proxy["listen"], listen.to_string(), "the same address");
    let mut again = TcpStream::connect(listen).await.unwrap();
    crate::assert_echoes(&mut again, b"after").await;
}

#[tokio::test]
async fn deleting_an_own_row_closes_it_and_reset_puts_everything_back() {
    let stack = stack().await;
    let echo = stack.addr("echo");
    let name = format!("echo-{}", echo.port());
    let added = post(
        &stack,
        &format!("/proxies/{name}/toxics"),
        json!({"type": "latency", "attributes": {"latency": 10}}),
    )
    .await;
    assert_eq!(added.status(), StatusCode::OK);

    assert_eq!(
        delete(&stack, &format!("/proxies/{name}")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_refused(echo).await;
    let listed: Value = get(&stack, &format!("/proxies/{name}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["enabled"], false, "still listed, disabled");

    // A built-in row cannot be moved elsewhere.
    let moved = post(
        &stack,
        &format!("/proxies/{name}"),
        json!({"upstream": "127.0.0.1:1"}),
    )
    .await;
    assert_answer(moved, StatusCode::BAD_REQUEST, "cannot change").await;

    assert_eq!(
        post(&stack, "/reset", json!(null)).await.status(),
        StatusCode::NO_CONTENT
    );
    let mut client = TcpStream::connect(echo).await.unwrap();
    crate::assert_echoes(&mut client, b"as it started").await;
    let listed: Value = get(&stack, &format!("/proxies/{name}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (listed["enabled"].clone(), listed["toxics"].clone()),
        (json!(true), json!([]))
    );
}

#[tokio::test]
async fn toxics_routes_answer_as_toxiproxy_does() {
    let stack = stack().await;
    let (_, _listen) = echo_proxy(&stack, "db").await;
    let toxic = json!({"name": "slow", "type": "latency", "stream": "upstream",
                       "toxicity": 1.0, "attributes": {"latency": 100, "jitter": 0}});
    let added = post(&stack, "/proxies/db/toxics", toxic.clone()).await;
    assert_eq!(added.status(), StatusCode::OK, "Toxiproxy answers 200 here");
    assert_eq!(added.json::<Value>().await.unwrap(), toxic);

    let listed: Value = get(&stack, "/proxies/db/toxics")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([toxic]));
    let one: Value = get(&stack, "/proxies/db/toxics/slow")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one, toxic);
    let proxy: Value = get(&stack, "/proxies/db").await.json().await.unwrap();
    assert_eq!(proxy["toxics"], json!([toxic]));

    let changed = post(
        &stack,
        "/proxies/db/toxics/slow",
        json!({"attributes": {"latency": 250}}),
    )
    .await;
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["attributes"]["latency"], 250);
    let patched: Value = http_client()
        .patch(url(&stack, "/proxies/db/toxics/slow"))
        .json(&json!({"toxicity": 0.5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["toxicity"], 0.5);

    assert_eq!(
        error_of(post(&stack, "/proxies/db/toxics", toxic.clone()).await).await,
        (StatusCode::CONFLICT, "toxic already exists".to_owned())
    );
    let (status, message) =
        error_of(post(&stack, "/proxies/db/toxics", json!({"type": "lag"})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("unknown toxic type"), "{message}");
    assert_eq!(
        error_of(post(&stack, "/proxies/nope/toxics", toxic.clone()).await).await,
        (StatusCode::NOT_FOUND, "proxy not found".to_owned())
    );

    assert_eq!(
        delete(&stack, "/proxies/db/toxics/slow").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        error_of(delete(&stack, "/proxies/db/toxics/slow").await).await,
        (StatusCode::NOT_FOUND, "toxic not found".to_owned())
    );
    assert_eq!(
        error_of(get(&stack, "/proxies/db/toxics/slow").await).await,
        (StatusCode::NOT_FOUND, "toxic not found".to_owned())
    );
}

#[tokio::test]
async fn populate_creates_or_replaces_and_checks_the_whole_list_first() {
    let stack = stack().await;
    let upstream = stack.addr("echo").to_string();
    let made = post(
        &stack,
        "/populate",
        json!([
            {"name": "one", "listen": "127.0.0.1:0", "upstream": upstream},
            {"name": "two", "listen": "127.0.0.1:0", "upstream": upstream, "enabled": false},
        ]),
    )
    .await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    let proxies = made["proxies"].as_array().unwrap();
    assert_eq!(proxies.len(), 2);
    assert_eq!(
        (proxies[0]["enabled"].clone(), proxies[1]["enabled"].clone()),
        (json!(true), json!(false))
    );
    let one: SocketAddr = proxies[0]["listen"].as_str().unwrap().parse().unwrap();
    let mut client = TcpStream::connect(one).await.unwrap();
    crate::assert_echoes(&mut client, b"populated").await;

    // The same again changes nothing; a new upstream replaces the proxy.
    let again = post(
        &stack,
        "/populate",
        json!([{"name": "one", "listen": one.to_string(), "upstream": upstream}]),
    )
    .await;
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["proxies"][0]["listen"], one.to_string());
    let http = stack.addr("http").to_string();
    let replaced = post(
        &stack,
        "/populate",
        json!([{"name": "one", "listen": "127.0.0.1:0", "upstream": http}]),
    )
    .await;
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(replaced["proxies"][0]["upstream"], http.as_str());

    // A bad entry anywhere: nothing changes.
    let bad = post(
        &stack,
        "/populate",
        json!([
            {"name": "three", "listen": "127.0.0.1:0", "upstream": upstream},
            {"name": "three", "listen": "127.0.0.1:0", "upstream": upstream},
        ]),
    )
    .await;
    assert_answer(bad, StatusCode::BAD_REQUEST, "duplicate proxy name").await;
    let missing = post(&stack, "/populate", json!([{"name": "four"}])).await;
    assert_answer(missing, StatusCode::BAD_REQUEST, "upstream at proxy 1").await;
    assert_eq!(
        get(&stack, "/proxies/three").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_api_answers_only_its_own_kind_of_client() {
    let stack = Stack::builder()
        .service("toxiproxy")
        .service("echo")
        .configure(|c| c.control.allow = vec!["10.9.9.9/32".parse().unwrap()])
        .start()
        .await
        .unwrap();
    let refused = get(&stack, "/proxies").await;
    assert_answer(refused, StatusCode::FORBIDDEN, "[control] allow").await;

    let stack = self::stack().await;
    crate::assert_cross_site_refused(url(&stack, "/reset")).await;
}

#[tokio::test]
async fn a_toxic_with_first_resets_exactly_that_many_connections() {
    let stack = stack().await;
    let (_, listen) = echo_proxy(&stack, "greylisted").await;
    let mut seen = Seen::new(&stack);
    let toxic = post(
        &stack,
        "/proxies/greylisted/toxics",
        json!({"type": "reset_peer", "attributes": {"timeout": 0}, "first": 2}),
    )
    .await;
    let toxic: Value = toxic.json().await.unwrap();
    assert_eq!(toxic["first"], 2);

    for _ in 0..2 {
        let mut client = TcpStream::connect(listen).await.unwrap();
        assert_eq!(ending(&mut client).await, Err(ErrorKind::ConnectionReset));
    }
    let mut third = TcpStream::connect(listen).await.unwrap();
    crate::assert_echoes(&mut third, b"served").await;
    let ended = seen
        .find(|e| matches!(&e.kind, EventKind::FaultEnded { fault, .. } if fault == "reset_peer_downstream"))
        .await;
    assert_eq!(ended.port, listen.port());
    let listed: Value = get(&stack, "/proxies/greylisted/toxics")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]), "spent, it removed itself");
}

#[tokio::test]
async fn a_toxic_with_a_duration_removes_itself() {
    let stack = stack().await;
    let echo = format!("echo-{}", stack.addr("echo").port());
    let mut seen = Seen::new(&stack);
    let toxic = post(
        &stack,
        &format!("/proxies/{echo}/toxics"),
        json!({"name": "brief", "type": "timeout", "attributes": {"timeout": 0}, "duration": "200ms"}),
    )
    .await;
    let toxic: Value = toxic.json().await.unwrap();
    assert_eq!(toxic["duration"], 200);
    let port = stack.addr("echo").port();
    let detail = crate::fault_event(&mut seen, port, "brief", true).await;
    assert!(detail.contains("for 200ms"), "{detail}");
    let reason = crate::fault_event(&mut seen, port, "brief", false).await;
    assert!(reason.contains("200ms are over"), "{reason}");
    let listed: Value = get(&stack, &format!("/proxies/{echo}/toxics"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    let mut client = TcpStream::connect(stack.addr("echo")).await.unwrap();
    crate::assert_echoes(&mut client, b"no longer stalled").await;
}

/// Issue 42, item 3: a change the API refuses changes nothing. A retarget to an upstream
/// outside `[proxy] allow_upstreams` left the proxy deleted; `/populate` with one allowed
/// and one refused proxy answered 403 yet made the first.
#[tokio::test]
async fn a_refused_change_leaves_every_proxy_as_it_was() {
    let stack = stack().await;
    let (_, listen) = echo_proxy(&stack, "kept").await;
    let refused = post(&stack, "/proxies/kept", json!({"upstream": "10.1.2.3:80"})).await;
    assert_answer(refused, StatusCode::FORBIDDEN, "allow_upstreams").await;
    let kept: Value = get(&stack, "/proxies/kept").await.json().await.unwrap();
    assert_eq!(kept["upstream"], stack.addr("echo").to_string());
    assert_eq!(kept["listen"], listen.to_string());
    let mut client = TcpStream::connect(listen).await.unwrap();
    crate::assert_echoes(&mut client, b"still proxied").await;

    let list = json!([
        {"name": "fine", "listen": "127.0.0.1:0", "upstream": stack.addr("echo").to_string()},
        {"name": "far", "listen": "127.0.0.1:0", "upstream": "10.1.2.3:80"},
    ]);
    let refused = post(&stack, "/populate", list).await;
    assert_answer(refused, StatusCode::FORBIDDEN, "allow_upstreams").await;
    assert_eq!(
        get(&stack, "/proxies/fine").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&stack, "/proxies/far").await.status(),
        StatusCode::NOT_FOUND
    );
}

/// A move that passes the checks but still fails (its address is taken: here, by the echo
/// row) brings the old proxy back where it was, with its toxics.
#[tokio::test]
async fn a_move_that_fails_to_bind_puts_the_proxy_back_with_its_toxics() {
    let stack = stack().await;
    let (_, listen) = echo_proxy(&stack, "moving").await;
    let toxic = json!({"name": "slow", "type": "latency", "attributes": {"latency": 1}});
    let added = post(&stack, "/proxies/moving/toxics", toxic).await;
    assert_eq!(added.status(), StatusCode::OK);
    let taken = stack.addr("echo").to_string();
    let refused = post(&stack, "/proxies/moving", json!({"listen": taken})).await;
    assert!(!refused.status().is_success(), "{}", refused.status());
    let back: Value = get(&stack, "/proxies/moving").await.json().await.unwrap();
    assert_eq!(back["listen"], listen.to_string());
    assert_eq!(back["toxics"][0]["name"], "slow", "{back}");
    let mut client = TcpStream::connect(listen).await.unwrap();
    crate::assert_echoes(&mut client, b"back where it was").await;
}
