//! A real SMTP client library (lettre, tokio, rustls) against the SMTP service: plain,
//! STARTTLS, AUTH PLAIN and LOGIN, several recipients, UTF-8 addresses, an attachment; each
//! message read back through the mail API.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};
use switchboard_testkit::Stack;

use crate::{http_client, json_of};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

async fn stack() -> Stack {
    Stack::start(&["http", "smtp"]).await.unwrap()
}

fn plain(stack: &Stack) -> Transport {
    Transport::builder_dangerous("127.0.0.1")
        .port(stack.addr("smtp").port())
        .build()
}

fn starttls(stack: &Stack) -> lettre::transport::smtp::AsyncSmtpTransportBuilder {
    let ca = Certificate::from_pem(stack.ca_pem().as_bytes()).unwrap();
    // Only switchboard's CA is trusted, as a client configured for it would.
    let tls = TlsParameters::builder("localhost".to_owned())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(ca)
        .build_rustls()
        .unwrap();
    Transport::builder_dangerous("127.0.0.1")
        .port(stack.addr("smtp").port())
        .tls(Tls::Required(tls))
}

fn mailbox(text: &str) -> Mailbox {
    text.parse().unwrap()
}

/// The message the API shows for a queued message ID.
async fn read_back(stack: &Stack, response: &lettre::transport::smtp::response::Response) -> Value {
    let text = response.message().collect::<Vec<_>>().join(" ");
    let id = text.rsplit(' ').next().unwrap().to_owned();
    json_of(http_client().get(stack.url("http", &format!("/api/v1/message/{id}")))).await
}

#[tokio::test]
async fn plain_smtp_to_several_recipients() {
    let stack = stack().await;
    let email = Message::builder()
        .from(mailbox("App <app@example.test>"))
        .to(mailbox("Ann <ann@example.test>"))
        .to(mailbox("ben@example.test"))
        .cc(mailbox("cat@example.test"))
        .bcc(mailbox("dan@example.test"))
        .subject("Welcome aboard")
        .body("Hello from the app.".to_owned())
        .unwrap();
    let response = plain(&stack).send(email).await.unwrap();
    assert_eq!(response.code().to_string(), "250");
    let message = read_back(&stack, &response).await;
    assert_eq!(message["Subject"], "Welcome aboard");
    assert_eq!(
        message["From"],
        json!({"Name": "App", "Address": "app@example.test"})
    );
    assert_eq!(message["To"].as_array().unwrap().len(), 2);
    assert_eq!(message["Cc"][0]["Address"], "cat@example.test");
    assert_eq!(
        message["Bcc"],
        json!([{"Name": "", "Address": "dan@example.test"}])
    );
    assert_eq!(
        message["Envelope"]["RcptTo"],
        json!([
            "ann@example.test",
            "ben@example.test",
            "cat@example.test",
            "dan@example.test"
        ])
    );
    assert!(
        message["Text"]
            .as_str()
            .unwrap()
            .contains("Hello from the app.")
    );
    assert_eq!(message["Envelope"]["TLS"], false);
}

#[tokio::test]
async fn starttls_with_auth_plain_and_login() {
    let stack = stack().await;
    for (mechanism, user) in [
        (Mechanism::Plain, "plain-user"),
        (Mechanism::Login, "login-user"),
    ] {
        let transport = starttls(&stack)
            .credentials(Credentials::new(user.to_owned(), "s3cret".to_owned()))
            .authentication(vec![mechanism])
            .build();
        let email = Message::builder()
            .from(mailbox("app@example.test"))
            .to(mailbox("ops@example.test"))
            .subject(format!("via {user}"))
            .body("over TLS".to_owned())
            .unwrap();
        let response = transport.send(email).await.unwrap();
        let message = read_back(&stack, &response).await;
        assert_eq!(message["Subject"], format!("via {user}"));
        assert_eq!(message["Envelope"]["TLS"], true);
        assert_eq!(message["Envelope"]["AuthUser"], user);
        // Where it came in, and how: the port, the service, the TLS session.
        let envelope = &message["Envelope"];
        assert_eq!(envelope["Port"], stack.addr("smtp").port());
        assert_eq!(envelope["Service"], "smtp");
        let session = envelope["TLSSession"].as_str().unwrap();
        assert!(
            session.starts_with("TLSv1.") && session.ends_with("(STARTTLS)"),
            "{session}"
        );
        assert!(
            !message.to_string().contains("s3cret"),
            "the password is never stored"
        );
    }
}

#[tokio::test]
async fn utf8_addresses_go_through_with_smtputf8() {
    let stack = stack().await;
    let email = Message::builder()
        .from(mailbox("Jürgen <jürgen@exämple.test>"))
        .to(mailbox("Zoë <zoë@exämple.test>"))
        .subject("Grüße aus Köln")
        .body("Schöne Grüße!".to_owned())
        .unwrap();
    let response = plain(&stack).send(email).await.unwrap();
    let message = read_back(&stack, &response).await;
    assert_eq!(message["Subject"], "Grüße aus Köln");
    assert_eq!(message["Envelope"]["MailFrom"], "jürgen@exämple.test");
    assert_eq!(message["To"][0]["Address"], "zoë@exämple.test");
    assert!(message["Text"].as_str().unwrap().contains("Schöne Grüße!"));
}

#[tokio::test]
async fn an_attachment_comes_back_byte_for_byte() {
    let stack = stack().await;
    let pdf: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let email = Message::builder()
        .from(mailbox("reports@example.test"))
        .to(mailbox("boss@example.test"))
        .subject("The report")
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain("See attached.".to_owned()))
                .singlepart(
                    Attachment::new("report.pdf".to_owned())
                        .body(pdf.clone(), ContentType::parse("application/pdf").unwrap()),
                ),
        )
        .unwrap();
    let response = plain(&stack).send(email).await.unwrap();
    let message = read_back(&stack, &response).await;
    let attachment = &message["Attachments"][0];
    assert_eq!(attachment["FileName"], "report.pdf");
    assert_eq!(attachment["ContentType"], "application/pdf");
    assert_eq!(attachment["Size"], 3000);
    let url = stack.url(
        "http",
        &format!(
            "/api/v1/message/{}/part/{}",
            message["ID"].as_str().unwrap(),
            attachment["PartID"].as_str().unwrap()
        ),
    );
    let bytes = http_client()
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.to_vec(), pdf);
}
