//! The rest of Mailpit's API, against the field names of its swagger: read flags, tags, the
//! send API, the `/view/` pages, attachment checksums and thumbnails, the web UI settings,
//! Mailpit's events on a WebSocket, and the health routes test rigs wait on.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_testkit::Stack;
use tokio_tungstenite::tungstenite::Message;

use crate::{PATIENCE, http_client, json_of, send_mail};

fn api(stack: &Stack, path: &str) -> String {
    stack.url("http", path)
}

async fn stack() -> Stack {
    Stack::start(&["http", "smtp"]).await.unwrap()
}

async fn put(stack: &Stack, path: &str, body: Value) -> (StatusCode, String) {
    let response = http_client()
        .put(api(stack, path))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn read_flags_follow_viewing_and_put() {
    let stack = stack().await;
    let id = send_mail(
        stack.addr("smtp"),
        "a@example.test",
        &["b@example.test"],
        "Subject: flags\r\n\r\nx\r\n",
    )
    .await;
    let list = json_of(http_client().get(api(&stack, "/api/v1/messages"))).await;
    assert_eq!(list["messages"][0]["Read"], false);
    assert_eq!(list["unread"], 1);

    // Viewing a message through the API marks it read, and says so.
    let message = json_of(http_client().get(api(&stack, &format!("/api/v1/message/{id}")))).await;
    assert_eq!(message["Read"], true);
    let list = json_of(http_client().get(api(&stack, "/api/v1/messages"))).await;
    assert_eq!(
        (list["messages"][0]["Read"].clone(), list["unread"].clone()),
        (json!(true), json!(0))
    );

    let (status, body) = put(
        &stack,
        "/api/v1/messages",
        json!({"IDs": [id], "Read": false}),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let unread = json_of(http_client().get(api(&stack, "/api/v1/search?query=is:unread"))).await;
    assert_eq!(unread["messages_count"], 1);
    // No IDs: every message.
    put(&stack, "/api/v1/messages", json!({"Read": true})).await;
    assert_eq!(stack.mail().stats().unread, 0);
}

#[tokio::test]
async fn tags_from_the_header_then_set_renamed_searched_and_deleted() {
    let stack = stack().await;
    let a = send_mail(
        stack.addr("smtp"),
        "a@example.test",
        &["b@example.test"],
        "Subject: a\r\nX-Tags: invoices, Urgent\r\n\r\nx\r\n",
    )
    .await;
    let b = send_mail(
        stack.addr("smtp"),
        "a@example.test",
        &["b@example.test"],
        "Subject: b\r\n\r\nx\r\n",
    )
    .await;
    let tags = json_of(http_client().get(api(&stack, "/api/v1/tags"))).await;
    assert_eq!(tags, json!(["invoices", "Urgent"]));

    let (status, _) = put(
        &stack,
        "/api/v1/tags",
        json!({"Tags": ["later"], "IDs": [b]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let message = json_of(http_client().get(api(&stack, &format!("/api/v1/message/{b}")))).await;
    assert_eq!(message["Tags"], json!(["later"]));
    let found = json_of(http_client().get(api(&stack, "/api/v1/search?query=tag:urgent"))).await;
    assert_eq!(found["messages"][0]["ID"], a);
    assert_eq!(found["messages_count"], 1);
    let list = json_of(http_client().get(api(&stack, "/api/v1/messages"))).await;
    assert_eq!(list["tags"], json!(["invoices", "later", "Urgent"]));
    let info = json_of(http_client().get(api(&stack, "/api/v1/info"))).await;
    assert_eq!(info["Tags"]["invoices"], 1);

    let (status, _) = put(&stack, "/api/v1/tags/invoices", json!({"Name": "billing"})).await;
    assert_eq!(status, StatusCode::OK);
    let deleted = http_client()
        .delete(api(&stack, "/api/v1/tags/Urgent"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let tags = json_of(http_client().get(api(&stack, "/api/v1/tags"))).await;
    assert_eq!(tags, json!(["billing", "later"]));
    assert_eq!(stack.mail().len(), 2, "deleting a tag deletes no message");

    let (status, body) = put(&stack, "/api/v1/tags", json!({"IDs": [a]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Tags is required"), "{body}");
}

#[tokio::test]
async fn a_message_sent_over_the_api_is_stored_viewed_and_its_parts_served_safely() {
    let stack = stack().await;
    let png = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            300,
            200,
            image::Rgb([9, 99, 199]),
        ))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
        out.into_inner()
    };
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let sent = http_client()
        .post(api(&stack, "/api/v1/send"))
        .json(&json!({
            "From": {"Email": "app@example.test", "Name": "App"},
            "To": [{"Email": "alice@example.test"}],
            "Bcc": ["audit@example.test"],
            "Subject": "Your receipt",
            "Text": "Thanks for your order.",
            "HTML": "<p>Thanks</p><img src=\"cid:logo\"><script>alert(1)</script>",
            "Attachments": [
                {"Content": b64(&png), "Filename": "logo.png", "ContentType": "image/png", "ContentID": "logo"},
                {"Content": b64(b"a,b\n1,2\n"), "Filename": "receipt.csv", "ContentType": "text/csv"}
            ],
            "Tags": ["receipts"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    let id = sent.json::<Value>().await.unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_owned();

    let message = json_of(http_client().get(api(&stack, &format!("/api/v1/message/{id}")))).await;
    assert_eq!(message["Subject"], "Your receipt");
    assert_eq!(message["Tags"], json!(["receipts"]));
    assert_eq!(
        message["Envelope"]["RcptTo"],
        json!(["alice@example.test", "audit@example.test"])
    );
    let csv = &message["Attachments"][0];
    assert_eq!(csv["FileName"], "receipt.csv");
    assert_eq!(csv["Checksums"]["SHA256"], sha256_hex(b"a,b\n1,2\n"));
    assert_eq!(csv["Checksums"]["MD5"].as_str().unwrap().len(), 32);
    assert_eq!(csv["Checksums"]["SHA1"].as_str().unwrap().len(), 40);
    let logo = message["Inline"][0]["PartID"].as_str().unwrap().to_owned();

    // The text view, by `latest`.
    let text = http_client()
        .get(api(&stack, "/view/latest.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(text.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        text.text().await.unwrap().trim_end(),
        "Thanks for your order."
    );

    // The HTML view: sandboxed, its inline image pointing at the message's own part.
    let html = http_client()
        .get(api(&stack, &format!("/view/{id}.html")))
        .send()
        .await
        .unwrap();
    let csp = html.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("sandbox;"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(html.headers()["x-content-type-options"], "nosniff");
    let page = html.text().await.unwrap();
    assert!(
        page.contains(&format!("/api/v1/message/{id}/part/{logo}")),
        "{page}"
    );

    // Every part is a download, never rendered in place.
    let part = http_client()
        .get(api(&stack, &format!("/api/v1/message/{id}/part/{logo}")))
        .send()
        .await
        .unwrap();
    assert!(
        part.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(part.headers()["x-content-type-options"], "nosniff");
    assert_eq!(part.bytes().await.unwrap().as_ref(), png.as_slice());

    let thumb = http_client()
        .get(api(
            &stack,
            &format!("/api/v1/message/{id}/part/{logo}/thumb"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (180, 120));

    // A message without HTML has no HTML view.
    send_mail(
        stack.addr("smtp"),
        "a@example.test",
        &["b@example.test"],
        "Subject: t\r\n\r\nplain\r\n",
    )
    .await;
    let missing = http_client()
        .get(api(&stack, "/view/latest.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn bad_send_requests_and_non_json_deletes_are_refused_and_change_nothing() {
    let stack = stack().await;
    send_mail(
        stack.addr("smtp"),
        "a@example.test",
        &["b@example.test"],
        "Subject: keep\r\n\r\nx\r\n",
    )
    .await;
    for (body, reason) in [
        (
            json!({"To": [{"Email": "a@example.test"}]}),
            "From is required",
        ),
        (
            json!({"From": {"Email": "a@example.test"}}),
            "at least one recipient",
        ),
        (
            json!({"From": {"Email": "a@example.test"}, "To": [{"Email": "b@example.test"}], "Colour": 1}),
            "unknown field",
        ),
    ] {
        let response = http_client()
            .post(api(&stack, "/api/v1/send"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let error = response.json::<Value>().await.unwrap();
        assert!(error["Error"].as_str().unwrap().contains(reason), "{error}");
    }
    // A form-encoded DELETE (as some clients send) is not "no IDs, so everything".
    let response = http_client()
        .delete(api(&stack, "/api/v1/messages"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("ids=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = response.json::<Value>().await.unwrap();
    assert!(
        error["Error"].as_str().unwrap().contains("not the JSON"),
        "{error}"
    );
    assert_eq!(stack.mail().len(), 1);
}

#[tokio::test]
async fn health_routes_and_the_web_ui_settings() {
    let stack = Stack::start(&["http", "echo"]).await.unwrap();
    for path in ["/livez", "/readyz"] {
        let response = http_client().get(api(&stack, path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let webui = json_of(http_client().get(api(&stack, "/api/v1/webui"))).await;
    assert_eq!(webui["MessageRelay"]["Enabled"], false);
    assert_eq!(webui["SpamAssassin"], false);
    stack.close("echo").await.unwrap();
    let response = http_client()
        .get(api(&stack, "/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let why = response.text().await.unwrap();
    assert!(
        why.contains(&format!("{} (echo)", stack.addr("echo").port())),
        "{why}"
    );
}

/// The next text frame, as JSON.
async fn next_json<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("no WebSocket message")
            .expect("the WebSocket closed")
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn mailpit_events_arrive_on_a_websocket_and_server_sent_events_stay() {
    let stack = stack().await;
    let tcp = tokio::net::TcpStream::connect(stack.addr("http"))
        .await
        .unwrap();
    let url = format!("ws://{}/api/events", stack.addr("http"));
    let (mut socket, response) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    assert_eq!(response.status(), 101);

    let id = send_mail(
        stack.addr("smtp"),
        "a@example.test",
        &["b@example.test"],
        "Subject: live\r\n\r\nx\r\n",
    )
    .await;
    let new = next_json(&mut socket).await;
    assert_eq!(new["Type"], "new");
    assert_eq!(
        (new["Data"]["ID"].as_str(), new["Data"]["Subject"].as_str()),
        (Some(id.as_str()), Some("live"))
    );
    let stats = next_json(&mut socket).await;
    assert_eq!(stats["Type"], "stats");
    assert_eq!(
        (
            stats["Data"]["Total"].clone(),
            stats["Data"]["Unread"].clone()
        ),
        (json!(1), json!(1))
    );

    put(
        &stack,
        "/api/v1/messages",
        json!({"IDs": [id], "Read": true}),
    )
    .await;
    let update = next_json(&mut socket).await;
    assert_eq!(
        update,
        json!({"Type": "update", "Data": {"ID": id, "Read": true}})
    );
    next_json(&mut socket).await; // stats

    http_client()
        .delete(api(&stack, "/api/v1/messages"))
        .json(&json!({"IDs": [id]}))
        .send()
        .await
        .unwrap();
    let delete = next_json(&mut socket).await;
    assert_eq!(delete, json!({"Type": "delete", "Data": {"ID": id}}));

    // A plain GET on the same path still streams switchboard's own events.
    let sse = http_client()
        .get(api(&stack, "/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");

    // At shutdown the session says goodbye instead of hanging.
    let stopping = tokio::spawn(stack.shutdown());
    let goodbye = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the WebSocket was not closed at shutdown");
    assert_eq!(goodbye, Some(1001));
    let stopped = tokio::time::timeout(PATIENCE + Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.connections_cut, 0);
}

#[tokio::test]
async fn the_mailbox_page_is_served_with_a_strict_policy() {
    let stack = stack().await;
    let page = http_client()
        .get(api(&stack, "/mail"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("<script src=\"/assets/mail.js\" defer></script>"));
    for asset in ["/assets/mail.js", "/assets/mail.css"] {
        let response = http_client().get(api(&stack, asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    // The building directory links to it.
    let directory = http_client().get(api(&stack, "/")).send().await.unwrap();
    assert!(directory.text().await.unwrap().contains("href=\"/mail\""));
    // And it answers only to switchboard's own names, like the API it uses.
    let rebound = http_client()
        .get(api(&stack, "/mail"))
        .header("Host", "rebind.evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
}
