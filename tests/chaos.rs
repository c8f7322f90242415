//! SMTP chaos triggers (Mailpit's model): MAIL, RCPT, AUTH or the message refused with a
//! chosen code, set at start-up or through `PUT /api/v1/chaos`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_testkit::Config;
use switchboard_testkit::Stack;

use crate::{Chat, http_client, json_of};

#[tokio::test]
async fn triggers_set_at_run_time_refuse_with_their_code() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let url = stack.url("http", "/api/v1/chaos");
    let client = http_client();
    let off = json_of(client.get(&url)).await;
    assert_eq!(off["Sender"], json!({"ErrorCode": 0, "Probability": 0}));

    let set = json_of(
        client
            .put(&url)
            .json(&json!({"Sender": {"ErrorCode": 451, "Probability": 100}})),
    )
    .await;
    assert_eq!(set["Sender"]["ErrorCode"], 451);
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    chat.cmd("EHLO c").await;
    assert_eq!(
        chat.cmd("MAIL FROM:<a@x.test>").await,
        "451 4.0.0 Sender rejected by a chaos trigger (a switchboard test fault)"
    );

    // The message itself, after its final dot: refused and not stored.
    json_of(
        client
            .put(&url)
            .json(&json!({"Data": {"ErrorCode": 554, "Probability": 100}})),
    )
    .await;
    assert!(
        chat.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"),
        "Sender is off again"
    );
    assert!(chat.cmd("RCPT TO:<b@x.test>").await.starts_with("250"));
    assert!(chat.cmd("DATA").await.starts_with("354"));
    chat.send("Subject: doomed\r\n\r\nx\r\n").await;
    assert_eq!(
        chat.cmd(".").await,
        "554 5.0.0 Message rejected by a chaos trigger (a switchboard test fault)"
    );
    assert!(stack.mail().is_empty());

    let bad = client
        .put(&url)
        .json(&json!({"Recipient": {"ErrorCode": 250, "Probability": 50}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let error: Value = bad.json().await.unwrap();
    assert!(
        error["Error"].as_str().unwrap().contains("Recipient"),
        "{error}"
    );
}

#[tokio::test]
async fn triggers_from_the_config_and_reset_restores_them() {
    let config = Config::from_toml(
        r#"
        [[port]]
        port = 0
        service = "smtp"
        bind = ["127.0.0.1"]

        [[port]]
        port = 0
        service = "http"
        bind = ["127.0.0.1"]

        [smtp.chaos]
        recipient = { error_code = 550, probability = 100 }
        "#,
        "test.toml",
    )
    .unwrap();
    let stack = Stack::builder()
        .configure(|c| *c = config)
        .start()
        .await
        .unwrap();
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    chat.cmd("EHLO c").await;
    chat.cmd("MAIL FROM:<a@x.test>").await;
    assert!(
        chat.cmd("RCPT TO:<b@x.test>")
            .await
            .starts_with("550 5.0.0 Recipient rejected")
    );

    // Switched off at run time, and back to the configured triggers by reset.
    stack.chaos().set(Default::default()).unwrap();
    assert!(chat.cmd("RCPT TO:<b@x.test>").await.starts_with("250"));
    stack.reset().await.unwrap();
    assert!(chat.cmd("RCPT TO:<c@x.test>").await.starts_with("550"));
}

#[tokio::test]
async fn first_fails_exactly_that_many_recipients_then_every_one_passes() {
    let stack = Stack::start(&["http", "smtp"]).await.unwrap();
    let smtp = stack.addr("smtp").port();
    let mut seen = crate::Seen::new(&stack);
    let url = stack.url("http", "/api/v1/chaos");
    let client = http_client();
    // Greylisting: the first two RCPTs are deferred, as a real server defers a new sender.
    let set = json_of(
        client
            .put(&url)
            .json(&json!({"Recipient": {"ErrorCode": 451, "First": 2}})),
    )
    .await;
    assert_eq!(set["Recipient"]["First"], 2);
    let detail = crate::fault_event(&mut seen, smtp, "chaos Recipient", true).await;
    assert!(
        detail.contains("next 2 Recipient command(s) fail with 451"),
        "{detail}"
    );

    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    chat.cmd("EHLO c").await;
    assert!(chat.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"));
    for _ in 0..2 {
        assert!(
            chat.cmd("RCPT TO:<b@x.test>")
                .await
                .starts_with("451 4.0.0"),
            "deferred"
        );
    }
    assert_eq!(
        json_of(client.get(&url)).await["Recipient"],
        json!({"ErrorCode": 451, "Probability": 0}),
        "used up: Mailpit's shape again"
    );
    let reason = crate::fault_event(&mut seen, smtp, "chaos Recipient", false).await;
    assert!(reason.contains("First commands have failed"), "{reason}");
    for _ in 0..5 {
        assert!(chat.cmd("RCPT TO:<b@x.test>").await.starts_with("250"));
    }
}
