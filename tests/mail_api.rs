//! The mail API against Mailpit's published v1 definition: every field Mailpit documents is
//! there with its JSON type; plus /api/v1/wait.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use switchboard_testkit::Stack;

use crate::{PATIENCE, http_client, json_of, send_mail};

const RICH: &str = "From: Alice Example <alice@example.test>\r\n\
To: Bob <bob@example.test>\r\n\
Cc: Carol <carol@example.test>\r\n\
Reply-To: help@example.test\r\n\
Subject: Quarterly report\r\n\
Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <report-1@example.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"B\"\r\n\
\r\n\
--B\r\n\
Content-Type: multipart/alternative; boundary=\"A\"\r\n\
\r\n\
--A\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Numbers attached.\r\n\
--A\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Numbers <b>attached</b>.</p>\r\n\
--A--\r\n\
--B\r\n\
Content-Type: text/csv\r\n\
Content-Disposition: attachment; filename=\"q3.csv\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
cTEscTIscTMKMSwyLDMK\r\n\
--B--\r\n";

/// A stack with two messages in it: a rich one, then a plain one with a Bcc recipient.
async fn stack_with_mail() -> (Stack, String, String) {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let rich = send_mail(
        stack.addr("smtp"),
        "bounces@example.test",
        &["bob@example.test", "carol@example.test"],
        RICH,
    )
    .await;
    let plain = send_mail(
        stack.addr("smtp"),
        "noreply@shop.test",
        &["dave@example.test", "hidden@example.test"],
        "From: Shop <noreply@shop.test>\r\nTo: dave@example.test\r\nSubject: Your order\r\n\r\nThanks for ordering.\r\n",
    )
    .await;
    (stack, rich, plain)
}

fn api(stack: &Stack, path: &str) -> String {
    stack.url("http", path)
}

/// Every key Mailpit documents for the object, with the JSON type it documents.
fn assert_shape(value: &Value, fields: &[(&str, &str)]) {
    for (key, kind) in fields {
        let field = value
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {value}"));
        let ok = match *kind {
            "string" => field.is_string(),
            "number" => field.is_number(),
            "bool" => field.is_boolean(),
            "array" => field.is_array(),
            "object" => field.is_object(),
            "address" => {
                field.is_object() && field["Name"].is_string() && field["Address"].is_string()
            }
            "addresses" => field.as_array().is_some_and(|a| {
                a.iter()
                    .all(|x| x["Name"].is_string() && x["Address"].is_string())
            }),
            other => panic!("unknown kind {other}"),
        };
        assert!(ok, "{key} should be {kind}: {field}");
    }
}

const SUMMARY_FIELDS: &[(&str, &str)] = &[
    ("ID", "string"),
    ("MessageID", "string"),
    ("Read", "bool"),
    ("From", "address"),
    ("To", "addresses"),
    ("Cc", "addresses"),
    ("Bcc", "addresses"),
    ("ReplyTo", "addresses"),
    ("Subject", "string"),
    ("Created", "string"),
    ("Tags", "array"),
    ("Size", "number"),
    ("Attachments", "number"),
    ("Snippet", "string"),
];

#[tokio::test]
async fn listing_messages() {
    let (stack, rich, plain) = stack_with_mail().await;
    let client = http_client();
    let list = json_of(client.get(api(&stack, "/api/v1/messages"))).await;
    assert_shape(
        &list,
        &[
            ("total", "number"),
            ("unread", "number"),
            ("messages_count", "number"),
            ("start", "number"),
            ("tags", "array"),
            ("messages", "array"),
        ],
    );
    assert_eq!(
        (
            list["total"].as_u64(),
            list["unread"].as_u64(),
            list["messages_count"].as_u64()
        ),
        (Some(2), Some(2), Some(2))
    );
    let messages = list["messages"].as_array().unwrap();
    assert_eq!(messages[0]["ID"], plain, "newest first");
    assert_eq!(messages[1]["ID"], rich);
    for message in messages {
        assert_shape(message, SUMMARY_FIELDS);
    }
    let first = &messages[1];
    assert_eq!(
        first["From"],
        json!({"Name": "Alice Example", "Address": "alice@example.test"})
    );
    assert_eq!(
        first["To"],
        json!([{"Name": "Bob", "Address": "bob@example.test"}])
    );
    assert_eq!(first["ReplyTo"][0]["Address"], "help@example.test");
    assert_eq!(first["MessageID"], "report-1@example.test");
    assert_eq!(first["Attachments"], 1);
    assert_eq!(first["Snippet"], "Numbers attached.");
    assert_eq!(first["Size"], RICH.len());
    assert!(first["Created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        messages[0]["Bcc"],
        json!([{"Name": "", "Address": "hidden@example.test"}])
    );

    let page = json_of(client.get(api(&stack, "/api/v1/messages?start=1&limit=1"))).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["messages"][0]["ID"], rich);
    assert_eq!(page["start"], 1);
    assert_eq!(page["messages_count"], 2);

    let bad = client
        .get(api(&stack, "/api/v1/messages?limit=-3"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let error: Value = bad.json().await.unwrap();
    assert!(
        error["Error"].as_str().unwrap().contains("limit"),
        "{error}"
    );
}

#[tokio::test]
async fn one_message_its_source_headers_and_parts() {
    let (stack, rich, _) = stack_with_mail().await;
    let client = http_client();
    let message = json_of(client.get(api(&stack, &format!("/api/v1/message/{rich}")))).await;
    assert_shape(
        &message,
        &[
            ("ID", "string"),
            ("MessageID", "string"),
            ("From", "address"),
            ("To", "addresses"),
            ("Cc", "addresses"),
            ("Bcc", "addresses"),
            ("ReplyTo", "addresses"),
            ("ReturnPath", "string"),
            ("Subject", "string"),
            ("Date", "string"),
            ("Tags", "array"),
            ("Text", "string"),
            ("HTML", "string"),
            ("Size", "number"),
            ("Inline", "array"),
            ("Attachments", "array"),
        ],
    );
    assert_eq!(message["Subject"], "Quarterly report");
    assert_eq!(message["Date"], "2026-11-26T10:00:00.000Z");
    assert!(
        message["Text"]
            .as_str()
            .unwrap()
            .contains("Numbers attached.")
    );
    assert!(
        message["HTML"]
            .as_str()
            .unwrap()
            .contains("<b>attached</b>")
    );
    assert_eq!(message["Cc"][0]["Address"], "carol@example.test");
    assert_eq!(message["Envelope"]["MailFrom"], "bounces@example.test");
    assert_eq!(
        message["Envelope"]["RcptTo"],
        json!(["bob@example.test", "carol@example.test"])
    );
    let attachment = &message["Attachments"][0];
    assert_shape(
        attachment,
        &[
            ("PartID", "string"),
            ("FileName", "string"),
            ("ContentType", "string"),
            ("ContentID", "string"),
            ("Size", "number"),
        ],
    );
    assert_eq!(attachment["FileName"], "q3.csv");

    // Reading it marked it read.
    let list = json_of(client.get(api(&stack, "/api/v1/messages"))).await;
    assert_eq!(list["unread"], 1);

    let latest = json_of(client.get(api(&stack, "/api/v1/message/latest"))).await;
    assert_ne!(latest["ID"], rich);

    let raw = client
        .get(api(&stack, &format!("/api/v1/message/{rich}/raw")))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "text/plain");
    assert_eq!(raw.text().await.unwrap(), RICH);

    let headers =
        json_of(client.get(api(&stack, &format!("/api/v1/message/{rich}/headers")))).await;
    assert_eq!(headers["Subject"], json!(["Quarterly report"]));
    assert_eq!(headers["Message-Id"], json!(["<report-1@example.test>"]));
    assert!(
        headers
            .as_object()
            .unwrap()
            .values()
            .all(|v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
    );

    let part_id = attachment["PartID"].as_str().unwrap();
    let part = client
        .get(api(
            &stack,
            &format!("/api/v1/message/{rich}/part/{part_id}"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::OK);
    assert_eq!(part.headers()["content-type"], "text/csv");
    assert!(
        part.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("q3.csv")
    );
    assert_eq!(part.bytes().await.unwrap(), "q1,q2,q3\n1,2,3\n");

    for missing in [
        "/api/v1/message/NoSuchMessage",
        "/api/v1/message/NoSuchMessage/raw",
        &format!("/api/v1/message/{rich}/part/999"),
    ] {
        let response = client.get(api(&stack, missing)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
        let error: Value = response.json().await.unwrap();
        assert!(error["Error"].is_string());
    }
}

#[tokio::test]
async fn read_flags_and_deleting() {
    let (stack, rich, plain) = stack_with_mail().await;
    let client = http_client();
    let put = client
        .put(api(&stack, "/api/v1/messages"))
        .json(&json!({"IDs": [rich], "Read": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.text().await.unwrap(), "ok");
    assert_eq!(
        json_of(client.get(api(&stack, "/api/v1/messages"))).await["unread"],
        1
    );
    client
        .put(api(&stack, "/api/v1/messages"))
        .json(&json!({"Read": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(client.get(api(&stack, "/api/v1/messages"))).await["unread"],
        0
    );

    let bad = client
        .delete(api(&stack, "/api/v1/messages"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    client
        .delete(api(&stack, "/api/v1/messages"))
        .json(&json!({"IDs": [plain]}))
        .send()
        .await
        .unwrap();
    let list = json_of(client.get(api(&stack, "/api/v1/messages"))).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["messages"][0]["ID"], rich);

    let all = client
        .delete(api(&stack, "/api/v1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), StatusCode::OK);
    assert_eq!(
        json_of(client.get(api(&stack, "/api/v1/messages"))).await["total"],
        0
    );
}

#[tokio::test]
async fn searching() {
    let (stack, rich, plain) = stack_with_mail().await;
    let client = http_client();
    let ids = |value: Value| -> Vec<String> {
        value["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["ID"].as_str().unwrap().to_owned())
            .collect()
    };
    let (rich, plain) = (rich.as_str(), plain.as_str());
    let search = |query: &str| {
        let url = api(&stack, "/api/v1/search");
        let request = client.get(url).query(&[("query", query)]);
        async move { json_of(request).await }
    };
    assert_eq!(ids(search("from:alice").await), [rich]);
    assert_eq!(ids(search("to:dave@example.test").await), [plain]);
    assert_eq!(ids(search("subject:\"your order\"").await), [plain]);
    assert_eq!(
        ids(search("numbers").await),
        [rich],
        "free text reaches the body"
    );
    assert_eq!(ids(search("-from:alice").await), [plain]);
    assert_eq!(ids(search("has:attachment").await), [rich]);
    assert_eq!(search("nothing-like-this").await["messages_count"], 0);

    let bad = client
        .get(api(&stack, "/api/v1/search?query=is:starred"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let missing = client
        .get(api(&stack, "/api/v1/search"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);

    client
        .delete(api(&stack, "/api/v1/search"))
        .query(&[("query", "from:shop")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        ids(json_of(client.get(api(&stack, "/api/v1/messages"))).await),
        [rich]
    );
}

#[tokio::test]
async fn info_has_mailpit_s_shape() {
    let (stack, _, _) = stack_with_mail().await;
    let info = json_of(http_client().get(api(&stack, "/api/v1/info"))).await;
    assert_shape(
        &info,
        &[
            ("Version", "string"),
            ("LatestVersion", "string"),
            ("Database", "string"),
            ("DatabaseSize", "number"),
            ("Messages", "number"),
            ("Unread", "number"),
            ("Tags", "object"),
            ("RuntimeStats", "object"),
        ],
    );
    assert_shape(
        &info["RuntimeStats"],
        &[
            ("Uptime", "number"),
            ("Memory", "number"),
            ("MessagesDeleted", "number"),
            ("SMTPAccepted", "number"),
            ("SMTPAcceptedSize", "number"),
            ("SMTPRejected", "number"),
            ("SMTPIgnored", "number"),
        ],
    );
    assert_eq!(info["Messages"], 2);
    assert_eq!(info["RuntimeStats"]["SMTPAccepted"], 2);
    assert_eq!(info["Database"], "memory");
    assert!(info["RuntimeStats"]["Memory"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn waiting_for_a_message_without_polling() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let client: Client = http_client();
    let url = api(&stack, "/api/v1/wait");
    let waiting = tokio::spawn(
        client
            .get(&url)
            .query(&[("query", "to:late@example.test"), ("timeout", "30s")])
            .send(),
    );
    // Whether the message lands before or after the request is registered does not
    // matter: a message already stored matches too.
    send_mail(
        stack.addr("smtp"),
        "a@x.test",
        &["late@example.test"],
        "Subject: finally\r\n\r\nhere\r\n",
    )
    .await;
    let found: Value = tokio::time::timeout(PATIENCE, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["Subject"], "finally");

    let none = client
        .get(&url)
        .query(&[("query", "subject:never"), ("timeout", "200ms")])
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
    let bad = client
        .get(&url)
        .query(&[("timeout", "soon")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
