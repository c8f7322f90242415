//! The HTTP service: every endpoint, the caps, and the limits on bodies, heads and time.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use switchboard_testkit::Config;
use switchboard_testkit::Stack;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{json_of, read_to_close, read_until, status_of};

pub(crate) async fn http_stack(configure: impl FnOnce(&mut Config)) -> Stack {
    Stack::builder()
        .service("http")
        .configure(configure)
        .start()
        .await
        .unwrap()
}

fn client() -> Client {
    crate::client_builder()
        .user_agent("switchboard-tests/1")
        .build()
        .unwrap()
}

#[tokio::test]
async fn healthz_and_page() {
    let stack = http_stack(|_| {}).await;
    let health = crate::http_client()
        .get(stack.url("http", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    let page = crate::http_client()
        .get(stack.url("http", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<table id="ports">"#), "{html}");
    let port = stack.addr("http").port();
    assert!(
        html.contains(&format!(r#"<tr data-port="{port}" data-service="http""#)),
        "{html}"
    );
}

#[tokio::test]
async fn whoami_names_both_ends_and_the_service() {
    let stack = http_stack(|_| {}).await;
    let server = stack.addr("http");

    // A raw socket, so the test knows its own address and port.
    let mut stream = TcpStream::connect(server).await.unwrap();
    let me = stream.local_addr().unwrap();
    stream
        .write_all(b"GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = read_to_close(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains(&format!("you      {me}")), "{text}");
    assert!(text.contains(&format!("reached  {server}")), "{text}");
    assert!(text.contains("service  http"), "{text}");

    // JSON when asked for, by header or by query.
    let client = client();
    for request in [
        client
            .get(stack.url("http", "/whoami"))
            .header("accept", "application/json"),
        client.get(stack.url("http", "/whoami?format=json")),
    ] {
        let who: Value = json_of(request).await;
        assert_eq!(who["local"], server.to_string());
        assert_eq!(who["port"], server.port());
        assert_eq!(who["service"], "http");
        assert_eq!(who["protocol"], "HTTP/1.1");
        assert!(who["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert!(who["connection_id"].as_u64().unwrap() >= 1);
    }
}

#[tokio::test]
async fn cleartext_http2_is_served_on_the_same_port() {
    let stack = http_stack(|_| {}).await;
    let client = crate::client_builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .get(stack.url("http", "/whoami?format=json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let who: Value = response.json().await.unwrap();
    assert_eq!(who["protocol"], "HTTP/2.0");
}

#[tokio::test]
async fn httpbin_echo_endpoints() {
    let stack = http_stack(|_| {}).await;
    let client = client();
    let base = stack.addr("http");

    let get = json_of(client.get(stack.url("http", "/get?a=1&a=2&b=x%20y"))).await;
    assert_eq!(get["args"], json!({"a": ["1", "2"], "b": "x y"}));
    assert_eq!(get["origin"], "127.0.0.1");
    assert_eq!(get["url"], format!("http://{base}/get?a=1&a=2&b=x%20y"));
    assert_eq!(get["headers"]["User-Agent"], "switchboard-tests/1");
    assert_eq!(get["headers"]["Host"], base.to_string());

    let headers = json_of(
        client
            .get(stack.url("http", "/headers"))
            .header("x-test-header", "one"),
    )
    .await;
    assert_eq!(headers["headers"]["X-Test-Header"], "one");

    assert_eq!(
        json_of(client.get(stack.url("http", "/ip"))).await,
        json!({"origin": "127.0.0.1"})
    );
    assert_eq!(
        json_of(client.get(stack.url("http", "/user-agent"))).await,
        json!({"user-agent": "switchboard-tests/1"})
    );
}

#[tokio::test]
async fn anything_reflects_method_body_json_and_form() {
    let stack = http_stack(|_| {}).await;
    let client = client();

    let json_post: Value = json_of(
        client
            .post(stack.url("http", "/anything/deep/path?q=1"))
            .json(&json!({"hello": "world"})),
    )
    .await;
    assert_eq!(json_post["method"], "POST");
    assert_eq!(json_post["json"], json!({"hello": "world"}));
    assert_eq!(json_post["data"], r#"{"hello":"world"}"#);
    assert_eq!(json_post["args"], json!({"q": "1"}));
    assert!(
        json_post["url"]
            .as_str()
            .unwrap()
            .ends_with("/anything/deep/path?q=1")
    );

    let form: Value = json_of(
        client
            .put(stack.url("http", "/anything"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=switchboard&port=80"),
    )
    .await;
    assert_eq!(form["method"], "PUT");
    assert_eq!(form["form"], json!({"name": "switchboard", "port": "80"}));
    assert_eq!(form["json"], Value::Null);

    let binary: Value = json_of(
        client
            .delete(stack.url("http", "/anything"))
            .body(vec![0xff, 0x00, 0xfe]),
    )
    .await;
    assert_eq!(binary["method"], "DELETE");
    assert_eq!(binary["data"], "data:application/octet-stream;base64,/wD+");
}

#[tokio::test]
async fn status_codes_on_demand() {
    let stack = http_stack(|_| {}).await;
    // A 3xx names a Location; this test looks at the first answer, not where it leads.
    let client = crate::first_hop_client();
    for code in [200u16, 201, 204, 301, 404, 418, 500, 503, 599] {
        let status = status_of(client.get(stack.url("http", &format!("/status/{code}")))).await;
        assert_eq!(status.as_u16(), code);
    }
    let post = client
        .post(stack.url("http", "/status/202"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::ACCEPTED);
    for bad in ["/status/99", "/status/600", "/status/abc"] {
        let status = status_of(client.get(stack.url("http", bad))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn delay_waits_and_refuses_more_than_its_cap() {
    let stack = http_stack(|c| c.httpbin.max_delay = Duration::from_millis(100)).await;
    let client = client();
    let response = client
        .get(stack.url("http", "/delay/0.05?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["args"], json!({"x": "1"}));

    // An hour is over the cap: refused at once, naming the key.
    let over = client
        .get(stack.url("http", "/delay/3600"))
        .send()
        .await
        .unwrap();
    crate::assert_answer(over, StatusCode::BAD_REQUEST, "max_delay").await;

    for bad in ["/delay/-1", "/delay/soon"] {
        let status = status_of(client.get(stack.url("http", bad))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn bytes_are_random_seedable_and_refused_over_the_cap() {
    let stack = http_stack(|c| c.httpbin.max_bytes = 1000).await;
    let client = client();
    let fetch = |path: &'static str| {
        let request = client.get(stack.url("http", path));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                response.headers()["content-type"],
                "application/octet-stream"
            );
            response.bytes().await.unwrap()
        }
    };
    let a = fetch("/bytes/64?seed=7").await;
    let b = fetch("/bytes/64?seed=7").await;
    let c = fetch("/bytes/64?seed=8").await;
    assert_eq!(a.len(), 64);
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "another seed, other bytes");
    assert_eq!(fetch("/bytes/1000").await.len(), 1000);
    let over = client
        .get(stack.url("http", "/bytes/1001"))
        .send()
        .await
        .unwrap();
    crate::assert_answer(over, StatusCode::BAD_REQUEST, "max_bytes").await;
}

#[tokio::test]
async fn unknown_paths_get_404() {
    let stack = http_stack(|_| {}).await;
    let response = crate::http_client()
        .get(stack.url("http", "/no/such/thing"))
        .send()
        .await
        .unwrap();
    crate::assert_answer(response, StatusCode::NOT_FOUND, "/no/such/thing").await;
}

#[tokio::test]
async fn body_over_the_limit_gets_413() {
    let stack = http_stack(|c| c.http.max_body_bytes = 1024).await;
    let client = client();
    let ok = client
        .post(stack.url("http", "/anything"))
        .body(vec![b'a'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    let declared = client
        .post(stack.url("http", "/anything"))
        .body(vec![b'a'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Without Content-Length (chunked), the limit applies while the body streams in.
    let mut stream = TcpStream::connect(stack.addr("http")).await.unwrap();
    let chunk = "a".repeat(800);
    let request = format!(
        "POST /anything HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn head_over_the_limit_gets_431() {
    let stack = http_stack(|c| c.http.max_header_bytes = 8192).await;
    let mut stream = TcpStream::connect(stack.addr("http")).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    // The server may stop reading and answer before the whole head is written.
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let stack = http_stack(|c| c.http.header_read_timeout = Duration::from_millis(200)).await;
    let mut stream = TcpStream::connect(stack.addr("http")).await.unwrap();
    // Half a request head, and then nothing: the connection must be closed, unanswered.
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_eq!(read_to_close(&mut stream).await, "");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let stack = http_stack(|c| c.http.keep_alive_timeout = Duration::from_millis(200)).await;

    // Connects and never sends a byte.
    let mut silent = TcpStream::connect(stack.addr("http")).await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, "");

    // One request on a keep-alive connection, then silence.
    let mut kept = TcpStream::connect(stack.addr("http")).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until(&mut kept, "ok\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(read_to_close(&mut kept).await, "");
}

#[tokio::test]
async fn a_slow_response_is_not_mistaken_for_idleness() {
    // The request takes longer than the idle timeout; it must still be answered.
    let stack = http_stack(|c| {
        c.http.keep_alive_timeout = Duration::from_millis(100);
    })
    .await;
    let response = client()
        .get(stack.url("http", "/delay/0.4"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
