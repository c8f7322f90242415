//! The worst case of the default configuration, driven at once, in a memory cgroup of
//! 256 MiB — the Kubernetes manifest's limit: the mail store filled to `[mail] max_bytes`
//! with messages near `max_message_bytes` and parsed for a list and a search, a picture's
//! thumbnail decoded at `[http] max_image_bytes`, request bodies
//! held in flight to `[supervisor] max_buffered_bytes`, and every port's `max_connections`
//! taken by a client holding a request head (or an SMTP AUTH line) just under its limit.
//! switchboard must come through it without being killed, and serve afterwards.
//! docs/configuration.md adds the same sum up and quotes this test's peak.
//!
//! It needs root and a writable memory cgroup, so `cargo test` skips it and `.ci/run` runs
//! it (`cargo test --test robustness memory -- --ignored`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::garbage::tls;
use crate::{body_json, http_get, one_at_a_time};
use switchboard_testkit::binary::port_table;

/// The Kubernetes manifest's memory limit (deploy/kubernetes/base/deployment.yaml).
const LIMIT: u64 = 256 << 20;
/// `[supervisor] max_connections`'s default, per port.
const MAX_CONNECTIONS: usize = 512;

/// A memory cgroup of its own for the server, v1 or v2.
struct MemoryCgroup {
    dir: PathBuf,
    v2: bool,
}

impl MemoryCgroup {
    fn make(limit: u64) -> Self {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let (dir, v2) = match own.lines().find_map(|l| l.split_once(":memory:")) {
            Some((_, path)) => (Path::new("/sys/fs/cgroup/memory").join(&path[1..]), false),
            None => {
                let path = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
                (Path::new("/sys/fs/cgroup").join(&path[1..]), true)
            }
        };
        let dir = dir.join(format!("switchboard-memory-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let file = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        std::fs::write(dir.join(file), limit.to_string()).unwrap();
        Self { dir, v2 }
    }

    fn add(&self, pid: u32) {
        // v1 leaves what a process allocated before it moved with its old cgroup unless
        // told to bring it along (v2 never moves it: start-up is a few MiB).
        let _ = std::fs::write(self.dir.join("memory.move_charge_at_immigrate"), "3");
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }

    /// The most memory the cgroup used.
    fn peak(&self) -> u64 {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        self.read(file).trim().parse().unwrap()
    }

    /// How many processes the kernel killed for memory in it.
    fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        self.read(file)
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap()
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Read an SMTP reply; its first line.
async fn reply(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(switchboard_testkit::client::PATIENCE, async {
        loop {
            stream.read_exact(&mut byte).await.unwrap();
            got.push(byte[0]);
            if got.ends_with(b"\r\n") {
                let text = String::from_utf8_lossy(&got).into_owned();
                let last = text.lines().last().unwrap_or_default().to_owned();
                if last.as_bytes().get(3) != Some(&b'-') {
                    return last;
                }
            }
        }
    })
    .await
    .unwrap()
}

/// The server's resident memory now, in MiB, for the record of what each part costs.
fn resident_mib(pid: nix::unistd::Pid, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|kib| kib.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    kib >> 10
}

/// A message with a PNG that decodes to just under `[http] max_image_bytes` (32 MiB).
fn picture_message() -> String {
    use base64::Engine;
    let (width, height) = (4000u32, 2000u32);
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgba);
    let mut writer = encoder.write_header().unwrap();
    writer
        .write_image_data(&vec![0x80; (width * height * 4) as usize])
        .unwrap();
    writer.finish().unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "Subject: picture\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n\
         Content-Type: image/png; name=big.png\r\nContent-Disposition: attachment; \
         filename=big.png\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    )
}

/// One message of `size` bytes; the reply to its final dot.
async fn send_message(smtp: SocketAddr, size: usize) -> String {
    let line = format!("{} the quick brown fox\r\n", "x".repeat(76));
    let text = format!("Subject: big\r\n\r\n{}", line.repeat(size / line.len()));
    send_text(smtp, &text).await
}

/// One message, `text`; the reply to its final dot.
async fn send_text(smtp: SocketAddr, text: &str) -> String {
    let mut stream = TcpStream::connect(smtp).await.unwrap();
    reply(&mut stream).await;
    for command in [
        "EHLO x",
        "MAIL FROM:<a@x.test>",
        "RCPT TO:<b@x.test>",
        "DATA",
    ] {
        stream
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        reply(&mut stream).await;
    }
    stream.write_all(text.as_bytes()).await.unwrap();
    stream.write_all(b".\r\n").await.unwrap();
    reply(&mut stream).await
}

/// A WebSocket session on `/websocket/echo` that has sent 60,000 bytes of a 65,000-byte
/// binary frame.
async fn websocket_mid_message(http: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(http).await.unwrap();
    let upgrade = "GET /websocket/echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(upgrade.as_bytes()).await.unwrap();
    let answer = switchboard_testkit::client::read_until(&mut stream, "\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    // FIN and binary, masked, a 16-bit length, the mask, then most of the payload.
    let mut frame = vec![0x82, 0x80 | 126];
    frame.extend_from_slice(&65_000u16.to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.resize(frame.len() + 60_000, b'w');
    stream.write_all(&frame).await.unwrap();
    stream
}

/// A request head just under `[http] max_header_bytes` (16 KiB), never finished.
const HEAD: usize = 16_000;

fn partial_head() -> Vec<u8> {
    let mut head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Long: ".to_vec();
    head.resize(HEAD, b'a');
    head
}

#[tokio::test]
#[ignore = "needs root and a writable memory cgroup; .ci/run runs it"]
async fn the_defaults_driven_to_their_limits_fit_in_256_mib() {
    let _turn = one_at_a_time().await;
    let config = port_table(&["http", "https", "smtp", "toxiproxy"]);
    let server = crate::switchboard().start(&config, &[]).await;
    let cgroup = MemoryCgroup::make(LIMIT);
    cgroup.add(server.pid().as_raw() as u32);
    let ca = std::fs::read_to_string(server.dir().join("certs/ca.pem")).unwrap();
    let (http, https, smtp, toxiproxy) = (
        server.addr("http"),
        server.addr("https"),
        server.addr("smtp"),
        server.addr("toxiproxy"),
    );

    let pid = server.pid();
    println!("started: {} MiB", resident_mib(pid, "VmRSS:"));
    // The store to `[mail] max_bytes` (32 MiB) with messages of 9.5 MiB, the oldest
    // evicted; each parsed for the list and a search.
    for _ in 0..6 {
        let answer = send_message(smtp, 19 << 19).await;
        assert!(answer.starts_with("250 "), "{answer}");
    }
    let answer = send_text(smtp, &picture_message()).await;
    assert!(answer.starts_with("250 "), "{answer}");
    let list = body_json(&http_get(http, "/api/v1/messages").await);
    assert_eq!(
        list["messages_count"], 4,
        "32 MiB hold three and the picture: {list}"
    );
    http_get(http, "/api/v1/search?query=fox").await;
    // Its thumbnail, asked for twice at once: decoded one at a time, within 32 MiB.
    let id = list["messages"][0]["ID"].as_str().unwrap().to_owned();
    let thumb = format!("/api/v1/message/{id}/part/2/thumb");
    let (first, second) = tokio::join!(http_get(http, &thumb), http_get(http, &thumb));
    for answer in [first, second] {
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{}",
            &answer[..200.min(answer.len())]
        );
        assert!(answer.contains("image/jpeg"));
    }
    println!(
        "mail stored and parsed, a thumbnail made: {} MiB",
        resident_mib(pid, "VmRSS:")
    );

    // Request bodies of 1 MiB (`max_body_bytes`), each held a byte short, until the
    // budget (32 MiB) turns them away.
    let mut bodies = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        let mut stream = TcpStream::connect(http).await.unwrap();
        let head = "POST /post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        let written = stream.write_all(&vec![b'b'; (1 << 20) - 1]).await;
        let mut peek = [0u8; 12];
        // A body that found no room is answered at once; one that did waits for its byte.
        match tokio::time::timeout(Duration::from_millis(200), stream.peek(&mut peek)).await {
            Ok(_) if written.is_err() || peek.starts_with(b"HTTP/1.1 503") => refused += 1,
            _ => bodies.push(stream),
        }
    }
    assert!(refused > 0, "no body was turned away");
    println!("bodies held: {} MiB", resident_mib(pid, "VmRSS:"));

    // Every port's `max_connections` taken by a client in the middle of its request; on
    // the http port, WebSocket sessions in the middle of a message just under
    // `[http] max_websocket_message_bytes` (64 KiB), the most a connection there holds.
    let mut held = Vec::new();
    for _ in bodies.len()..MAX_CONNECTIONS {
        held.push(websocket_mid_message(http).await);
    }
    println!(
        "http full of WebSocket sessions: {} MiB",
        resident_mib(pid, "VmRSS:")
    );
    for _ in 0..MAX_CONNECTIONS {
        let mut stream = TcpStream::connect(toxiproxy).await.unwrap();
        stream.write_all(&partial_head()).await.unwrap();
        held.push(stream);
    }
    println!("toxiproxy full: {} MiB", resident_mib(pid, "VmRSS:"));
    for _ in 0..MAX_CONNECTIONS {
        let mut stream = TcpStream::connect(smtp).await.unwrap();
        let mut auth = b"AUTH PLAIN ".to_vec();
        auth.resize(12_000, b'A');
        stream.write_all(&auth).await.unwrap();
        held.push(stream);
    }
    println!("SMTP full: {} MiB", resident_mib(pid, "VmRSS:"));
    let mut secure = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        let mut stream = tls(https, &ca).await;
        stream.write_all(&partial_head()).await.unwrap();
        secure.push(stream);
    }
    println!("HTTPS full: {} MiB", resident_mib(pid, "VmRSS:"));

    // The process's own peak resident set, and its cgroup's (which counts page cache too).
    let resident = resident_mib(server.pid(), "VmHWM:");
    println!(
        "peak memory: {resident} MiB resident, {} MiB in its cgroup, of {} MiB; {} bodies \
         held and {refused} turned away",
        cgroup.peak() >> 20,
        LIMIT >> 20,
        bodies.len(),
    );
    assert!(resident << 20 < LIMIT, "{resident} MiB");
    assert_eq!(cgroup.oom_kills(), 0, "switchboard was killed for memory");
    assert!(
        nix::sys::signal::kill(server.pid(), None).is_ok(),
        "switchboard is gone"
    );

    // It serves once the clients have gone, the mail it kept still there.
    drop((bodies, held, secure));
    let health = tokio::time::timeout(switchboard_testkit::client::PATIENCE, async {
        loop {
            let answer = http_get(http, "/healthz").await;
            if answer.starts_with("HTTP/1.1 200") {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(health.is_ok(), "no healthy answer after the load");
    let list = body_json(&http_get(http, "/api/v1/messages").await);
    assert_eq!(list["messages_count"], 4);
    server.assert_no_panic();
}
