//! SMTP over real sockets: every reply code, pipelining, dot-stuffing, STARTTLS, limits,
//! timeouts, shutdown and persistence.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use switchboard_core::EventKind;
use switchboard_testkit::Config;
use switchboard_testkit::Stack;
use tokio_rustls::TlsConnector;

use crate::{Chat, PATIENCE, next_event, send_mail, tls_client_config};

async fn smtp_stack(configure: impl FnOnce(&mut Config)) -> Stack {
    Stack::builder()
        .service("smtp")
        .configure(configure)
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_message_is_captured_byte_exact_after_dot_unstuffing() {
    let stack = smtp_stack(|_| {}).await;
    let (mut chat, greeting) = Chat::connect(stack.addr("smtp")).await;
    assert!(
        greeting.starts_with("220 ") && greeting.ends_with(" ESMTP switchboard"),
        "{greeting}"
    );
    let ehlo = chat.cmd("EHLO client.example").await;
    for extension in [
        "PIPELINING",
        "SIZE 10485760",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "AUTH PLAIN LOGIN",
    ] {
        assert!(ehlo.contains(extension), "{extension} missing in {ehlo}");
    }
    assert_eq!(
        chat.cmd("MAIL FROM:<sender@example.test>").await,
        "250 2.1.0 Sender <sender@example.test> OK"
    );
    assert_eq!(
        chat.cmd("RCPT TO:<rcpt@example.test>").await,
        "250 2.1.5 Recipient <rcpt@example.test> OK"
    );
    assert_eq!(
        chat.cmd("DATA").await,
        "354 End data with <CR><LF>.<CR><LF>"
    );
    // The client stuffs a dot before lines that start with one: ".x", "..", and a lone ".".
    chat.send("Subject: dots\r\n\r\n..x\r\n...\r\n..\r\nend\r\n")
        .await;
    let queued = chat.cmd(".").await;
    let id = queued
        .strip_prefix("250 2.0.0 OK: queued as ")
        .unwrap()
        .to_owned();
    assert_eq!(chat.cmd("QUIT").await.split_once(' ').unwrap().0, "221");
    assert_eq!(chat.rest().await, "");

    let message = stack.mail().get(&id).unwrap();
    assert_eq!(
        &message.raw[..],
        b"Subject: dots\r\n\r\n.x\r\n..\r\n.\r\nend\r\n"
    );
    assert_eq!(message.envelope.mail_from, "sender@example.test");
    assert_eq!(message.envelope.rcpt_to, ["rcpt@example.test"]);
    assert_eq!(message.envelope.helo, "client.example");
    assert!(!message.envelope.tls);
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let stack = smtp_stack(|_| {}).await;
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    chat.send(
        "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<bad address>\r\n\
         RCPT TO:<c@x.test>\r\nDATA\r\n",
    )
    .await;
    assert!(chat.reply().await.starts_with("250-"));
    assert_eq!(chat.reply().await, "250 2.1.0 Sender <a@x.test> OK");
    assert_eq!(chat.reply().await, "250 2.1.5 Recipient <b@x.test> OK");
    assert_eq!(chat.reply().await, "501 5.1.3 Bad recipient address syntax");
    assert_eq!(chat.reply().await, "250 2.1.5 Recipient <c@x.test> OK");
    assert!(chat.reply().await.starts_with("354"));
    chat.send("Subject: piped\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        .await;
    assert!(chat.reply().await.starts_with("250 2.0.0 OK: queued as "));
    assert!(chat.reply().await.starts_with("221 2.0.0"));
    let message = &stack.mail().list()[0];
    assert_eq!(message.envelope.rcpt_to, ["b@x.test", "c@x.test"]);
}

#[tokio::test]
async fn errors_get_the_rfc_codes() {
    let stack = smtp_stack(|c| c.smtp.max_recipients = 2).await;
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    assert_eq!(
        chat.cmd("MAIL FROM:<a@x.test>").await,
        "503 5.5.1 Send EHLO or HELO first"
    );
    assert_eq!(
        chat.cmd("WHAT is this").await,
        "500 5.5.1 Command not recognized"
    );
    assert_eq!(chat.cmd("HELO").await, "501 5.5.2 Syntax: HELO domain");
    assert!(chat.cmd("HELO c").await.starts_with("250 "));
    assert_eq!(
        chat.cmd("RCPT TO:<b@x.test>").await,
        "503 5.5.1 Need MAIL before RCPT"
    );
    assert_eq!(
        chat.cmd("MAIL FROM:<a@x.test> SIZE=20000000").await,
        "552 5.3.4 Message size exceeds the maximum of 10485760 bytes"
    );
    assert!(chat.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"));
    assert!(chat.cmd("RCPT TO:<1@x.test>").await.starts_with("250"));
    assert!(chat.cmd("RCPT TO:<2@x.test>").await.starts_with("250"));
    assert_eq!(
        chat.cmd("RCPT TO:<3@x.test>").await,
        "452 4.5.3 Too many recipients"
    );
    let long = format!("NOOP {}", "x".repeat(600));
    assert_eq!(chat.cmd(&long).await, "500 5.5.2 Line too long");
    assert_eq!(
        chat.cmd("VRFY someone").await,
        "252 2.5.0 Cannot VRFY user, but will accept mail for it"
    );
    assert!(chat.cmd("HELP").await.starts_with("214 2.0.0"));
    assert_eq!(chat.cmd("NOOP").await, "250 2.0.0 OK");
    assert_eq!(chat.cmd("RSET").await, "250 2.0.0 OK");
}

#[tokio::test]
async fn ten_errors_in_a_row_end_the_session() {
    let stack = smtp_stack(|_| {}).await;
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    for _ in 0..9 {
        assert_eq!(chat.cmd("BOGUS").await, "500 5.5.1 Command not recognized");
    }
    chat.send("BOGUS\r\n").await;
    assert_eq!(chat.reply().await, "500 5.5.1 Command not recognized");
    assert_eq!(
        chat.reply().await,
        "421 4.7.0 Too many errors, closing connection"
    );
    assert_eq!(chat.rest().await, "");
}

/// Send a transaction up to and including the message data; return the reply to the dot.
async fn deliver(chat: &mut Chat<tokio::net::TcpStream>, data: &str) -> String {
    assert!(chat.cmd("EHLO c").await.starts_with("250"));
    assert!(chat.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"));
    assert!(chat.cmd("RCPT TO:<b@x.test>").await.starts_with("250"));
    assert!(chat.cmd("DATA").await.starts_with("354"));
    chat.send(data).await;
    chat.cmd(".").await
}

#[tokio::test]
async fn oversized_messages_and_long_lines_are_refused_and_not_stored() {
    let stack = smtp_stack(|c| c.smtp.max_message_bytes = 2000).await;
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    let big = format!(
        "Subject: big\r\n\r\n{}",
        "0123456789012345678901234567890123456789\r\n".repeat(60)
    );
    assert_eq!(
        deliver(&mut chat, &big).await,
        "552 5.3.4 Message exceeds the maximum size of 2000 bytes"
    );
    let long = format!("Subject: long\r\n\r\n{}\r\n", "y".repeat(1200));
    assert_eq!(
        deliver(&mut chat, &long).await,
        "554 5.6.0 Message has a line of 1202 bytes; lines may have at most 1000 with CRLF (RFC 5321 4.5.3.1.6)"
    );
    // The session goes on, and a good message still gets through.
    assert!(
        deliver(&mut chat, "Subject: fine\r\n\r\nok\r\n")
            .await
            .starts_with("250 2.0.0 OK")
    );
    assert_eq!(stack.mail().len(), 1);
    assert_eq!(stack.mail().stats().rejected, 2);
}

#[tokio::test]
async fn utf8_addresses_with_smtputf8() {
    let stack = smtp_stack(|_| {}).await;
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    assert!(chat.cmd("EHLO c").await.starts_with("250"));
    assert_eq!(
        chat.cmd("MAIL FROM:<jürgen@exämple.test>").await,
        "553 5.6.7 A non-ASCII address needs the SMTPUTF8 parameter"
    );
    assert!(
        chat.cmd("MAIL FROM:<jürgen@exämple.test> SMTPUTF8")
            .await
            .starts_with("250")
    );
    assert!(
        chat.cmd("RCPT TO:<zoë@exämple.test>")
            .await
            .starts_with("250")
    );
    assert!(chat.cmd("DATA").await.starts_with("354"));
    chat.send("Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\r\nhallo\r\n")
        .await;
    assert!(chat.cmd(".").await.starts_with("250"));
    let message = &stack.mail().list()[0];
    assert_eq!(message.envelope.mail_from, "jürgen@exämple.test");
    assert_eq!(message.envelope.rcpt_to, ["zoë@exämple.test"]);
    assert_eq!(message.summary().subject, "grüße");
}

#[tokio::test]
async fn plaintext_pipelined_after_starttls_is_never_executed() {
    let stack = smtp_stack(|_| {}).await;
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    assert!(chat.cmd("EHLO c").await.contains("STARTTLS"));
    // The attack of CVE-2011-0411: a command injected behind STARTTLS in the same packet.
    chat.send("STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
        .await;
    assert_eq!(chat.reply().await, "220 2.0.0 Ready to start TLS");

    let connector = TlsConnector::from(Arc::new(tls_client_config(Some(stack.ca_pem()), &[])));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, chat.into_inner()).await.unwrap();
    let mut chat = Chat::over(tls);
    let ehlo = chat.cmd("EHLO c").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    // Had the injected MAIL run, this RCPT would be accepted.
    assert_eq!(
        chat.cmd("RCPT TO:<b@x.test>").await,
        "503 5.5.1 Need MAIL before RCPT"
    );
    assert_eq!(chat.cmd("STARTTLS").await, "503 5.5.1 Already using TLS");

    assert!(chat.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"));
    assert!(chat.cmd("RCPT TO:<b@x.test>").await.starts_with("250"));
    assert!(chat.cmd("DATA").await.starts_with("354"));
    chat.send("Subject: secret\r\n\r\nover TLS\r\n").await;
    assert!(chat.cmd(".").await.starts_with("250"));
    let message = &stack.mail().list()[0];
    assert!(message.envelope.tls);
    assert_eq!(message.envelope.mail_from, "a@x.test");
}

#[tokio::test]
async fn implicit_tls_on_an_smtps_port() {
    let stack = Stack::start(&["smtps"]).await.unwrap();
    let connector = TlsConnector::from(Arc::new(tls_client_config(Some(stack.ca_pem()), &[])));
    let tcp = tokio::net::TcpStream::connect(stack.addr("smtps"))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut chat = Chat::over(connector.connect(name, tcp).await.unwrap());
    assert!(chat.reply().await.starts_with("220 "));
    let ehlo = chat.cmd("EHLO c").await;
    assert!(
        !ehlo.contains("STARTTLS") && ehlo.contains("AUTH PLAIN LOGIN"),
        "{ehlo}"
    );
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_command_timeout() {
    let stack = smtp_stack(|c| c.smtp.command_timeout = Duration::from_millis(200)).await;
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    assert_eq!(
        chat.reply().await,
        "421 4.4.2 Timeout waiting for a command, closing connection"
    );
    assert_eq!(chat.rest().await, "");
}

#[tokio::test]
async fn a_command_trickled_byte_by_byte_is_cut_off_at_the_command_timeout() {
    let stack = smtp_stack(|c| c.smtp.command_timeout = Duration::from_millis(500)).await;
    let mut stream = tokio::net::TcpStream::connect(stack.addr("smtp"))
        .await
        .unwrap();
    crate::read_until(&mut stream, "\r\n").await;
    let (mut reader, mut writer) = stream.into_split();
    // A byte every 50 ms never completes the line. If each byte restarted the clock, the
    // server would never close and read_to_close would give up at PATIENCE.
    let trickle = async move {
        for byte in b"EHLO ".iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::future::pending::<()>().await;
    };
    let answer = tokio::select! {
        () = trickle => unreachable!(),
        answer = crate::read_to_close(&mut reader) => answer,
    };
    assert_eq!(
        answer,
        "421 4.4.2 Timeout waiting for a command, closing connection\r\n"
    );
}

#[tokio::test]
async fn a_slow_message_is_dropped_after_the_data_timeout() {
    let stack = smtp_stack(|c| c.smtp.data_timeout = Duration::from_millis(300)).await;
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    assert!(chat.cmd("EHLO c").await.starts_with("250"));
    assert!(chat.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"));
    assert!(chat.cmd("RCPT TO:<b@x.test>").await.starts_with("250"));
    assert!(chat.cmd("DATA").await.starts_with("354"));
    chat.send("Subject: never finished\r\n").await;
    assert_eq!(
        chat.reply().await,
        "421 4.4.2 Timeout waiting for the message data, closing connection"
    );
    assert!(stack.mail().is_empty());
}

#[tokio::test]
async fn shutdown_says_421_and_does_not_acknowledge_a_message_in_data() {
    let mut stack = smtp_stack(|_| {}).await;
    let (mut idle, _) = Chat::connect(stack.addr("smtp")).await;
    assert!(idle.cmd("EHLO c").await.starts_with("250"));
    let (mut sending, _) = Chat::connect(stack.addr("smtp")).await;
    assert!(sending.cmd("EHLO c").await.starts_with("250"));
    assert!(sending.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"));
    assert!(sending.cmd("RCPT TO:<b@x.test>").await.starts_with("250"));
    assert!(sending.cmd("DATA").await.starts_with("354"));
    sending.send("Subject: half\r\n\r\nstill writing").await;

    stack.request_shutdown();
    assert_eq!(
        idle.reply().await,
        "421 4.3.2 Service shutting down, closing connection"
    );
    assert_eq!(
        sending.reply().await,
        "421 4.3.2 Service shutting down, closing connection"
    );
    let mail = stack.mail().clone();
    let stopped = tokio::time::timeout(PATIENCE, stack.shutdown())
        .await
        .unwrap();
    assert_eq!(stopped.connections_cut, 0);
    assert!(
        mail.is_empty(),
        "a message in DATA at shutdown is not stored"
    );
}

#[tokio::test]
async fn a_client_vanishing_mid_data_leaves_nothing_behind() {
    let stack = smtp_stack(|_| {}).await;
    let mut events = stack.events().subscribe();
    let (mut chat, _) = Chat::connect(stack.addr("smtp")).await;
    assert!(chat.cmd("EHLO c").await.starts_with("250"));
    assert!(chat.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"));
    assert!(chat.cmd("RCPT TO:<b@x.test>").await.starts_with("250"));
    assert!(chat.cmd("DATA").await.starts_with("354"));
    chat.send("Subject: cut off\r\n\r\nhalf a message").await;
    drop(chat);
    next_event(&mut events, |e| {
        e.service == "smtp" && matches!(e.kind, EventKind::ConnectionClosed { .. })
    })
    .await;
    assert!(stack.mail().is_empty());
}

#[tokio::test]
async fn acknowledged_mail_survives_a_restart_with_a_mail_dir() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let with_dir = |c: &mut Config| c.mail.dir = Some(dir.path().to_owned());
    let first = Stack::builder()
        .service("smtp")
        .certs_dir(certs.path())
        .configure(with_dir)
        .start()
        .await
        .unwrap();
    let id = send_mail(
        first.addr("smtp"),
        "a@x.test",
        &["b@x.test"],
        "Subject: keep me\r\n\r\nplease\r\n",
    )
    .await;
    first.shutdown().await;

    let second = Stack::builder()
        .service("smtp")
        .certs_dir(certs.path())
        .configure(with_dir)
        .start()
        .await
        .unwrap();
    let message = second
        .mail()
        .get(&id)
        .expect("the message survived the restart");
    assert_eq!(&message.raw[..], b"Subject: keep me\r\n\r\nplease\r\n");
    assert_eq!(message.envelope.rcpt_to, ["b@x.test"]);
}

#[tokio::test]
async fn auth_can_be_required_or_turned_off() {
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD.encode("\0tester\0secret");

    let required = smtp_stack(|c| c.smtp.auth = switchboard_smtp_auth("required")).await;
    let (mut chat, _) = Chat::connect(required.addr("smtp")).await;
    assert!(chat.cmd("EHLO c").await.starts_with("250"));
    assert_eq!(
        chat.cmd("MAIL FROM:<a@x.test>").await,
        "530 5.7.0 Authentication required"
    );
    assert_eq!(
        chat.cmd(&format!("AUTH PLAIN {plain}")).await,
        "235 2.7.0 Authentication successful"
    );
    assert!(deliver_after_ehlo(&mut chat).await.starts_with("250"));
    assert_eq!(
        required.mail().list()[0].envelope.auth_user.as_deref(),
        Some("tester")
    );

    let off = smtp_stack(|c| c.smtp.auth = switchboard_smtp_auth("off")).await;
    let (mut chat, _) = Chat::connect(off.addr("smtp")).await;
    assert!(!chat.cmd("EHLO c").await.contains("AUTH"));
    assert_eq!(
        chat.cmd(&format!("AUTH PLAIN {plain}")).await,
        "502 5.5.1 Command not implemented"
    );
}

async fn deliver_after_ehlo(chat: &mut Chat<tokio::net::TcpStream>) -> String {
    assert!(chat.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"));
    assert!(chat.cmd("RCPT TO:<b@x.test>").await.starts_with("250"));
    assert!(chat.cmd("DATA").await.starts_with("354"));
    chat.send("Subject: authed\r\n\r\nhi\r\n").await;
    chat.cmd(".").await
}

/// The `[smtp] auth` setting, as a config file would give it.
fn switchboard_smtp_auth(value: &str) -> switchboard_testkit::AuthPolicy {
    let config = Config::from_toml(&format!("[smtp]\nauth = \"{value}\"\n"), "test").unwrap();
    config.smtp.auth
}
