//! Caps under a crowd: 1,000 clients at once ask httpbin and a stub for the most each cap
//! allows (bytes, lines, links, waits), and a flood of mail and stub requests meets the
//! mail store's and the journal's caps. Every answer stays within its cap, and the server
//! still answers afterwards.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use switchboard_testkit::Stack;

use crate::{http_client, json_of, send_mail};

const MAX_BYTES: usize = 4096;
const MAX_LINES: u32 = 10;
const MAX_LINKS: u32 = 20;
const MAX_DELAY: Duration = Duration::from_millis(200);
const CLIENTS: usize = 1000;

async fn capped_stack() -> Stack {
    Stack::builder()
        // Room for the crowd: the default (512 a port) would turn half of it away with 503.
        .configure(|c| c.supervisor.max_connections = 2 * CLIENTS)
        .service("http")
        .service("stubs")
        .service("smtp")
        .configure(|c| {
            c.httpbin.max_bytes = MAX_BYTES;
            c.httpbin.max_stream_lines = MAX_LINES;
            c.httpbin.max_links = MAX_LINKS;
            c.httpbin.max_delay = MAX_DELAY;
            c.mail.max_messages = 20;
            c.stubs.max_journal = 50;
        })
        .start()
        .await
        .unwrap()
}

/// What one client asks for, and how long a body the answer may have at most.
fn ask(i: usize) -> (&'static str, String, usize) {
    let delay = MAX_DELAY.as_secs_f64();
    match i % 8 {
        0 => ("http", format!("/bytes/{MAX_BYTES}"), MAX_BYTES),
        1 => ("http", format!("/stream-bytes/{MAX_BYTES}"), MAX_BYTES),
        2 => ("http", format!("/range/{MAX_BYTES}"), MAX_BYTES),
        3 => ("http", format!("/stream/{MAX_LINES}"), 64 * 1024),
        4 => ("http", format!("/links/{MAX_LINKS}/0"), 64 * 1024),
        5 => ("http", format!("/delay/{delay}"), 64 * 1024),
        6 => (
            "http",
            format!("/drip?numbytes={MAX_BYTES}&duration=0&delay=0"),
            MAX_BYTES,
        ),
        _ => ("stubs", "/slow".to_owned(), 4),
    }
}

#[tokio::test]
async fn a_thousand_clients_asking_for_the_most_get_no_more_than_the_caps() {
    let stack = capped_stack().await;
    let client = http_client();
    // A stub that asks to wait for about 30 years: it waits `max_delay`.
    let stub = client
        .post(stack.url("stubs", "/__admin/mappings"))
        .json(&json!({"request": {"url": "/slow"},
                      "response": {"status": 200, "body": "late",
                                   "fixedDelayMilliseconds": 1_000_000_000_000u64}}))
        .send()
        .await
        .unwrap();
    assert_eq!(stub.status(), StatusCode::CREATED);

    // Within PATIENCE: a cap that does not hold (the stub waiting its 30 years) fails here.
    let answers = join_all((0..CLIENTS).map(|i| {
        let (service, path, most) = ask(i);
        let request = client.get(stack.url(service, &path)).send();
        async move {
            let response = request.await.unwrap_or_else(|e| panic!("{path}: {e}"));
            let status = response.status();
            let body = response.bytes().await.unwrap();
            (path, most, status, body)
        }
    }));
    let answers = tokio::time::timeout(crate::PATIENCE, answers)
        .await
        .expect("not every client was answered");
    for (path, most, status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{path}");
        assert!(body.len() <= *most, "{path}: {} bytes", body.len());
    }
    let count = |path: &str, what: &str| {
        let (_, _, _, body) = answers.iter().find(|(p, ..)| p == path).unwrap();
        String::from_utf8_lossy(body).matches(what).count()
    };
    assert_eq!(
        count(&format!("/stream/{MAX_LINES}"), "\n"),
        MAX_LINES as usize
    );
    assert!(count(&format!("/links/{MAX_LINKS}/0"), "<a ") < MAX_LINKS as usize);
    for (path, _, _, body) in &answers {
        if path.starts_with("/bytes/") || path.starts_with("/drip") {
            assert_eq!(body.len(), MAX_BYTES, "{path}");
        }
        if path == "/slow" {
            assert_eq!(&body[..], b"late");
        }
    }

    // One more than each cap is refused, not cut short.
    for path in [
        format!("/bytes/{}", MAX_BYTES + 1),
        format!("/stream-bytes/{}", MAX_BYTES + 1),
        format!("/range/{}", MAX_BYTES + 1),
        format!("/stream/{}", MAX_LINES + 1),
        format!("/links/{}/0", MAX_LINKS + 1),
        format!("/delay/{}", MAX_DELAY.as_secs_f64() + 1.0),
        format!("/drip?numbytes={}&duration=0&delay=0", MAX_BYTES + 1),
    ] {
        let over = client.get(stack.url("http", &path)).send().await.unwrap();
        assert_eq!(over.status(), StatusCode::BAD_REQUEST, "{path}");
    }

    // The journal kept its newest 50 of the 125 stub requests.
    let journal = json_of(client.get(stack.url("stubs", "/__admin/requests"))).await;
    assert_eq!(
        journal["requests"].as_array().unwrap().len(),
        50,
        "{journal}"
    );
    let health = client
        .get(stack.url("http", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_flood_of_mail_leaves_the_newest_within_max_messages() {
    let stack = capped_stack().await;
    let smtp = stack.addr("smtp");
    join_all((0..200).map(|i| async move {
        let body = format!("Subject: flood {i}\r\n\r\nmessage {i}\r\n");
        send_mail(smtp, "flood@example.test", &["dev@example.test"], &body).await
    }))
    .await;
    // The last one sent after the flood is among those kept.
    send_mail(
        smtp,
        "flood@example.test",
        &["dev@example.test"],
        "Subject: after the flood\r\n\r\nlast\r\n",
    )
    .await;
    let list = json_of(http_client().get(stack.url("http", "/api/v1/messages"))).await;
    assert_eq!(list["total"], 20, "{list}");
    assert_eq!(list["messages"][0]["Subject"], "after the flood");
}
