//! httpbin's endpoints whose answer is about the wire: content codings, Digest challenges,
//! answers spread over time, trailers and WebSockets, each met by a client that speaks it
//! (reqwest's decoders, an independent Digest implementation, hyper's own client, tungstenite).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::{StatusCode, header};
use serde_json::Value;
use switchboard_testkit::Stack;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::http::http_stack;
use crate::tls_client_config;

#[tokio::test]
async fn each_coding_is_sent_whatever_the_client_accepts_and_decodes_with_a_real_decoder() {
    let stack = Stack::start(&["http"]).await.unwrap();
    // Decoding off: the coding is visible as sent.
    let raw = crate::client_builder()
        .no_gzip()
        .no_deflate()
        .no_brotli()
        .no_zstd()
        .build()
        .unwrap();
    let decoding = crate::http_client();
    for (path, token, key) in [
        ("/gzip", "gzip", "gzipped"),
        ("/deflate", "deflate", "deflated"),
        ("/brotli", "br", "brotli"),
        ("/zstd", "zstd", "zstd"),
    ] {
        let sent = raw.get(stack.url("http", path)).send().await.unwrap();
        assert_eq!(sent.headers()[header::CONTENT_ENCODING], token, "{path}");
        let bytes = sent.bytes().await.unwrap();
        assert!(
            serde_json::from_slice::<Value>(&bytes).is_err(),
            "{path} went out uncompressed"
        );

        let decoded = crate::json_of(
            decoding
                .get(stack.url("http", path))
                .header("x-marker", "m1"),
        )
        .await;
        assert_eq!(decoded[key], true, "{path}");
        assert_eq!(decoded["method"], "GET", "{path}");
        assert_eq!(decoded["headers"]["X-Marker"], "m1", "{path}");
    }
}

/// Ask `path`, answer its Digest challenge as the `digest_auth` crate computes it, and return
/// the second answer.
async fn digest_login(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let (answer, _) = digest_answer(client, url, path, (user, password)).await;
    client
        .get(url)
        .header(header::AUTHORIZATION, answer)
        .send()
        .await
        .unwrap()
}

/// The answer to `url`'s challenge for `user` and `password`, as the `digest_auth` crate
/// computes it for a GET of `path`, and the nonce it answered.
async fn digest_answer(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    (user, password): (&str, &str),
) -> (String, String) {
    let challenge = client.get(url).send().await.unwrap();
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let header = challenge.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    let mut prompt = digest_auth::parse(&header).unwrap();
    // A GET's body is empty: given, so that auth-int (which hashes it) can be answered.
    let context = digest_auth::AuthContext::new_with_method(
        user,
        password,
        path,
        Some(&b""[..]),
        digest_auth::HttpMethod::GET,
    );
    let nonce = prompt.nonce.clone();
    (prompt.respond(&context).unwrap().to_header_string(), nonce)
}

#[tokio::test]
async fn digest_auth_takes_an_independent_clients_answer_for_each_algorithm() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let client = crate::http_client();
    for (path, algorithm) in [
        ("/digest-auth/auth/alice/s3cret", "MD5"),
        ("/digest-auth/auth/alice/s3cret/MD5", "MD5"),
        ("/digest-auth/auth/alice/s3cret/SHA-256", "SHA-256"),
        ("/digest-auth/auth/alice/s3cret/SHA-512-256", "SHA-512-256"),
        ("/digest-auth/auth-int/alice/s3cret/SHA-256", "SHA-256"),
    ] {
        let url = stack.url("http", path);
        let challenge = client.get(&url).send().await.unwrap();
        let offered = challenge.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(offered.starts_with("Digest "), "{offered}");
        assert!(
            offered.contains(&format!("algorithm={algorithm}")),
            "{offered}"
        );

        let ok = digest_login(&client, &url, path, "alice", "s3cret").await;
        assert_eq!(ok.status(), StatusCode::OK, "{path}");
        let body: Value = ok.json().await.unwrap();
        assert_eq!(
            (body["authenticated"].clone(), body["user"].clone()),
            (true.into(), "alice".into())
        );

        let wrong = digest_login(&client, &url, path, "alice", "guess").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(wrong.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}

#[tokio::test]
async fn drip_sends_its_bytes_over_the_duration_it_was_given() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let client = crate::http_client();
    let started = Instant::now();
    let response = client
        .get(stack.url("http", "/drip?numbytes=5&duration=0.4&delay=0.1&code=202"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()[header::CONTENT_LENGTH], "5");
    assert_eq!(&response.bytes().await.unwrap()[..], b"*****");
    // The last byte is not due before delay + duration: a lower bound cannot be flaky.
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn drip_and_sse_caps_name_their_keys() {
    let stack = http_stack(|c| {
        c.httpbin.max_delay = Duration::from_secs(1);
        c.httpbin.max_bytes = 8;
        c.httpbin.max_stream_lines = 3;
    })
    .await;
    let client = crate::http_client();
    let get = |path: &str| client.get(stack.url("http", path)).send();
    let too_long = get("/drip?numbytes=1&delay=0.5&duration=0.6")
        .await
        .unwrap();
    crate::assert_answer(too_long, StatusCode::BAD_REQUEST, "[http] max_delay").await;
    let too_many = get("/drip?numbytes=9&duration=0&delay=0").await.unwrap();
    crate::assert_answer(too_many, StatusCode::BAD_REQUEST, "[http] max_bytes").await;
    let within = get("/drip?numbytes=8&duration=0&delay=0").await.unwrap();
    assert_eq!(within.bytes().await.unwrap().len(), 8);
    let events = get("/sse?count=4&duration=0").await.unwrap();
    crate::assert_answer(events, StatusCode::BAD_REQUEST, "[http] max_stream_lines").await;
    let late = get("/sse?count=1&delay=1s&duration=500ms").await.unwrap();
    crate::assert_answer(late, StatusCode::BAD_REQUEST, "[http] max_delay").await;
}

#[tokio::test]
async fn sse_sends_numbered_ping_events_in_the_event_stream_format() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let response = crate::http_client()
        .get(stack.url("http", "/sse?count=3&duration=0.2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let text = response.text().await.unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 3, "{text:?}");
    for (id, event) in events.iter().enumerate() {
        let fields: Vec<(&str, &str)> = event
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k, v.trim_start()))
            .collect();
        let field = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        assert_eq!(field("id"), Some(id.to_string().as_str()), "{event:?}");
        assert_eq!(field("event"), Some("ping"), "{event:?}");
        let data: Value = serde_json::from_str(field("data").unwrap()).unwrap();
        assert_eq!(data["id"], id);
        assert!(data["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    }
}

/// GET `/trailers?x-a=1&x-b=two` on a hyper client connection; returns the `Trailer` header
/// and the trailers that followed the body.
async fn trailers_over<F>(send: F) -> (String, hyper::HeaderMap)
where
    F: AsyncFnOnce(hyper::Request<Empty<Bytes>>) -> hyper::Response<hyper::body::Incoming>,
{
    let request = hyper::Request::get("/trailers?x-a=1&x-b=two")
        .header(header::HOST, "localhost")
        .header(header::TE, "trailers")
        .body(Empty::new())
        .unwrap();
    let response = send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let declared = response.headers()[header::TRAILER]
        .to_str()
        .unwrap()
        .to_owned();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let json: Value = serde_json::from_slice(&collected.to_bytes()).unwrap();
    assert_eq!(json["args"]["x-b"], "two");
    (declared, trailers)
}

#[tokio::test]
async fn trailers_follow_the_body_on_http1_and_http2() {
    let stack = Stack::start(&["http", "https"]).await.unwrap();

    let tcp = TcpStream::connect(stack.addr("http")).await.unwrap();
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (declared, trailers) =
        trailers_over(async |request| h1.send_request(request).await.unwrap()).await;
    assert_eq!(declared, "x-a, x-b");
    assert_eq!(
        (&trailers["x-a"], &trailers["x-b"]),
        (&"1".parse().unwrap(), &"two".parse().unwrap())
    );

    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls_client_config(
        Some(stack.ca_pem()),
        &[b"h2"],
    )));
    let tcp = TcpStream::connect(stack.addr("https")).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tls.connect(name, tcp).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (declared, trailers) = trailers_over(async |mut request| {
        *request.uri_mut() = "https://localhost/trailers?x-a=1&x-b=two".parse().unwrap();
        h2.send_request(request).await.unwrap()
    })
    .await;
    assert_eq!(declared, "x-a, x-b");
    assert_eq!(trailers["x-a"], "1");
    assert_eq!(trailers["x-b"], "two");
}

type Socket = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn open_echo(stack: &Stack) -> Socket {
    let tcp = TcpStream::connect(stack.addr("http")).await.unwrap();
    let url = format!("ws://{}/websocket/echo", stack.addr("http"));
    let (socket, response) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    assert_eq!(response.status(), 101);
    socket
}

/// The close frame the server ends with (skipping anything sent before it).
async fn close_code(socket: &mut Socket) -> (CloseCode, String) {
    while let Some(frame) = socket.next().await {
        if let Message::Close(Some(frame)) = frame.unwrap() {
            return (frame.code, frame.reason.to_string());
        }
    }
    panic!("the socket ended without a close frame");
}

#[tokio::test]
async fn websocket_echo_sends_each_message_back_and_closes_one_over_the_size_cap() {
    let stack = http_stack(|c| c.httpbin.max_websocket_message_bytes = 1024).await;
    let mut socket = open_echo(&stack).await;
    for message in [
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::text("é".repeat(512)),
    ] {
        socket.send(message.clone()).await.unwrap();
        assert_eq!(socket.next().await.unwrap().unwrap(), message);
    }
    socket.send(Message::binary(vec![7u8; 1025])).await.unwrap();
    let (code, reason) = close_code(&mut socket).await;
    assert_eq!(code, CloseCode::Size);
    assert!(reason.contains("max_websocket_message_bytes"), "{reason}");
}

/// A message cut into frames that are each under the cap is still one message over it.
#[tokio::test]
async fn websocket_echo_counts_a_fragmented_message_whole() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let stack = http_stack(|c| c.httpbin.max_websocket_message_bytes = 1024).await;
    let mut socket = open_echo(&stack).await;
    let first = Frame::message(vec![1u8; 600], OpCode::Data(Data::Binary), false);
    let last = Frame::message(vec![2u8; 600], OpCode::Data(Data::Continue), true);
    socket.send(Message::Frame(first)).await.unwrap();
    socket.send(Message::Frame(last)).await.unwrap();
    let (code, reason) = close_code(&mut socket).await;
    assert_eq!(code, CloseCode::Size);
    assert!(reason.contains("max_websocket_message_bytes"), "{reason}");
}

#[tokio::test]
async fn websocket_echo_sessions_end_at_their_time_limit() {
    let stack = http_stack(|c| c.httpbin.max_websocket_duration = Duration::from_millis(200)).await;
    let mut socket = open_echo(&stack).await;
    let (code, reason) = close_code(&mut socket).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("max_websocket_duration"), "{reason}");
}

/// The user and password of the Digest routes these tests ask.
const ALICE: (&str, &str) = ("alice", "s3cret");

/// The cookies a response sets, as `name=value`.
fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect()
}

/// Issue 43, items 3 and 4: httpbin's Digest routes keep their state in cookies, and
/// clients' test suites check it: `stale_after` counts uses down and a spent one, or a
/// nonce used twice, gets `stale=TRUE`; every challenge sets `fake=fake_value`;
/// `?require-cookie` challenges a request without cookies.
#[tokio::test]
async fn digest_auth_keeps_httpbins_state_in_cookies() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let client = crate::http_client();
    let path = "/digest-auth/auth/alice/s3cret/MD5/2";
    let url = stack.url("http", path);

    let challenge = client.get(&url).send().await.unwrap();
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        set_cookies(&challenge),
        ["stale_after=2", "fake=fake_value"]
    );
    let offered = challenge.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap();
    assert!(offered.ends_with("stale=FALSE"), "{offered}");

    let login = |answer: String, cookie: &'static str| {
        client
            .get(&url)
            .header(header::AUTHORIZATION, answer)
            .header(header::COOKIE, cookie)
            .send()
    };
    let (answer, _) = digest_answer(&client, &url, path, ALICE).await;
    let ok = login(answer, "stale_after=2; fake=fake_value")
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(set_cookies(&ok), ["fake=fake_value", "stale_after=1"]);

    let (answer, nonce) = digest_answer(&client, &url, path, ALICE).await;
    let spent = login(answer, "stale_after=0").await.unwrap();
    assert_eq!(spent.status(), StatusCode::UNAUTHORIZED);
    let offered = spent.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(offered.ends_with("stale=TRUE"), "{offered}");
    assert!(set_cookies(&spent).contains(&format!("last_nonce={nonce}")));

    let (answer, nonce) = digest_answer(&client, &url, path, ALICE).await;
    let twice = client
        .get(&url)
        .header(header::AUTHORIZATION, answer)
        .header(header::COOKIE, format!("last_nonce={nonce}"))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::UNAUTHORIZED);
    let offered = twice.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(offered.ends_with("stale=TRUE"), "{offered}");

    let strict_path = "/digest-auth/auth/alice/s3cret?require-cookie=1";
    let strict = stack.url("http", strict_path);
    let (answer, _) = digest_answer(&client, &strict, strict_path, ALICE).await;
    let no_cookie = client
        .get(&strict)
        .header(header::AUTHORIZATION, answer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(no_cookie.status(), StatusCode::UNAUTHORIZED);
    let with_cookie = client
        .get(&strict)
        .header(header::AUTHORIZATION, answer)
        .header(header::COOKIE, "fake=fake_value")
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);

    let bad = client
        .get(stack.url("http", "/digest-auth/auth/alice/s3cret/MD5/soon"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// httpbin's servers write reason phrases in capitals, and clients' suites look for them
/// (HTTPie's checks `HTTP/1.1 302 FOUND`); switchboard's own routes keep the usual ones.
#[tokio::test]
async fn httpbins_reason_phrases_are_in_capitals() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let http = stack.addr("http");
    for (path, line) in [
        ("/status/404", "HTTP/1.1 404 NOT FOUND"),
        ("/redirect/1", "HTTP/1.1 302 FOUND"),
        ("/basic-auth/a/b", "HTTP/1.1 401 UNAUTHORIZED"),
        ("/status/418", "HTTP/1.1 418 I'M A TEAPOT"),
        ("/get", "HTTP/1.1 200 OK"),
        ("/no-such-route", "HTTP/1.1 404 Not Found"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(http).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
            .await
            .unwrap();
        let answer = crate::read_to_close(&mut stream).await;
        assert!(
            answer.starts_with(&format!("{line}\r\n")),
            "{path}: {answer}"
        );
    }
}

/// A body sent with a `Content-Encoding` (HTTPie's `--compress`) is not decoded, so it is
/// never read: a form's fields stay empty, as httpbin leaves them (it used to be a 400 for a
/// multipart stream that could not be read); any other body comes back as `data`.
#[tokio::test]
async fn an_encoded_body_is_not_read_as_a_form() {
    let stack = Stack::start(&["http"]).await.unwrap();
    let compressed: &[u8] = &[0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let response = crate::http_client()
        .post(stack.url("http", "/post"))
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=xyz")
        .header(header::CONTENT_ENCODING, "deflate")
        .body(compressed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let empty = serde_json::json!({});
    assert_eq!(
        (&body["form"], &body["files"], body["data"].as_str()),
        (&empty, &empty, Some("")),
        "{body}"
    );
    let raw: Value = crate::json_of(
        crate::http_client()
            .post(stack.url("http", "/post"))
            .header(header::CONTENT_ENCODING, "deflate")
            .body(compressed),
    )
    .await;
    let data = raw["data"].as_str().unwrap_or_default();
    assert!(
        data.starts_with("data:application/octet-stream;base64,"),
        "{raw}"
    );
}
