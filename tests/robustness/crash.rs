//! A crash (SIGKILL) under SMTP load with a mail directory, three times over: after each
//! restart every message acknowledged with 250 is there, byte for byte, and no
//! half-written file was loaded as a message.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use nix::sys::signal::Signal;
use tokio::task::JoinSet;

use crate::signals::{config, message, sender, stored_subjects, until_count};
use crate::{body_json, http_get, one_at_a_time};

const ROUNDS: usize = 3;
const SENDERS: usize = 6;

#[tokio::test]
async fn sigkill_under_smtp_load_loses_no_acknowledged_message_and_loads_no_torn_one() {
    let _turn = one_at_a_time().await;
    let mail = tempfile::tempdir().unwrap();
    let mail_dir = mail.path().to_str().unwrap();
    let mut acknowledged = BTreeSet::new();
    let mut attempted = BTreeSet::new();

    for round in 0..ROUNDS {
        let mut server = crate::switchboard()
            .start(&config(), &["--mail-dir", mail_dir])
            .await;
        let smtp = server.addr("smtp");
        let counter = Arc::new(AtomicUsize::new(0));
        let mut senders = JoinSet::new();
        for id in 0..SENDERS {
            senders.spawn(sender(smtp, round * 100 + id, counter.clone()));
        }
        until_count(&counter, 25).await;
        server.signal(Signal::SIGKILL);
        while let Some(sent) = senders.join_next().await {
            let sent = sent.unwrap();
            attempted.extend(sent.unacknowledged);
            acknowledged.extend(sent.acknowledged);
        }
        assert_eq!(server.exit_code(std::time::Duration::ZERO).await, None);
    }
    attempted.extend(acknowledged.iter().cloned());

    let server = crate::switchboard()
        .start(&config(), &["--mail-dir", mail_dir])
        .await;
    let http = server.addr("http");
    let stored = stored_subjects(http).await;
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged with 250 but lost: {lost:?}");
    let invented: Vec<_> = stored.difference(&attempted).collect();
    assert!(invented.is_empty(), "stored but never sent: {invented:?}");

    // Every stored message is whole: exactly the bytes its sender sent.
    let page = body_json(&http_get(http, "/api/v1/messages?limit=100000").await);
    for summary in page["messages"].as_array().unwrap() {
        let (id, subject) = (
            summary["ID"].as_str().unwrap(),
            summary["Subject"].as_str().unwrap(),
        );
        let response = http_get(http, &format!("/api/v1/message/{id}/raw")).await;
        let (_, raw) = response.split_once("\r\n\r\n").unwrap();
        assert!(
            raw == message(subject),
            "message {subject} is not what was sent"
        );
    }
    // And the directory holds exactly one envelope per message: leftovers were removed.
    let files: Vec<String> = std::fs::read_dir(mail.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let envelopes = files.iter().filter(|f| f.ends_with(".json")).count();
    assert_eq!(envelopes, stored.len(), "{files:?}");
    assert_eq!(files.len(), 2 * stored.len(), "{files:?}");
    println!(
        "SIGKILL x{ROUNDS}: {} acknowledged, {} stored, none lost or torn",
        acknowledged.len(),
        stored.len()
    );
    server.assert_no_panic();
}
