//! SIGTERM and SIGINT under load, with a mail directory: requests in flight finish, SMTP
//! sessions are told 421, the process exits 0 within the deadline, and after a restart
//! every message that was acknowledged with 250 is there.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::{body_json, http_get, one_at_a_time};
use switchboard_testkit::binary::port_table;
use switchboard_testkit::client::{PATIENCE, read_to_close, request_in_flight};

pub(crate) fn config() -> String {
    port_table(&["http", "smtp"])
        + "[supervisor]\nshutdown_timeout = \"10s\"\n\n[mail]\nmax_messages = 100000\n"
}
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
const SENDERS: usize = 6;
const IN_FLIGHT: usize = 4;

/// A message whose body is made from its subject, so that a stored copy can be checked
/// byte for byte.
pub(crate) fn message(subject: &str) -> String {
    let line = format!("{subject} lorem ipsum dolor sit amet\r\n");
    format!("Subject: {subject}\r\n\r\n{}", line.repeat(200))
}

/// How an SMTP sender's session went.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Subjects of the messages answered with 250.
    pub(crate) acknowledged: Vec<String>,
    /// Subjects of the messages whose answer never came or was not 250.
    pub(crate) unacknowledged: Vec<String>,
    /// The last reply, or "" if the connection just closed.
    pub(crate) last_reply: String,
}

/// Send messages on one session until the server stops answering with 250.
pub(crate) async fn sender(smtp: SocketAddr, id: usize, counter: Arc<AtomicUsize>) -> Sent {
    let (reader, mut writer) = TcpStream::connect(smtp).await.unwrap().into_split();
    let mut reader = BufReader::new(reader);
    let mut sent = Sent::default();
    // One reply; "" when the connection closed.
    async fn reply(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
        let mut whole = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return whole,
                Ok(_) => whole.push_str(&line),
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return whole;
            }
        }
    }
    let mut answer = reply(&mut reader).await; // greeting
    if answer.starts_with("220") {
        let _ = writer.write_all(b"EHLO load\r\n").await;
        answer = reply(&mut reader).await;
    }
    for n in 0.. {
        if !answer.starts_with("2") && !answer.starts_with("354") {
            break;
        }
        let subject = format!("m-{id}-{n}");
        let steps = [
            "MAIL FROM:<load@x.test>\r\n".to_owned(),
            "RCPT TO:<sink@x.test>\r\n".to_owned(),
            "DATA\r\n".to_owned(),
            format!("{}.\r\n", message(&subject)),
        ];
        for step in steps {
            if writer.write_all(step.as_bytes()).await.is_err() {
                answer = String::new();
                break;
            }
            answer = reply(&mut reader).await;
            if !answer.starts_with("250") && !answer.starts_with("354") {
                break;
            }
        }
        if answer.starts_with("250 2.0.0 OK: queued") {
            sent.acknowledged.push(subject);
            counter.fetch_add(1, Ordering::SeqCst);
        } else {
            sent.unacknowledged.push(subject);
        }
    }
    sent.last_reply = answer;
    sent
}

/// Wait until `counter` reaches `at_least`.
pub(crate) async fn until_count(counter: &AtomicUsize, at_least: usize) {
    tokio::time::timeout(PATIENCE, async {
        while counter.load(Ordering::SeqCst) < at_least {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the senders did not get far enough");
}

/// Subjects of every message a server holds.
pub(crate) async fn stored_subjects(http: SocketAddr) -> BTreeSet<String> {
    let page = body_json(&http_get(http, "/api/v1/messages?limit=100000").await);
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Subject"].as_str().unwrap().to_owned())
        .collect()
}

async fn shutdown_under_load(signal: Signal) {
    let _turn = one_at_a_time().await;
    let mail = tempfile::tempdir().unwrap();
    let mail_dir = mail.path().to_str().unwrap();
    let mut server = crate::switchboard()
        .start(&config(), &["--mail-dir", mail_dir])
        .await;
    let (http, smtp) = (server.addr("http"), server.addr("smtp"));

    let counter = Arc::new(AtomicUsize::new(0));
    let mut senders = JoinSet::new();
    for id in 0..SENDERS {
        senders.spawn(sender(smtp, id, counter.clone()));
    }
    let mut in_flight = Vec::new();
    for _ in 0..IN_FLIGHT {
        in_flight.push(request_in_flight(http).await);
    }
    until_count(&counter, 30).await;

    server.signal(signal);
    // Requests that were being handled finish normally.
    for mut stream in in_flight {
        stream.write_all(b"hello").await.unwrap();
        let response = read_to_close(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.contains(r#""data":"hello""#), "{response}");
    }
    let mut acknowledged = BTreeSet::new();
    let mut attempted = BTreeSet::new();
    while let Some(sent) = senders.join_next().await {
        let sent = sent.unwrap();
        assert!(
            sent.last_reply.starts_with("421 4.3.2 "),
            "a session ended without 421: {:?}",
            sent.last_reply
        );
        attempted.extend(sent.unacknowledged);
        acknowledged.extend(sent.acknowledged);
    }
    attempted.extend(acknowledged.iter().cloned());
    assert_eq!(server.exit_code(SHUTDOWN_TIMEOUT).await, Some(0));
    server.assert_no_panic();

    let again = crate::switchboard()
        .start(&config(), &["--mail-dir", mail_dir])
        .await;
    let stored = stored_subjects(again.addr("http")).await;
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged with 250 but lost: {lost:?}");
    let invented: Vec<_> = stored.difference(&attempted).collect();
    assert!(invented.is_empty(), "stored but never sent: {invented:?}");
    println!(
        "{signal}: {} messages acknowledged, {} stored, none lost",
        acknowledged.len(),
        stored.len()
    );
    again.assert_no_panic();
}

#[tokio::test]
async fn sigterm_under_load_finishes_requests_says_421_and_loses_no_message() {
    shutdown_under_load(Signal::SIGTERM).await;
}

#[tokio::test]
async fn sigint_under_load_finishes_requests_says_421_and_loses_no_message() {
    shutdown_under_load(Signal::SIGINT).await;
}
