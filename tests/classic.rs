//! The classic inetd builtins over TCP, each against its RFC: discard says nothing,
//! daytime sends one line, time four bytes counting from 1900, chargen its rotating lines
//! until the client closes. (echo has its own scenarios.)

use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_testkit::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::PATIENCE;

/// Everything the service sends until it closes.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got))
        .await
        .expect("the service did not close")
        .unwrap();
    got
}

async fn stack() -> Stack {
    Stack::start(&["discard", "daytime", "chargen", "time"])
        .await
        .unwrap()
}

#[tokio::test]
async fn discard_takes_everything_and_says_nothing() {
    let stack = stack().await;
    let mut stream = TcpStream::connect(stack.addr("discard")).await.unwrap();
    stream.write_all(&[b'x'; 100_000]).await.unwrap();
    stream.shutdown().await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.is_empty(), "discard sent {} bytes", answer.len());
}

#[tokio::test]
async fn daytime_sends_one_line_and_closes() {
    let stack = stack().await;
    let mut stream = TcpStream::connect(stack.addr("daytime")).await.unwrap();
    let line = String::from_utf8(read_to_close(&mut stream).await).unwrap();
    let year = time::OffsetDateTime::now_utc().year().to_string();
    assert!(
        line.ends_with("-UTC\r\n") && line.contains(&year),
        "{line:?}"
    );
    assert_eq!(line.lines().count(), 1);
}

#[tokio::test]
async fn time_sends_seconds_since_1900() {
    let stack = stack().await;
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut stream = TcpStream::connect(stack.addr("time")).await.unwrap();
    let bytes = read_to_close(&mut stream).await;
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(bytes.len(), 4);
    let since_1900 = u64::from(u32::from_be_bytes(bytes.try_into().unwrap()));
    let unix = since_1900 - 2_208_988_800;
    assert!(
        (before..=after).contains(&unix),
        "{unix} not in {before}..={after}"
    );
}

#[tokio::test]
async fn chargen_sends_its_pattern_until_the_client_closes() {
    let stack = stack().await;
    let mut stream = TcpStream::connect(stack.addr("chargen")).await.unwrap();
    let mut lines = vec![0u8; 74 * 200];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut lines))
        .await
        .unwrap()
        .unwrap();
    for (n, line) in lines.chunks(74).enumerate() {
        assert!(line.ends_with(b"\r\n"), "line {n}");
        let first = line[0];
        assert_eq!(first, b' ' + (n % 95) as u8, "line {n} starts one further");
        assert!(line[..72].iter().all(|b| (b' '..=b'~').contains(b)));
    }
    // Input is ignored; closing ends the stream of lines.
    stream.write_all(b"ignored\r\n").await.unwrap();
    drop(stream);
    let mut again = TcpStream::connect(stack.addr("chargen")).await.unwrap();
    let mut first = [0u8; 74];
    again.read_exact(&mut first).await.unwrap();
    assert!(first.starts_with(b" !\"#"));
}
