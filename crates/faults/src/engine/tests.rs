//! Toxics on a real loopback connection: the "service" end has the faults, the "client"
//! end observes them. Durations are small and only lower bounds are asserted.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::*;
use switchboard_core::{ByteCounts, ConnStream};

/// A connected pair: the service's stream (with the toxics in `set`) and the client's.
async fn pair(toxics: Vec<Toxic>) -> (ConnStream, TcpStream, watch::Sender<ToxicSet>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let (set, watched) = watch::channel::<ToxicSet>(toxics.into());
    let stream =
        ConnStream::new(server, Arc::new(ByteCounts::default())).with_faults(Faults::new(watched));
    (stream, client, set)
}

const PATIENCE: Duration = Duration::from_secs(10);

async fn read_all(client: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, client.read(&mut buf))
            .await
            .expect("stuck")
        {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
}

#[tokio::test]
async fn no_toxics_pass_bytes_straight_through() {
    let (mut service, mut client, _set) = pair(vec![]).await;
    client.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    service.read_exact(&mut got).await.unwrap();
    service.write_all(b"pong").await.unwrap();
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"pong");
}

#[tokio::test]
async fn latency_delays_each_direction() {
    let delay = Duration::from_millis(80);
    let (mut service, mut client, _set) = pair(vec![
        Toxic::latency(delay),
        Toxic::latency(delay).upstream(),
    ])
    .await;
    let start = Instant::now();
    client.write_all(b"x").await.unwrap();
    service.read_exact(&mut [0u8; 1]).await.unwrap();
    assert!(start.elapsed() >= delay, "upstream {:?}", start.elapsed());
    let start = Instant::now();
    service.write_all(b"y").await.unwrap();
    client.read_exact(&mut [0u8; 1]).await.unwrap();
    assert!(start.elapsed() >= delay, "downstream {:?}", start.elapsed());
}

#[tokio::test]
async fn limit_data_cuts_after_the_byte_count() {
    let (mut service, mut client, _set) = pair(vec![Toxic::limit_data(30)]).await;
    let result = service.write_all(&[7u8; 100]).await;
    assert!(result.is_err(), "the write past the limit fails");
    let (got, _) = read_all(&mut client).await;
    assert_eq!(got, vec![7u8; 30]);

    let (mut service, mut client, _set) = pair(vec![Toxic::limit_data(5).upstream()]).await;
    client.write_all(b"0123456789").await.unwrap();
    let mut got = Vec::new();
    service.read_to_end(&mut got).await.unwrap();
    assert_eq!(
        got, b"01234",
        "the service sees the end of the stream after 5 bytes"
    );
}

#[tokio::test]
async fn reset_peer_resets_the_connection() {
    let (mut service, mut client, _set) =
        pair(vec![Toxic::reset_peer(Duration::from_millis(50))]).await;
    let start = Instant::now();
    let error = service.read(&mut [0u8; 16]).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
    assert!(start.elapsed() >= Duration::from_millis(50));
    drop(service);
    let (_, result) = read_all(&mut client).await;
    assert_eq!(result.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn a_timeout_without_end_stalls_until_removed() {
    let (mut service, mut client, set) = pair(vec![Toxic::timeout(Duration::ZERO)]).await;
    let write = tokio::spawn(async move {
        service.write_all(b"held").await.unwrap();
        service
    });
    let mut buf = [0u8; 4];
    assert!(
        tokio::time::timeout(Duration::from_millis(150), client.read_exact(&mut buf))
            .await
            .is_err(),
        "stalled"
    );
    set.send_replace(Arc::from(Vec::new()));
    tokio::time::timeout(PATIENCE, client.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"held");
    write.await.unwrap();
}

#[tokio::test]
async fn a_timeout_closes_when_its_time_is_up() {
    let (mut service, mut client, _set) =
        pair(vec![Toxic::timeout(Duration::from_millis(60))]).await;
    let start = Instant::now();
    let error = service.write_all(b"never").await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
    assert!(start.elapsed() >= Duration::from_millis(60));
    let (got, _) = read_all(&mut client).await;
    assert!(got.is_empty());
}

#[tokio::test]
async fn toxicity_zero_never_applies() {
    let (mut service, mut client, _set) = pair(vec![Toxic::limit_data(1).with_toxicity(0.0)]).await;
    service.write_all(b"all of it").await.unwrap();
    drop(service);
    assert_eq!(read_all(&mut client).await.0, b"all of it");
}

#[tokio::test]
async fn slicer_cuts_writes_into_small_pieces() {
    let (mut service, mut client, _set) =
        pair(vec![Toxic::slicer(10, 5, Duration::from_millis(1))]).await;
    let written = service.write(&[1u8; 1000]).await.unwrap();
    assert!(
        (5..=15).contains(&written),
        "one write passes one slice, not {written} bytes"
    );
    service.write_all(&[1u8; 200]).await.unwrap();
    drop(service);
    assert_eq!(read_all(&mut client).await.0.len(), written + 200);
}

#[tokio::test]
async fn bandwidth_paces_the_bytes() {
    // 50 KB at 100 KB/s goes in five tenth-second chunks: the last starts after 0.4 s.
    let (mut service, mut client, _set) = pair(vec![Toxic::bandwidth(100)]).await;
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        service.write_all(&[0u8; 50_000]).await.unwrap();
    });
    let mut got = vec![0u8; 50_000];
    client.read_exact(&mut got).await.unwrap();
    sender.await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(395),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn toxics_added_later_apply_at_the_next_write() {
    let (mut service, mut client, set) = pair(vec![]).await;
    service.write_all(b"a").await.unwrap();
    client.read_exact(&mut [0u8; 1]).await.unwrap();
    set.send_replace(vec![Toxic::limit_data(2)].into());
    assert!(service.write_all(b"bcdef").await.is_err());
    let (got, _) = read_all(&mut client).await;
    assert_eq!(got, b"bc");
}

#[tokio::test]
async fn slow_close_delays_the_end_of_the_stream() {
    let (mut service, mut client, _set) =
        pair(vec![Toxic::slow_close(Duration::from_millis(80))]).await;
    let start = Instant::now();
    service.write_all(b"bye").await.unwrap();
    drop(service); // the service is done; the socket stays open a little longer
    let (got, _) = read_all(&mut client).await;
    assert_eq!(got, b"bye");
    assert!(
        start.elapsed() >= Duration::from_millis(80),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_connection_holds_toxic_state_only_once_a_toxic_reaches_it() {
    let (set, watched) = watch::channel::<ToxicSet>(Vec::new().into());
    let mut faults = Faults::new(watched);
    assert!(faults.is_inert());
    assert!(faults.acting.is_none(), "no toxic yet: nothing built");

    // A toxic that does not apply to this connection (toxicity 0) still builds the state,
    // for the draw is kept for the connection's life.
    set.send_replace(vec![Toxic::latency(Duration::from_millis(5)).with_toxicity(0.0)].into());
    assert!(faults.is_inert());
    assert!(faults.acting.is_some());

    set.send_replace(vec![Toxic::latency(Duration::from_millis(5))].into());
    assert!(!faults.is_inert(), "a new toxic that applies");
    set.send_replace(Vec::new().into());
    assert!(faults.is_inert(), "removed again");
}
