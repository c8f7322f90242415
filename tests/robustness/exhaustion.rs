//! Resource exhaustion: the server's descriptor limit is lowered until accept fails. It
//! backs off, says so once, and serves again when descriptors free up.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::one_at_a_time;
use switchboard_testkit::binary::{Logs, spawn, write_config};
use switchboard_testkit::client::PATIENCE;

#[tokio::test]
async fn running_out_of_file_descriptors_backs_off_logs_once_and_recovers() {
    let _turn = one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[port]]\nport = 0\nservice = \"echo\"\nbind = [\"127.0.0.1\"]\n",
    );
    // A small descriptor limit for the server only; its connections soon exhaust it.
    let mut child = spawn(
        Command::new("sh")
            .args(["-c", "ulimit -n 48 && exec \"$0\" \"$@\""])
            .arg(crate::switchboard().path())
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&config),
    );
    let mut logs = Logs::of(&mut child);
    let echo = logs.ready().await["echo"];

    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(tokio::net::TcpStream::connect(echo).await.unwrap());
    }
    logs.until("accept failed").await;

    // Descriptors free up as these connections end; accepting resumes by itself.
    drop(held);
    let meanwhile = logs.until("accepting connections again").await;
    let repeats = meanwhile
        .iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("accept failed"))
        })
        .count();
    assert_eq!(
        repeats, 0,
        "the failure is logged once per episode, not per attempt"
    );

    let mut client = tokio::net::TcpStream::connect(echo).await.unwrap();
    client.write_all(b"back").await.unwrap();
    let mut answer = [0u8; 4];
    tokio::time::timeout(PATIENCE, client.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer, b"back");
    assert!(
        !logs.transcript().contains("panicked"),
        "{}",
        logs.transcript()
    );
    child.kill().await.unwrap();
}
