//! Faults on demand, measured at the client: toxics through the HTTP control API (Toxiproxy's
//! shape) and the test harness, closing and opening ports, and reset.

use std::io::ErrorKind;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_testkit::Config;
use switchboard_testkit::{Stack, Toxic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::{http_client, json_of, read_to_close};

fn toxics_url(stack: &Stack, service: &str) -> String {
    stack.url(
        "http",
        &format!("/api/ports/{}/toxics", stack.addr(service).port()),
    )
}

/// One request on a fresh connection; the whole answer, and how long it took.
async fn fetch(stack: &Stack, path: &str) -> (String, Duration) {
    let start = Instant::now();
    let mut stream = TcpStream::connect(stack.addr("http")).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    (answer, start.elapsed())
}

#[tokio::test]
async fn latency_through_the_api_adds_at_least_the_delay() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let created = json_of(
        http_client()
            .post(toxics_url(&stack, "http"))
            .json(&json!({"type": "latency", "attributes": {"latency": 300}})),
    )
    .await;
    assert_eq!(
        created,
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0, "attributes": {"latency": 300, "jitter": 0}})
    );
    let (answer, took) = fetch(&stack, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took >= Duration::from_millis(300), "{took:?}");

    let list: Value = json_of(http_client().get(toxics_url(&stack, "http"))).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let one =
        json_of(http_client().get(format!("{}/latency_downstream", toxics_url(&stack, "http"))))
            .await;
    assert_eq!(one["attributes"]["latency"], 300);
    let patched = json_of(
        http_client()
            .patch(format!("{}/latency_downstream", toxics_url(&stack, "http")))
            .json(&json!({"attributes": {"jitter": 50}})),
    )
    .await;
    assert_eq!(patched["attributes"], json!({"latency": 300, "jitter": 50}));
    let deleted = http_client()
        .delete(format!("{}/latency_downstream", toxics_url(&stack, "http")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        json_of(http_client().get(toxics_url(&stack, "http"))).await,
        json!([])
    );
}

#[tokio::test]
async fn bandwidth_holds_the_rate_within_twenty_percent() {
    let stack = Stack::builder()
        .service("http")
        .configure(|c| c.httpbin.max_bytes = 1_000_000)
        .start()
        .await
        .unwrap();
    stack.add_toxic("http", Toxic::bandwidth(100)).unwrap();
    // 300 KB at 100 KB/s: three seconds.
    let start = Instant::now();
    let body = http_client()
        .get(stack.url("http", "/bytes/300000"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let took = start.elapsed().as_secs_f64();
    assert_eq!(body.len(), 300_000);
    let rate = 300.0 / took;
    assert!(
        (80.0..=120.0).contains(&rate),
        "{rate:.1} KB/s over {took:.2} s"
    );
}

#[tokio::test]
async fn reset_peer_gives_the_client_a_connection_reset() {
    let stack = Stack::start(&["http"]).await.unwrap();
    stack
        .add_toxic("http", Toxic::reset_peer(Duration::ZERO))
        .unwrap();
    let mut stream = TcpStream::connect(stack.addr("http")).await.unwrap();
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let error = match stream.read(&mut buf).await {
        Ok(0) => panic!("closed with FIN, not reset"),
        Ok(_) => panic!("got an answer"),
        Err(error) => error,
    };
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn timeout_stalls_then_closes() {
    let stack = Stack::start(&["http"]).await.unwrap();
    stack
        .add_toxic("http", Toxic::timeout(Duration::from_millis(300)))
        .unwrap();
    let (answer, took) = fetch(&stack, "/healthz").await;
    assert_eq!(answer, "", "no data gets through");
    assert!(took >= Duration::from_millis(300), "{took:?}");
}

#[tokio::test]
async fn limit_data_cuts_after_the_byte_count() {
    let stack = Stack::start(&["http"]).await.unwrap();
    stack.add_toxic("http", Toxic::limit_data(100)).unwrap();
    let mut stream = TcpStream::connect(stack.addr("http")).await.unwrap();
    stream
        .write_all(b"GET /bytes/1000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 100);
}

#[tokio::test]
async fn slow_close_holds_the_connection_open_a_while() {
    let stack = Stack::start(&["http"]).await.unwrap();
    stack
        .add_toxic("http", Toxic::slow_close(Duration::from_millis(300)))
        .unwrap();
    let (answer, took) = fetch(&stack, "/healthz").await;
    assert!(answer.ends_with("ok\n"), "{answer}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
}

#[tokio::test]
async fn toxicity_zero_never_fires() {
    let stack = Stack::start(&["http"]).await.unwrap();
    stack
        .add_toxic("http", Toxic::limit_data(10).with_toxicity(0.0))
        .unwrap();
    for _ in 0..20 {
        let (answer, _) = fetch(&stack, "/healthz").await;
        assert!(answer.ends_with("ok\n"), "{answer}");
    }
}

#[tokio::test]
async fn close_refuses_open_accepts_and_reset_restores_everything() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();
    let echo = stack.addr("echo");
    let port_url =
        |action: &str| stack.url("http", &format!("/api/ports/{}/{action}", echo.port()));

    let closed = json_of(http_client().post(port_url("close"))).await;
    assert_eq!(closed["state"], "closed");
    crate::assert_refused(echo).await;

    let opened = json_of(http_client().post(port_url("open"))).await;
    assert_eq!(opened["state"], "listening");
    let mut back = TcpStream::connect(echo).await.unwrap();
    back.write_all(b"hi").await.unwrap();
    back.read_exact(&mut [0u8; 2]).await.unwrap();

    // Break it twice over, then reset.
    stack.close("echo").await.unwrap();
    stack
        .add_toxic("http", Toxic::latency(Duration::from_secs(5)))
        .unwrap();
    let reset = http_client()
        .post(stack.url("http", "/api/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    TcpStream::connect(echo)
        .await
        .expect("reset reopens closed ports");
    assert_eq!(
        json_of(http_client().get(toxics_url(&stack, "http"))).await,
        json!([])
    );
}

#[tokio::test]
async fn control_api_errors_name_the_problem() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let client = http_client();
    let url = toxics_url(&stack, "http");
    let bad = client
        .post(&url)
        .json(&json!({"type": "lag"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown toxic type"),
        "{body}"
    );
    client
        .post(&url)
        .json(&json!({"type": "latency", "name": "x"}))
        .send()
        .await
        .unwrap();
    let twice = client
        .post(&url)
        .json(&json!({"type": "latency", "name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::CONFLICT);
    let nowhere = client
        .get(stack.url("http", "/api/ports/1/toxics"))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    let missing = client.delete(format!("{url}/nope")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let rename = client
        .patch(format!("{url}/x"))
        .json(&json!({"type": "timeout"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rename.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn toxics_declared_in_the_config_apply_from_the_start() {
    let config = Config::from_toml(
        r#"
        [[port]]
        port = 0
        service = "http"
        bind = ["127.0.0.1"]

        [[port.toxics]]
        name = "slow"
        type = "latency"
        attributes = { latency = 250 }
        "#,
        "test.toml",
    )
    .unwrap();
    let stack = Stack::builder()
        .configure(|c| *c = config)
        .start()
        .await
        .unwrap();
    let (answer, took) = fetch(&stack, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"));
    assert!(took >= Duration::from_millis(250), "{took:?}");
    let list = json_of(http_client().get(toxics_url(&stack, "http"))).await;
    assert_eq!(list[0]["name"], "slow");
}
